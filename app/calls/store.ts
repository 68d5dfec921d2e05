import type { Knex } from 'knex';
import { type CallRow } from '../db/tables';

/**
 * The owner of `calls`: every query on the table is built here; services
 * (CallService, the queue, closure, retention, data-subject requests,
 * holds) call these functions, passing their transaction. No rules and no
 * audit here: those stay with the callers.
 */

export type CallStatus = 'waiting' | 'active' | 'ended';

export interface Call {
  id: string;
  organisationId: string;
  clerkId: string | null;
  status: CallStatus;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  endReason: string | null;
  guestTokenExpiresAt: Date | null;
  reference: string | null;
  scheduledAt: Date | null;
  linkRevokedAt: Date | null;
}

const COLUMNS = ['id', 'organisation_id', 'clerk_id', 'status', 'created_at', 'started_at', 'ended_at', 'end_reason', 'guest_token_expires_at', 'reference', 'scheduled_at', 'link_revoked_at'] as const;

type CallColumns = Pick<CallRow, (typeof COLUMNS)[number]>;

function toCall(row: CallColumns): Call {
  return {
    id: row.id,
    organisationId: row.organisation_id,
    clerkId: row.clerk_id ?? null,
    status: row.status,
    createdAt: row.created_at,
    startedAt: row.started_at ?? null,
    endedAt: row.ended_at ?? null,
    endReason: row.end_reason ?? null,
    guestTokenExpiresAt: row.guest_token_expires_at ?? null,
    reference: row.reference ?? null,
    scheduledAt: row.scheduled_at ?? null,
    linkRevokedAt: row.link_revoked_at ?? null,
  };
}

const calls = (db: Knex) => db('calls');

/** Which call a lookup names: by id, within an organisation, of a clerk, or by the customer token's hash. */
export type CallWhere = Partial<Pick<CallRow, 'id' | 'organisation_id' | 'clerk_id' | 'guest_token_hash'>>;

export async function insertCall(trx: Knex.Transaction, values: Pick<CallRow, 'organisation_id' | 'clerk_id' | 'guest_token_hash' | 'guest_token_expires_at' | 'reference' | 'scheduled_at' | 'channel'> & Partial<Pick<CallRow, 'id' | 'link_nonce'>>): Promise<Call> {
  const [row] = await calls(trx).insert(values).returning(COLUMNS);
  return toCall(row!);
}

export async function findCall(db: Knex, where: CallWhere): Promise<Call | undefined> {
  const row = await calls(db).where(where).first(...COLUMNS);
  return row ? toCall(row) : undefined;
}

/** The call's row locked for the rest of the transaction (`FOR UPDATE`). */
export async function lockCall(trx: Knex.Transaction, where: CallWhere): Promise<Call | undefined> {
  const row = await calls(trx).where(where).forUpdate().first(...COLUMNS);
  return row ? toCall(row) : undefined;
}

/** Of the calls, those that ended or whose link was revoked (the signalling hub's sweep). */
export async function closedCallsAmong(db: Knex, ids: string[]): Promise<Pick<CallRow, 'id' | 'status' | 'end_reason'>[]> {
  return calls(db).whereIn('id', ids).where((q) => q.where({ status: 'ended' }).orWhereNotNull('link_revoked_at')).select('id', 'status', 'end_reason');
}

/** The organisation a call belongs to, whatever organisation asks (for the cross-organisation check). */
export async function callOrganisation(db: Knex, id: string): Promise<string | undefined> {
  return (await calls(db).where({ id }).first('organisation_id'))?.organisation_id;
}

/** One organisation's calls, newest first, keyset-paged. */
export async function listOrganisationCalls(db: Knex, organisationId: string, options: { status?: CallStatus; limit: number; before?: { createdAt: Date; id: string } }): Promise<Call[]> {
  const query = calls(db).where({ organisation_id: organisationId });
  if (options.status) query.where({ status: options.status });
  if (options.before) {
    const { createdAt, id } = options.before;
    query.where((q) => q.where('created_at', '<', createdAt).orWhere((q2) => q2.where('created_at', '=', createdAt).andWhere('id', '<', id)));
  }
  const rows = await query.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(options.limit).select(...COLUMNS);
  return rows.map(toCall);
}

/** A clerk's calls that have not ended, newest first, at most 50. */
export async function openCallsOf(db: Knex, organisationId: string, clerkId: string): Promise<Call[]> {
  const rows = await calls(db).where({ organisation_id: organisationId, clerk_id: clerkId }).whereNot({ status: 'ended' }).orderBy('created_at', 'desc').limit(50).select(...COLUMNS);
  return rows.map(toCall);
}

