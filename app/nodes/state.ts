import type { NodeRow } from '../db/tables';

/**
 * What a node is now: `up` (renewing), `draining` (renewing, but to take
 * no new calls), `gone` (has not renewed for three of its heartbeats:
 * crashed, cut off or powered off; or for one and a half with its liveness
 * lock free: its process died), `stopped` (shut down cleanly).
 */
export type NodeState = 'up' | 'draining' | 'gone' | 'stopped';

/** Missed heartbeats after which a node counts as gone. */
export const MISSED_HEARTBEATS = 3;

/**
 * Heartbeats after which a node whose liveness lock is free (its registry's
 * database session ended: the process died) counts as gone, sooner than
 * MISSED_HEARTBEATS (app/nodes/store.ts, holdNodeLock).
 */
export const LOCK_GRACE_HEARTBEATS = 1.5;

export interface NodeView {
  id: string;
  name: string;
  url: string;
  mediaAddress: string | null;
  state: NodeState;
  calls: number;
  capacity: number;
  workers: number;
  draining: boolean;
  version: string;
  startedAt: Date;
  renewedAt: Date;
  stoppedAt: Date | null;
}

/** `lock_held`: whether its liveness lock is held now (the same rule as the queries' in store.ts). */
export function nodeState(row: Pick<NodeRow, 'stopped_at' | 'renewed_at' | 'heartbeat_seconds' | 'draining'> & { lock_held: boolean }, now: Date): NodeState {
  if (row.stopped_at) return 'stopped';
  const silentMs = now.getTime() - row.renewed_at.getTime();
  if (silentMs > MISSED_HEARTBEATS * row.heartbeat_seconds * 1000) return 'gone';
  if (!row.lock_held && silentMs > LOCK_GRACE_HEARTBEATS * row.heartbeat_seconds * 1000) return 'gone';
  return row.draining ? 'draining' : 'up';
}

export function nodeView(row: NodeRow & { lock_held: boolean }, now: Date): NodeView {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    mediaAddress: row.media_address,
    state: nodeState(row, now),
    calls: row.calls,
    capacity: row.capacity,
    workers: row.workers,
    draining: row.draining,
    version: row.version,
    startedAt: row.started_at,
    renewedAt: row.renewed_at,
    stoppedAt: row.stopped_at,
  };
}
