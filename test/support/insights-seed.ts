/**
 * Test data for the Insights tests (issue 20): weeks of calls, queue
 * entries, cards, recordings, consents and clerks' available time, made up
 * by a seeded pseudo-random generator (the same rows on every run), and
 * written straight to the tables as the running app would have left them.
 * Times are drawn as wall-clock times in the organisation's zone; what the
 * tests expect is computed from the stored rows by PostgreSQL
 * (test/support/insights-direct.ts), never from these drawings.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';

/** mulberry32: a small deterministic generator; `next()` in [0, 1). */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  weighted<T>(items: readonly (readonly [T, number])[]): T {
    const total = items.reduce((s, [, w]) => s + w, 0);
    let r = this.next() * total;
    for (const [item, w] of items) {
      r -= w;
      if (r < 0) return item;
    }
    return items[items.length - 1]![0];
  }
}

const SECOND = 1000;

/** Offset of `zone` from UTC at instant `t` (ms; positive east of Greenwich). */
function offsetAt(t: number, zone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(t));
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - Math.floor(t / SECOND) * SECOND;
}

/** The instant of a wall-clock time in `zone` (`day` YYYY-MM-DD, `ms` since that local midnight); in a DST gap, some instant near it. */
export function localInstant(day: string, ms: number, zone: string): Date {
  const wall = Date.parse(`${day}T00:00:00Z`) + ms;
  let t = wall;
  for (let i = 0; i < 3; i++) t = wall - offsetAt(t, zone);
  return new Date(t);
}

export function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export async function setTimeZone(knex: Knex, organisationId: string, timezone: string): Promise<void> {
  await knex('organisations').where({ id: organisationId }).update({ settings: knex.raw(`settings || ?::jsonb`, [JSON.stringify({ openingHours: { timezone, days: {} } })]) });
}

/** Sets the Insights settings directly (the form is tested on its own). */
export async function setInsightsSettings(knex: Knex, organisationId: string, settings: Partial<{ threshold: number; serviceLevelSeconds: number; clerksSeeEachOther: boolean }>): Promise<void> {
  const current = ((await knex('organisations').where({ id: organisationId }).first('settings'))!.settings as { insights?: object }).insights ?? {};
  await knex('organisations').where({ id: organisationId }).update({ settings: knex.raw(`settings || ?::jsonb`, [JSON.stringify({ insights: { ...current, ...settings } })]) });
}

// --- Single rows ------------------------------------------------------------

export interface CallSpec {
  clerkId: string | null;
  channel: 'link' | 'queue' | 'widget' | 'api' | null;
  createdAt: Date;
  startedAt: Date | null;
  /** Null: the call is still open (status `active` if started, else `waiting`). */
  endedAt: Date | null;
  endReason?: string;
}

/** Inserts one call; answers its id. */
export async function insertCall(knex: Knex, organisationId: string, spec: CallSpec): Promise<string> {
  const status = spec.endedAt ? 'ended' : spec.startedAt ? 'active' : 'waiting';
  const endReason = spec.endedAt ? (spec.endReason ?? (spec.startedAt ? 'ended_by_clerk' : 'expired')) : null;
  const [row] = await knex('calls')
    .insert({ organisation_id: organisationId, clerk_id: spec.clerkId, channel: spec.channel, status, guest_token_hash: crypto.randomBytes(32).toString('hex'), created_at: spec.createdAt, started_at: spec.startedAt, ended_at: spec.endedAt, end_reason: endReason })
    .returning('id');
  return row!.id as string;
}

export interface QueueEntrySpec {
  status: 'waiting' | 'accepted' | 'left' | 'expired';
  channel: 'queue' | 'widget';
  createdAt: Date;
  acceptedAt?: Date;
  acceptedBy?: string | null;
  callId?: string | null;
  endedAt?: Date | null;
}

