import assert from 'node:assert/strict';
import { SYSTEM } from '../app/audit/actions';
import { AuditService } from '../app/audit/service';
import { seedOrganisation } from './support/accounts';
import { useTestDatabase } from './support/database';

/**
 * Issue 17 (a signalling flood): when many participants left at once, their
 * audit events each took a pool connection and then waited for the chain's
 * lock inside it, so the pool was used up by waiters and everything else
 * (the real call's chat) queued behind them. Writers of one chain wait in
 * this process, without a connection; only one holds one.
 */
describe('audit writes of one chain under a burst', () => {
  const db = useTestDatabase();

  it('40 concurrent events of one organisation hold at most one pool connection, and all are chained', async () => {
    const knex = db.current.connectAs('owner', 4);
    try {
      const org = await seedOrganisation(db.current.knex);
      const audit = new AuditService(knex);
      const pool = (knex.client as { pool: { numUsed(): number } }).pool;
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, pool.numUsed())), 1);
      let other = 0;
      const burst = Promise.all(Array.from({ length: 40 }, (_, n) => audit.record({ organisationId: org.id, actor: SYSTEM, action: 'organisation.updated', details: { n } })));
      // Meanwhile other work on the same pool gets a connection: one query
      // at a time, so that the peak counts the audit writers' connections
      // plus at most this one (five concurrent queries could rightly take
      // three connections of four and make the bound meaningless).
      const others = (async () => { for (let n = 0; n < 5; n++) { await knex.raw('SELECT 1'); other++; } })();
      await Promise.all([burst, others]);
      clearInterval(sampler);
      assert.equal(other, 5);
      assert.ok(peak <= 2, `at most the audit writer and one other query at a time (peak ${peak} of 4)`);
      const seqs = (await db.current.knex('audit_events').where({ chain: org.id }).orderBy('seq').pluck('seq')).map(Number);
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
      assert.ok(seqs.length >= 40);
    } finally {
      await knex.destroy();
    }
  });
});
