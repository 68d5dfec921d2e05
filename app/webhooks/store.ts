import type { Knex } from 'knex';
import { type WebhookDeliveryRow, type WebhookEndpointRow } from '../db/tables';

/**
 * The owner of `webhook_endpoints` and `webhook_deliveries`: every query
 * on them is built here; the admin pages' WebhookService, the dispatcher
 * and the purge call these functions. Audit events are read only through
 * joins and subqueries (the endpoint's cursor, a delivery's event).
 */

const endpoints = (db: Knex) => db('webhook_endpoints');
const deliveries = (db: Knex) => db('webhook_deliveries');

const ENDPOINT = ['id', 'url', 'events', 'enabled', 'created_at'] as const;

export type EndpointListing = Pick<WebhookEndpointRow, (typeof ENDPOINT)[number]>;

const own = (db: Knex, organisationId: string) => endpoints(db).where('webhook_endpoints.organisation_id', organisationId);

/** The id of the organisation's latest audit event (0 without any), as SQL: where a new or re-enabled endpoint's cursor starts. */
export function latestEventId(db: Knex, organisationId: string): Knex.Raw {
  return db.raw('(SELECT COALESCE(MAX(id), 0) FROM audit_events WHERE organisation_id = ?)', [organisationId]);
}

export async function listEndpoints(db: Knex, organisationId: string): Promise<EndpointListing[]> {
  return own(db, organisationId).orderBy([{ column: 'created_at' }, { column: 'id' }]).select(...ENDPOINT);
}

export async function insertEndpoint(db: Knex, values: Pick<WebhookEndpointRow, 'organisation_id' | 'url' | 'secret' | 'events' | 'enabled'>): Promise<EndpointListing> {
  const [row] = await endpoints(db).insert({ ...values, last_event_id: latestEventId(db, values.organisation_id) }).returning(ENDPOINT);
  return row!;
}

/** Turns the organisation's endpoint on or off; turned on, its cursor moves to the latest event. */
export async function setEndpointEnabled(db: Knex, organisationId: string, id: string, enabled: boolean): Promise<EndpointListing> {
  const update: Record<string, unknown> = { enabled };
  if (enabled) update.last_event_id = db.raw('GREATEST(last_event_id, (?))', [latestEventId(db, organisationId)]);
  const [row] = await own(db, organisationId).where({ id }).update(update).returning(ENDPOINT);
  return row!;
}

export async function setEndpointSecret(db: Knex, organisationId: string, id: string, secret: string): Promise<EndpointListing> {
  const [row] = await own(db, organisationId).where({ id }).update({ secret }).returning(ENDPOINT);
  return row!;
}

/** Deletes the organisation's endpoint (its deliveries go with it). */
export async function deleteEndpoint(db: Knex, organisationId: string, id: string): Promise<void> {
  await own(db, organisationId).where({ id }).delete();
}

export async function organisationEndpoint(db: Knex, organisationId: string, id: string): Promise<Pick<WebhookEndpointRow, 'id' | 'url' | 'enabled'> | undefined> {
  return own(db, organisationId).where({ id }).first('id', 'url', 'enabled');
}

/** Deletes the organisation's endpoints (purging it); returns how many. */
export async function deleteOrganisationEndpoints(trx: Knex.Transaction, organisationId: string): Promise<number> {
  return endpoints(trx).where({ organisation_id: organisationId }).delete();
}

