import type { Knex } from 'knex';
import type { InsightDayRow } from '../db/tables';
import { addHistogram, type Histogram } from './figures';
import { addDays, addMonths, monthStart } from './period';

/**
 * The owner of `insight_days` and `insight_products`: the daily figures
 * Insights keeps per organisation, local day and clerk (clerk null: what
 * belongs to no clerk), and per product; and of their monthly sums
 * `insight_months`, `insight_team_months` and `insight_product_months`, which the database
 * function `insight_rebuild_months` writes from the days (see its
 * migration). Every query on them is built here.
 */

const days = (db: Knex) => db('insight_days');
const products = (db: Knex) => db('insight_products');
const months = (db: Knex) => db('insight_months');
const teamMonths = (db: Knex) => db('insight_team_months');
const productMonths = (db: Knex) => db('insight_product_months');

/**
 * Takes the organisation's insights lock for the caller's transaction: one
 * writer of an organisation's figures at a time (the job on any node, the
 * insights retention).
 */
export async function lockFigures(trx: Knex.Transaction, organisationId: string): Promise<void> {
  await trx.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [`vclerk-insights:${organisationId}`]);
}

/** Rebuilds the monthly rows of the months of `daysTouched` from their days; under the organisation's insights lock. */
export async function rebuildMonths(trx: Knex.Transaction, organisationId: string, daysTouched: Iterable<string>): Promise<void> {
  const wanted = [...new Set([...daysTouched].map(monthStart))];
  if (wanted.length) await trx.raw('SELECT insight_rebuild_months(?, ?::date[])', [organisationId, wanted]);
}

/** What one day of one clerk adds up; the counts and histograms a row holds. */
export type DayFigures = Omit<InsightDayRow, 'id' | 'organisation_id' | 'day' | 'clerk_id'>;

export function emptyDay(): DayFigures {
  return {
    calls_started: 0, calls_completed: 0, calls_unanswered: 0,
    via_link: 0, via_queue: 0, via_widget: 0, via_api: 0,
    durations: {}, hours: Array<number>(24).fill(0),
    queue_answered: 0, queue_abandoned: 0, waits: {},
    cards_shown: 0, calls_with_cards: 0, calls_with_favourite: 0,
    recordings: 0, consents_granted: 0, consents_refused: 0, available_seconds: 0,
  };
}

const COUNTS = ['calls_started', 'calls_completed', 'calls_unanswered', 'via_link', 'via_queue', 'via_widget', 'via_api', 'queue_answered', 'queue_abandoned', 'cards_shown', 'calls_with_cards', 'calls_with_favourite', 'recordings', 'consents_granted', 'consents_refused', 'available_seconds'] as const;
export type CountColumn = (typeof COUNTS)[number];

const NO_CLERK = '00000000-0000-0000-0000-000000000000';

/**
 * Adds figures to the rows of (day, clerk), in the caller's transaction,
 * which must hold the organisation's insights lock (aggregate.ts): the
 * existing rows are read, added to, and written back.
 */
export async function addDayFigures(trx: Knex.Transaction, organisationId: string, additions: Map<string, { day: string; clerkId: string | null; figures: DayFigures }>): Promise<void> {
  if (additions.size === 0) return;
  const wanted = [...new Set([...additions.values()].map((a) => a.day))];
  const existing = (await days(trx).where({ organisation_id: organisationId }).whereIn('day', wanted).select([...COUNTS, 'durations', 'waits', 'hours', 'clerk_id', trx.raw('day::text AS day')])) as unknown as (DayFigures & { day: string; clerk_id: string | null })[];
  const byKey = new Map(existing.map((row) => [dayKey(row.day, row.clerk_id), row]));
  const rows = [...additions.entries()].map(([key, add]) => {
    const merged = mergeFigures(byKey.get(key) ?? emptyDay(), add.figures);
    return { organisation_id: organisationId, day: add.day, clerk_id: add.clerkId, ...merged, durations: JSON.stringify(merged.durations), waits: JSON.stringify(merged.waits) };
  });
  for (let i = 0; i < rows.length; i += 500) {
    await trx.raw(
      `${days(trx).insert(rows.slice(i, i + 500)).toQuery()}
       ON CONFLICT (organisation_id, day, (coalesce(clerk_id, '${NO_CLERK}'::uuid))) DO UPDATE SET
       ${[...COUNTS, 'durations', 'waits', 'hours'].map((c) => `${c} = excluded.${c}`).join(', ')}`,
    );
  }
}

export function dayKey(day: string, clerkId: string | null): string {
  return `${day}|${clerkId ?? ''}`;
}

