import type { Knex } from 'knex';
import type { Config } from '../../config';
import { migrationStatus } from '../db/migrations';
import type { DatabaseHealth } from '../db/watchdog';
import type { Logger } from '../core/logger';
import { QUEUE_SILENCE_MS } from '../queue/service';
import { FINALISE_QUEUE } from '../recordings/live';
import { freeBytes } from '../recordings/storage';
import { RETENTION_QUEUE } from '../retention/scheduler';
import { countOpenCalls } from '../calls/store';
import { countWaiting } from '../queue/store';
import { otherOrganisationExists } from '../organisation/store';
import { countUnfinishedRecordings } from '../recordings/service';
import { listNodes } from '../nodes/service';
import type { NodeView } from '../nodes/state';

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
  /** `watchdog`: the database watchdog's view (app/db/watchdog.ts), read by /healthz. */
  /** `role`: what the app's database role may do to the audit trail (app/db/roles.ts), shown on /admin/status. */
  database?: { embedded: boolean; watchdog?: { health(): DatabaseHealth }; role?: { role: string; superuser: boolean; mayChangeAuditTrail: boolean } };
  ffmpegPath?: string;
  /** This node (the one answering), among the registry's nodes. */
  node?: { name: string };
}

/** A node of the registry as the figures show it; in an organisation's scope without its load (calls, capacity: null). */
export type NodeFigures = Omit<NodeView, 'calls' | 'capacity'> & { calls: number | null; capacity: number | null };

/** Job queues whose backlog is watched. */
export const WATCHED_QUEUES = [FINALISE_QUEUE, RETENTION_QUEUE] as const;

/**
 * Whose figures: the whole appliance (/metrics, and the status page while
 * the appliance holds one organisation only), or one organisation's (the
 * status page of an organisation's admin on an appliance shared by several:
 * other organisations' call, queue and recording counts are their business).
 */
export type FigureScope = { kind: 'appliance' } | { kind: 'organisation'; organisationId: string };

export interface Figures {
  scope: FigureScope['kind'];
  database: 'ok' | 'unreachable';
  /** Calls by status (over all organisations, or the scope's). */
  calls: { waiting: number; active: number };
  /** Calls with a media room on a worker now; null without media, and in an organisation's scope. */
  liveRooms: number | null;
  /** The media workers; in an organisation's scope without their load (routers: null). */
  workers: (Omit<WorkerFigures, 'routers'> & { routers: number | null })[] | null;
  recordings: { recording: number; processing: number };
  /** Customers waiting in the queues (seen within the last minute). */
  queueWaiting: number;
  /** Jobs not done yet per queue; null when unknown, and in an organisation's scope. */
  backlog: Record<(typeof WATCHED_QUEUES)[number], number | null>;
  /** Every appliance node sharing the database (app/nodes/); null when the database did not answer. */
  nodes: NodeFigures[] | null;
}

/** Gathers the figures; a failing source is logged and shown as unknown, never fails the page. */
export async function gatherFigures(knex: Knex, probe: OpsProbe | undefined, logger: Logger, scope: FigureScope = { kind: 'appliance' }): Promise<Figures> {
  const appliance = scope.kind === 'appliance';
  const workers = probe?.pool?.describe() ?? null;
  const figures: Figures = {
    scope: scope.kind,
    database: 'ok',
    calls: { waiting: 0, active: 0 },
    liveRooms: appliance ? (probe?.rooms?.size ?? null) : null,
    workers: workers && (appliance ? workers : workers.map((w) => ({ ...w, routers: null }))),
    recordings: { recording: 0, processing: 0 },
    queueWaiting: 0,
    backlog: { [FINALISE_QUEUE]: null, [RETENTION_QUEUE]: null } as Figures['backlog'],
    nodes: null,
  };
  const organisationId = scope.kind === 'organisation' ? scope.organisationId : undefined;
  try {
    figures.calls = await countOpenCalls(knex, organisationId);
    figures.recordings = await countUnfinishedRecordings(knex, organisationId);
    figures.queueWaiting = await countWaiting(knex, { organisationId, seenSince: new Date(Date.now() - QUEUE_SILENCE_MS) });
    const nodes = await listNodes(knex);
    figures.nodes = appliance ? nodes : nodes.map((n) => ({ ...n, calls: null, capacity: null }));
  } catch (err) {
    logger.warn({ err }, 'operations figures: the database did not answer');
    figures.database = 'unreachable';
    return figures;
  }
  if (probe?.jobs && appliance) {
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

/**
 * The scope of the status page for an organisation's admin: the whole
 * appliance while it holds their organisation alone (its IT admin is the
 * appliance's), else their organisation's.
 */
export async function statusScope(knex: Knex, organisationId: string): Promise<FigureScope> {
  return (await otherOrganisationExists(knex, organisationId)) ? { kind: 'organisation', organisationId } : { kind: 'appliance' };
}

/** Bytes free on the filesystem of the data directory; null when unknown. */
export async function dataDirFree(dataDir: string, logger: Logger): Promise<number | null> {
  try {
    return await freeBytes(dataDir);
  } catch (err) {
    logger.warn({ err }, 'operations figures: free disk space unknown');
    return null;
  }
}

/** Whether every migration has run (the status page); null when the database did not answer. */
export async function migrationsCurrent(knex: Knex): Promise<boolean | null> {
  try {
    return (await migrationStatus(knex)).pending.length === 0;
  } catch {
    return null;
  }
}
