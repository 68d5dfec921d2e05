import type { Knex } from 'knex';
import { type LegalHoldRow } from '../db/tables';

/**
 * The owner of `legal_holds`: every query on the table is built here;
 * the check for everything that deletes (LegalHolds) and compliance staff's
 * HoldManager call these functions, passing their transaction.
 */

const holds = (db: Knex) => db('legal_holds');

/** The organisation's holds not lifted, with what they cover. */
export async function activeHoldRows(db: Knex, organisationId: string): Promise<Pick<LegalHoldRow, 'scope' | 'call_id' | 'recording_id'>[]> {
  return holds(db).where({ organisation_id: organisationId }).whereNull('lifted_at').select('scope', 'call_id', 'recording_id');
}

export type ListedHoldRow = LegalHoldRow & { created_by_name: string | null; lifted_by_name: string | null };

/** Every hold of the organisation, newest first, with the names of who placed and lifted it. */
export async function organisationHolds(db: Knex, organisationId: string): Promise<ListedHoldRow[]> {
  return db('legal_holds as h')
    .leftJoin('users as c', 'c.id', 'h.created_by')
    .leftJoin('users as l', 'l.id', 'h.lifted_by')
    .where('h.organisation_id', organisationId)
    .orderBy([{ column: 'h.created_at', order: 'desc' }, { column: 'h.id', order: 'desc' }])
    .select('h.*', 'c.name as created_by_name', 'l.name as lifted_by_name');
}

/** Whether an active hold of the organisation covers the same target already. */
export async function activeHoldExists(trx: Knex.Transaction, organisationId: string, target: Pick<LegalHoldRow, 'scope' | 'call_id' | 'recording_id'>): Promise<boolean> {
  const existing = holds(trx).where({ organisation_id: organisationId, scope: target.scope }).whereNull('lifted_at');
  if (target.scope === 'call') existing.where({ call_id: target.call_id });
  if (target.scope === 'recording') existing.where({ recording_id: target.recording_id });
  return Boolean(await existing.first('id'));
}

export async function insertHold(trx: Knex.Transaction, values: Pick<LegalHoldRow, 'organisation_id' | 'scope' | 'call_id' | 'recording_id' | 'reason' | 'created_by'>): Promise<string> {
  const [row] = await holds(trx).insert(values).returning('id');
  return row!.id;
}

/** The organisation's hold, locked for the transaction. */
export async function lockHold(trx: Knex.Transaction, organisationId: string, id: string): Promise<LegalHoldRow | undefined> {
  return holds(trx).where({ id, organisation_id: organisationId }).forUpdate().first();
}

export async function markLifted(trx: Knex.Transaction, id: string, liftedBy: string, reason: string): Promise<void> {
  await holds(trx).where({ id }).update({ lifted_at: trx.fn.now(), lifted_by: liftedBy, lift_reason: reason });
}