export async function insertQueueEntry(knex: Knex, organisationId: string, spec: QueueEntrySpec): Promise<void> {
  await knex('queue_entries').insert({
    organisation_id: organisationId,
    status: spec.status,
    channel: spec.channel,
    ticket_hash: crypto.randomBytes(32).toString('hex'),
    call_id: spec.callId ?? null,
    accepted_by: spec.acceptedBy ?? null,
    created_at: spec.createdAt,
    last_seen_at: spec.acceptedAt ?? spec.endedAt ?? spec.createdAt,
    accepted_at: spec.acceptedAt ?? null,
    ended_at: spec.endedAt ?? null,
  });
}

// --- A history of several weeks ---------------------------------------------

export interface HistoryOptions {
  organisationId: string;
  clerkIds: string[];
  timeZone: string;
  /** First local day and number of days. */
  from: string;
  days: number;
  seed: number;
  /** Calls per weekday (weekends get a quarter). */
  busy: number;
}

export interface SeededProduct {
  id: string | null;
  sku: string;
  name: string;
}

const CHANNEL_WEIGHTS = [['link', 5], ['queue', 3], ['widget', 2], ['api', 1]] as const;
/** Local hours drawn for a call: business hours mostly, some late in the evening and just after midnight (the day boundary). */
const HOUR_WEIGHTS: (readonly [number, number])[] = Array.from({ length: 24 }, (_, h) => [h, h >= 9 && h <= 18 ? 10 : h === 23 || h === 0 ? 3 : h >= 7 && h <= 21 ? 2 : 0.5] as const);

/**
 * Seeds `days` local days of history: per day, calls (about 12% never
 * started; of the started, most ended normally, some expired or closed), a
 * queue entry (accepted, with a wait) for each call from the queue or the
 * widget, abandoned entries, cards (some favourited, some withdrawn; most
 * from the catalogue, two by SKU only), recordings with the customer's
 * answer (granted, declined, or granted then withdrawn) and the clerk's,
 * and spans of the clerks' available time (some across local midnight).
 * Also a call still active and a customer still waiting, which count for
 * nothing yet.
 */
