/**
 * Encryption at rest of recordings (AES-256-GCM), in a chunked format that
 * can be read from any offset, so that playback with HTTP ranges decrypts
 * only the chunks it touches.
 *
 * File format, version 1 (all integers big-endian):
 *
 *   header, 40 bytes
 *     0  8  magic "VCLERKE1"
 *     8  1  version (1)
 *     9  3  reserved, zero
 *    12  4  chunk size C in bytes (plaintext per chunk; 64 KiB by default)
 *    16  8  plaintext size P in bytes
 *    24 16  file id: 16 random bytes, new for every file
 *   chunks, N = max(1, ceil(P / C)) of them, chunk i at 40 + i * (C + 16)
 *     ciphertext of plaintext bytes [i*C, min((i+1)*C, P))   (C bytes, the last one fewer)
 *     GCM tag, 16 bytes
 *
 * Keys and nonces. Each file is encrypted under its own key,
 * HKDF-SHA256(ikm = the configured 32-byte key, salt = file id,
 * info = "VCLERKE1 chunk key"), and chunk i uses the 12-byte nonce
 * 00 00 00 00 || uint64(i). The file id is the per-file nonce prefix in
 * effect: a (key, nonce) pair can only repeat if two files drew the same 128
 * random bits, and within a file every index is used once. (Random 96-bit
 * GCM nonces under one key would have a birthday bound; this has none worth
 * counting.)
 *
 * Authentication. Every chunk's additional data is
 * header (40 bytes) || uint64(i) || final (1 byte: 1 for chunk N-1, else 0).
 * So a chunk only decrypts at its own position in its own file: reordered,
 * duplicated or foreign chunks fail, a changed header (size, chunk size, file
 * id) fails every chunk, and the final flag marks the real end. The reader
 * also checks the file's length against the header (40 + P + 16 N), so a
 * truncated or extended file is refused even when the requested range does
 * not touch the missing part. An empty plaintext still has one (empty) final
 * chunk, whose tag authenticates the header.
 *
 * Decrypted bytes are handed out only after their chunk's tag has been
 * checked; a chunk that fails makes the stream error with a
 * RecordingIntegrityError and nothing of that chunk is emitted.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';

export const RECORDING_MAGIC = 'VCLERKE1';
const VERSION = 1;
export const HEADER_SIZE = 40;
export const TAG_SIZE = 16;
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
const MIN_CHUNK_SIZE = 1024;
const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
const KEY_SIZE = 32;
const FILE_ID_SIZE = 16;
/** Chunks are read and written in batches of about this many bytes. */
const BATCH_BYTES = 1024 * 1024;
const HKDF_INFO = Buffer.from('VCLERKE1 chunk key');

/** The configured recording key is not usable. The message never contains the key. */
export class RecordingKeyError extends Error {
  readonly code = 'recording_key_invalid';
  constructor(message: string) {
    super(message);
    this.name = 'RecordingKeyError';
  }
}

/** An encrypted recording is not what it should be: altered, truncated, the wrong key, or not one at all. */
export class RecordingIntegrityError extends Error {
  readonly code = 'recording_integrity';
  constructor(message: string) {
    super(message);
    this.name = 'RecordingIntegrityError';
  }
}

/**
 * The recording key from its configured text: 64 hex digits, or base64 /
 * base64url (padding optional) of exactly 32 bytes. Surrounding whitespace
 * (a secret file's final newline) is ignored.
 */
export function parseRecordingKey(text: string): Buffer {
  const value = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) {
    const standard = value.replace(/=$/, '').replace(/-/g, '+').replace(/_/g, '/');
    const key = Buffer.from(standard, 'base64');
    // Canonical only: the last character's two spare bits must be zero.
    if (key.length === KEY_SIZE && key.toString('base64').replace(/=$/, '') === standard) return key;
  }
  throw new RecordingKeyError(
    `The recording key must be 32 bytes written as 64 hex digits or as base64 (for example from \`openssl rand -base64 32\`); the value given (${value.length} characters) is neither.`,
  );
}

function assertKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_SIZE) throw new RecordingKeyError('The recording key must be 32 bytes.');
}

interface Header {
  bytes: Buffer;
  chunkSize: number;
  plainSize: number;
  fileId: Buffer;
}

function buildHeader(chunkSize: number, plainSize: number, fileId: Buffer): Header {
  const bytes = Buffer.alloc(HEADER_SIZE);
  bytes.write(RECORDING_MAGIC, 0, 'latin1');
  bytes.writeUInt8(VERSION, 8);
  bytes.writeUInt32BE(chunkSize, 12);
  bytes.writeBigUInt64BE(BigInt(plainSize), 16);
  fileId.copy(bytes, 24);
  return { bytes, chunkSize, plainSize, fileId };
}

