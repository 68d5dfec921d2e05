import type { Knex } from 'knex';
import type { Config } from '../../config';
import { migrationStatus } from '../db/migrations';
import type { Logger } from '../logger';
import { QUEUE_SILENCE_MS } from '../queue/service';
import { FINALISE_QUEUE } from '../recordings/live';
import { RETENTION_QUEUE } from '../retention/scheduler';

/** One media worker as the pool describes it (media/worker-pool.ts `describe()`). */
export interface WorkerFigures {
  index: number;
  pid: number;
  port: number;
  routers: number;
  alive: boolean;
}

/**
 * The live parts of the running appliance the metrics and the status page
 * read. Every member is optional: an app built without media (tests) shows
 * what the database knows and marks the rest as unavailable.
 */
export interface OpsProbe {
  pool?: { describe(): WorkerFigures[] };
  rooms?: { readonly size: number };
  /** Any pg-boss queue of the app (they share one schema). */
  jobs?: { backlog(queue: string): Promise<number> };
  tls?: { mode: Config['tls']; fingerprint?: string; notAfter?: Date };
  database?: { embedded: boolean };
  ffmpegPath?: string;
}

/** Job queues whose backlog is watched. */
export const WATCHED_QUEUES = [FINALISE_QUEUE, RETENTION_QUEUE] as const;

export interface Figures {
  database: 'ok' | 'unreachable';
  /** Calls by status, over all organisations. */
  calls: { waiting: number; active: number };
  /** Calls with a media room on a worker now; null without media. */
  liveRooms: number | null;
  workers: WorkerFigures[] | null;
  recordings: { recording: number; processing: number };
  /** Customers waiting in the queues (seen within the last minute). */
  queueWaiting: number;
  /** Jobs not done yet per queue; null when unknown. */
  backlog: Record<(typeof WATCHED_QUEUES)[number], number | null>;
}

async function countBy(query: Knex.QueryBuilder, column: string): Promise<Map<string, number>> {
  const rows = (await query.select(column).count({ n: '*' }).groupBy(column)) as { n: string }[];
  return new Map(rows.map((r) => [String((r as Record<string, unknown>)[column]), Number(r.n)]));
}

/** Gathers the figures; a failing source is logged and shown as unknown, never fails the page. */
export async function gatherFigures(knex: Knex, probe: OpsProbe | undefined, logger: Logger): Promise<Figures> {
  const figures: Figures = {
    database: 'ok',
    calls: { waiting: 0, active: 0 },
    liveRooms: probe?.rooms?.size ?? null,
    workers: probe?.pool?.describe() ?? null,
    recordings: { recording: 0, processing: 0 },
    queueWaiting: 0,
    backlog: { [FINALISE_QUEUE]: null, [RETENTION_QUEUE]: null } as Figures['backlog'],
  };
  try {
    const calls = await countBy(knex('calls').whereIn('status', ['waiting', 'active']), 'status');
    figures.calls = { waiting: calls.get('waiting') ?? 0, active: calls.get('active') ?? 0 };
    const recordings = await countBy(knex('recordings').whereIn('status', ['recording', 'processing']), 'status');
    figures.recordings = { recording: recordings.get('recording') ?? 0, processing: recordings.get('processing') ?? 0 };
    const [queue] = (await knex('queue_entries').where({ status: 'waiting' }).where('last_seen_at', '>=', new Date(Date.now() - QUEUE_SILENCE_MS)).count({ n: '*' })) as [{ n: string }];
    figures.queueWaiting = Number(queue.n);
  } catch (err) {
    logger.warn({ err }, 'operations figures: the database did not answer');
    figures.database = 'unreachable';
    return figures;
  }
  if (probe?.jobs) {
    for (const queue of WATCHED_QUEUES) {
      try {
        figures.backlog[queue] = await probe.jobs.backlog(queue);
      } catch (err) {
        logger.warn({ err, queue }, 'operations figures: job backlog unknown');
      }
    }
  }
  return figures;
}

/** Whether every migration has run (the status page); null when the database did not answer. */
export async function migrationsCurrent(knex: Knex): Promise<boolean | null> {
  try {
    return (await migrationStatus(knex)).pending.length === 0;
  } catch {
    return null;
  }
}