export async function seedHistory(knex: Knex, o: HistoryOptions): Promise<{ products: SeededProduct[] }> {
  const rnd = new Random(o.seed);
  const products = await seedProducts(knex, o.organisationId);
  const zone = o.timeZone;
  const calls: Record<string, unknown>[] = [];
  const entries: Record<string, unknown>[] = [];
  const items: Record<string, unknown>[] = [];
  const recordings: Record<string, unknown>[] = [];
  const consents: Record<string, unknown>[] = [];
  const spans: Record<string, unknown>[] = [];
  const ticket = () => crypto.randomBytes(32).toString('hex');

  for (let d = 0; d < o.days; d++) {
    const day = addDays(o.from, d);
    const weekday = new Date(`${day}T00:00:00Z`).getUTCDay();
    const weekend = weekday === 0 || weekday === 6;
    const n = weekend ? rnd.int(0, Math.ceil(o.busy / 4)) : rnd.int(Math.floor(o.busy / 2), o.busy * 2);
    for (let i = 0; i < n; i++) {
      const id = crypto.randomUUID();
      const clerkId = rnd.chance(0.03) ? null : rnd.pick(o.clerkIds);
      const channel = rnd.weighted(CHANNEL_WEIGHTS);
      const hour = rnd.weighted(HOUR_WEIGHTS);
      const at = localInstant(day, hour * 3600 * SECOND + rnd.int(0, 3599) * SECOND + rnd.int(0, 999), zone);
      const row: Record<string, unknown> = { id, organisation_id: o.organisationId, clerk_id: clerkId, channel, status: 'ended', guest_token_hash: ticket() };
      if (rnd.chance(0.12)) {
        // Never started: the customer did not come (the day is that of its creation).
        const created = at;
        calls.push({ ...row, created_at: created, started_at: null, ended_at: new Date(created.getTime() + rnd.int(60, 7200) * SECOND), end_reason: rnd.pick(['expired', 'ended_by_clerk', 'organisation_closed']) });
        continue;
      }
      const started = at;
      let created = new Date(started.getTime() - rnd.int(0, 900) * SECOND - rnd.int(0, 999));
      if (channel === 'queue' || channel === 'widget') {
        // The clerk accepted the customer from the queue; the call was made then.
        const wait = waitOf(rnd);
        const acceptedAt = new Date(started.getTime() - rnd.int(1, 20) * SECOND - rnd.int(0, 999));
        created = acceptedAt;
        const entryCreated = new Date(acceptedAt.getTime() - wait);
        entries.push({ organisation_id: o.organisationId, status: 'accepted', channel, ticket_hash: ticket(), call_id: id, accepted_by: rnd.chance(0.02) ? null : clerkId, created_at: entryCreated, last_seen_at: acceptedAt, accepted_at: acceptedAt, ended_at: null });
      }
      const duration = rnd.weighted([[rnd.int(5, 120), 3], [rnd.int(120, 900), 5], [rnd.int(900, 3600), 2]] as const) * SECOND + rnd.int(0, 999);
      const ended = new Date(started.getTime() + duration);
      const endReason = rnd.weighted([['ended_by_clerk', 70], ['all_left', 18], ['expired', 7], ['organisation_closed', 5]] as const);
      calls.push({ ...row, created_at: created, started_at: started, ended_at: ended, end_reason: endReason });

      if (rnd.chance(0.6)) {
        const shown = new Set<number>();
        const k = rnd.int(1, 5);
        for (let j = 0; j < k; j++) shown.add(productIndex(rnd, products.length));
        let position = 1;
        for (const index of shown) {
          const product = products[index]!;
          items.push({ organisation_id: o.organisationId, call_id: id, product_id: product.id, sku: product.sku, name: product.name, price_cents: 1000 + index, currency: 'EUR', position: position++, favourite: rnd.chance(0.22), shown_at: started, withdrawn_at: rnd.chance(0.08) ? ended : null });
        }
      }
      if (rnd.chance(0.2)) {
        for (let r = rnd.chance(0.15) ? 2 : 1; r > 0; r--) {
          const recordingId = crypto.randomUUID();
          const status = rnd.weighted([['ready', 8], ['partial', 1], ['failed', 1]] as const);
          recordings.push({ id: recordingId, organisation_id: o.organisationId, call_id: id, status, started_at: started, stopped_at: ended, file_name: status === 'failed' ? null : 'recording.mp4', size: 10 });
          const consent = { organisation_id: o.organisationId, call_id: id, recording_id: recordingId, notice_text: 'We record.', notice_version: 'v1', language: 'en', answered_at: started };
          consents.push({ ...consent, role: 'clerk', user_id: clerkId, answer: 'granted' });
          consents.push({ ...consent, role: 'customer', answer: 'granted', ip: '203.0.113.7' });
          if (rnd.chance(0.15)) consents.push({ ...consent, role: 'customer', answer: 'withdrawn', ip: '203.0.113.7', answered_at: new Date(started.getTime() + 30 * SECOND) });
        }
      } else if (rnd.chance(0.06)) {
        // Asked, refused: no recording was made.
        consents.push({ organisation_id: o.organisationId, call_id: id, recording_id: null, role: 'customer', answer: 'declined', notice_text: 'We record.', notice_version: 'v1', language: 'en', ip: '203.0.113.7', answered_at: started });
      }
    }

    // Customers who gave up waiting (left) or whose page went silent (expired).
    for (let a = rnd.int(0, weekend ? 1 : 4); a > 0; a--) {
      const createdAt = localInstant(day, rnd.weighted(HOUR_WEIGHTS) * 3600 * SECOND + rnd.int(0, 3599_999), zone);
      const endedAt = new Date(createdAt.getTime() + rnd.int(5, 900) * SECOND);
      entries.push({ organisation_id: o.organisationId, status: rnd.chance(0.7) ? 'left' : 'expired', channel: rnd.chance(0.6) ? 'queue' : 'widget', ticket_hash: ticket(), created_at: createdAt, last_seen_at: endedAt, ended_at: endedAt });
    }

    // Available time: one or two spans per clerk on weekdays, the late one sometimes past local midnight.
    if (!weekend) {
      for (const clerkId of o.clerkIds) {
        if (rnd.chance(0.2)) continue;
        const start = localInstant(day, rnd.int(7, 10) * 3600 * SECOND + rnd.int(0, 3599) * SECOND + rnd.int(0, 999), zone);
        spans.push({ organisation_id: o.organisationId, user_id: clerkId, started_at: start, ended_at: new Date(start.getTime() + rnd.int(1800, 5 * 3600) * SECOND + rnd.int(0, 999)) });
        if (rnd.chance(0.3)) {
          const late = localInstant(day, 22 * 3600 * SECOND + rnd.int(0, 7199) * SECOND, zone);
          spans.push({ organisation_id: o.organisationId, user_id: clerkId, started_at: late, ended_at: new Date(late.getTime() + rnd.int(600, 4 * 3600) * SECOND + rnd.int(0, 999)) });
        }
      }
    }
  }

  // Still open: an active call and a waiting customer (counted once they end).
  const lastDay = addDays(o.from, o.days - 1);
  const openAt = localInstant(lastDay, 12 * 3600 * SECOND, zone);
  const openId = crypto.randomUUID();
  calls.push({ id: openId, organisation_id: o.organisationId, clerk_id: o.clerkIds[0], channel: 'link', status: 'active', guest_token_hash: ticket(), created_at: openAt, started_at: openAt, ended_at: null, end_reason: null });
  entries.push({ organisation_id: o.organisationId, status: 'waiting', channel: 'queue', ticket_hash: ticket(), created_at: openAt, last_seen_at: openAt });

  for (const [table, rows] of [['calls', calls], ['queue_entries', entries], ['call_items', items], ['recordings', recordings], ['recording_consents', consents], ['availability_spans', spans]] as const) {
    for (let i = 0; i < rows.length; i += 500) await knex.insert(rows.slice(i, i + 500)).into(table as string);
  }
  return { products };
}

