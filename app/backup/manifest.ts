/**
 * What a backup archive holds, described by its `manifest.json`:
 *
 *   manifest.json                      this description
 *   database.ndjson.gz                 the database, one consistent snapshot (dump.ts)
 *   data/appliance-signing-key.pem     the Ed25519 key that signs audit exports
 *   data/session.secret                the session secret (when generated, not configured)
 *   data/recordings/<org>/<id>/<file>  each finished recording's stored file (as stored: encrypted or not)
 *
 * Every file's size and SHA-256 are listed; restore refuses an archive
 * whose contents do not match.
 */

export const MANIFEST_NAME = 'manifest.json';
export const DATABASE_NAME = 'database.ndjson.gz';
export const DATA_PREFIX = 'data/';
export const FORMAT = 'vclerk-backup';
export const FORMAT_VERSION = 1;

/** Exit codes of `vclerk backup` (also in docs/operations.md). */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** The target is not empty (restore), or the output file exists (create). */
  refused: 3,
  /** The archive is damaged, not a VClerk backup, or from a newer VClerk. */
  invalidArchive: 4,
} as const;

/** A failure with a clear message for the IT admin and the exit code to end with. */
export class BackupError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failed, options: { cause?: unknown } = {}) {
    super(message, options);
  }
}

export interface ManifestFile {
  /** Relative to the data directory, with `/` separators. */
  path: string;
  kind: 'recording' | 'signing-key' | 'session-secret';
  bytes: number;
  /** SHA-256 of the bytes in the archive (for an encrypted recording: of the encrypted file). */
  sha256: string;
  recordingId?: string;
}

export interface Manifest {
  format: typeof FORMAT;
  formatVersion: number;
  createdAt: string;
  applianceVersion: string;
  instanceId: string | null;
  database: {
    file: typeof DATABASE_NAME;
    bytes: number;
    sha256: string;
    /** The migrations applied in the backed-up database, in order. */
    migrations: string[];
    tables: { name: string; rows: number }[];
  };
  /** The last event of each audit chain in the snapshot. */
  auditChainHeads: { chain: string; seq: number; hash: string }[];
  files: ManifestFile[];
  /** Recordings still being recorded or processed at backup time: rows are in the database, files are not in the archive. */
  excludedRecordings: { id: string; organisationId: string; status: string }[];
  /** Finished recordings whose file was not found on disk when the backup was made. */
  missingFiles: { path: string; recordingId: string }[];
}

/** Paths inside the data directory that a manifest may name: no absolute paths, no `..`. */
export function isSafeRelativePath(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

export function parseManifest(text: string): Manifest {
  let value: Manifest;
  try {
    value = JSON.parse(text) as Manifest;
  } catch {
    throw new BackupError('the archive\'s manifest.json is not valid JSON', EXIT.invalidArchive);
  }
  if (value?.format !== FORMAT) throw new BackupError('this is not a VClerk backup (manifest.json has another format)', EXIT.invalidArchive);
  if (value.formatVersion > FORMAT_VERSION) {
    throw new BackupError(`the backup has format version ${value.formatVersion}, made by a newer VClerk (${value.applianceVersion}); upgrade this VClerk first`, EXIT.invalidArchive);
  }
  const ok =
    typeof value.database?.sha256 === 'string' &&
    Array.isArray(value.database.migrations) &&
    Array.isArray(value.files) &&
    value.files.every((f) => isSafeRelativePath(f.path) && /^[0-9a-f]{64}$/.test(f.sha256) && Number.isSafeInteger(f.bytes));
  if (!ok) throw new BackupError('the archive\'s manifest.json is incomplete or names an unsafe path', EXIT.invalidArchive);
  return value;
}