/** A clerk's ended calls, newest first. */
export async function endedCallsOf(db: Knex, organisationId: string, clerkId: string, limit: number): Promise<Call[]> {
  const rows = await calls(db).where({ organisation_id: organisationId, clerk_id: clerkId, status: 'ended' }).orderBy('ended_at', 'desc').limit(limit).select(...COLUMNS);
  return rows.map(toCall);
}

/** What re-showing a call's customer link needs: its nonce and the stored hash to check the derived token against. */
export async function callLinkSecret(db: Knex, id: string): Promise<{ nonce: string | null; tokenHash: string | null } | undefined> {
  const row = await calls(db).where({ id }).first('link_nonce', 'guest_token_hash');
  return row ? { nonce: row.link_nonce ?? null, tokenHash: row.guest_token_hash ?? null } : undefined;
}

export async function revokeCallLink(trx: Knex.Transaction, id: string): Promise<void> {
  await calls(trx).where({ id }).update({ link_revoked_at: trx.fn.now() });
}

/** Revokes the link unless it was revoked before (erasure). */
export async function revokeCallLinkOnce(trx: Knex.Transaction, id: string): Promise<void> {
  await calls(trx).where({ id }).whereNull('link_revoked_at').update({ link_revoked_at: trx.fn.now() });
}

/** Both participants are there: the call turns active, keeping its first start. */
export async function markCallActive(trx: Knex.Transaction, id: string, startedAt: Date | null): Promise<void> {
  await calls(trx).where({ id }).update({ status: 'active', started_at: startedAt ?? trx.fn.now() });
}

export async function markCallEnded(trx: Knex.Transaction, id: string, reason: string): Promise<void> {
  await calls(trx).where({ id }).update({ status: 'ended', ended_at: trx.fn.now(), end_reason: reason });
}

export async function markCallWaiting(trx: Knex.Transaction, id: string): Promise<void> {
  await calls(trx).where({ id }).update({ status: 'waiting' });
}

/** Waiting calls whose customer link has expired. */
export async function staleWaitingCallIds(db: Knex): Promise<string[]> {
  return (await calls(db).where({ status: 'waiting' }).where('guest_token_expires_at', '<=', db.fn.now()).select('id')).map((c) => c.id);
}

/** Closing an organisation: every open call ends at `now`; returns their ids. */
export async function endOrganisationCalls(trx: Knex.Transaction, organisationId: string, now: Date, reason: string): Promise<string[]> {
  const ended = await calls(trx).where({ organisation_id: organisationId }).whereNot({ status: 'ended' }).update({ status: 'ended', ended_at: now, end_reason: reason }).returning('id');
  return ended.map((c) => c.id);
}

/** Closing an organisation: every call link not yet revoked is revoked at `now`; returns how many. */
export async function revokeOrganisationLinks(trx: Knex.Transaction, organisationId: string, now: Date): Promise<number> {
  return calls(trx).where({ organisation_id: organisationId }).whereNull('link_revoked_at').update({ link_revoked_at: now });
}

export async function organisationCallIds(db: Knex, organisationId: string): Promise<string[]> {
  return (await calls(db).where({ organisation_id: organisationId }).select('id')).map((c) => c.id);
}

export async function deleteCalls(trx: Knex.Transaction, ids: string[]): Promise<number> {
  return calls(trx).whereIn('id', ids).delete();
}

/** Calls by status, counted (the status page); `organisationId` limits them to one organisation. */
export async function countOpenCalls(db: Knex, organisationId?: string): Promise<{ waiting: number; active: number }> {
  const query = calls(db).whereIn('status', ['waiting', 'active']);
  if (organisationId) query.where({ organisation_id: organisationId });
  const rows = (await query.select('status').count({ n: '*' }).groupBy('status')) as unknown as { status: string; n: string }[];
  const by = new Map(rows.map((r) => [String(r.status), Number(r.n)]));
  return { waiting: by.get('waiting') ?? 0, active: by.get('active') ?? 0 };
}

/** The organisation's calls among `ids`, locked, with their status (erasure). */
export async function lockOrganisationCalls(trx: Knex.Transaction, organisationId: string, ids: string[]): Promise<{ id: string; status: string }[]> {
  return calls(trx).where({ organisation_id: organisationId }).whereIn('id', ids).forUpdate().select('id', 'status');
}