function parseHeader(bytes: Buffer): Header {
  if (bytes.length < HEADER_SIZE || bytes.toString('latin1', 0, 8) !== RECORDING_MAGIC) {
    throw new RecordingIntegrityError('Not an encrypted VClerk recording.');
  }
  if (bytes.readUInt8(8) !== VERSION) throw new RecordingIntegrityError('Unsupported version of the encrypted recording format.');
  if (bytes.readUIntBE(9, 3) !== 0) throw new RecordingIntegrityError('Damaged header of an encrypted recording.');
  const chunkSize = bytes.readUInt32BE(12);
  const plainSize = bytes.readBigUInt64BE(16);
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE || plainSize > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RecordingIntegrityError('Damaged header of an encrypted recording.');
  }
  return { bytes: Buffer.from(bytes.subarray(0, HEADER_SIZE)), chunkSize, plainSize: Number(plainSize), fileId: Buffer.from(bytes.subarray(24, 40)) };
}

function chunkCount(plainSize: number, chunkSize: number): number {
  return plainSize === 0 ? 1 : Math.ceil(plainSize / chunkSize);
}

/** Size on disk of an encrypted recording of `plainSize` bytes. */
export function encryptedFileSize(plainSize: number, chunkSize = DEFAULT_CHUNK_SIZE): number {
  return HEADER_SIZE + plainSize + chunkCount(plainSize, chunkSize) * TAG_SIZE;
}

function fileKey(key: Buffer, fileId: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', key, fileId, HKDF_INFO, KEY_SIZE));
}

function nonce(index: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64BE(BigInt(index), 4);
  return iv;
}

function additionalData(header: Header, index: number, final: boolean): Buffer {
  const aad = Buffer.alloc(HEADER_SIZE + 9);
  header.bytes.copy(aad, 0);
  aad.writeBigUInt64BE(BigInt(index), HEADER_SIZE);
  aad.writeUInt8(final ? 1 : 0, HEADER_SIZE + 8);
  return aad;
}

/** Reads exactly `length` bytes at `position`, or throws `short()`. */
async function readExactly(handle: fs.promises.FileHandle, buffer: Buffer, length: number, position: number, short: () => Error): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw short();
    done += bytesRead;
  }
}

async function writeAll(handle: fs.promises.FileHandle, buffer: Buffer): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, done, buffer.length - done);
    done += bytesWritten;
  }
}

/** Makes a rename in `dir` durable. Filesystems that cannot fsync a directory are left alone. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    await handle?.close();
  }
}

/**
 * Encrypts the file `src` to `dest` in constant memory: written to
 * `dest + '.tmp'`, flushed to disk, then renamed, so `dest` is either absent
 * or complete. Also returns the SHA-256 (hex) of the plaintext read, so the
 * caller need not read the file twice. The source must not change meanwhile
 * (it is refused if its size does).
 */
export async function encryptFile(
  src: string,
  dest: string,
  key: Buffer,
  options: { chunkSize?: number } = {},
): Promise<{ plainSize: number; sha256: string }> {
  assertKey(key);
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`chunk size must be an integer between ${MIN_CHUNK_SIZE} and ${MAX_CHUNK_SIZE}`);
  }
  const tmp = `${dest}.tmp`;
  const input = await fs.promises.open(src, 'r');
  let output: fs.promises.FileHandle | undefined;
  const changed = () => new Error(`the file ${src} changed while it was being encrypted`);
  try {
    const plainSize = (await input.stat()).size;
    const header = buildHeader(chunkSize, plainSize, crypto.randomBytes(FILE_ID_SIZE));
    const k = fileKey(key, header.fileId);
    const chunks = chunkCount(plainSize, chunkSize);
    const perBatch = Math.max(1, Math.floor(BATCH_BYTES / chunkSize));
    const plain = Buffer.allocUnsafe(perBatch * chunkSize);
    const sealed = Buffer.allocUnsafe(perBatch * (chunkSize + TAG_SIZE));
    const hash = crypto.createHash('sha256');

    output = await fs.promises.open(tmp, 'w', 0o600);
    await writeAll(output, header.bytes);
    let index = 0;
    let position = 0;
    while (index < chunks) {
      const n = Math.min(perBatch, chunks - index);
      const length = Math.min(n * chunkSize, plainSize - position);
      await readExactly(input, plain, length, position, changed);
      hash.update(plain.subarray(0, length));
      let out = 0;
      for (let j = 0; j < n; j++, index++) {
        const from = j * chunkSize;
        const cipher = crypto.createCipheriv('aes-256-gcm', k, nonce(index));
        cipher.setAAD(additionalData(header, index, index === chunks - 1));
        out += cipher.update(plain.subarray(from, Math.min(from + chunkSize, length))).copy(sealed, out);
        out += cipher.final().copy(sealed, out);
        out += cipher.getAuthTag().copy(sealed, out);
      }
      await writeAll(output, sealed.subarray(0, out));
      position += length;
    }
    if ((await input.read(Buffer.alloc(1), 0, 1, position)).bytesRead !== 0) throw changed();
    await output.sync();
    await output.close();
    output = undefined;
    await fs.promises.rename(tmp, dest);
    await syncDirectory(path.dirname(dest));
    return { plainSize, sha256: hash.digest('hex') };
  } catch (err) {
    await output?.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw err;
  } finally {
    await input.close();
  }
}