function mergeFigures(a: DayFigures, b: DayFigures): DayFigures {
  const out: DayFigures = { ...a, durations: { ...a.durations }, waits: { ...a.waits }, hours: a.hours.map((n, i) => n + (b.hours[i] ?? 0)) };
  for (const c of COUNTS) out[c] = a[c] + b[c];
  for (const [k, v] of Object.entries(b.durations)) out.durations[k] = (out.durations[k] ?? 0) + v;
  for (const [k, v] of Object.entries(b.waits)) out.waits[k] = (out.waits[k] ?? 0) + v;
  return out;
}

/** Adds cards shown and favourited per (day, product). */
export async function addProductFigures(trx: Knex.Transaction, organisationId: string, additions: { day: string; productKey: string; name: string; shown: number; favourited: number }[]): Promise<void> {
  for (let i = 0; i < additions.length; i += 500) {
    const rows = additions.slice(i, i + 500).map((a) => ({ organisation_id: organisationId, day: a.day, product_key: a.productKey, name: a.name, shown: a.shown, favourited: a.favourited }));
    await trx.raw(`${products(trx).insert(rows).toQuery()}
      ON CONFLICT (organisation_id, day, product_key) DO UPDATE SET name = excluded.name, shown = insight_products.shown + excluded.shown, favourited = insight_products.favourited + excluded.favourited`);
  }
}

/**
 * Cards of the given calls, per product and local day of the call (for
 * addProductFigures). A product is known by its SKU, which a card keeps
 * when the product is deleted or renamed; its name is the one shown last.
 */
export async function cardsOfCalls(trx: Knex.Transaction, callDays: { id: string; day: string }[]): Promise<{ day: string; productKey: string; name: string; shown: number; favourited: number }[]> {
  if (callDays.length === 0) return [];
  const result = await trx.raw<{ rows: { day: string; product_key: string; name: string; shown: number; favourited: number }[] }>(
    `SELECT d.day, i.sku AS product_key, (array_agg(i.name ORDER BY i.shown_at DESC))[1] AS name,
            count(*)::int AS shown, count(*) FILTER (WHERE i.favourite)::int AS favourited
       FROM call_items i JOIN jsonb_to_recordset(?::jsonb) AS d(id uuid, day text) ON d.id = i.call_id
      GROUP BY d.day, 2`,
    [JSON.stringify(callDays)],
  );
  return result.rows.map((r) => ({ day: r.day, productKey: r.product_key, name: r.name, shown: r.shown, favourited: r.favourited }));
}

/**
 * Which rows a report reads: an organisation's days from..to, optionally one
 * clerk's. With `months` (first days of the first and last month wholly
 * inside from..to), those months are read from the monthly rows and only
 * the days before and after them from the daily ones.
 */
export interface Selection {
  organisationId: string;
  from: string;
  to: string;
  clerkId?: string;
  months?: { from: string; to: string };
}

/** The stretches of days a selection reads day by day. */
function dayRanges(s: Selection): [string, string][] {
  if (!s.months) return [[s.from, s.to]];
  const ranges: [string, string][] = [[s.from, addDays(s.months.from, -1)], [addMonths(s.months.to, 1), s.to]];
  return ranges.filter(([a, b]) => a <= b);
}

const FIGURE_COLUMNS = [...COUNTS, 'durations', 'waits'];

/**
 * The selection's rows as one relation `f` (day, clerk_id, the counts,
 * durations, waits): its daily rows and, for its whole months, the monthly
 * ones (`day` is then the month's first day).
 */
function selected(db: Knex, s: Selection, perClerk = false): Knex.QueryBuilder {
  const parts: Knex.QueryBuilder[] = dayRanges(s).map(([a, b]) => ofClerk(days(db).where({ organisation_id: s.organisationId }).whereBetween('day', [a, b]), s).select('day', 'clerk_id', ...FIGURE_COLUMNS));
  if (s.months) parts.push(monthsOf(db, s, perClerk).select(db.raw('month AS day'), teamWide(s, perClerk) ? db.raw('NULL::uuid AS clerk_id') : 'clerk_id', ...FIGURE_COLUMNS));
  return db.from(db.raw(`(${parts.map(() => '?').join(' UNION ALL ')}) AS f`, parts));
}

/** A team's figures that need no clerk's own come from the team's monthly rows (a row a month, however many clerks). */
function teamWide(s: Selection, perClerk: boolean): boolean {
  return !s.clerkId && !perClerk;
}

/** The selection's whole months: the team's rows, or the clerks' (all, or the one selected). */
function monthsOf(db: Knex, s: Selection, perClerk: boolean): Knex.QueryBuilder {
  const m = s.months!;
  if (teamWide(s, perClerk)) return teamMonths(db).where({ organisation_id: s.organisationId }).whereBetween('month', [m.from, m.to]);
  return ofClerk(months(db).where({ organisation_id: s.organisationId }).whereBetween('month', [m.from, m.to]), s);
}