/** Waits in the queue (ms): mostly under a minute, a tail of minutes, and some right at 60 s (the default service level's edge). */
function waitOf(rnd: Random): number {
  const seconds = rnd.weighted([[rnd.int(0, 59), 10], [60, 2], [61, 1], [rnd.int(62, 600), 5]] as const);
  return seconds * SECOND + rnd.int(0, 999);
}

/** Some products are shown far more often than others (so the top ten are mostly clear). */
function productIndex(rnd: Random, n: number): number {
  return Math.min(n - 1, Math.floor(n * rnd.next() ** 2));
}

const CATALOGUE = ['Sofa Alba', 'Armchair Bruno', 'Lamp Clara', 'Table Dora', 'Rug Emil', 'Shelf Frida', 'Bed Gustav', 'Desk Hanna', 'Chair Ida', 'Mirror Jonas', 'Vase Karla', 'Clock Lenz', 'Stool Mia', 'Bench Nils'];

/** The catalogue's products, and two cards shown by SKU only (not from the catalogue). */
async function seedProducts(knex: Knex, organisationId: string): Promise<SeededProduct[]> {
  const rows = await knex('products')
    .insert(CATALOGUE.map((name, i) => ({ organisation_id: organisationId, sku: `SKU-${i + 1}`, name, price_cents: 1000 + i, currency: 'EUR' })))
    .returning(['id', 'sku', 'name']);
  const byName = new Map(rows.map((r) => [r.name as string, { id: r.id as string, sku: r.sku as string, name: r.name as string }]));
  return [...CATALOGUE.slice(0, 6).map((n) => byName.get(n)!), { id: null, sku: 'FREE-1', name: 'Custom cushion' }, ...CATALOGUE.slice(6).map((n) => byName.get(n)!), { id: null, sku: 'FREE-2', name: 'Gift card' }];
}

// --- What the raw rows say ----------------------------------------------------

/** Whose raw rows: an organisation's local days from..to (YYYY-MM-DD) in `timeZone`, optionally one clerk's. */