/** How many of `ids` are the organisation's calls. */
export async function countOrganisationCalls(db: Knex, organisationId: string, ids: string[]): Promise<number> {
  const [row] = (await calls(db).where({ organisation_id: organisationId }).whereIn('id', ids).count({ n: '*' })) as unknown as [{ n: string }];
  return Number(row.n);
}

/** The organisation's calls among `ids` as a data-subject access export shows them, oldest first. */
export async function exportedCalls(db: Knex, organisationId: string, ids: string[]) {
  return calls(db).where({ organisation_id: organisationId }).whereIn('id', ids).orderBy('created_at').select('id', 'reference', 'status', 'created_at', 'scheduled_at', 'started_at', 'ended_at', 'end_reason', 'link_revoked_at');
}

/** The organisation's calls among `ids` with the clerk's name, oldest first. */
export async function callsWithClerk(db: Knex, organisationId: string, ids: string[]): Promise<{ id: string; reference: string | null; status: string; created_at: Date; ended_at: Date | null; clerk_name: string | null }[]> {
  return db('calls as c').leftJoin('users as u', 'u.id', 'c.clerk_id').where('c.organisation_id', organisationId).whereIn('c.id', ids).orderBy('c.created_at').select('c.id', 'c.reference', 'c.status', 'c.created_at', 'c.ended_at', 'u.name as clerk_name');
}

/** How a data-subject request names its calls. */
export type CallIdentification =
  | { by: 'token_hash'; hash: string }
  | { by: 'reference'; reference: string | undefined }
  | { by: 'window'; from: Date; to: Date; clerkId?: string };

/** The organisation's calls a data-subject request identifies, oldest first, at most 1000. */
export async function identifiedCallIds(db: Knex, organisationId: string, identification: CallIdentification): Promise<string[]> {
  const query = calls(db).where({ organisation_id: organisationId });
  if (identification.by === 'token_hash') query.where({ guest_token_hash: identification.hash });
  else if (identification.by === 'reference') query.where({ reference: identification.reference! });
  else {
    query.where('created_at', '>=', identification.from).where('created_at', '<=', identification.to);
    if (identification.clerkId) query.where({ clerk_id: identification.clerkId });
  }
  return (await query.orderBy('created_at').limit(1000).select('id')).map((r) => r.id);
}

/** Locks a call of the organisation and gives its status, or undefined (curation). */
export async function lockCallStatus(trx: Knex.Transaction, organisationId: string, id: string): Promise<string | undefined> {
  return (await calls(trx).where({ id, organisation_id: organisationId }).forUpdate().first('status'))?.status;
}

/** The call's id as stored, when the organisation has the call. */
export async function organisationCallId(db: Knex, organisationId: string, id: string): Promise<string | undefined> {
  return (await calls(db).where({ id, organisation_id: organisationId }).first('id'))?.id;
}

/** A subquery: the ids of the organisation's ended calls that ended before the cutoff (retention). */
export function dueCallIds(db: Knex, organisationId: string, cutoff: Date): Knex.QueryBuilder {
  return calls(db).where({ organisation_id: organisationId, status: 'ended' }).where('ended_at', '<', cutoff).select('id');
}

/** Due calls (`due`: `dueCallIds` without its select) that a recording or a consent record still hangs on. */
function anchored(db: Knex, q: Knex.QueryBuilder): Knex.QueryBuilder {
  return q.where((w) => w
    .whereExists((e) => e.select(db.raw('1')).from('recordings as r').whereRaw('r.call_id = calls.id'))
    .orWhereExists((e) => e.select(db.raw('1')).from('recording_consents as rc').whereRaw('rc.call_id = calls.id')));
}

/** Retention: deletes the due calls nothing hangs on, in batches, telling `deleted` each batch's count. */
export async function deleteDueCalls(db: Knex, due: () => Knex.QueryBuilder, batchSize: number, deleted: (n: number) => void): Promise<void> {
  for (;;) {
    const batch = due().whereNot((w) => anchored(db, w)).select('id').limit(batchSize);
    const n = await calls(db).whereIn('id', batch).where({ status: 'ended' }).del();
    deleted(n);
    if (n < batchSize) break;
  }
}

/** Retention: due calls a recording or consent record still hangs on lose their reference, customer link and clerk; returns how many. */
export async function anonymiseDueCalls(db: Knex, due: () => Knex.QueryBuilder): Promise<number> {
  return anchored(db, due())
    .where((w) => w.whereNotNull('reference').orWhereNotNull('guest_token_hash').orWhereNotNull('clerk_id').orWhereNotNull('link_nonce'))
    .update({ reference: null, guest_token_hash: null, guest_token_expires_at: null, clerk_id: null, link_nonce: null });
}

