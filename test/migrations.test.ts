import assert from 'node:assert/strict';
import { MIGRATION_NAME, listMigrationNames, migrateLatest, migrationStatus, rollbackAll } from '../app/db/migrations';
import request from 'supertest';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { describeSchema, migrationChecksums, readSnapshot } from './support/schema';

describe('migrations', () => {
  it('are named <timestamp>_<verb>_<noun> and run in the order of their names', () => {
    const names = listMigrationNames();
    assert.ok(names.length > 0);
    for (const name of names) assert.match(name, MIGRATION_NAME);
    assert.deepEqual([...names].sort(), names);
    assert.equal(new Set(names.map((n) => n.slice(0, 14))).size, names.length, 'timestamps are unique');
  });

  it('released migrations are never edited (add a new migration instead)', () => {
    const recorded = readSnapshot().migrations;
    const current = migrationChecksums();
    for (const [name, checksum] of Object.entries(recorded)) {
      assert.equal(current[name], checksum, `${name} changed after it was recorded; write a new migration instead`);
    }
    const unrecorded = Object.keys(current).filter((name) => !(name in recorded));
    assert.deepEqual(unrecorded, [], 'new migrations: run `npm run db:snapshot` and commit the snapshot with them');
  });

  describe('on a fresh database', () => {
    const db = useTestDatabase({ migrated: false });

    it('produce exactly the recorded schema (a schema change without a migration fails here)', async () => {
      const applied = await migrateLatest(db.current.knex);
      assert.deepEqual(applied, listMigrationNames());
      const { tables, functions } = readSnapshot();
      assert.deepEqual(await describeSchema(db.current.knex), { tables, functions });
    });

    it('report no pending migration once applied', async () => {
      const status = await migrationStatus(db.current.knex);
      assert.deepEqual(status.pending, []);
      assert.deepEqual(status.applied, listMigrationNames());
    });

    it('detect a schema that drifted from the migrations', async () => {
      await db.current.knex.raw('ALTER TABLE appliance_info ADD COLUMN sneaky text');
      const { tables, functions } = readSnapshot();
      assert.notDeepEqual(await describeSchema(db.current.knex), { tables, functions });
      await db.current.knex.raw('ALTER TABLE appliance_info DROP COLUMN sneaky');
    });

    it('roll back completely and apply again', async () => {
      await rollbackAll(db.current.knex);
      const after = await db.current.knex.raw(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE 'knex_%'`);
      assert.equal(after.rows[0].n, 0);
      await migrateLatest(db.current.knex);
      assert.deepEqual((await migrationStatus(db.current.knex)).pending, []);
    });
  });

  describe('readiness with pending migrations', () => {
    const db = useTestDatabase({ migrated: false });

    it('GET /readyz answers 503 and names what is pending', async () => {
      const res = await request(buildApp(db.current)).get('/readyz').expect(503);
      assert.equal(res.body.status, 'not_ready');
      assert.equal(res.body.migrations, 'pending');
      assert.deepEqual(res.body.pendingMigrations, listMigrationNames());
    });
  });
});
