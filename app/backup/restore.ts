import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { Knex } from 'knex';
import { CHECKPOINT_DIR } from '../audit/checkpoints';
import { KEY_FILE } from '../audit/signing';
import { listMigrationNames, migrateLatest, migrationStatus, migratorConfig } from '../db/migrations';
import { SESSION_SECRET_FILE } from './create';
import { databaseIsEmpty, dumpMigrations, loadDatabase } from './dump';
import { BackupError, DATA_PREFIX, DATABASE_NAME, EXIT, MANIFEST_NAME, parseManifest, type Manifest } from './manifest';
import { entryStream, listTar, TarFormatError, type TarEntry } from './tar';

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

export interface RestoreOptions {
  knex: Knex;
  dataDir: string;
  file: string;
}

export interface RestoreResult {
  manifest: Manifest;
  tables: number;
  rows: number;
  files: number;
  /** Migrations newer than the backup, applied after loading it. */
  upgraded: string[];
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Reads an archive's entries and manifest; checks nothing but their form. */
export async function readArchive(file: string): Promise<{ entries: TarEntry[]; manifest: Manifest }> {
  let entries: TarEntry[];
  try {
    entries = await listTar(path.resolve(file));
  } catch (err) {
    if (err instanceof TarFormatError) throw new BackupError(`${file} is not a readable backup archive: ${err.message}`, EXIT.invalidArchive);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BackupError(`${file} does not exist`, EXIT.usage);
    throw err;
  }
  const entry = entries.find((e) => e.name === MANIFEST_NAME);
  if (!entry) throw new BackupError(`${file} holds no manifest.json: not a VClerk backup`, EXIT.invalidArchive);
  if (entry.size > MAX_MANIFEST_BYTES) throw new BackupError('manifest.json is implausibly large', EXIT.invalidArchive);
  return { entries, manifest: parseManifest((await readAll(entryStream(file, entry))).toString('utf8')) };
}

/** Copies an entry to `dest` (0600) and checks its size and SHA-256. */
async function extractVerified(archive: string, entry: TarEntry, dest: string, expected: { bytes: number; sha256: string }): Promise<void> {
  if (entry.size !== expected.bytes) throw new BackupError(`${entry.name}: ${entry.size} bytes in the archive, ${expected.bytes} in the manifest`, EXIT.invalidArchive);
  await fs.promises.mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
  const hash = crypto.createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(entryStream(archive, entry), tap, fs.createWriteStream(dest, { flags: 'wx', mode: 0o600 }));
  const actual = hash.digest('hex');
  if (actual !== expected.sha256) throw new BackupError(`${entry.name} does not match its SHA-256 in the manifest: the archive is damaged`, EXIT.invalidArchive);
}

/** Checks every file of an archive against its manifest, without a database. */
export async function verifyArchive(file: string): Promise<Manifest> {
  const archive = path.resolve(file);
  const { entries, manifest } = await readArchive(archive);
  const expected = new Map<string, { bytes: number; sha256: string }>(manifest.files.map((f) => [`${DATA_PREFIX}${f.path}`, f]));
  expected.set(DATABASE_NAME, manifest.database);
  for (const [name, want] of expected) {
    const entry = entries.find((e) => e.name === name);
    if (!entry) throw new BackupError(`the archive lacks ${name}, which its manifest lists`, EXIT.invalidArchive);
    if (entry.size !== want.bytes) throw new BackupError(`${name}: ${entry.size} bytes in the archive, ${want.bytes} in the manifest`, EXIT.invalidArchive);
    const hash = crypto.createHash('sha256');
    await pipeline(entryStream(archive, entry), hash);
    if (hash.digest('hex') !== want.sha256) throw new BackupError(`${name} does not match its SHA-256 in the manifest: the archive is damaged`, EXIT.invalidArchive);
  }
  const extra = entries.filter((e) => e.name !== MANIFEST_NAME && !expected.has(e.name));
  if (extra.length) throw new BackupError(`the archive holds ${extra[0]!.name}, which its manifest does not list`, EXIT.invalidArchive);
  return manifest;
}

/** What in the data directory would be overwritten by a restore; empty when it may proceed. */
export function dataDirConflicts(dataDir: string): string[] {
  const found: string[] = [];
  for (const name of [KEY_FILE, SESSION_SECRET_FILE]) if (fs.existsSync(path.join(dataDir, name))) found.push(name);
  // Another appliance's checkpoint files would not match the restored chains (the checkpoints themselves come back with the database).
  for (const dir of ['recordings', CHECKPOINT_DIR]) {
    const full = path.join(dataDir, dir);
    if (fs.existsSync(full) && fs.readdirSync(full).length > 0) found.push(`${dir}/`);
  }
  return found;
}

/** The archive's migrations must be where this VClerk's began: the same names, in the same order. */
function checkMigrations(manifest: Manifest): void {
  const known = listMigrationNames();
  const theirs = manifest.database.migrations;
  const unknown = theirs.filter((name) => !known.includes(name));
  if (unknown.length) {
    throw new BackupError(
      `the backup was made by a newer VClerk (${manifest.applianceVersion}) with migrations this version does not have (${unknown.join(', ')}); restore it with that version or a newer one`,
      EXIT.invalidArchive,
    );
  }
  if (theirs.some((name, i) => known[i] !== name)) throw new BackupError('the backup\'s migrations are not in this VClerk\'s order', EXIT.invalidArchive);
}

/**
 * Restores a backup into an empty database and data directory: checks
 * every file against the manifest before anything is written to the
 * database, replays the migrations the backup was made at, loads the rows,
 * checks the audit chain heads, puts the files in place, then migrates
 * forward to this version (the upgrade path for older backups).
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const archive = path.resolve(options.file);
  const dataDir = path.resolve(options.dataDir);
  const { entries, manifest } = await readArchive(archive);
  checkMigrations(manifest);

  const conflicts = fs.existsSync(dataDir) ? dataDirConflicts(dataDir) : [];
  if (conflicts.length) throw new BackupError(`the data directory ${dataDir} is not empty (${conflicts.join(', ')}); restore needs an empty one`, EXIT.refused);
  const { empty, relations } = await databaseIsEmpty(options.knex);
  if (!empty) throw new BackupError(`the database is not empty (${relations} tables, sequences or views); restore needs a new, empty database`, EXIT.refused);

  const expected = new Map(manifest.files.map((f) => [`${DATA_PREFIX}${f.path}`, f]));
  for (const entry of entries) {
    if (entry.name !== MANIFEST_NAME && entry.name !== DATABASE_NAME && !expected.has(entry.name)) {
      throw new BackupError(`the archive holds ${entry.name}, which its manifest does not list`, EXIT.invalidArchive);
    }
  }
  const missing = [DATABASE_NAME, ...expected.keys()].filter((name) => !entries.some((e) => e.name === name));
  if (missing.length) throw new BackupError(`the archive lacks files its manifest lists: ${missing.join(', ')}`, EXIT.invalidArchive);

  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const staging = await fs.promises.mkdtemp(path.join(dataDir, '.restore-'));
  let databaseTouched = false;
  try {
    const dumpFile = path.join(staging, DATABASE_NAME);
    await extractVerified(archive, entries.find((e) => e.name === DATABASE_NAME)!, dumpFile, manifest.database);
    for (const entry of entries) {
      const file = expected.get(entry.name);
      if (file) await extractVerified(archive, entry, path.join(staging, 'data', ...file.path.split('/')), file);
    }
    const dumpAt = await dumpMigrations(dumpFile);
    if (dumpAt.join('\n') !== manifest.database.migrations.join('\n')) throw new BackupError('the database dump and the manifest name different migrations', EXIT.invalidArchive);

    databaseTouched = true;
    for (let i = 0; i < dumpAt.length; i++) await options.knex.migrate.up(migratorConfig);
    const { applied } = await migrationStatus(options.knex);
    if (applied.join('\n') !== dumpAt.join('\n')) throw new BackupError('could not bring the new database to the backup\'s schema');
    const loaded = await loadDatabase(options.knex, dumpFile);

    const heads = (await options.knex.raw(`SELECT DISTINCT ON (chain) chain, seq::text AS seq, hash FROM audit_events ORDER BY chain, audit_events.seq DESC`)).rows as { chain: string; seq: string; hash: string }[];
    const got = heads.map((h) => `${h.chain}:${h.seq}:${h.hash}`).sort().join('\n');
    const want = manifest.auditChainHeads.map((h) => `${h.chain}:${h.seq}:${h.hash}`).sort().join('\n');
    if (got !== want) throw new BackupError('the restored audit trail does not end where the manifest says', EXIT.invalidArchive);

    for (const file of manifest.files) {
      const dest = path.join(dataDir, ...file.path.split('/'));
      await fs.promises.mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
      await fs.promises.rename(path.join(staging, 'data', ...file.path.split('/')), dest);
    }
    const upgraded = await migrateLatest(options.knex);
    return { manifest, tables: loaded.tables, rows: loaded.rows, files: manifest.files.length, upgraded };
  } catch (err) {
    if (databaseTouched && err instanceof Error) {
      err.message += ' (the restore was not completed: drop and re-create the database, empty, and empty the data directory before trying again)';
    }
    throw err;
  } finally {
    await fs.promises.rm(staging, { recursive: true, force: true });
  }
}