function ofClerk(q: Knex.QueryBuilder, s: Selection): Knex.QueryBuilder {
  return s.clerkId ? q.where({ clerk_id: s.clerkId }) : q;
}

const sums = (db: Knex) => COUNTS.map((c) => db.raw(`coalesce(sum(${c}), 0)::bigint AS ${c}`));

/** The counts over the selection. */
export async function totals(db: Knex, s: Selection): Promise<Record<CountColumn, number>> {
  const row = (await selected(db, s).first(sums(db))) as Record<CountColumn, string> | undefined;
  return Object.fromEntries(COUNTS.map((c) => [c, Number(row?.[c] ?? 0)])) as Record<CountColumn, number>;
}

/** Calls started and completed per bucket (its first day: a day, the Monday of a week, the 1st of a month); weeks and days are read from daily rows only. */
export async function series(db: Knex, s: Selection, bucket: 'day' | 'week' | 'month'): Promise<{ bucket: string; started: number; completed: number }[]> {
  const from = bucket === 'month' ? s : { ...s, months: undefined };
  const rows = (await selected(db, from)
    .groupByRaw('1')
    .orderByRaw('1')
    .select(db.raw(`date_trunc('${bucket}', day)::date::text AS bucket`), db.raw('sum(calls_started)::int AS started'), db.raw('sum(calls_completed)::int AS completed'))) as unknown as { bucket: string; started: number; completed: number }[];
  return rows;
}

/**
 * A histogram column summed per clerk over the selection ('' for the rows
 * of no clerk, or for all of them when not `perClerk`). The rows' histograms
 * are added up here rather than unfolded and grouped in SQL: about a third
 * of the time for a long period's few hundred rows of a few hundred keys.
 */
async function histograms(db: Knex, s: Selection, column: 'durations' | 'waits', perClerk: boolean): Promise<Map<string, Histogram>> {
  const rows = (await selected(db, s, perClerk).select('clerk_id', column)) as { clerk_id: string | null; durations?: Histogram; waits?: Histogram }[];
  const out = new Map<string, Histogram>();
  for (const r of rows) {
    const key = perClerk ? (r.clerk_id ?? '') : '';
    let h = out.get(key);
    if (!h) out.set(key, (h = {}));
    addHistogram(h, r[column] ?? {});
  }
  return out;
}

/** The waits histogram summed over the selection. */
export async function waitHistogram(db: Knex, s: Selection): Promise<Histogram> {
  return (await histograms(db, s, 'waits', false)).get('') ?? {};
}

/** The durations histogram per clerk over the selection ('' for calls without a clerk). */
export function durationsPerClerk(db: Knex, s: Selection): Promise<Map<string, Histogram>> {
  return histograms(db, s, 'durations', true);
}

/** Calls started per ISO weekday (1 Monday) and local hour: 24 sums per weekday of the daily rows, 168 of the monthly ones. */
export async function hourCounts(db: Knex, s: Selection): Promise<{ weekday: number; hour: number; calls: number }[]> {
  const at = new Map<number, number>();
  const add = (weekday: number, hour: number, n: number) => at.set(weekday * 100 + hour, (at.get(weekday * 100 + hour) ?? 0) + Number(n));
  const ranges = dayRanges(s);
  if (ranges.length) {
    // The days before and after the whole months, in one query.
    const inRanges = (q: Knex.QueryBuilder) => ranges.reduce((w, [a, b]) => w.orWhereBetween('day', [a, b]), q);
    const rows = (await ofClerk(days(db).where({ organisation_id: s.organisationId }).where(inRanges), s)
      .groupByRaw('1')
      .select(db.raw('extract(isodow FROM day)::int AS weekday'), ...Array.from({ length: 24 }, (_, h) => db.raw(`coalesce(sum(hours[${h + 1}]), 0)::int AS h${h}`)))) as unknown as ({ weekday: number } & Record<string, number>)[];
    for (const r of rows) for (let hour = 0; hour < 24; hour++) add(r.weekday, hour, r[`h${hour}`] ?? 0);
  }
  if (s.months) {
    // Unnested once per row: a subscript per slot would unpack each row's array 168 times.
    const rows = (await monthsOf(db, s, false)
      .joinRaw(`CROSS JOIN LATERAL unnest(${teamWide(s, false) ? 'insight_team_months' : 'insight_months'}.week_hours) WITH ORDINALITY AS u(n, i)`)
      .groupBy('u.i')
      .select(db.raw('u.i::int - 1 AS slot'), db.raw('sum(u.n)::int AS n'))) as unknown as { slot: number; n: number }[];
    for (const r of rows) add(Math.floor(r.slot / 24) + 1, r.slot % 24, r.n);
  }
  const out = [];
  for (const [key, calls] of at) out.push({ weekday: Math.floor(key / 100), hour: key % 100, calls });
  return out;
}