/** The latest deliveries of the organisation's endpoints, newest first, with the endpoint's URL. */
export async function organisationDeliveries(db: Knex, organisationId: string, limit: number): Promise<(WebhookDeliveryRow & { url: string })[]> {
  return db('webhook_deliveries as d')
    .join('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
    .where('e.organisation_id', organisationId)
    .orderBy('d.id', 'desc')
    .limit(limit)
    .select('d.*', 'e.url');
}

/** Enabled endpoints of organisations not closed. */
export async function activeEndpointIds(db: Knex): Promise<string[]> {
  const rows = await db('webhook_endpoints as e')
    .join('organisations as o', 'o.id', 'e.organisation_id')
    .where('e.enabled', true)
    .whereNull('o.closed_at')
    .select('e.id');
  return rows.map((r: { id: string }) => r.id);
}

/** The enabled endpoint, locked; undefined when disabled or locked by another instance (skipped). */
export async function lockEndpointForEnqueue(trx: Knex.Transaction, id: string): Promise<Pick<WebhookEndpointRow, 'organisation_id' | 'events' | 'last_event_id'> | undefined> {
  return endpoints(trx).where({ id, enabled: true }).forUpdate().skipLocked().first('organisation_id', 'events', 'last_event_id');
}

/** Queues deliveries; one already queued for the same endpoint and event is left as it is. */
export async function insertDeliveries(trx: Knex.Transaction, rows: Pick<WebhookDeliveryRow, 'endpoint_id' | 'audit_event_id' | 'event'>[]): Promise<void> {
  await deliveries(trx).insert(rows).onConflict(['endpoint_id', 'audit_event_id']).ignore();
}

/** Moves the endpoint's cursor to the audit event. */
export async function advanceCursor(trx: Knex.Transaction, id: string, lastEventId: string): Promise<void> {
  await endpoints(trx).where({ id }).update({ last_event_id: lastEventId });
}

export interface ClaimedDelivery {
  id: string;
  endpoint_id: string;
  audit_event_id: string;
  event: string;
  attempt: number;
  url: string;
  secret: string;
  occurred_at: Date;
  target_type: string | null;
  target_id: string | null;
  details: Record<string, unknown>;
  slug: string;
}

/**
 * Claims up to `batchSize` due deliveries of enabled endpoints of open
 * organisations for `leaseSeconds` (others skip them), in event order, with
 * what sending them needs.
 */
export async function claimDeliveries(db: Knex, leaseSeconds: number, batchSize: number): Promise<ClaimedDelivery[]> {
  const result = await db.raw(
    `UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => ?)
       FROM (
         SELECT d2.id FROM webhook_deliveries d2
         JOIN webhook_endpoints e ON e.id = d2.endpoint_id
         JOIN organisations o ON o.id = e.organisation_id
         WHERE d2.status = 'pending' AND d2.next_attempt_at <= now() AND e.enabled AND o.closed_at IS NULL
         ORDER BY d2.id
         LIMIT ?
         FOR UPDATE OF d2 SKIP LOCKED
       ) due
       WHERE d.id = due.id
       RETURNING d.id`,
    [leaseSeconds, batchSize],
  );
  const ids = (result.rows as { id: string }[]).map((r) => r.id);
  if (ids.length === 0) return [];
  return db('webhook_deliveries as d')
    .join('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
    .join('organisations as o', 'o.id', 'e.organisation_id')
    .join('audit_events as a', 'a.id', 'd.audit_event_id')
    .whereIn('d.id', ids)
    .orderBy('d.audit_event_id')
    .select('d.id', 'd.endpoint_id', 'd.audit_event_id', 'd.event', 'd.attempt', 'e.url', 'e.secret', 'a.occurred_at', 'a.target_type', 'a.target_id', 'a.details', 'o.slug');
}

export async function markDelivered(db: Knex, id: string, attempt: number, responseStatus: number | null): Promise<void> {
  await deliveries(db).where({ id }).update({ status: 'delivered', attempt, response_status: responseStatus, error: null, delivered_at: db.fn.now() });
}

/** A failed attempt: pending again at `nextAttemptAt`, or failed for good. */
export async function markAttemptFailed(db: Knex, id: string, values: Pick<WebhookDeliveryRow, 'status' | 'attempt' | 'response_status' | 'error' | 'next_attempt_at'>): Promise<void> {
  await deliveries(db).where({ id }).update(values);
}
