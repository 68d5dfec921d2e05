import type { Knex } from 'knex';
import type { ClientBase } from 'pg';
import type { NodeRow } from '../db/tables';
import { LOCK_GRACE_HEARTBEATS } from './state';

const NODE_LOCK_PREFIX = 'vclerk-node:';

/**
 * The only queries on `nodes`, the registry of appliance nodes sharing the
 * database. Times are the database's (`now()`), so nodes whose clocks
 * differ still judge each other's renewals alike.
 */

/** What a node says of itself when it registers. */
export interface NodeRegistration {
  name: string;
  url: string;
  mediaAddress: string | null;
  capacity: number;
  calls: number;
  workers: number;
  version: string;
  heartbeatSeconds: number;
  runId: string;
}

/**
 * Registers a node under its name: a new row, or the name's row taken over
 * (started and renewed now, no longer stopped). `draining`
 * is the operator's and stays as it was.
 */
export async function upsertNode(knex: Knex, node: NodeRegistration): Promise<NodeRow> {
  const values = {
    url: node.url,
    media_address: node.mediaAddress,
    capacity: node.capacity,
    calls: node.calls,
    workers: node.workers,
    version: node.version,
    heartbeat_seconds: node.heartbeatSeconds,
    run_id: node.runId,
    started_at: knex.fn.now(),
    renewed_at: knex.fn.now(),
    stopped_at: null,
  };
  const [row] = await knex('nodes').insert({ name: node.name, ...values }).onConflict('name').merge(Object.keys(values) as (keyof typeof values)[]).returning('*');
  return row!;
}

/**
 * Renews the row this run holds with its load, on the registry's own
 * connection `client`; undefined when another process has taken the name
 * since. The same session holds the node's liveness lock (`nodeLockKey`).
 */
export async function renewNode(client: ClientBase, name: string, runId: string, load: { calls: number; workers: number }): Promise<NodeRow | undefined> {
  const { rows } = await client.query<NodeRow>('UPDATE nodes SET calls = $1, workers = $2, renewed_at = now() WHERE name = $3 AND run_id = $4 RETURNING *', [load.calls, load.workers, name, runId]);
  return rows[0];
}

/**
 * A node's liveness lock: a session-level advisory lock its registry's
 * connection holds for as long as the process lives. A process that dies
 * (kill -9, a crash) loses its connections at once, and with them the lock:
 * the others need not wait for three missed heartbeats to know.
 */
export async function holdNodeLock(client: ClientBase, nodeId: string): Promise<boolean> {
  const { rows } = await client.query<{ held: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS held`, [`${NODE_LOCK_PREFIX}${nodeId}`]);
  return rows[0]?.held === true;
}


/** A clean stop: the row this run holds is marked stopped, with no calls left. */
export async function markNodeStopped(knex: Knex, name: string, runId: string): Promise<void> {
  await knex('nodes').where({ name, run_id: runId }).update({ stopped_at: knex.fn.now(), calls: 0 });
}

/** Every node by name, with the database's time now (to judge their renewals by). */
export async function listNodeRows(knex: Knex): Promise<{ now: Date; rows: (NodeRow & { lock_held: boolean })[] }> {
  const { rows: clock } = await knex.raw<{ rows: { now: Date }[] }>('SELECT now() AS now');
  const { rows } = await knex.raw<{ rows: (NodeRow & { lock_held: boolean })[] }>(`SELECT n.*, ${LOCK_HELD} AS lock_held FROM nodes n ORDER BY n.name`);
  return { now: clock[0]!.now, rows };
}

/** One node by name, locked for a change in `trx`. */
export async function nodeByNameForUpdate(trx: Knex.Transaction, name: string): Promise<NodeRow | undefined> {
  return trx('nodes').where({ name }).forUpdate().first();
}

export async function updateDraining(trx: Knex.Transaction, id: string, draining: boolean): Promise<void> {
  await trx('nodes').where({ id }).update({ draining });
}

/** A node as placing a call sees it: alive, and how many open calls are placed on it. */
export interface PlaceableNode {
  id: string;
  name: string;
  url: string;
  capacity: number;
  open: number;
  draining: boolean;
}

/** Whether node `n`'s liveness lock is held (holdNodeLock): its registry's connection is open. */
const LOCK_HELD = `EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('${NODE_LOCK_PREFIX}' || n.id::text, 0))`;

/**
 * Alive (as state.ts's nodeState judges): not stopped, renewed within
 * `missed` heartbeats (the ? bound), and either renewed within
 * LOCK_GRACE_HEARTBEATS or holding its liveness lock. So a node whose
 * process died is gone as soon as it misses one renewal; one that is alive
 * but slow (its lock held) has the full three.
 */
const ALIVE = `n.stopped_at IS NULL AND n.renewed_at > now() - make_interval(secs => ? * n.heartbeat_seconds)
  AND (n.renewed_at > now() - make_interval(secs => ${LOCK_GRACE_HEARTBEATS} * n.heartbeat_seconds) OR ${LOCK_HELD})`;
const PLACEABLE_COLUMNS = `n.id, n.name, n.url, n.capacity, n.draining,
  (SELECT count(*) FROM calls c WHERE c.node_id = n.id AND c.status <> 'ended')::int AS open`;

/** The living nodes (renewed within `missed` heartbeats, not stopped) that take new calls (not draining), the least loaded (open calls ÷ capacity) first. */
export async function placeableNodes(db: Knex, missed: number): Promise<PlaceableNode[]> {
  const { rows } = await db.raw<{ rows: PlaceableNode[] }>(
    `SELECT * FROM (SELECT ${PLACEABLE_COLUMNS} FROM nodes n WHERE ${ALIVE} AND NOT n.draining) p ORDER BY p.open::float / p.capacity, p.name`,
    [missed],
  );
  return rows;
}

/** One node by id if it is alive (draining or not). */
export async function livingNode(db: Knex, id: string, missed: number): Promise<PlaceableNode | undefined> {
  const { rows } = await db.raw<{ rows: PlaceableNode[] }>(`SELECT ${PLACEABLE_COLUMNS} FROM nodes n WHERE n.id = ? AND ${ALIVE}`, [id, missed]);
  return rows[0];
}

/** The living nodes' URLs by name (for forwarding signalling to the node that holds a call). */
export async function livingNodeUrls(db: Knex, missed: number): Promise<{ name: string; url: string }[]> {
  const { rows } = await db.raw<{ rows: { name: string; url: string }[] }>(`SELECT n.name, n.url FROM nodes n WHERE ${ALIVE}`, [missed]);
  return rows;
}

/** The ids of the nodes that are not alive (gone or stopped): their calls and recordings are another node's to reconcile. */
export async function lostNodeIds(db: Knex, missed: number): Promise<string[]> {
  const { rows } = await db.raw<{ rows: { id: string }[] }>(`SELECT n.id FROM nodes n WHERE NOT (${ALIVE})`, [missed]);
  return rows.map((r) => r.id);
}

/** The ids of the node named `self` (if registered) and of every node that is not alive: what a starting node reconciles. */
export async function ownOrLostNodeIds(db: Knex, self: string, missed: number): Promise<string[]> {
  const { rows } = await db.raw<{ rows: { id: string }[] }>(`SELECT n.id FROM nodes n WHERE n.name = ? OR NOT (${ALIVE})`, [self, missed]);
  return rows.map((r) => r.id);
}
