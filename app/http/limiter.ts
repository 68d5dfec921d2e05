import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import { refusalsFor } from '../audit/refusals';
import { TooManyRequestsError } from '../core/errors';

/**
 * What a client may be refused for, each with its own bucket per client IP:
 * sign-ins and password checks, API keys, signalling tokens, one-time and
 * customer links, queue pages and tickets, and entering the queue (which
 * counts every entry, refused or not).
 */
export type LimitKind = 'sign_in' | 'api_key' | 'signalling' | 'link' | 'queue' | 'queue_entry';

export interface LimiterSettings {
  /** Refusals a client IP may collect at once before it is answered 429 without any database work. */
  burst: number;
  /** How many of them come back per minute. */
  perMinute: number;
}

export const DEFAULT_LIMITS: LimiterSettings = { burst: 30, perMinute: 30 };

/**
 * A reserved token comes back as soon as a request is accepted, so the burst
 * bounds how many requests of one IP may be unverified at once. Integrations
 * send API requests in parallel batches from one address: their bucket holds
 * four times the burst (refusals still drain it at the same rate).
 */
const BURST_FACTOR: Partial<Record<LimitKind, number>> = { api_key: 4 };

function burstFor(kind: string, settings: LimiterSettings): number {
  return settings.burst * (BURST_FACTOR[kind as LimitKind] ?? 1);
}

/** A reserved slot: give it back when the request turned out not to be a refusal. */
export type Slot = { ok: true; refund: () => void } | { ok: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  last: number;
}

/** Buckets kept at most; beyond that, full (idle) ones are dropped first, then the oldest. */
const MAX_BUCKETS = 50_000;

/**
 * Pre-database rate limits for anonymous refusals: an in-memory token bucket
 * per (kind, client IP). A request takes a token BEFORE it does any database
 * work (so that a concurrent burst cannot pass the check together) and gives
 * it back once it turned out to be accepted; what is left limits refusals.
 * An empty bucket answers at once, without touching the database.
 */
export class RefusalLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private settings: LimiterSettings;

  constructor(settings: LimiterSettings = DEFAULT_LIMITS, private readonly clock: () => number = Date.now) {
    this.settings = settings;
  }

  configure(settings: LimiterSettings): void {
    this.settings = settings;
  }

  take(kind: LimitKind, ip: string | null | undefined): Slot {
    const key = `${kind}|${clientKey(ip)}`;
    const now = this.clock();
    const { perMinute } = this.settings;
    const burst = burstFor(kind, this.settings);
    let bucket = this.buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.last) / 60_000) * perMinute);
      bucket.last = now;
      // Most recently used last, so that pruning drops the idle ones.
      this.buckets.delete(key);
      this.buckets.set(key, bucket);
    } else {
      if (this.buckets.size >= MAX_BUCKETS) this.prune(now);
      bucket = { tokens: burst, last: now };
      this.buckets.set(key, bucket);
    }
    if (bucket.tokens < 1) {
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(((1 - bucket.tokens) * 60) / perMinute)) };
    }
    bucket.tokens -= 1;
    const b = bucket;
    let refunded = false;
    return {
      ok: true,
      refund: () => {
        if (refunded) return;
        refunded = true;
        b.tokens = Math.min(burstFor(kind, this.settings), b.tokens + 1);
      },
    };
  }

  private prune(now: number): void {
    const { perMinute } = this.settings;
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.last) / 60_000) * perMinute >= burstFor(key.split('|')[0]!, this.settings)) this.buckets.delete(key);
    }
    // Still full of active buckets: drop the least recently used tenth.
    let drop = this.buckets.size >= MAX_BUCKETS ? Math.ceil(MAX_BUCKETS / 10) : 0;
    for (const key of this.buckets.keys()) {
      if (drop-- <= 0) break;
      this.buckets.delete(key);
    }
  }
}

/**
 * Whom a per-client limit counts: an IPv4 address, or an IPv6 client's /64
 * (one subscriber's network: a client there can take any of its 2^64
 * addresses, so per-address limits would not hold). IPv4-mapped IPv6
 * addresses count as their IPv4 address.
 */
export function clientKey(ip: string | null | undefined): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.split('%')[0]!.toLowerCase().split('::', 2);
  const left = head ? head.split(':') : [];
  const right = ip.includes('::') && tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

const limiters = new WeakMap<Knex, RefusalLimiter>();

/**
 * The limiter of one appliance, keyed by its database handle, so that the
 * HTTP app and the signalling server share the buckets (and each test
 * database has its own).
 */
export function limiterFor(knex: Knex): RefusalLimiter {
  let limiter = limiters.get(knex);
  if (!limiter) limiters.set(knex, (limiter = new RefusalLimiter()));
  return limiter;
}

/** Refuses an over-limit request: counted (not written) as `security.rate_limited`, then 429 `rate_limited` with Retry-After. */
export function rateLimited(knex: Knex, req: Request, kind: LimitKind, retryAfterSeconds: number): TooManyRequestsError {
  void refusalsFor(knex).note({
    action: 'security.rate_limited',
    organisationId: null,
    actor: { type: 'guest' },
    ip: req.ip ?? null,
    userAgent: req.get('user-agent') ?? null,
    details: { kind, reason: kind },
  }, { aggregateOnly: true });
  req.res?.setHeader('Retry-After', String(retryAfterSeconds));
  return new TooManyRequestsError('rate_limited');
}

/**
 * Middleware for anonymous endpoints that do database work per request
 * (links with a token, the public queue): takes a token per client IP before
 * the handler runs and gives it back when the answer was not a refusal
 * (status below 400).
 */
export function limitRefusals(knex: Knex, kind: LimitKind): RequestHandler {
  return (req, res, next) => {
    const slot = limiterFor(knex).take(kind, req.ip);
    if (!slot.ok) return next(rateLimited(knex, req, kind, slot.retryAfterSeconds));
    // 'close' also comes when the client went away before the answer was done (a page left mid-download).
    res.once('close', () => {
      if (res.statusCode < 400) slot.refund();
    });
    next();
  };
}
