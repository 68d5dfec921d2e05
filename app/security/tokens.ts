import crypto from 'node:crypto';

/** The hex SHA-256 of a token: what is stored instead of the token itself. */
export function sha256(value: string): string {
  return crypto.createHash('sha256').update(value).digest('hex');
}

/** 256 random bits, URL-safe. */
export function randomToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}
