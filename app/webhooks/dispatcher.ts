import type { Knex } from 'knex';
import type { Logger } from '../core/logger';
import { sign } from './verify';
import { webhookEvents } from './service';
import { activeEndpointIds, advanceCursor, claimDeliveries, insertDeliveries, lockEndpointForEnqueue, markAttemptFailed, markDelivered, type ClaimedDelivery } from './store';
import { eventsAfterId } from '../audit/store';

export interface DispatcherOptions {
  /** The HTTP client (tests may pass their own); the global fetch by default. */
  fetch?: typeof fetch;
  /** Pause between two runs of the loop started by `start()`. */
  intervalMs?: number;
  /** Attempts per delivery before it is given up as `failed`. */
  maxAttempts?: number;
  /** Wait before the next attempt, after `attempt` failed ones. */
  backoff?: (attempt: number) => number;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Audit events read per endpoint and deliveries sent per run. */
  batchSize?: number;
}

/** 2 s, 4 s, 8 s, ... capped at 10 minutes. */
export function defaultBackoff(attempt: number): number {
  return Math.min(2 ** attempt * 1000, 10 * 60_000);
}

/** How long a claimed delivery stays invisible to other runs (longer than the timeout). */
const LEASE_SECONDS = 60;
const MAX_ERROR = 200;
/** Never forwarded, whatever an event's details hold. */
const PERSONAL_KEYS = new Set(['ip', 'user_agent', 'userAgent', 'client_ip', 'email']);

type Claimed = ClaimedDelivery;

/**
 * Sends the organisations' call events to their own webhook endpoints.
 *
 * Each run (1) turns new audit events into queued deliveries: for every
 * enabled endpoint, the organisation's events after the endpoint's cursor
 * (`last_event_id`) are read in id order, the wanted ones queued, and the
 * cursor advanced in the same transaction. Within one organisation audit ids
 * grow in commit order (the audit service serialises each organisation's
 * chain with a lock held until commit), so a cursor on the id skips nothing.
 * (2) sends the due deliveries, claimed with a short lease so that two
 * instances never send the same one at once: 2xx is delivered, anything
 * else (redirects included: they are not followed) is retried with backoff
 * until `maxAttempts`, then marked failed. Delivery is at least once; the
 * receiver deduplicates by `X-VClerk-Delivery` or the event `id`.
 */
export class WebhookDispatcher {
  private readonly fetch: typeof fetch;
  private readonly intervalMs: number;
  private readonly maxAttempts: number;
  private readonly backoff: (attempt: number) => number;
  private readonly timeoutMs: number;
  private readonly batchSize: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(private readonly knex: Knex, private readonly logger: Logger, options: DispatcherOptions = {}) {
    this.fetch = options.fetch ?? globalThis.fetch;
    this.intervalMs = options.intervalMs ?? 2000;
    this.maxAttempts = options.maxAttempts ?? 6;
    this.backoff = options.backoff ?? defaultBackoff;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.batchSize = options.batchSize ?? 200;
  }

  /** Runs every `intervalMs` until `stop()`; a run never overlaps the one before. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the loop and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .then(() => undefined)
        .catch((err) => this.logger.warn({ err }, 'webhook run failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.intervalMs);
        });
    }, delay);
    this.timer.unref();
  }

  /** One run: queue new events, then send what is due. Returns how many were queued and sent. */
  async runOnce(): Promise<{ queued: number; sent: number }> {
    const queued = await this.enqueue();
    const sent = await this.sendDue();
    return { queued, sent };
  }

  /** Step 1: new matching audit events become pending deliveries; each endpoint's cursor advances with them. */
  async enqueue(): Promise<number> {
    const endpoints = await activeEndpointIds(this.knex);
    let queued = 0;
    for (const id of endpoints) {
      for (;;) {
        const { count, more } = await this.enqueueFor(id);
        queued += count;
        if (!more) break;
      }
    }
    return queued;
  }

