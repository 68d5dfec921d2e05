import assert from 'node:assert/strict';
import { CHECKPOINT_DIR } from '../app/audit/checkpoints';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { SYSTEM } from '../app/audit/actions';
import { AuditService } from '../app/audit/service';
import { ensureApplianceKey, KEY_FILE } from '../app/audit/signing';
import { createBackup } from '../app/backup/create';
import { BackupError, EXIT } from '../app/backup/manifest';
import { restoreBackup } from '../app/backup/restore';
import { listTar } from '../app/backup/tar';
import { listMigrationNames, migrationStatus, migratorConfig } from '../app/db/migrations';
import { decryptRange, encryptedPlainSize } from '../app/recordings/crypto';
import { finaliseFile, recordingDir, sha256File } from '../app/recordings/storage';
import { seedOrganisation, seedUser } from './support/accounts';
import { seedAuditChain } from './support/audit-seed';
import { createTestDatabase, useTestDatabase, type TestDatabase } from './support/database';
import { assertBuilt, cleanEnv, compiledCli, run } from './support/process';

const KEY = crypto.randomBytes(32);

async function plainSha256(file: string, encrypted: boolean): Promise<string> {
  if (!encrypted) return sha256File(file);
  const size = await encryptedPlainSize(file);
  const hash = crypto.createHash('sha256');
  for await (const chunk of decryptRange(file, KEY, 0, size - 1)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function rows(knex: Knex, table: string): Promise<unknown[]> {
  return knex(table).select('*').orderBy('id');
}

function listDir(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** Backups of the database and the data directory, restored into empty ones (issue 9). */
describe('vclerk backup', () => {
  const db = useTestDatabase();
  let tmp: string;
  let dataDir: string;
  let orgId: string;
  const cleanup: TestDatabase[] = [];

  before(async function () {
    this.timeout(120000);
    assertBuilt();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-backup-'));
    dataDir = path.join(tmp, 'data');
    fs.mkdirSync(dataDir);
    const mp4 = path.join(tmp, 'source.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=duration=1:size=160x120:rate=10', '-pix_fmt', 'yuv420p', '-y', mp4]);

    const { knex } = db.current;
    const org = await seedOrganisation(knex, 'Backup Bank');
    orgId = org.id;
    const clerk = await seedUser(knex, org, 'clerk');
    const calls = [];
    for (let i = 0; i < 3; i++) {
      const [call] = await knex('calls')
        .insert({ organisation_id: org.id, clerk_id: clerk.id, status: 'ended', guest_token_hash: crypto.randomBytes(32).toString('hex'), started_at: new Date(), ended_at: new Date(), end_reason: 'clerk_ended' })
        .returning('id');
      calls.push(call!.id as string);
    }
    for (const [i, encrypted] of [false, true].entries()) {
      const [rec] = await knex('recordings').insert({ organisation_id: org.id, call_id: calls[i], status: 'processing' }).returning('id');
      const src = path.join(tmp, `composed-${i}.mp4`);
      fs.copyFileSync(mp4, src);
      const stored = await finaliseFile(src, recordingDir(dataDir, org.id, rec!.id), encrypted ? KEY : null);
      await knex('recordings').where({ id: rec!.id }).update({ status: 'ready', file_name: path.basename(stored.path), size: stored.size, sha256: stored.sha256, encrypted, finalised_at: new Date(), progress: 100 });
    }
    // One still being recorded: its row is backed up, its (growing) files are not.
    const [live] = await knex('recordings').insert({ organisation_id: org.id, call_id: calls[2], status: 'recording' }).returning('id');
    fs.mkdirSync(path.join(recordingDir(dataDir, org.id, live!.id), 'tracks'), { recursive: true });
    fs.writeFileSync(path.join(recordingDir(dataDir, org.id, live!.id), 'tracks', 'clerk-1.mkv'), 'growing');

    await seedAuditChain(knex, org.id, 40);
    await new AuditService(knex).record({ organisationId: org.id, actor: SYSTEM, action: 'recording.started', target: { type: 'recording', id: live!.id }, details: { note: 'ünïcode "quoted"\nline' } });
    ensureApplianceKey(dataDir);
    fs.writeFileSync(path.join(dataDir, 'session.secret'), 'a-session-secret-for-the-backup-test-0123456789\n', { mode: 0o600 });
  });

  after(async () => {
    for (const d of cleanup) await d.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function emptyDatabase(): Promise<TestDatabase> {
    const d = await createTestDatabase({ migrated: false });
    cleanup.push(d);
    return d;
  }

  it('restores the calls, recordings (files matching their SHA-256), keys and a verifiable audit trail into an empty database', async () => {
    const file = path.join(tmp, 'direct.tar');
    const manifest = await createBackup({ knex: db.current.knex, dataDir, file });
    assert.equal(manifest.files.filter((f) => f.kind === 'recording').length, 2);
    assert.deepEqual(manifest.excludedRecordings.map((r) => r.status), ['recording']);
    const head = await db.current.knex('audit_events').where({ chain: orgId }).orderBy('seq', 'desc').first('seq', 'hash');
    assert.deepEqual(manifest.auditChainHeads.find((h) => h.chain === orgId), { chain: orgId, seq: Number(head!.seq), hash: head!.hash });
    assert.match(manifest.database.sha256, /^[0-9a-f]{64}$/);
    const names = (await listTar(file)).map((e) => e.name);
    assert.ok(!names.some((n) => n.includes('tracks')), 'a recording in progress is left out');
    assert.ok(!names.includes('data/postgres.password'));

    const target = await emptyDatabase();
    const restoredDir = path.join(tmp, 'restored-direct');
    const result = await restoreBackup({ knex: target.knex, dataDir: restoredDir, file });
    assert.deepEqual(result.upgraded, []);

    for (const table of ['organisations', 'users', 'calls', 'recordings', 'audit_events']) {
      assert.deepEqual(await rows(target.knex, table), await rows(db.current.knex, table), table);
    }
    const recordings = await target.knex('recordings').where({ status: 'ready' });
    assert.equal(recordings.length, 2);
    for (const rec of recordings) {
      const stored = path.join(recordingDir(restoredDir, rec.organisation_id, rec.id), rec.file_name!);
      assert.equal(await plainSha256(stored, rec.encrypted), rec.sha256, `recording ${rec.id} (encrypted: ${rec.encrypted})`);
    }
    assert.deepEqual(fs.readFileSync(path.join(restoredDir, KEY_FILE)), fs.readFileSync(path.join(dataDir, KEY_FILE)));
    assert.equal(fs.statSync(path.join(restoredDir, KEY_FILE)).mode & 0o777, 0o600);
    assert.deepEqual(fs.readFileSync(path.join(restoredDir, 'session.secret')), fs.readFileSync(path.join(dataDir, 'session.secret')));
    assert.ok(!listDir(restoredDir).some((p) => p.startsWith('.restore-')), 'no staging left behind');

    const audit = new AuditService(target.knex);
    const verified = await audit.verify(orgId);
    assert.equal(verified.ok, true);
    assert.equal(verified.count, Number(head!.seq));
    // Sequences continue after the restored rows: the chain grows and still verifies.
    await audit.record({ organisationId: orgId, actor: SYSTEM, action: 'recording.stopped', details: {} });
    assert.equal((await audit.verify(orgId)).ok, true);
  });

  it('runs as the `vclerk` command: create, verify, restore, and refuses to restore over a restored appliance', async function () {
    this.timeout(120000);
    const file = path.join(tmp, 'cli.tar');
    const cli = async (env: Record<string, string>, ...args: string[]) => {
      const proc = run(compiledCli, args, cleanEnv({ VCLERK_LOG_LEVEL: 'warn', ...env }));
      const { code } = await proc.finished();
      return { code, output: proc.output() };
    };
    const created = await cli({ DATABASE_URL: db.current.url, VCLERK_DATA_DIR: dataDir }, 'backup', 'create', file);
    assert.equal(created.code, 0, created.output);
    assert.match(created.output, /2 recording files/);
    assert.match(created.output, /left out \(still recording\)/);
    // A standard tar: the system's tar lists it.
    const listed = execFileSync('tar', ['tf', file], { encoding: 'utf8' });
    assert.match(listed, /^manifest\.json$/m);
    assert.match(listed, /^data\/recordings\/[0-9a-f-]{36}\/[0-9a-f-]{36}\/recording\.mp4\.enc$/m);

    assert.equal((await cli({}, 'backup', 'verify', file)).code, 0);
    const again = await cli({ DATABASE_URL: db.current.url, VCLERK_DATA_DIR: dataDir }, 'backup', 'create', file);
    assert.equal(again.code, EXIT.refused, again.output);

    const target = await emptyDatabase();
    const restoredDir = path.join(tmp, 'restored-cli');
    const env = { DATABASE_URL: target.url, VCLERK_DATA_DIR: restoredDir };
    const restored = await cli(env, 'backup', 'restore', file);
    assert.equal(restored.code, 0, restored.output);
    assert.equal((await target.knex('calls')).length, 3);
    assert.equal((await new AuditService(target.knex).verify(orgId)).ok, true);

    const before = { files: listDir(restoredDir), events: (await target.knex('audit_events')).length };
    const refused = await cli(env, 'backup', 'restore', file);
    assert.equal(refused.code, EXIT.refused, refused.output);
    assert.match(refused.output, /not empty/);
    assert.deepEqual({ files: listDir(restoredDir), events: (await target.knex('audit_events')).length }, before);

    assert.equal((await cli({}, 'backup', 'restore')).code, EXIT.usage);
  });

  it('refuses a non-empty database and changes nothing, in the database or the data directory', async () => {
    const file = path.join(tmp, 'refuse.tar');
    await createBackup({ knex: db.current.knex, dataDir, file });
    const target = await createTestDatabase(); // migrated: has the schema and its seed rows
    cleanup.push(target);
    await seedOrganisation(target.knex, 'Already Here');
    const snapshot = async () => ({
      migrations: (await migrationStatus(target.knex)).applied,
      organisations: await rows(target.knex, 'organisations'),
      events: await rows(target.knex, 'audit_events'),
    });
    const before = await snapshot();
    const emptyDir = path.join(tmp, 'refuse-data');
    await assert.rejects(restoreBackup({ knex: target.knex, dataDir: emptyDir, file }), (err: unknown) => {
      assert.ok(err instanceof BackupError);
      assert.equal(err.exitCode, EXIT.refused);
      assert.match(err.message, /database is not empty/);
      return true;
    });
    assert.deepEqual(await snapshot(), before);
    assert.deepEqual(listDir(emptyDir), []);

    // A data directory holding another appliance's key is refused too, before the (empty) database is touched.
    const empty = await emptyDatabase();
    const usedDir = path.join(tmp, 'used-data');
    ensureApplianceKey(usedDir);
    await assert.rejects(restoreBackup({ knex: empty.knex, dataDir: usedDir, file }), (err: unknown) => err instanceof BackupError && err.exitCode === EXIT.refused && /data directory/.test(err.message));
    assert.equal((await empty.knex.raw(`SELECT to_regclass('public.knex_migrations') AS t`)).rows[0].t, null);

    // So is one holding another appliance's audit checkpoints (they would not match the restored chains).
    const checkpointDir = path.join(tmp, 'checkpoint-data');
    fs.mkdirSync(path.join(checkpointDir, CHECKPOINT_DIR), { recursive: true });
    fs.writeFileSync(path.join(checkpointDir, CHECKPOINT_DIR, 'system.ndjson'), '{}\n');
    await assert.rejects(restoreBackup({ knex: empty.knex, dataDir: checkpointDir, file }), (err: unknown) => err instanceof BackupError && err.exitCode === EXIT.refused && /audit-checkpoints/.test(err.message));
  });

  it('refuses a damaged archive before touching the database', async () => {
    const file = path.join(tmp, 'damaged.tar');
    await createBackup({ knex: db.current.knex, dataDir, file });
    const entry = (await listTar(file)).find((e) => e.name.endsWith('recording.mp4'))!;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff, 0x00, 0xff]), 0, 3, entry.offset + 100);
    fs.closeSync(fd);
    const target = await emptyDatabase();
    const dir = path.join(tmp, 'damaged-data');
    await assert.rejects(restoreBackup({ knex: target.knex, dataDir: dir, file }), (err: unknown) => err instanceof BackupError && err.exitCode === EXIT.invalidArchive && /SHA-256/.test(err.message));
    assert.equal((await target.knex.raw(`SELECT to_regclass('public.knex_migrations') AS t`)).rows[0].t, null);
    assert.deepEqual(listDir(dir), []);
  });

  it('restores a backup made before the latest migration and then migrates it forward (the upgrade path)', async () => {
    const all = listMigrationNames();
    const old = await emptyDatabase();
    for (let i = 0; i < all.length - 1; i++) await old.knex.migrate.up(migratorConfig);
    const org = await seedOrganisation(old.knex, 'Older Bank');
    await seedAuditChain(old.knex, org.id, 5);
    const oldDir = path.join(tmp, 'old-data');
    fs.mkdirSync(oldDir);
    const file = path.join(tmp, 'old.tar');
    const manifest = await createBackup({ knex: old.knex, dataDir: oldDir, file });
    assert.equal(manifest.database.migrations.length, all.length - 1);

    const target = await emptyDatabase();
    const result = await restoreBackup({ knex: target.knex, dataDir: path.join(tmp, 'upgraded-data'), file });
    assert.deepEqual(result.upgraded, [all[all.length - 1]]);
    assert.deepEqual((await migrationStatus(target.knex)).pending, []);
    assert.equal((await target.knex('organisations').where({ id: org.id })).length, 1);
    assert.equal((await new AuditService(target.knex).verify(org.id)).ok, true);
  });
});
