import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Knex } from 'knex';
import { KEY_FILE } from '../audit/signing';
import { appVersion } from '../core/paths';
import { recordingDir, recordingsDir } from '../recordings/storage';
import { dumpDatabase } from './dump';
import { BackupError, DATA_PREFIX, DATABASE_NAME, EXIT, FORMAT, FORMAT_VERSION, MANIFEST_NAME, type Manifest, type ManifestFile } from './manifest';
import { TarWriter } from './tar';

export const SESSION_SECRET_FILE = 'session.secret';
const FINAL_STATUSES = ['ready', 'partial', 'failed'];

export interface CreateBackupOptions {
  knex: Knex;
  dataDir: string;
  /** The archive to write; must not exist. */
  file: string;
  now?: Date;
}

/**
 * Writes a backup archive: the database from one snapshot, and the data
 * directory's files that snapshot refers to (finished recordings), plus
 * the signing key and session secret. The archive is written to
 * `<file>.partial` and renamed when complete, so `<file>` is either a
 * whole backup or absent.
 */
export async function createBackup(options: CreateBackupOptions): Promise<Manifest> {
  const file = path.resolve(options.file);
  const dataDir = path.resolve(options.dataDir);
  if (fs.existsSync(file)) throw new BackupError(`${file} exists already; choose a new file name`, EXIT.refused);
  const partial = `${file}.partial`;
  const dumpFile = `${file}.${crypto.randomBytes(4).toString('hex')}.db.partial`;
  await fs.promises.rm(partial, { force: true }); // left by an interrupted run
  const tar = new TarWriter(partial);
  try {
    const manifest = await options.knex.transaction(
      async (trx) => {
        const createdAt = (options.now ?? new Date()).toISOString();
        const dump = await dumpDatabase(trx, dumpFile);
        const instance = (await trx.raw(`SELECT to_regclass('public.appliance_info') AS t`)).rows[0].t
          ? ((await trx('appliance_info').first('instance_id')) as { instance_id: string } | undefined)
          : undefined;
        const heads = (await trx.raw(`SELECT DISTINCT ON (chain) chain, seq::text AS seq, hash FROM audit_events ORDER BY chain, audit_events.seq DESC`)).rows as { chain: string; seq: string; hash: string }[];
        const recordings = (await trx('recordings').select('id', 'organisation_id', 'status', 'file_name').orderBy('started_at')) as {
          id: string;
          organisation_id: string;
          status: string;
          file_name: string | null;
        }[];
        // The snapshot is read: end the transaction before the (long) file copies.
        return { createdAt, dump, instanceId: instance?.instance_id ?? null, heads, recordings };
      },
      { isolationLevel: 'repeatable read', readOnly: true },
    );

    const files: ManifestFile[] = [];
    const missingFiles: Manifest['missingFiles'] = [];
    const excludedRecordings: Manifest['excludedRecordings'] = [];
    const databaseEntry = await tar.addFile(DATABASE_NAME, dumpFile);
    if (databaseEntry.sha256 !== manifest.dump.sha256) throw new BackupError('the database dump changed while it was archived');
    await fs.promises.rm(dumpFile, { force: true });

    for (const [name, kind] of [
      [KEY_FILE, 'signing-key'],
      [SESSION_SECRET_FILE, 'session-secret'],
    ] as const) {
      const source = path.join(dataDir, name);
      if (!fs.existsSync(source)) continue;
      const entry = await tar.addFile(`${DATA_PREFIX}${name}`, source);
      files.push({ path: name, kind, bytes: entry.bytes, sha256: entry.sha256 });
    }

    const base = recordingsDir(dataDir);
    for (const rec of manifest.recordings) {
      if (!FINAL_STATUSES.includes(rec.status)) {
        excludedRecordings.push({ id: rec.id, organisationId: rec.organisation_id, status: rec.status });
        continue;
      }
      if (!rec.file_name) continue;
      const source = path.join(recordingDir(dataDir, rec.organisation_id, rec.id), rec.file_name);
      const relative = path.relative(dataDir, source).split(path.sep).join('/');
      if (!source.startsWith(base + path.sep)) throw new BackupError(`recording ${rec.id} names a file outside its directory`);
      // Open first: a file that retention removes meanwhile is either archived whole or reported missing.
      let handle: fs.promises.FileHandle;
      try {
        handle = await fs.promises.open(source, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        missingFiles.push({ path: relative, recordingId: rec.id });
        continue;
      }
      try {
        const stat = await handle.stat();
        const entry = await tar.add(`${DATA_PREFIX}${relative}`, stat.size, handle.createReadStream({ autoClose: false }), { mtime: stat.mtime });
        files.push({ path: relative, kind: 'recording', bytes: entry.bytes, sha256: entry.sha256, recordingId: rec.id });
      } finally {
        await handle.close();
      }
    }

    const result: Manifest = {
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      createdAt: manifest.createdAt,
      applianceVersion: appVersion,
      instanceId: manifest.instanceId,
      database: { file: DATABASE_NAME, bytes: manifest.dump.bytes, sha256: manifest.dump.sha256, migrations: manifest.dump.migrations, tables: manifest.dump.tables },
      auditChainHeads: manifest.heads.map((h) => ({ chain: h.chain, seq: Number(h.seq), hash: h.hash })),
      files,
      excludedRecordings,
      missingFiles,
    };
    const json = Buffer.from(`${JSON.stringify(result, null, 2)}\n`);
    await tar.add(MANIFEST_NAME, json.length, Readable.from([json]));
    await tar.finish();
    await fs.promises.rename(partial, file);
    return result;
  } catch (err) {
    await tar.abort();
    await fs.promises.rm(partial, { force: true });
    await fs.promises.rm(dumpFile, { force: true });
    throw err;
  }
}