  private enqueueFor(endpointId: string): Promise<{ count: number; more: boolean }> {
    return this.knex.transaction(async (trx) => {
      // Another instance on the same endpoint: skip it this time.
      const endpoint = await lockEndpointForEnqueue(trx, endpointId);
      if (!endpoint) return { count: 0, more: false };
      const events = await eventsAfterId(trx, endpoint.organisation_id, endpoint.last_event_id, this.batchSize);
      if (events.length === 0) return { count: 0, more: false };
      const wanted = new Set<string>(endpoint.events.filter((e) => (webhookEvents as readonly string[]).includes(e)));
      const rows = events.filter((e) => wanted.has(e.action)).map((e) => ({ endpoint_id: endpointId, audit_event_id: e.id, event: e.action }));
      if (rows.length > 0) await insertDeliveries(trx, rows);
      await advanceCursor(trx, endpointId, events[events.length - 1]!.id);
      return { count: rows.length, more: events.length === this.batchSize };
    });
  }

  /** Step 2: sends the due deliveries, each endpoint's in event order, endpoints side by side. */
  async sendDue(): Promise<number> {
    const claimed = await this.claim();
    const byEndpoint = new Map<string, Claimed[]>();
    for (const d of claimed) byEndpoint.set(d.endpoint_id, [...(byEndpoint.get(d.endpoint_id) ?? []), d]);
    await Promise.all(
      [...byEndpoint.values()].map(async (list) => {
        for (const delivery of list) await this.send(delivery);
      }),
    );
    return claimed.length;
  }

  private claim(): Promise<Claimed[]> {
    return claimDeliveries(this.knex, LEASE_SECONDS, this.batchSize);
  }

  private async send(delivery: Claimed): Promise<void> {
    const body = JSON.stringify(payloadOf(delivery));
    const timestamp = Math.floor(Date.now() / 1000);
    const attempt = delivery.attempt + 1;
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await this.fetch(delivery.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'VClerk-Webhooks',
          'X-VClerk-Event': delivery.event,
          'X-VClerk-Delivery': String(delivery.id),
          'X-VClerk-Timestamp': String(timestamp),
          'X-VClerk-Signature': `sha256=${sign(delivery.secret, timestamp, body)}`,
        },
        body,
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
      if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}`;
    } catch (err) {
      error = describe(err);
    }

    if (error === null) {
      await markDelivered(this.knex, delivery.id, attempt, status);
      return;
    }
    const failed = attempt >= this.maxAttempts;
    await markAttemptFailed(this.knex, delivery.id, {
      status: failed ? 'failed' : 'pending',
      attempt,
      response_status: status,
      error,
      next_attempt_at: new Date(Date.now() + (failed ? 0 : this.backoff(attempt))),
    });
    // The URL's host only: a path or query may carry something the organisation considers secret.
    this.logger.warn({ delivery: String(delivery.id), endpoint: delivery.endpoint_id, host: hostOf(delivery.url), attempt, error, failed }, failed ? 'webhook delivery failed for good' : 'webhook delivery failed; will retry');
  }
}

/** The body of a delivery: the event without the IP address or user agent the audit trail keeps. */
export function payloadOf(d: Pick<Claimed, 'audit_event_id' | 'event' | 'occurred_at' | 'slug' | 'target_type' | 'target_id' | 'details'>): Record<string, unknown> {
  const data = Object.fromEntries(Object.entries(d.details ?? {}).filter(([key]) => !PERSONAL_KEYS.has(key)));
  return {
    id: Number(d.audit_event_id),
    event: d.event,
    occurredAt: new Date(d.occurred_at).toISOString(),
    organisation: d.slug,
    call: { id: d.target_type === 'call' ? d.target_id : null },
    data,
  };
}

/** A short, secret-free reason: the error's code or name, never its message (which may quote the URL). */
function describe(err: unknown): string {
  const e = err as { name?: unknown; code?: unknown; cause?: { code?: unknown; name?: unknown } };
  if (e?.name === 'TimeoutError') return 'timeout';
  const code = e?.cause?.code ?? e?.code ?? e?.cause?.name ?? e?.name ?? 'error';
  return String(code).replace(/[^\w.-]/g, '').slice(0, MAX_ERROR) || 'error';
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '?';
  }
}
