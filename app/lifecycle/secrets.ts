import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './private-files';

/** A secret kept in a file (trimmed), or null when the file is missing or empty. */
export function readSecret(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim() || null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * The secret kept in `file`, made at the first use (random, base64url,
 * 0600 in a 0700 folder). Created exclusively, so two processes starting at
 * once end up with the same secret.
 */
export function readOrCreateSecret(file: string, bytes = 24): string {
  const existing = readSecret(file);
  if (existing) return existing;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
  try {
    fs.writeFileSync(file, `${crypto.randomBytes(bytes).toString('base64url')}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const secret = readSecret(file);
  if (!secret) throw new Error(`${file} is empty: remove it to have a new secret made`);
  return secret;
}
