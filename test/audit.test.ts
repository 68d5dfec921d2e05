import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { SYSTEM, type AuditAction } from '../app/audit/actions';
import { GENESIS_HASH } from '../app/audit/chain';
import { AuditService } from '../app/audit/service';
import { seedOrganisation } from './support/accounts';
import { useTestDatabase } from './support/database';

/** Records `n` events for the organisation, one after the other; returns their rows in seq order. */
async function recordMany(knex: Knex, organisationId: string, n: number, action: AuditAction = 'organisation.updated'): Promise<Record<string, any>[]> {
  const audit = new AuditService(knex);
  for (let i = 0; i < n; i++) await audit.record({ organisationId, actor: SYSTEM, action, details: { n: i } });
  return knex('audit_events').where({ chain: organisationId }).orderBy('seq');
}

/**
 * Changes audit rows the way an attacker with the table owner's rights
 * could: the append-only trigger is switched off inside one transaction,
 * so no other connection ever sees the table unprotected.
 */
async function tamper(knex: Knex, change: (trx: Knex.Transaction) => Promise<unknown>): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx.raw('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete');
    await change(trx);
    await trx.raw('ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete');
  });
}

describe('audit trail', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;

  describe('recording', () => {
    it('builds one hash chain per organisation: seq counts from 1, each row links to the one before', async () => {
      const org = await seedOrganisation(knex());
      const rows = await recordMany(knex(), org.id, 5);
      assert.deepEqual(rows.map((r) => Number(r.seq)), [1, 2, 3, 4, 5]);
      assert.equal(rows[0]!.prev_hash, GENESIS_HASH);
      for (let i = 1; i < rows.length; i++) assert.equal(rows[i]!.prev_hash, rows[i - 1]!.hash);
      assert.equal(new Set(rows.map((r) => r.hash)).size, 5, 'every event has its own hash');
      assert.ok(rows.every((r) => r.organisation_id === org.id && /^[0-9a-f]{64}$/.test(r.hash)));
    });

    it('keeps a chain gapless and valid when 20 events are recorded at once', async () => {
      const org = await seedOrganisation(knex());
      const audit = new AuditService(knex());
      await Promise.all(Array.from({ length: 20 }, (_, i) => audit.record({ organisationId: org.id, actor: SYSTEM, action: 'auth.login_failed', details: { n: i } })));
      const rows = await knex()('audit_events').where({ chain: org.id }).orderBy('seq');
      assert.deepEqual(rows.map((r) => Number(r.seq)), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.deepEqual(new Set(rows.map((r) => r.details.n)).size, 20, 'no event is lost');
      const result = await audit.verify(org.id);
      assert.equal(result.ok, true);
      assert.equal(result.count, 20);
      assert.equal(result.headHash, rows[19]!.hash);
    });

    it('keeps organisations apart: another organisation\'s events are not in the chain', async () => {
      const a = await seedOrganisation(knex());
      const b = await seedOrganisation(knex());
      const audit = new AuditService(knex());
      for (let i = 0; i < 3; i++) {
        await audit.record({ organisationId: a.id, actor: SYSTEM, action: 'organisation.updated' });
        await audit.record({ organisationId: b.id, actor: SYSTEM, action: 'organisation.updated' });
      }
      await audit.record({ organisationId: b.id, actor: SYSTEM, action: 'organisation.updated' });
      const resultA = await audit.verify(a.id);
      const resultB = await audit.verify(b.id);
      assert.deepEqual([resultA.ok, resultA.count], [true, 3]);
      assert.deepEqual([resultB.ok, resultB.count], [true, 4]);
      const chainA = await knex()('audit_events').where({ chain: a.id });
      assert.ok(chainA.every((r) => r.organisation_id === a.id));
      assert.equal((await audit.list(a.id, {}, { limit: 50, offset: 0 })).total, 3);
    });

    it('puts appliance-wide events in the system chain', async () => {
      const audit = new AuditService(knex());
      await audit.record({ organisationId: null, actor: SYSTEM, action: 'setup.completed' });
      const row = await knex()('audit_events').where({ action: 'setup.completed' }).first();
      assert.equal(row!.chain, 'system');
      assert.equal((await audit.verify(null)).ok, true);
    });
  });

  describe('verification', () => {
    it('passes on a clean chain and reports the count and the head hash', async () => {
      const org = await seedOrganisation(knex());
      const rows = await recordMany(knex(), org.id, 7);
      const result = await new AuditService(knex()).verify(org.id, 3);
      assert.deepEqual(result, { ok: true, count: 7, headHash: rows[6]!.hash, broken: undefined });
    });

    it('passes on an organisation without events', async () => {
      const org = await seedOrganisation(knex());
      assert.deepEqual(await new AuditService(knex()).verify(org.id), { ok: true, count: 0, headHash: GENESIS_HASH, broken: undefined });
    });

    it('names a modified row (hash_mismatch)', async () => {
      const org = await seedOrganisation(knex());
      const rows = await recordMany(knex(), org.id, 5);
      await tamper(knex(), (trx) => trx('audit_events').where({ id: rows[2]!.id }).update({ details: JSON.stringify({ n: 'forged' }) }));
      const result = await new AuditService(knex()).verify(org.id, 2);
      assert.equal(result.ok, false);
      assert.deepEqual(result.broken, { id: rows[2]!.id, seq: 3, reason: 'hash_mismatch' });
    });

    it('names the row after a deleted one (sequence_gap)', async () => {
      const org = await seedOrganisation(knex());
      const rows = await recordMany(knex(), org.id, 5);
      await tamper(knex(), (trx) => trx('audit_events').where({ id: rows[2]!.id }).delete());
      const result = await new AuditService(knex()).verify(org.id);
      assert.equal(result.ok, false);
      assert.deepEqual(result.broken, { id: rows[3]!.id, seq: 4, reason: 'sequence_gap' });
    });

    it('names a row whose link to its predecessor was rewritten (prev_hash_mismatch)', async () => {
      const org = await seedOrganisation(knex());
      const rows = await recordMany(knex(), org.id, 5);
      await tamper(knex(), (trx) => trx('audit_events').where({ id: rows[3]!.id }).update({ prev_hash: 'f'.repeat(64) }));
      const result = await new AuditService(knex()).verify(org.id);
      assert.equal(result.ok, false);
      assert.deepEqual(result.broken, { id: rows[3]!.id, seq: 4, reason: 'prev_hash_mismatch' });
    });

    it('a tampered chain does not affect another organisation\'s', async () => {
      const a = await seedOrganisation(knex());
      const b = await seedOrganisation(knex());
      const rowsA = await recordMany(knex(), a.id, 3);
      await recordMany(knex(), b.id, 3);
      await tamper(knex(), (trx) => trx('audit_events').where({ id: rowsA[0]!.id }).update({ actor_label: 'someone else' }));
      assert.equal((await new AuditService(knex()).verify(a.id)).ok, false);
      assert.equal((await new AuditService(knex()).verify(b.id)).ok, true);
    });
  });

  describe('the database keeps the trail append-only', () => {
    let row: Record<string, any>;

    before(async () => {
      const org = await seedOrganisation(knex());
      row = (await recordMany(knex(), org.id, 1))[0]!;
    });

    it('refuses UPDATE', async () => {
      await assert.rejects(knex()('audit_events').where({ id: row.id }).update({ action: 'auth.logout' }), /append-only/);
    });

    it('refuses DELETE', async () => {
      await assert.rejects(knex()('audit_events').where({ id: row.id }).delete(), /append-only/);
    });

    it('refuses TRUNCATE', async () => {
      await assert.rejects(knex().raw('TRUNCATE audit_events'), /append-only/);
    });

    it('still holds the row, unchanged', async () => {
      const now = await knex()('audit_events').where({ id: row.id }).first();
      assert.deepEqual(now, row);
    });
  });
});
