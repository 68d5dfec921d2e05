import crypto from 'node:crypto';
import zlib from 'node:zlib';

/** Test images, made in code. */

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * A valid PNG of one colour (1x1 unless `width` and `height` are given) (different colours, different bytes): RGB,
 * or RGBA with `alpha`; `idat` replaces the pixel data (a corrupt file).
 */
export function png(red: number, options: { green?: number; blue?: number; alpha?: boolean; idat?: Buffer; width?: number; height?: number } = {}): Buffer {
  const width = options.width ?? 1;
  const height = options.height ?? 1;
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = options.alpha ? 6 : 2; // truecolour (with alpha)
  const rgb = [red, options.green ?? 0, options.blue ?? 0];
  const pixel = [...rgb, ...(options.alpha ? [255] : [])];
  const row = [0, ...Array.from({ length: width }, () => pixel).flat()];
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', options.idat ?? zlib.deflateSync(Buffer.from(Array.from({ length: height }, () => row).flat()))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The columns of a `product_images` row holding these bytes. */
export function imageRow(organisationId: string, productId: string, data: Buffer, position = 0) {
  return { organisation_id: organisationId, product_id: productId, position, content_type: 'image/png', data, size: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') };
}
