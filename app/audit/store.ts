import type { Knex } from 'knex';
import { sqlWithLiterals } from '../db/copy-out';
import type { AuditEventRow } from '../db/tables';

/**
 * The owner of `audit_events`: every query on the trail is built here. The
 * trail is append-only (triggers refuse UPDATE and DELETE), so there are
 * reads and one insert. AuditService (appending, listing, verifying), the
 * checkpoints, the export, the chain alarm, the personal-data keys, the
 * security signals, the data-subject access export and the webhook
 * dispatcher call these functions. A filter (`audit/service.ts`
 * `applyAuditFilter`) is passed in as a function of the query.
 */

const events = (db: Knex) => db<AuditEventRow>('audit_events');

/** Narrows a query on the trail (the audit page's and the export's filters). */
export type EventFilter = (query: Knex.QueryBuilder) => void;

/** The chain's last event (its head): sequence number and hash. */
export async function chainHead(db: Knex, chain: string): Promise<Pick<AuditEventRow, 'seq' | 'hash'> | undefined> {
  return events(db).where({ chain }).orderBy('seq', 'desc').first('seq', 'hash');
}

/** Appends an event (the caller holds the chain's lock and computed the hash). */
export async function insertEvent(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('audit_events').insert(row);
}

/** One organisation's events, filtered, newest first, paged, and how many there are. */
export async function listEvents(db: Knex, organisationId: string, filter: EventFilter, page: { limit: number; offset: number }): Promise<{ rows: AuditEventRow[]; total: number }> {
  const query = db('audit_events').where({ organisation_id: organisationId });
  filter(query);
  const [{ total }] = (await query.clone().count({ total: '*' })) as [{ total: string }];
  const rows = await query.orderBy([{ column: 'occurred_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(page.limit).offset(page.offset);
  return { rows, total: Number(total) };
}

/** The chain's events after `after`, in order, at most `limit`. */
export async function chainEventsAfter(db: Knex, chain: string, after: number, limit: number): Promise<AuditEventRow[]> {
  return events(db).where({ chain }).where('seq', '>', after).orderBy('seq').limit(limit);
}

/** The export's next batch: the organisation's own chain after `after` up to `headSeq`, filtered, in order. */
export async function exportBatch(db: Knex, organisationId: string, after: number, headSeq: number, filter: EventFilter, limit: number): Promise<AuditEventRow[]> {
  const query = db('audit_events')
    .where({ chain: organisationId, organisation_id: organisationId })
    .where('seq', '>', after)
    .where('seq', '<=', headSeq);
  filter(query);
  return query.orderBy('seq').limit(limit);
}

/** The chain's hashes at the sequence numbers (at most 1000 at a time). */
export async function hashesAt(db: Knex, chain: string, seqs: number[]): Promise<{ seq: string; hash: string }[]> {
  return events(db).where({ chain }).whereIn('seq', seqs).select('seq', 'hash');
}

/** The chain names, each once, without reading every row (a loose index scan over (chain, seq)). */
export async function listChains(db: Knex): Promise<string[]> {
  const { rows } = await db.raw(`
    WITH RECURSIVE c AS (
      SELECT min(chain) AS chain FROM audit_events
      UNION ALL
      SELECT (SELECT min(chain) FROM audit_events WHERE chain > c.chain) FROM c WHERE c.chain IS NOT NULL
    )
    SELECT chain FROM c WHERE chain IS NOT NULL`);
  return (rows as { chain: string }[]).map((r) => r.chain);
}

/** Whether the same chain alarm (details) was raised in the organisation's trail (or the appliance's, for null) since `since`. */
export async function alarmRaisedSince(db: Knex, organisationId: string | null, details: Record<string, unknown>, since: Date): Promise<boolean> {
  const recent = await db('audit_events')
    .where({ action: 'security.audit_chain_broken' })
    .andWhere((q) => (organisationId ? q.where({ organisation_id: organisationId }) : q.whereNull('organisation_id')))
    .andWhere('occurred_at', '>', since)
    .andWhereRaw('details @> ?::jsonb', [JSON.stringify(details)])
    .first('id');
  return Boolean(recent);
}

/** How many of the organisation's events hold a value sealed under one of the keys (`prefix` + key id + `:`). */
export async function countSealedUnder(trx: Knex.Transaction, organisationId: string, prefix: string, keyIds: string[]): Promise<number> {
  const [row] = await trx('audit_events')
    .where({ organisation_id: organisationId })
    .where((w) => {
      for (const id of keyIds) w.orWhere('ip', 'like', `${prefix}${id}:%`).orWhere('user_agent', 'like', `${prefix}${id}:%`);
    })
    .count({ n: '*' });
  return Number(row?.n ?? 0);
}

/**
 * Per action among `actions`, the organisation's events between `from` and
 * `to`, summed by `weight` (SQL) in three windows: since `day`, since
 * `week`, and all of them.
 */
export async function weightedCounts(db: Knex, organisationId: string, actions: readonly string[], window: { from: Date; to: Date; day: Date; week: Date }, weight: string): Promise<{ action: string; day: string; week: string; month: string }[]> {
  return db('audit_events')
    .where({ organisation_id: organisationId })
    .whereIn('action', actions)
    .where('occurred_at', '>=', window.from)
    .where('occurred_at', '<=', window.to)
    .groupBy('action')
    .select('action')
    .select(db.raw(`coalesce(sum(${weight}) FILTER (WHERE occurred_at >= ?), 0) AS day`, [window.day]))
    .select(db.raw(`coalesce(sum(${weight}) FILTER (WHERE occurred_at >= ?), 0) AS week`, [window.week]))
    .select(db.raw(`sum(${weight}) AS month`));
}

/** The organisation's events of one action or of any of `actions`, newest first, paged, and how many there are. */
export async function eventsOfActions(db: Knex, organisationId: string, kind: string | undefined, actions: readonly string[], page: { limit: number; offset: number }): Promise<{ rows: AuditEventRow[]; total: number }> {
  return listEvents(db, organisationId, (query) => {
    if (kind) query.where({ action: kind });
    else query.whereIn('action', actions);
  }, page);
}

/** The customer's own events of a call (also consent events naming the call in their details), in order. */
export async function customerEventsOfCall(db: Knex, organisationId: string, callId: string): Promise<Pick<AuditEventRow, 'occurred_at' | 'action' | 'ip' | 'user_agent' | 'details'>[]> {
  return events(db)
    .where({ organisation_id: organisationId, actor_type: 'guest' })
    .where((w) => w.where({ target_type: 'call', target_id: callId }).orWhereRaw(`details->>'call_id' = ?`, [callId]))
    .orderBy('seq')
    .select('occurred_at', 'action', 'ip', 'user_agent', 'details');
}

/** The organisation's events after the id, in order, at most `limit` (a webhook endpoint's next batch). */
export async function eventsAfterId(trx: Knex.Transaction, organisationId: string, afterId: string, limit: number): Promise<Pick<AuditEventRow, 'id' | 'action'>[]> {
  return events(trx).where('organisation_id', organisationId).where('id', '>', afterId).orderBy('id').limit(limit).select('id', 'action');
}

/**
 * The export's rows as SQL for `COPY ... (FORMAT binary)` (db/copy-out.ts):
 * what `exportBatch` reads, all of it in seq order, as the plain columns
 * (no formatting in the database: building JSON there cost it 4 µs a row),
 * from which compliance/audit-export-lines.ts writes the NDJSON lines.
 * `chain` and `organisation_id` are left out: both are the organisation's id
 * (the WHERE below).
 */
export function exportCopySql(db: Knex, organisationId: string, headSeq: number, filter: EventFilter): string {
  const query = db('audit_events')
    .select('id', 'seq', 'occurred_at', 'actor_type', 'actor_id', 'actor_label', 'action', 'target_type', 'target_id', 'ip', 'user_agent', 'details', 'prev_hash', 'hash')
    .where({ chain: organisationId, organisation_id: organisationId })
    .where('seq', '<=', headSeq);
  filter(query);
  return sqlWithLiterals(query.orderBy('seq'));
}