/** Per clerk: calls started and seconds available. */
export async function clerkTotals(db: Knex, s: Selection): Promise<{ clerk_id: string; calls: number; available_seconds: number }[]> {
  return (await selected(db, s, true)
    .whereNotNull('clerk_id')
    .groupBy('clerk_id')
    .select('clerk_id', db.raw('sum(calls_started)::int AS calls'), db.raw('sum(available_seconds)::bigint AS available_seconds'))) as unknown as { clerk_id: string; calls: number; available_seconds: number }[];
}

/** The selection's product rows as one relation `p` (product_key, name, last (its day), shown, favourited), like `selected`. */
function selectedProducts(db: Knex, s: Selection): Knex.QueryBuilder {
  const parts: Knex.QueryBuilder[] = dayRanges(s).map(([a, b]) => products(db).where({ organisation_id: s.organisationId }).whereBetween('day', [a, b]).select('product_key', 'name', db.raw('day AS last'), 'shown', 'favourited'));
  if (s.months) parts.push(productMonths(db).where({ organisation_id: s.organisationId }).whereBetween('month', [s.months.from, s.months.to]).select('product_key', 'name', db.raw('last_day AS last'), 'shown', 'favourited'));
  return db.from(db.raw(`(${parts.map(() => '?').join(' UNION ALL ')}) AS p`, parts));
}

/**
 * The products shown most and favourited most over the organisation's days
 * from..to: one pass over the products' rows, then the names (the one each
 * product was shown under last in the period) of just the products listed.
 */
export async function topProducts(db: Knex, s: Selection, limit: number): Promise<{ shown: { name: string; count: number }[]; favourited: { name: string; count: number }[] }> {
  const totalsOf = (await selectedProducts(db, s)
    .groupBy('product_key')
    .select('product_key', db.raw('sum(shown)::int AS shown'), db.raw('sum(favourited)::int AS favourited'))) as unknown as { product_key: string; shown: number; favourited: number }[];
  const top = (by: 'shown' | 'favourited') => totalsOf.filter((p) => p[by] > 0).sort((a, b) => b[by] - a[by] || (a.product_key < b.product_key ? -1 : 1)).slice(0, limit);
  const shown = top('shown');
  const favourited = top('favourited');
  const keys = [...new Set([...shown, ...favourited].map((p) => p.product_key))];
  const names = new Map<string, string>();
  if (keys.length) {
    const rows = (await selectedProducts(db, s)
      .whereIn('product_key', keys)
      .distinctOn('product_key')
      .orderBy([{ column: 'product_key' }, { column: 'last', order: 'desc' }])
      .select('product_key', 'name')) as { product_key: string; name: string }[];
    for (const r of rows) names.set(r.product_key, r.name);
  }
  return {
    shown: shown.map((p) => ({ name: names.get(p.product_key) ?? p.product_key, count: p.shown })),
    favourited: favourited.map((p) => ({ name: names.get(p.product_key) ?? p.product_key, count: p.favourited })),
  };
}

/**
 * Deletes an organisation's figures of days before `before` (YYYY-MM-DD):
 * the insights retention. The months before its month go whole; its own
 * month is rebuilt from the days left. Answers the daily rows deleted.
 */
export async function deleteFiguresBefore(db: Knex, organisationId: string, before: string): Promise<number> {
  return db.transaction(async (trx) => {
    await lockFigures(trx, organisationId);
    const a = await days(trx).where({ organisation_id: organisationId }).where('day', '<', before).del();
    const b = await products(trx).where({ organisation_id: organisationId }).where('day', '<', before).del();
    await months(trx).where({ organisation_id: organisationId }).where('month', '<', monthStart(before)).del();
    await teamMonths(trx).where({ organisation_id: organisationId }).where('month', '<', monthStart(before)).del();
    await productMonths(trx).where({ organisation_id: organisationId }).where('month', '<', monthStart(before)).del();
    await rebuildMonths(trx, organisationId, [before]);
    return a + b;
  });
}

/** Deletes all of an organisation's figures (its purge after closure). */
export async function deleteOrganisationFigures(trx: Knex.Transaction, organisationId: string): Promise<void> {
  for (const table of ['insight_days', 'insight_products', 'insight_months', 'insight_team_months', 'insight_product_months'] as const) await trx(table).where({ organisation_id: organisationId }).del();
}
