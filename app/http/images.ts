/**
 * Uploaded images: which types the appliance accepts, and what a file
 * really is, from its first bytes rather than from its name or the type the
 * browser declared. Used for organisation logos and product images.
 */

/** The image types the appliance stores and serves. */
export const imageTypes = ['image/png', 'image/jpeg', 'image/webp'] as const;
export type ImageType = (typeof imageTypes)[number];

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * The image type a file really is, from its first bytes; undefined for
 * anything but PNG, JPEG and WebP. SVG is never accepted: it can carry script.
 */
export function sniffImageType(data: Buffer): ImageType | undefined {
  if (data.length >= 16 && data.subarray(0, 8).equals(PNG_SIGNATURE) && data.toString('latin1', 12, 16) === 'IHDR') return 'image/png';
  if (data.length >= 4 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'image/jpeg';
  if (data.length >= 16 && data.toString('latin1', 0, 4) === 'RIFF' && data.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  return undefined;
}

/** A declared content type without parameters, lower-cased, with the old JPEG aliases folded in. */
export function normaliseDeclaredType(declared: string): string {
  const type = declared.split(';')[0]!.trim().toLowerCase();
  return type === 'image/jpg' || type === 'image/pjpeg' ? 'image/jpeg' : type;
}

/** The file's type when its bytes are an accepted image of the declared type; undefined otherwise. */
export function checkedImageType(data: Buffer, declaredType: string): ImageType | undefined {
  const type = sniffImageType(data);
  return type && type === normaliseDeclaredType(declaredType) ? type : undefined;
}