// --- Placement on a node (app/nodes/placement.ts) ----------------------------

/** The call's node and status, its row locked for the placement in `trx`. */
export async function lockCallNode(trx: Knex.Transaction, id: string): Promise<{ node_id: string | null; status: string } | undefined> {
  return trx('calls').where({ id }).forUpdate().first('node_id', 'status');
}

export async function setCallNode(trx: Knex.Transaction, id: string, nodeId: string): Promise<void> {
  await trx('calls').where({ id }).update({ node_id: nodeId });
}

/** Which calls a node reconciles: those on these nodes, and (`unplaced`) those on none. */
export interface NodeScope {
  nodeIds: string[];
  unplaced: boolean;
}

/** Active calls within `scope` (all of them without one). */
export async function activeCallsWithin(db: Knex, scope?: NodeScope): Promise<{ id: string; organisation_id: string }[]> {
  const query = db('calls').where({ status: 'active' });
  if (scope) {
    query.where((q) => {
      q.whereIn('node_id', scope.nodeIds);
      if (scope.unplaced) q.orWhereNull('node_id');
    });
  }
  return query.select('id', 'organisation_id');
}

/** Active calls held by these (lost) nodes back to waiting, each once: the ones changed. */
export async function interruptCallsOn(trx: Knex.Transaction, nodeIds: string[]): Promise<{ id: string; organisation_id: string }[]> {
  if (nodeIds.length === 0) return [];
  return trx('calls').where({ status: 'active' }).whereIn('node_id', nodeIds).update({ status: 'waiting' }).returning(['id', 'organisation_id']);
}

/**
 * Ended calls Insights has not counted yet (up to `limit`, oldest end
 * first), each with what the day's figures take from it: its local day and
 * hour in `timeZone`, whole seconds, and counts of its cards, favourites,
 * recordings and its customer's last consent answer.
 */
export async function uncountedEndedCalls(trx: Knex.Transaction, organisationId: string, timeZone: string, limit: number): Promise<UncountedCall[]> {
  const result = await trx.raw<{ rows: UncountedCall[] }>(
    `SELECT c.id, c.clerk_id, coalesce(c.channel, 'link') AS channel,
            c.started_at IS NOT NULL AS started,
            (c.started_at IS NOT NULL AND c.end_reason IN ('all_left', 'ended_by_clerk')) AS completed,
            ((coalesce(c.started_at, c.created_at) AT TIME ZONE ?)::date)::text AS day,
            extract(hour FROM (coalesce(c.started_at, c.created_at) AT TIME ZONE ?))::int AS hour,
            floor(extract(epoch FROM (c.ended_at - c.started_at)))::int AS seconds,
            items.cards, items.favourite,
            (SELECT count(*) FROM recordings r WHERE r.call_id = c.id)::int AS recordings,
            (SELECT rc.answer FROM recording_consents rc WHERE rc.call_id = c.id AND rc.role = 'customer' ORDER BY rc.answered_at DESC, rc.id DESC LIMIT 1) AS consent
       FROM calls c
       CROSS JOIN LATERAL (SELECT count(*)::int AS cards, coalesce(bool_or(i.favourite), false) AS favourite FROM call_items i WHERE i.call_id = c.id) items
      WHERE c.organisation_id = ? AND c.status = 'ended' AND c.counted_at IS NULL
      ORDER BY c.ended_at
      LIMIT ?
      FOR UPDATE OF c SKIP LOCKED`,
    [timeZone, timeZone, organisationId, limit],
  );
  return result.rows;
}

export interface UncountedCall {
  id: string;
  clerk_id: string | null;
  channel: 'link' | 'queue' | 'widget' | 'api';
  started: boolean;
  completed: boolean;
  day: string;
  hour: number;
  seconds: number | null;
  cards: number;
  favourite: boolean;
  recordings: number;
  consent: 'granted' | 'declined' | 'withdrawn' | null;
}

/** Marks calls as counted by Insights. */
export async function markCallsCounted(trx: Knex.Transaction, ids: string[]): Promise<void> {
  if (ids.length) await calls(trx).whereIn('id', ids).update({ counted_at: trx.fn.now() });
}

/** Organisations with ended calls Insights has not counted. */
export async function organisationsWithUncountedCalls(db: Knex): Promise<string[]> {
  return (await calls(db).where({ status: 'ended' }).whereNull('counted_at').distinct('organisation_id')).map((r) => r.organisation_id);
}
