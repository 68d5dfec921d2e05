/**
 * Where recordings live on disk and how a finished one is put there.
 *
 *   <dataDir>/recordings/<organisation id>/<recording id>/recording.mp4       plain
 *   <dataDir>/recordings/<organisation id>/<recording id>/recording.mp4.enc   encrypted (see crypto.ts)
 *   <dataDir>/recordings/<organisation id>/<recording id>/tracks/             raw tracks while recording
 *
 * Directories are 0700 and files 0600 (the appliance alone). The raw tracks
 * (per participant, Matroska, written by ffmpeg as the call goes) are
 * plaintext: they are removed once the final file is made, or when the
 * recording holds nothing usable; only when composing itself fails are they
 * kept (for an operator to recover) until retention removes the recording.
 *
 * Both ids must be UUIDs, so no path built here can leave the recordings
 * directory. The SHA-256 kept for a recording is always that of the
 * plaintext MP4, so a downloaded file can be checked against it whether or
 * not it was stored encrypted.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../core/errors';
import { encryptFile, syncDirectory } from './crypto';

export const PLAIN_FILE_NAME = 'recording.mp4';
export const ENCRYPTED_FILE_NAME = 'recording.mp4.enc';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MIB = 1024 * 1024;

/**
 * The disk holding the recordings has less free space than the configured
 * reserve (or ran out while a file was written). 507 Insufficient Storage.
 */
export class DiskFullError extends AppError {
  readonly freeBytes: number;
  readonly requiredBytes: number;

  constructor(freeBytes: number, requiredBytes: number, options: { cause?: unknown } = {}) {
    super(503, 'disk_full', {
      params: { freeMb: Math.floor(freeBytes / MIB), requiredMb: Math.ceil(requiredBytes / MIB) },
      cause: options.cause,
    });
    this.freeBytes = freeBytes;
    this.requiredBytes = requiredBytes;
  }
}

/** `<dataDir>/recordings`, absolute. */
export function recordingsDir(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'recordings');
}

/** `<dataDir>/recordings/<organisationId>/<recordingId>`; both ids must be UUIDs. */
export function recordingDir(dataDir: string, organisationId: string, recordingId: string): string {
  if (!UUID.test(organisationId)) throw new TypeError('recording path: the organisation id is not a UUID');
  if (!UUID.test(recordingId)) throw new TypeError('recording path: the recording id is not a UUID');
  const base = recordingsDir(dataDir);
  const dir = path.join(base, organisationId.toLowerCase(), recordingId.toLowerCase());
  // Cannot happen with UUIDs; kept so that a future change to the checks above cannot open an escape.
  const relative = path.relative(base, dir);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) throw new TypeError('recording path escapes the recordings directory');
  return dir;
}

/** SHA-256 of a file's bytes, hex, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * Bytes available to this (unprivileged) process on the filesystem holding
 * `dir`. When `dir` does not exist yet, its nearest existing ancestor is
 * asked; nothing is created.
 */
export async function freeBytes(dir: string): Promise<number> {
  let current = path.resolve(dir);
  for (;;) {
    try {
      const stats = await fs.promises.statfs(current, { bigint: true });
      const bytes = stats.bavail * stats.bsize;
      return bytes > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(bytes);
    } catch (err) {
      const parent = path.dirname(current);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === current) throw err;
      current = parent;
    }
  }
}

/** Throws DiskFullError when the filesystem holding `dir` has less than `minFreeMb` MiB free. */
export async function assertDiskSpace(dir: string, minFreeMb: number): Promise<void> {
  const required = minFreeMb * MIB;
  const free = await freeBytes(dir);
  if (free < required) throw new DiskFullError(free, required);
}

/** Moves a file, across filesystems too (copy, flush, then remove the source). */
async function moveFile(src: string, dest: string): Promise<void> {
  try {
    await fs.promises.rename(src, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = `${dest}.tmp`;
    try {
      await fs.promises.copyFile(src, tmp);
      const handle = await fs.promises.open(tmp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.promises.rename(tmp, dest);
    } catch (copyErr) {
      await fs.promises.rm(tmp, { force: true });
      throw copyErr;
    }
    await fs.promises.rm(src, { force: true });
  }
}

export interface FinalisedRecording {
  /** Absolute path of the stored file. */
  path: string;
  /** Plaintext size in bytes. */
  size: number;
  /** SHA-256 (hex) of the plaintext MP4. */
  sha256: string;
  encrypted: boolean;
}

/**
 * Puts the composed recording (plaintext MP4 at `src`) into its directory
 * `dir` (created if needed): encrypted to `recording.mp4.enc` when a key is
 * given (the plaintext is then removed), else moved to `recording.mp4`.
 * Running out of space while encrypting throws DiskFullError, leaves `src`
 * as it was and no partial file behind.
 */
export async function finaliseFile(src: string, dir: string, key: Buffer | null): Promise<FinalisedRecording> {
  try {
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    if (key) {
      const dest = path.join(dir, ENCRYPTED_FILE_NAME);
      const { plainSize, sha256 } = await encryptFile(src, dest, key);
      await fs.promises.chmod(dest, 0o600);
      await fs.promises.rm(src, { force: true });
      return { path: dest, size: plainSize, sha256, encrypted: true };
    }
    const dest = path.join(dir, PLAIN_FILE_NAME);
    const sha256 = await sha256File(src);
    const { size } = await fs.promises.stat(src);
    await moveFile(src, dest);
    // The plain MP4 is readable by the appliance only, whatever mode it was made with.
    await fs.promises.chmod(dest, 0o600);
    await syncDirectory(dir);
    return { path: dest, size, sha256, encrypted: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    const needed = await fs.promises.stat(src).then((s) => s.size, () => 0);
    throw new DiskFullError(await freeBytes(dir), needed, { cause: err });
  }
}

/** Removes one recording's directory and everything in it. Absent is fine. */
export async function removeRecordingFiles(dataDir: string, organisationId: string, recordingId: string): Promise<void> {
  await fs.promises.rm(recordingDir(dataDir, organisationId, recordingId), { recursive: true, force: true });
}
