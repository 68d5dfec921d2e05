import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { AuditService } from '../app/audit/service';
import { createKnex, EMBEDDED_DATABASE, openDatabase, type Database } from '../app/db/connection';
import { startEmbeddedPostgres } from '../app/db/embedded';
import { migrateLatest } from '../app/db/migrations';
import { migrateDatabase } from '../app/db/prepare';
import { inspectRole, mayCreateRoles } from '../app/db/roles';
import { aggregateInsights } from '../app/insights/aggregate';
import { deleteFiguresBefore } from '../app/insights/store';
import { JobQueue } from '../app/jobs/queue';
import { seedOrganisation } from './support/accounts';
import { insertCall } from './support/insights-seed';
import { silentLogger } from './support/context';
import { createTestDatabase, testServerUrl, type TestDatabase } from './support/database';
import { root } from './support/process';

const INIT_SCRIPT = path.join(root, 'docker', 'postgres-init', '10-vclerk-app-role.sh');

/** What the app's own role is refused (SQLSTATE per attempt); 42501 is insufficient_privilege. */
async function tamperOutcomes(app: Knex): Promise<Record<string, string>> {
  const attempt = async (query: Promise<unknown>) => query.then(() => 'allowed', (err: { code?: string }) => err.code ?? String(err));
  return {
    disableTrigger: await attempt(app.raw('ALTER TABLE audit_events DISABLE TRIGGER ALL')),
    update: await attempt(app('audit_events').update({ action: 'forged' })),
    delete: await attempt(app('audit_events').delete()),
    truncate: await attempt(app.raw('TRUNCATE audit_events')),
  };
}
const REFUSED = { disableTrigger: '42501', update: '42501', delete: '42501', truncate: '42501' };

/** An installation from before the two roles: migrated and written by the superuser, pg-boss's schema included. */
async function oldInstallation(superuser: Knex): Promise<string> {
  await migrateLatest(superuser);
  const jobs = new JobQueue(superuser, silentLogger);
  await jobs.start();
  await jobs.send('old.queue', {});
  await jobs.stop();
  const org = await seedOrganisation(superuser, 'Old Bank');
  const audit = new AuditService(superuser);
  for (let i = 0; i < 3; i++) await audit.record({ organisationId: org.id, actor: { type: 'system' }, action: 'organisation.updated', details: { i } });
  return org.id;
}

/** The app's role after start-up: restricted, the old events verify, and its ordinary work (jobs included) runs. */
async function assertRestrictedAndWorking(db: Database, orgId: string | null): Promise<void> {
  const role = await inspectRole(db.knex);
  assert.deepEqual({ superuser: role.superuser, mayChange: role.mayChangeAuditTrail }, { superuser: false, mayChange: false });
  assert.deepEqual(await tamperOutcomes(db.knex), REFUSED);
  if (orgId) {
    const result = await new AuditService(db.knex).verify(orgId);
    assert.deepEqual({ ok: result.ok, count: result.count }, { ok: true, count: 3 });
    // The Insights count and its retention: the daily figures and the monthly sums (written by the
    // migration's SQL function, run as the caller) as the app role.
    const ended = new Date(Date.now() - 3_600_000);
    await insertCall(db.knex, orgId, { clerkId: null, channel: 'link', createdAt: new Date(ended.getTime() - 600_000), startedAt: new Date(ended.getTime() - 300_000), endedAt: ended });
    assert.equal((await aggregateInsights(db.knex, { organisationId: orgId })).calls, 1);
    const months = await db.knex('insight_team_months').where({ organisation_id: orgId }).sum({ calls: 'calls_started' }).first();
    assert.equal(Number(months?.calls), 1, 'the monthly sums were rebuilt by the app role');
    assert.ok((await deleteFiguresBefore(db.knex, orgId, '2999-01-01')) > 0, 'the insights retention deletes as the app role');
  }
  const jobs = new JobQueue(db.knex, silentLogger, { pollingIntervalSeconds: 0.5 });
  await jobs.start();
  try {
    assert.ok(await jobs.send('new.queue', { n: 1 }));
    assert.equal(await jobs.backlog('new.queue'), 1);
  } finally {
    await jobs.stop();
  }
}