/** Reads and checks an encrypted recording's header, and that the file's length matches it. */
async function openEncrypted(handle: fs.promises.FileHandle): Promise<Header> {
  const bytes = Buffer.alloc(HEADER_SIZE);
  await readExactly(handle, bytes, HEADER_SIZE, 0, () => new RecordingIntegrityError('Not an encrypted VClerk recording (too short).'));
  const header = parseHeader(bytes);
  const { size } = await handle.stat();
  if (size !== encryptedFileSize(header.plainSize, header.chunkSize)) {
    throw new RecordingIntegrityError('The encrypted recording was truncated or extended.');
  }
  return header;
}

/**
 * The plaintext size recorded in an encrypted recording's header (checked
 * against the file's length; the header itself is authenticated only when
 * a chunk is decrypted).
 */
export async function encryptedPlainSize(file: string): Promise<number> {
  const handle = await fs.promises.open(file, 'r');
  try {
    return (await openEncrypted(handle)).plainSize;
  } finally {
    await handle.close();
  }
}

async function* decryptChunks(file: string, key: Buffer, start: number, end: number): AsyncGenerator<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const header = await openEncrypted(handle);
    const { chunkSize, plainSize } = header;
    if (end >= plainSize) throw new RangeError(`range ${start}-${end} lies beyond the recording's ${plainSize} bytes`);
    const k = fileKey(key, header.fileId);
    const chunks = chunkCount(plainSize, chunkSize);
    const first = Math.floor(start / chunkSize);
    const last = Math.floor(end / chunkSize);
    const perBatch = Math.max(1, Math.floor(BATCH_BYTES / chunkSize));
    const sealed = Buffer.allocUnsafe(perBatch * (chunkSize + TAG_SIZE));
    const truncated = () => new RecordingIntegrityError('The encrypted recording was truncated.');

    for (let index = first; index <= last; ) {
      const n = Math.min(perBatch, last - index + 1);
      const plainEnd = Math.min((index + n) * chunkSize, plainSize);
      const length = plainEnd - index * chunkSize + n * TAG_SIZE;
      await readExactly(handle, sealed, length, HEADER_SIZE + index * (chunkSize + TAG_SIZE), truncated);
      let at = 0;
      for (let j = 0; j < n; j++, index++) {
        const size = Math.min(chunkSize, plainSize - index * chunkSize);
        const decipher = crypto.createDecipheriv('aes-256-gcm', k, nonce(index));
        decipher.setAAD(additionalData(header, index, index === chunks - 1));
        decipher.setAuthTag(sealed.subarray(at + size, at + size + TAG_SIZE));
        const plain = decipher.update(sealed.subarray(at, at + size));
        try {
          decipher.final();
        } catch {
          throw new RecordingIntegrityError(`Chunk ${index} of the encrypted recording failed authentication (wrong key, or the file was altered).`);
        }
        at += size + TAG_SIZE;
        const from = index === first ? start - index * chunkSize : 0;
        const to = index === last ? end - index * chunkSize + 1 : size;
        yield plain.subarray(from, to);
      }
    }
  } finally {
    await handle.close();
  }
}

/**
 * Streams plaintext bytes `start` to `endInclusive` of an encrypted
 * recording, decrypting and authenticating each chunk it touches. A chunk
 * that fails, a wrong key, a damaged header or a file of the wrong length
 * make the stream error (RecordingIntegrityError); a range beyond the end
 * makes it error with a RangeError. Destroying the stream stops reading and
 * closes the file. Throws at once (no stream) for a key that is not 32
 * bytes or a range that is negative or inverted.
 */
export function decryptRange(file: string, key: Buffer, start: number, endInclusive: number): Readable {
  assertKey(key);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(endInclusive) || start < 0 || endInclusive < start) {
    throw new RangeError(`invalid range ${start}-${endInclusive}`);
  }
  return Readable.from(decryptChunks(file, key, start, endInclusive), { objectMode: false });
}
