import type { Knex } from 'knex';
import { type QueueEntryRow } from '../db/tables';

/**
 * The owner of `queue_entries`: every query on the table is built here;
 * the queue service, the REST API (through the service), the status page
 * and closure call these functions, passing their transaction.
 */

const entries = (db: Knex) => db('queue_entries');

export async function insertEntry(db: Knex, organisationId: string, ticketHash: string, channel: QueueEntryRow['channel'] = 'queue'): Promise<void> {
  await entries(db).insert({ organisation_id: organisationId, ticket_hash: ticketHash, channel });
}

export async function entryByTicketHash(db: Knex, ticketHash: string): Promise<QueueEntryRow | undefined> {
  return entries(db).where({ ticket_hash: ticketHash }).first();
}

export async function touchEntry(db: Knex, id: string): Promise<void> {
  await entries(db).where({ id }).update({ last_seen_at: db.fn.now() });
}

/** Waiting entries of the organisation created before `createdAt`. */
export async function countAhead(db: Knex, organisationId: string, createdAt: Date): Promise<number> {
  const [row] = (await entries(db).where({ organisation_id: organisationId, status: 'waiting' }).where('created_at', '<', createdAt).count({ ahead: '*' })) as unknown as [{ ahead: string }];
  return Number(row.ahead);
}

/**
 * Customers waiting, counted: the REST API's and the status page's figure.
 * `organisationId` limits it to one organisation; `seenSince` leaves out
 * entries not seen since then.
 */
export async function countWaiting(db: Knex, scope: { organisationId?: string; seenSince?: Date }): Promise<number> {
  const query = entries(db);
  if (scope.organisationId) query.where({ organisation_id: scope.organisationId });
  query.where({ status: 'waiting' });
  if (scope.seenSince) query.where('last_seen_at', '>=', scope.seenSince);
  const [row] = (await query.count({ n: '*' })) as unknown as [{ n: string }];
  return Number(row.n);
}

/** Seconds the last (at most 20) accepted customers of the organisation waited, newest first. */
export async function recentWaits(db: Knex, organisationId: string): Promise<number[]> {
  const rows = (await entries(db)
    .where({ organisation_id: organisationId, status: 'accepted' })
    .orderBy('accepted_at', 'desc')
    .limit(20)
    .select(db.raw('extract(epoch from accepted_at - created_at) AS waited'))) as unknown as { waited: string }[];
  return rows.map((r) => Number(r.waited));
}

export async function leaveEntry(db: Knex, id: string): Promise<void> {
  await entries(db).where({ id, status: 'waiting' }).update({ status: 'left', ended_at: db.fn.now() });
}

/** Waiting entries of the organisation not seen since `before` expire. */
export async function expireEntries(db: Knex, organisationId: string, before: Date): Promise<void> {
  await entries(db).where({ organisation_id: organisationId, status: 'waiting' }).where('last_seen_at', '<', before).update({ status: 'expired', ended_at: db.fn.now() });
}

export async function waitingEntries(db: Knex, organisationId: string): Promise<Pick<QueueEntryRow, 'id' | 'created_at'>[]> {
  return entries(db).where({ organisation_id: organisationId, status: 'waiting' }).orderBy('created_at').select('id', 'created_at');
}

/**
 * Locks the entry to accept: the one given, or the one waiting longest,
 * seen since `seenSince`; entries other clerks are accepting are skipped.
 */
export async function lockNextEntry(trx: Knex.Transaction, organisationId: string, seenSince: Date, entryId?: string): Promise<QueueEntryRow | undefined> {
  const query = entries(trx).where({ organisation_id: organisationId, status: 'waiting' }).where('last_seen_at', '>=', seenSince);
  if (entryId) query.where({ id: entryId });
  return query.orderBy('created_at').forUpdate().skipLocked().first();
}

export async function markAccepted(trx: Knex.Transaction, id: string, callId: string, acceptedBy: string, autoRouted: boolean): Promise<void> {
  await entries(trx).where({ id }).update({ status: 'accepted', call_id: callId, accepted_by: acceptedBy, accepted_at: trx.fn.now(), ...(autoRouted ? { auto_routed: true } : {}) });
}

/** The call automatic routing gave the clerk since `since` that still waits, newest first. */
export async function autoRoutedCallId(db: Knex, clerkId: string, since: Date): Promise<string | undefined> {
  const row = (await entries(db)
    .join('calls', 'calls.id', 'queue_entries.call_id')
    .where('queue_entries.accepted_by', clerkId)
    .where('queue_entries.auto_routed', true)
    .where('calls.status', 'waiting')
    .where('queue_entries.accepted_at', '>', since)
    .orderBy('queue_entries.accepted_at', 'desc')
    .first('calls.id')) as { id: string } | undefined;
  return row?.id;
}

/** Which of the ticket hashes still wait. */
export async function waitingTicketHashes(db: Knex, hashes: string[]): Promise<string[]> {
  return entries(db).whereIn('ticket_hash', hashes).where({ status: 'waiting' }).pluck('ticket_hash');
}

/** Closing an organisation: its waiting entries leave at `now`; returns how many. */
export async function closeWaitingEntries(trx: Knex.Transaction, organisationId: string, now: Date): Promise<number> {
  return entries(trx).where({ organisation_id: organisationId, status: 'waiting' }).update({ status: 'left', ended_at: now });
}

export async function deleteEntriesOfCalls(trx: Knex.Transaction, callIds: string[]): Promise<void> {
  await entries(trx).whereIn('call_id', callIds).delete();
}

export async function deleteEntriesWithoutCall(trx: Knex.Transaction, organisationId: string): Promise<void> {
  await entries(trx).where({ organisation_id: organisationId }).whereNull('call_id').delete();
}

/** Settled queue entries (answered, left or expired) Insights has not counted, with their local day in `timeZone` and the whole seconds waited until answered. */
export async function uncountedSettledEntries(trx: Knex.Transaction, organisationId: string, timeZone: string, limit: number): Promise<UncountedEntry[]> {
  return entries(trx)
    .where({ organisation_id: organisationId })
    .whereNot({ status: 'waiting' })
    .whereNull('counted_at')
    .orderBy('created_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .select(
      'id',
      'accepted_by',
      trx.raw(`status = 'accepted' AS answered`),
      trx.raw(`((created_at AT TIME ZONE ?)::date)::text AS day`, [timeZone]),
      trx.raw(`floor(extract(epoch FROM (accepted_at - created_at)))::int AS wait_seconds`),
    ) as unknown as Promise<UncountedEntry[]>;
}

export interface UncountedEntry {
  id: string;
  accepted_by: string | null;
  answered: boolean;
  day: string;
  wait_seconds: number | null;
}

/** Marks queue entries as counted by Insights. */
export async function markEntriesCounted(trx: Knex.Transaction, ids: string[]): Promise<void> {
  if (ids.length) await entries(trx).whereIn('id', ids).update({ counted_at: trx.fn.now() });
}
