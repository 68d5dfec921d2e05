import assert from 'node:assert/strict';
import { raiseChainAlarm } from '../app/audit/chain-alarm';
import { SecuritySignals } from '../app/compliance/security';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { contentOf, eventHash, GENESIS_HASH, type ChainRow } from '../app/audit/chain';
import { AuditCheckpoints, CHECKPOINT_DIR } from '../app/audit/checkpoints';
import { startAuditVerification } from '../app/audit/scheduler';
import { AuditService } from '../app/audit/service';
import { inspectRole } from '../app/db/roles';
import { JobQueue } from '../app/jobs/queue';
import { seedOrganisation, seedUser, signIn } from './support/accounts';
import { buildApp, silentLogger } from './support/context';
import { useTestDatabase, type TestDatabase } from './support/database';
import { startTestJobs } from './support/jobs';

/** Whether the test server made the production roles (it needs a superuser; the embedded one always is). */
function hasRoles(db: TestDatabase): boolean {
  try {
    db.urlAs('app');
    return true;
  } catch {
    return false;
  }
}

/** The SQLSTATE of a refused statement (42501: insufficient_privilege). */
async function refusal(query: Promise<unknown>): Promise<string> {
  try {
    await query;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return 'allowed';
}

describe('the audit trail against the app\'s own database role', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let app: Knex;
  let orgId: string;

  before(async function () {
    if (!hasRoles(db.current)) this.skip();
    app = db.current.connectAs('app');
    orgId = (await seedOrganisation(db.current.knex, 'Tamper Bank')).id;
    const audit = new AuditService(app);
    for (let i = 0; i < 5; i++) await audit.record({ organisationId: orgId, actor: { type: 'system' }, action: 'organisation.updated', details: { i } });
  });

  after(async () => {
    await app?.destroy();
  });

  it('is no superuser and owns nothing it must not change', async () => {
    const role = await inspectRole(app);
    assert.deepEqual({ superuser: role.superuser, owns: role.ownsAuditTrail, mayChange: role.mayChangeAuditTrail }, { superuser: false, owns: false, mayChange: false });
    const owned = await app.raw(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'pgboss') AND pg_get_userbyid(c.relowner) = current_user`);
    assert.equal(owned.rows[0].n, 0);
  });

  it('may append to and read the audit trail, and verify it', async () => {
    const result = await new AuditService(app).verify(orgId);
    assert.equal(result.ok, true);
    assert.equal(result.count, 5);
  });

  it('cannot disable the triggers, update, delete or truncate audit rows', async () => {
    const outcomes = {
      disableTrigger: await refusal(app.raw('ALTER TABLE audit_events DISABLE TRIGGER ALL')),
      disableUserTriggers: await refusal(app.raw('ALTER TABLE audit_events DISABLE TRIGGER USER')),
      replicationRole: await refusal(app.raw(`SET session_replication_role = replica`)),
      update: await refusal(app('audit_events').where({ chain: orgId, seq: '2' }).update({ action: 'forged' })),
      delete: await refusal(app('audit_events').where({ chain: orgId, seq: '5' }).delete()),
      truncate: await refusal(app.raw('TRUNCATE audit_events')),
      dropTable: await refusal(app.raw('DROP TABLE audit_events')),
      dropTrigger: await refusal(app.raw('DROP TRIGGER audit_events_no_update_delete ON audit_events')),
      replaceFunction: await refusal(app.raw(`CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`)),
      createTable: await refusal(app.raw('CREATE TABLE public.shadow (id int)')),
    };
    assert.deepEqual(outcomes, {
      disableTrigger: '42501',
      disableUserTriggers: '42501',
      replicationRole: '42501',
      update: '42501',
      delete: '42501',
      truncate: '42501',
      dropTable: '42501',
      dropTrigger: '42501',
      replaceFunction: '42501',
      createTable: '42501',
    });
    // A GRANT to itself only warns (it holds no grant option) and grants nothing.
    await app.raw('GRANT UPDATE, DELETE, TRUNCATE ON audit_events TO CURRENT_USER');
    const privileges = await app.raw(`SELECT has_table_privilege('audit_events', 'UPDATE') OR has_table_privilege('audit_events', 'DELETE') OR has_table_privilege('audit_events', 'TRUNCATE') AS any`);
    assert.equal(privileges.rows[0].any, false);
    const rows = await db.current.knex('audit_events').where({ chain: orgId }).orderBy('seq').pluck('action');
    assert.deepEqual(rows, Array(5).fill('organisation.updated'));
    assert.equal((await new AuditService(app).verify(orgId)).ok, true);
  });

  it('still does its ordinary work: writes ordinary tables and runs background jobs', async () => {
    await app('organisations').where({ id: orgId }).update({ name: 'Tamper Bank AG' });
    const jobs = new JobQueue(app, silentLogger, { pollingIntervalSeconds: 0.5 });
    await jobs.start();
    try {
      let resolveDone!: (n: string) => void;
      const done = new Promise<string>((resolve) => (resolveDone = resolve));
      await jobs.work<{ n: number }>('tamper.test', async (job) => resolveDone(String(job.data.n)));
      assert.ok(await jobs.send('tamper.test', { n: 7 }));
      assert.equal(await done, '7');
    } finally {
      await jobs.stop();
    }
  });
});

/**
 * As the owner of the tables (who may disable triggers): rewrites one
 * event and recomputes every hash after it, so the chain verifies again.
 */
async function rewriteAndRehash(owner: Knex, chain: string, seq: number, action: string): Promise<void> {
  await owner.transaction(async (trx) => {
    await trx.raw('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete');
    const rows = await trx('audit_events').where({ chain }).orderBy('seq');
    let prev = GENESIS_HASH;
    for (const raw of rows) {
      const row = { ...(raw as unknown as ChainRow), seq: Number(raw.seq), occurred_at: (raw.occurred_at as Date).toISOString() };
      if (row.seq === seq) row.action = action;
      const hash = eventHash(prev, contentOf(row));
      await trx('audit_events').where({ id: raw.id }).update({ action: row.action, prev_hash: prev, hash });
      prev = hash;
    }
    await trx.raw('ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete');
  });
}

describe('signed checkpoints of the audit chains', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let app: Knex;
  let owner: Knex;
  let dataDir: string;
  let orgId: string;

  before(async function () {
    if (!hasRoles(db.current)) this.skip();
    app = db.current.connectAs('app');
    owner = db.current.connectAs('owner');
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-checkpoints-'));
    orgId = (await seedOrganisation(db.current.knex, 'Anchor Bank')).id;
    const audit = new AuditService(app);
    for (let i = 0; i < 6; i++) await audit.record({ organisationId: orgId, actor: { type: 'system' }, action: 'organisation.updated', details: { i } });
    for (let i = 0; i < 3; i++) await audit.record({ organisationId: null, actor: { type: 'guest' }, action: 'auth.login_failed', details: { i } });
  });

  after(async () => {
    await app?.destroy();
    await owner?.destroy();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('the scheduled job verifies every chain, the appliance-wide one included, and anchors each head (signed, in the database and a 0600 file)', async () => {
    const jobs = await startTestJobs(app);
    const verification = await startAuditVerification({ jobs, knex: app, logger: silentLogger, dataDir });
    try {
      const schedule = await db.current.knex('pgboss.schedule').where({ name: 'audit.verify' }).first('cron');
      assert.equal(schedule?.cron, '41 * * * *');
      assert.ok(await verification.runSoon());
      // The job's outcome is its checkpoints: wait (bounded) until both chains have one.
      let rows: { chain: string; seq: string }[] = [];
      for (let i = 0; i < 200 && rows.length < 2; i++) {
        rows = await app('audit_checkpoints').select('chain', 'seq').orderBy('chain');
        if (rows.length < 2) await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(rows.map((r) => [r.chain, Number(r.seq)]).sort(), [[orgId, 6], ['system', 3]].sort());
    } finally {
      await jobs.stop();
    }
    const file = path.join(dataDir, CHECKPOINT_DIR, `${orgId}.ndjson`);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, 1);

    // A second run with no new events adds no checkpoint; a new event gets one.
    const checkpoints = new AuditCheckpoints(app, dataDir);
    assert.equal((await checkpoints.verifyAndAnchorAll()).anchored, 0);
    await new AuditService(app).record({ organisationId: orgId, actor: { type: 'system' }, action: 'organisation.updated', details: { i: 6 } });
    const run = await checkpoints.verifyAndAnchorAll();
    assert.equal(run.anchored, 1);
    assert.deepEqual(run.checks.map((c) => [c.chain, c.intact, c.checkpoints]).sort(), [[orgId, true, 1], ['system', true, 1]].sort());
  });

  it('the app role cannot change or remove a checkpoint', async () => {
    const outcomes = {
      update: await refusal(app('audit_checkpoints').update({ hash: 'f'.repeat(64) })),
      delete: await refusal(app('audit_checkpoints').delete()),
      truncate: await refusal(app.raw('TRUNCATE audit_checkpoints')),
      disableTrigger: await refusal(app.raw('ALTER TABLE audit_checkpoints DISABLE TRIGGER ALL')),
    };
    assert.deepEqual(outcomes, { update: '42501', delete: '42501', truncate: '42501', disableTrigger: '42501' });
  });

  it('a chain re-hashed by the owner verifies on its own, but no longer matches its checkpoint', async () => {
    const checkpoints = new AuditCheckpoints(app, dataDir);
    const before = await checkpoints.verify(orgId);
    assert.equal(before.intact, true);
    const first = (await app('audit_checkpoints').where({ chain: orgId }).orderBy('seq').first()) as { seq: string; created_at: Date };

    await rewriteAndRehash(owner, orgId, 2, 'user.deleted');

    // What the page said before checkpoints existed: the recomputed chain is consistent.
    assert.equal((await new AuditService(app).verify(orgId)).ok, true);
    const after = await checkpoints.verify(orgId);
    assert.equal(after.ok, true);
    assert.equal(after.intact, false);
    assert.equal(after.mismatches, 2);
    assert.deepEqual({ seq: after.mismatch?.checkpoint.seq, at: after.mismatch?.checkpoint.created_at, reason: after.mismatch?.reason }, { seq: Number(first.seq), at: first.created_at.toISOString(), reason: 'hash_differs' });

    // The compliance page, served by the app as its own role, says so.
    const appDb = { ...db.current, knex: app };
    const web = buildApp(appDb, { env: { VCLERK_DATA_DIR: dataDir } });
    const officer = await signIn(web, await seedUser(db.current.knex, { id: orgId }, 'compliance'));
    const page = await officer.agent.get('/compliance/audit/verify').expect(200);
    assert.match(page.text, /does not match its checkpoint of/);
    assert.match(page.text, new RegExp(`data-checkpoint-mismatch="${first.created_at.toISOString()}"`));
    assert.doesNotMatch(page.text, /The audit trail is intact/);
  });

  it('the scheduled check audits the mismatch in the chain\'s own trail, once per finding a day, and the security page counts it', async () => {
    const jobs = await startTestJobs(app);
    const verification = await startAuditVerification({ jobs, knex: app, logger: silentLogger, dataDir });
    const alarms = () => app('audit_events').where({ organisation_id: orgId, action: 'security.audit_chain_broken' }).select('details');
    try {
      assert.ok(await verification.runSoon());
      let rows: { details: Record<string, unknown> }[] = [];
      for (let i = 0; i < 200 && rows.length === 0; i++) {
        rows = await alarms();
        if (rows.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.details.checkpoint_reason, 'hash_differs');
      assert.equal(rows[0]!.details.mismatches, 2);
    } finally {
      await jobs.stop();
    }
    // The same finding again (the next hourly run) writes nothing new.
    const check = await new AuditCheckpoints(app, dataDir).verify(orgId);
    assert.equal(await raiseChainAlarm(app, orgId, check), false);
    assert.equal((await alarms()).length, 1);
    const counts = await new SecuritySignals(app).counts(orgId);
    assert.equal(counts.find((c) => c.kind === 'security.audit_chain_broken')?.day, 1);
  });

  it('checkpoints removed from the database by the owner are still found in the data directory', async () => {
    await owner.transaction(async (trx) => {
      await trx.raw('ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_no_update_delete');
      await trx('audit_checkpoints').where({ chain: orgId }).delete();
      await trx.raw('ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_no_update_delete');
    });
    const check = await new AuditCheckpoints(app, dataDir).verify(orgId);
    assert.equal(check.missingFromDatabase, 2);
    assert.equal(check.mismatch?.reason, 'hash_differs');
    assert.equal(check.intact, false);
  });

  it('a forged checkpoint (not signed by the appliance\'s key) is reported', async () => {
    await app('audit_checkpoints').insert({ chain: 'system', seq: 3, hash: 'a'.repeat(64), created_at: new Date(), key_id: '0'.repeat(16), signature: Buffer.alloc(64).toString('base64') });
    const check = await new AuditCheckpoints(app, dataDir).verify(null);
    assert.equal(check.invalidSignatures, 1);
    assert.equal(check.intact, false);
  });
});
