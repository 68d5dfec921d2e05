import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createKnex } from '../app/db/connection';
import { tryHoldLock } from '../app/db/session-lock';
import { seedOrganisation, seedUser, signIn } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/**
 * Issue 19: one audit export at a time per organisation holds across the
 * nodes on one database (a session lock in PostgreSQL), not only in one
 * process; and a node that dies lets go of it with its session.
 */
describe('audit export: one at a time per organisation across nodes', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let dataDir: string;

  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-export-nodes-'));
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('refuses an export while another node writes one for the organisation (409, nothing made), and takes it once that node is gone', async () => {
    const knex = db.current.knex;
    const app = buildApp(db.current, { env: { VCLERK_DATA_DIR: dataDir } });
    const org = await seedOrganisation(knex, 'Node Export Bank');
    const compliance = await signIn(app, await seedUser(knex, org, 'compliance'));
    const otherNode = createKnex(db.current.url, 1);
    try {
      const release = await tryHoldLock(otherNode, `vclerk.audit-export:${org.id}`);
      assert.ok(release, 'the other node holds the lock');
      const refused = await compliance.agent.post('/compliance/audit/export').type('form').send({ _csrf: compliance.csrf, format: 'ndjson' });
      assert.equal(refused.status, 409, refused.text.slice(0, 200));
      assert.equal(Number((await knex('audit_exports').count<{ n: string }[]>({ n: '*' }))[0]!.n), 0, 'no export was made');
      assert.equal(await tryHoldLock(knex, `vclerk.audit-export:${org.id}`), undefined, 'nor can this node take it');

      // The other node dies: its session ends, and the lock with it.
      await knex.raw(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()`);
      await release();
      const made = await compliance.agent.post('/compliance/audit/export').type('form').send({ _csrf: compliance.csrf, format: 'ndjson' });
      assert.equal(made.status, 303);
      const again = await tryHoldLock(knex, `vclerk.audit-export:${org.id}`);
      assert.ok(again, 'released after the export');
      await again();
    } finally {
      await otherNode.destroy();
    }
  });
});