describe('database roles: the app runs as a role that cannot change the audit trail', function () {
  this.timeout(180_000);
  const roleSuffix = `${process.pid}_${crypto.randomBytes(3).toString('hex')}`;

  describe('docker-compose: the db service\'s init script, then DATABASE_URL (app) and DATABASE_OWNER_URL (owner)', () => {
    let target: TestDatabase;
    const appRole = `vclerk_compose_app_${roleSuffix}`;
    const appPassword = crypto.randomBytes(12).toString('hex');

    before(async function () {
      target = await createTestDatabase({ migrated: false });
      if (!(await mayCreateRoles(target.knex))) this.skip();
    });
    after(async () => {
      await target?.drop();
      await dropRole(appRole);
    });

    it('a new volume: the init script (run with the real psql) creates the role, the app migrates as the owner and runs restricted', async () => {
      const url = new URL(target.url);
      const run = spawnSync('sh', [INIT_SCRIPT], {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH,
          POSTGRES_USER: decodeURIComponent(url.username),
          POSTGRES_DB: target.name,
          PGHOST: url.hostname,
          PGPORT: url.port || '5432',
          PGPASSWORD: decodeURIComponent(url.password),
          VCLERK_DB_APP_USER: appRole,
          VCLERK_DB_APP_PASSWORD: appPassword,
        },
      });
      assert.equal(run.status, 0, run.stderr);
      const attributes = await target.knex.raw('SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = ?', [appRole]);
      assert.deepEqual(attributes.rows[0], { rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolbypassrls: false, rolcanlogin: true });

      const appUrl = new URL(target.url);
      appUrl.username = appRole;
      appUrl.password = appPassword;
      const db = await openDatabase({ databaseUrl: appUrl.toString(), databaseOwnerUrl: target.url, databasePoolMax: 2, dataDir: '/nonexistent', embeddedDbPort: 1 }, silentLogger);
      try {
        assert.ok(db.owner);
        const applied = await migrateDatabase(db);
        assert.ok(applied.length > 20);
        const org = await seedOrganisation(db.knex, 'Compose Bank');
        const audit = new AuditService(db.knex);
        for (let i = 0; i < 3; i++) await audit.record({ organisationId: org.id, actor: { type: 'system' }, action: 'organisation.updated', details: { i } });
        await assertRestrictedAndWorking(db, org.id);
      } finally {
        await db.close();
      }
    });
  });

  describe('docker-compose: an existing volume (one superuser role owning everything)', () => {
    let target: TestDatabase;
    const appRole = `vclerk_upgrade_app_${roleSuffix}`;

    before(async function () {
      target = await createTestDatabase({ migrated: false });
      if (!(await mayCreateRoles(target.knex))) this.skip();
    });
    after(async () => {
      await target?.drop();
      await dropRole(appRole);
    });

    it('is migrated at start: the app role is created by the owner connection, granted, and restricted; the old trail still verifies', async () => {
      const orgId = await oldInstallation(target.knex);
      const appUrl = new URL(target.url);
      appUrl.username = appRole;
      appUrl.password = 'Upgrade1234';
      const db = await openDatabase({ databaseUrl: appUrl.toString(), databaseOwnerUrl: target.url, databasePoolMax: 2, dataDir: '/nonexistent', embeddedDbPort: 1 }, silentLogger);
      try {
        await migrateDatabase(db);
        assert.equal((await inspectRole(db.knex)).role, appRole);
        await assertRestrictedAndWorking(db, orgId);
      } finally {
        await db.close();
      }
    });
  });

  describe('the embedded PostgreSQL', () => {
    let dataDir: string;
    const port = 40000 + crypto.randomInt(10000);

    before(() => {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-roles-'));
      fs.chmodSync(dataDir, 0o755);
    });
    after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

    it('an existing data directory is migrated at start: owner and app roles made (passwords 0600), ownership moved, the app restricted', async () => {
      // Before this version: the cluster's superuser owned everything and the app ran as it.
      const old = await startEmbeddedPostgres({ dataDir, port, logger: silentLogger });
      let orgId: string;
      try {
        await old.createDatabase(EMBEDDED_DATABASE);
        const superuser = createKnex(old.url(EMBEDDED_DATABASE), 2);
        try {
          orgId = await oldInstallation(superuser);
        } finally {
          await superuser.destroy();
        }
      } finally {
        await old.stop();
      }

      const db = await openDatabase({ databaseUrl: undefined, databasePoolMax: 2, dataDir, embeddedDbPort: port }, silentLogger);
      try {
        await migrateDatabase(db);
        assert.equal((await inspectRole(db.knex)).role, 'vclerk_app');
        for (const file of ['postgres-owner.password', 'postgres-app.password']) assert.equal(fs.statSync(path.join(dataDir, file)).mode & 0o777, 0o600, file);
        const owners = await db.owner!.raw(`SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'pgboss') AND c.relkind IN ('r', 'p', 'S', 'v')`);
        assert.deepEqual(owners.rows.map((r: { owner: string }) => r.owner), ['vclerk_owner']);
        await assertRestrictedAndWorking(db, orgId!);
      } finally {
        await db.close();
      }

      // A second start finds everything in place.
      const again = await openDatabase({ databaseUrl: undefined, databasePoolMax: 2, dataDir, embeddedDbPort: port }, silentLogger);
      try {
        assert.deepEqual(await migrateDatabase(again), []);
        assert.deepEqual(await tamperOutcomes(again.knex), REFUSED);
      } finally {
        await again.close();
      }
    });
  });
});

async function dropRole(name: string): Promise<void> {
  const admin = createKnex(testServerUrl('postgres'), 1);
  try {
    await admin.raw(`DROP ROLE IF EXISTS "${name}"`);
  } finally {
    await admin.destroy();
  }
}
