import type { Knex } from 'knex';
import type { Logger } from '../core/logger';
import type { Actor, AuditAction } from './actions';
import { AuditService, type AuditEventInput } from './service';

/** A refused anonymous (or unauthenticated) request, to be audited. */
export interface Refusal extends AuditEventInput {
  action: AuditAction;
  actor: Actor;
}

interface Group {
  first: Refusal;
  windowStart: Date;
  lastAt: Date;
  /** Refusals counted in memory since the last flush (not yet written). */
  count: number;
  reasons: Record<string, number>;
}

export interface RefusalSettings {
  /** How long refusals are counted in memory before one row per source is written. */
  windowMs: number;
  /** Refusals written at once (the first of a source in a window) per window, across all sources. */
  maxImmediatePerWindow: number;
  /** Sources counted at once; beyond that, refusals are counted under an anonymous source. */
  maxGroups: number;
}

export const DEFAULT_REFUSAL_SETTINGS: RefusalSettings = { windowMs: 60_000, maxImmediatePerWindow: 100, maxGroups: 10_000 };

/** Details of an aggregated record: how many, when, and why. */
export interface AggregatedDetails {
  aggregated: true;
  count: number;
  window_start: string;
  window_end: string;
  reasons: Record<string, number>;
}

/** How many refusals an audit row stands for: `details.count` of an aggregated row, else 1. */
export const REFUSAL_COUNT_SQL = "(CASE WHEN details->>'aggregated' = 'true' THEN (details->>'count')::int ELSE 1 END)";

/**
 * Aggregated audit records for refusals, so that a flood of refused requests
 * costs the attacker more than the appliance. Per source (action, reason,
 * client IP, organisation, actor and target where known) and window:
 *
 * - the FIRST refusal is written at once, with its full details, so an
 *   incident shows in the trail promptly;
 * - every further one is only counted in memory, and one row per source is
 *   written when the window ends (timer) or the appliance shuts down:
 *   the same action, `details.aggregated = true`, `count`, `window_start`,
 *   `window_end` and the count per reason.
 *
 * Readers sum `details.count` (1 for a plain row): REFUSAL_COUNT_SQL.
 */
export class RefusalRecorder {
  private groups = new Map<string, Group>();
  private immediateLeft: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly audit: AuditService;
  private readonly pending = new Set<Promise<void>>();
  private logger: Pick<Logger, 'error' | 'warn' | 'info'> | undefined;

  constructor(knex: Knex, private settings: RefusalSettings = DEFAULT_REFUSAL_SETTINGS) {
    this.audit = new AuditService(knex);
    this.immediateLeft = settings.maxImmediatePerWindow;
  }

  configure(settings: Partial<RefusalSettings>, logger?: Pick<Logger, 'error' | 'warn' | 'info'>): void {
    this.settings = { ...this.settings, ...settings };
    this.immediateLeft = this.settings.maxImmediatePerWindow;
    if (logger) this.logger = logger;
  }

  /**
   * Notes one refusal. Resolves once it is safely recorded: after the
   * database write for the first of its source in a window, at once when it
   * is only counted (`aggregateOnly` never writes at once).
   */
  note(refusal: Refusal, options: { aggregateOnly?: boolean } = {}): Promise<void> {
    this.startTimer();
    const now = new Date();
    let key = groupKey(refusal);
    let group = this.groups.get(key);
    if (!group && this.groups.size >= this.settings.maxGroups) {
      refusal = { ...refusal, ip: null, userAgent: null, target: undefined, actor: { type: 'guest' }, organisationId: null };
      key = groupKey(refusal);
      group = this.groups.get(key);
    }
    const reason = reasonOf(refusal);
    if (group) {
      group.count += 1;
      group.lastAt = now;
      group.reasons[reason] = (group.reasons[reason] ?? 0) + 1;
      return Promise.resolve();
    }
    const immediate = !options.aggregateOnly && this.immediateLeft > 0;
    if (options.aggregateOnly) this.logger?.warn({ action: refusal.action, reason, ip: refusal.ip }, 'client over the refusal limit: further requests answered 429 without database work');
    this.groups.set(key, { first: refusal, windowStart: now, lastAt: now, count: immediate ? 0 : 1, reasons: immediate ? {} : { [reason]: 1 } });
    if (!immediate) return Promise.resolve();
    this.immediateLeft -= 1;
    return this.track(this.audit.record(refusal));
  }

  /** Writes one row per source with refusals counted since the last flush; starts a new window. */
  async flush(): Promise<number> {
    const groups = [...this.groups.values()];
    this.groups = new Map();
    this.immediateLeft = this.settings.maxImmediatePerWindow;
    await Promise.allSettled([...this.pending]);
    const end = new Date();
    let written = 0;
    for (const g of groups) {
      if (g.count === 0) continue;
      const details: AggregatedDetails = { aggregated: true, count: g.count, window_start: g.windowStart.toISOString(), window_end: end.toISOString(), reasons: g.reasons };
      const { details: firstDetails, ...first } = g.first;
      try {
        await this.audit.record({ ...first, details: { ...keptDetails(firstDetails), ...details } });
        written += 1;
        this.logger?.info({ action: first.action, ip: first.ip, organisationId: first.organisationId, count: g.count, reasons: g.reasons }, 'refusals audited in aggregate');
      } catch (err) {
        this.logger?.error({ err, action: first.action, count: g.count }, 'aggregated refusals could not be audited');
      }
    }
    return written;
  }

  /** Stops the timer and writes what is counted (shutdown). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.flush().catch((err: unknown) => this.logger?.error({ err }, 'refusals could not be flushed'));
    }, this.settings.windowMs);
    this.timer.unref();
  }

  private track(write: Promise<void>): Promise<void> {
    const p = write.catch((err: unknown) => {
      this.logger?.error({ err }, 'a refusal could not be audited');
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }
}

function groupKey(r: Refusal): string {
  const actorId = 'id' in r.actor && r.actor.id ? r.actor.id : '';
  return [r.action, reasonOf(r), r.organisationId ?? '', r.ip ?? '', actorId, r.target?.id ?? ''].join('|');
}

function reasonOf(r: Refusal): string {
  return typeof r.details?.reason === 'string' ? r.details.reason : 'refused';
}

/** What an aggregated row keeps of its first refusal's details: what identifies the source, not what varies per request. */
function keptDetails(details: Record<string, unknown> | undefined): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const k of ['kind', 'reason']) if (details?.[k] !== undefined) kept[k] = details[k];
  return kept;
}

const recorders = new WeakMap<Knex, RefusalRecorder>();

/**
 * The refusal recorder of one appliance, keyed by its database handle (the
 * HTTP app and the signalling server share it; each test database has its own).
 */
export function refusalsFor(knex: Knex): RefusalRecorder {
  let recorder = recorders.get(knex);
  if (!recorder) recorders.set(knex, (recorder = new RefusalRecorder(knex)));
  return recorder;
}
