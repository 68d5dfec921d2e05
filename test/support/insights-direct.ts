/**
 * What the Insights tests (issue 20) expect, computed straight from the
 * stored calls, queue entries, cards, recordings, consents and clerks'
 * spans by PostgreSQL (its time zones and percentile_cont), never through
 * the insights job or its tables; and a check that the monthly figures are
 * the sums of their days.
 */
import type { Knex } from 'knex';

export interface Scope {
  organisationId: string;
  timeZone: string;
  from: string;
  to: string;
  clerkId?: string;
  serviceLevelSeconds: number;
  /** Days (from, to) a long period reads from the monthly figures, whose durations are kept in steps: whole seconds below 2 min, 5 s to 15 min, 30 s to 1 h, 5 min beyond. */
  stepped?: [string, string];
}

/** The figures of a scope computed straight from the calls, queue entries, cards, recordings and consents (PostgreSQL does the time zones and percentiles). */
export interface Direct {
  days: Map<string, { started: number; completed: number; unanswered: number }>;
  totals: { started: number; completed: number; unanswered: number };
  channels: Record<string, number>;
  durations: { n: number; median: number | null; p90: number | null };
  queue: { answered: number; abandoned: number; within: number; waitMedian: number | null; waitP90: number | null };
  /** `${isodow}-${hour}` → calls started. */
  hours: Map<string, number>;
  clerks: Map<string, { calls: number; completed: number; durationMedian: number | null }>;
  curation: { cards: number; withFavourite: number };
  products: { key: string; name: string; shown: number; favourited: number }[];
  recordings: { made: number; granted: number; refused: number };
}

/** The ended calls of the scope, each on the local day it started (was made, if it never started). */
function scopeSql(s: Scope): { sql: string; bindings: Knex.RawBinding[] } {
  return {
    sql: `WITH scope AS (
      SELECT c.*, (coalesce(c.started_at, c.created_at) AT TIME ZONE ?) AS local_at,
             c.started_at IS NOT NULL AS started,
             c.started_at IS NOT NULL AND c.end_reason IN ('all_left', 'ended_by_clerk') AS completed,
             ${s.stepped ? `CASE WHEN (coalesce(c.started_at, c.created_at) AT TIME ZONE ?)::date BETWEEN CAST(? AS date) AND CAST(? AS date) THEN ${stepOf('floor(extract(epoch FROM c.ended_at - c.started_at))')} ELSE` : ''}
             floor(extract(epoch FROM c.ended_at - c.started_at)) ${s.stepped ? 'END' : ''} AS seconds
        FROM calls c
       WHERE c.organisation_id = ? AND c.status = 'ended'
         AND (coalesce(c.started_at, c.created_at) AT TIME ZONE ?)::date BETWEEN CAST(? AS date) AND CAST(? AS date)
         ${s.clerkId ? 'AND c.clerk_id = ?' : ''})`,
    bindings: [s.timeZone, ...(s.stepped ? [s.timeZone, ...s.stepped] : []), s.organisationId, s.timeZone, s.from, s.to, ...(s.clerkId ? [s.clerkId] : [])],
  };
}

/** A duration's step, as the monthly figures keep it. */
function stepOf(seconds: string): string {
  return `(CASE WHEN ${seconds} < 120 THEN ${seconds} WHEN ${seconds} < 900 THEN 5 * floor(${seconds} / 5) WHEN ${seconds} < 3600 THEN 30 * floor(${seconds} / 30) ELSE 300 * floor(${seconds} / 300) END)`;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export async function directFigures(knex: Knex, s: Scope): Promise<Direct> {
  const { sql, bindings } = scopeSql(s);
  const q = async <T>(select: string, more: Knex.RawBinding[] = []): Promise<T[]> => (await knex.raw(`${sql} ${select}`, [...bindings, ...more])).rows as T[];

  const dayRows = await q<{ day: string; started: string; completed: string; unanswered: string }>(
    `SELECT local_at::date::text AS day, count(*) FILTER (WHERE started) AS started, count(*) FILTER (WHERE completed) AS completed, count(*) FILTER (WHERE NOT started) AS unanswered FROM scope GROUP BY 1`,
  );
  const days = new Map(dayRows.map((r) => [r.day, { started: Number(r.started), completed: Number(r.completed), unanswered: Number(r.unanswered) }]));
  const totals = { started: 0, completed: 0, unanswered: 0 };
  for (const d of days.values()) {
    totals.started += d.started;
    totals.completed += d.completed;
    totals.unanswered += d.unanswered;
  }
  const channels = Object.fromEntries((await q<{ channel: string; n: string }>(`SELECT channel, count(*) AS n FROM scope WHERE started GROUP BY channel`)).map((r) => [r.channel, Number(r.n)]));
  const [dur] = await q<{ n: string; median: unknown; p90: unknown }>(
    `SELECT count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median, percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90 FROM scope WHERE completed`,
  );
  const hours = new Map((await q<{ w: number; h: number; n: string }>(`SELECT extract(isodow FROM local_at)::int AS w, extract(hour FROM local_at)::int AS h, count(*) AS n FROM scope WHERE started GROUP BY 1, 2`)).map((r) => [`${r.w}-${r.h}`, Number(r.n)]));
  const clerks = new Map(
    (await q<{ clerk_id: string; calls: string; completed: string; median: unknown }>(
      `SELECT clerk_id, count(*) FILTER (WHERE started) AS calls, count(*) FILTER (WHERE completed) AS completed,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE completed) AS median
         FROM scope WHERE clerk_id IS NOT NULL GROUP BY clerk_id`,
    )).map((r) => [r.clerk_id, { calls: Number(r.calls), completed: Number(r.completed), durationMedian: num(r.median) }]),
  );
  const [cur] = await q<{ cards: string; fav: string }>(
    `SELECT (SELECT count(*) FROM call_items i JOIN scope ON scope.id = i.call_id WHERE scope.started) AS cards,
            (SELECT count(*) FROM scope WHERE started AND EXISTS (SELECT 1 FROM call_items i WHERE i.call_id = scope.id AND i.favourite)) AS fav`,
  );
  const products = (await q<{ key: string; name: string; shown: string; favourited: string }>(
    `SELECT coalesce(i.product_id::text, 'sku:' || i.sku) AS key, max(i.name) AS name, count(*) AS shown, count(*) FILTER (WHERE i.favourite) AS favourited
       FROM call_items i JOIN scope ON scope.id = i.call_id WHERE scope.started GROUP BY 1`,
  )).map((r) => ({ key: r.key, name: r.name, shown: Number(r.shown), favourited: Number(r.favourited) }));
  // Consent: the customer's final answer in each started call (granted, or declined / withdrawn).
  const [rec] = await q<{ made: string; granted: string; refused: string }>(
    `, answers AS (SELECT DISTINCT ON (rc.call_id) rc.answer FROM recording_consents rc JOIN scope ON scope.id = rc.call_id
                    WHERE scope.started AND rc.role = 'customer' ORDER BY rc.call_id, rc.answered_at DESC)
     SELECT (SELECT count(*) FROM recordings r JOIN scope ON scope.id = r.call_id WHERE scope.started) AS made,
            (SELECT count(*) FROM answers WHERE answer = 'granted') AS granted,
            (SELECT count(*) FROM answers WHERE answer <> 'granted') AS refused`,
  );

  const queueRows = (await knex.raw(
    `SELECT count(*) FILTER (WHERE status = 'accepted' ${s.clerkId ? 'AND accepted_by = ?' : ''}) AS answered,
            count(*) FILTER (WHERE status IN ('left', 'expired') ${s.clerkId ? 'AND false' : ''}) AS abandoned,
            count(*) FILTER (WHERE status = 'accepted' ${s.clerkId ? 'AND accepted_by = ?' : ''} AND floor(extract(epoch FROM accepted_at - created_at)) <= ?) AS within,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY floor(extract(epoch FROM accepted_at - created_at))) FILTER (WHERE status = 'accepted' ${s.clerkId ? 'AND accepted_by = ?' : ''}) AS median,
            percentile_cont(0.9) WITHIN GROUP (ORDER BY floor(extract(epoch FROM accepted_at - created_at))) FILTER (WHERE status = 'accepted' ${s.clerkId ? 'AND accepted_by = ?' : ''}) AS p90
       FROM queue_entries
      WHERE organisation_id = ? AND status <> 'waiting' AND (created_at AT TIME ZONE ?)::date BETWEEN CAST(? AS date) AND CAST(? AS date)`,
    [...(s.clerkId ? [s.clerkId, s.clerkId, s.serviceLevelSeconds, s.clerkId, s.clerkId] : [s.serviceLevelSeconds]), s.organisationId, s.timeZone, s.from, s.to],
  )).rows as { answered: string; abandoned: string; within: string; median: unknown; p90: unknown }[];
  const qr = queueRows[0]!;

  return {
    days,
    totals,
    channels,
    durations: { n: Number(dur!.n), median: num(dur!.median), p90: num(dur!.p90) },
    queue: { answered: Number(qr.answered), abandoned: Number(qr.abandoned), within: Number(qr.within), waitMedian: num(qr.median), waitP90: num(qr.p90) },
    hours,
    clerks,
    curation: { cards: Number(cur!.cards), withFavourite: Number(cur!.fav) },
    products,
    recordings: { made: Number(rec!.made), granted: Number(rec!.granted), refused: Number(rec!.refused) },
  };
}

/** The job folds the clerks' available time away (and deletes the spans): a copy kept for the direct computation. */
export async function keepSpans(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE IF NOT EXISTS test_kept_spans AS SELECT * FROM availability_spans WITH NO DATA`);
  await knex.raw(`INSERT INTO test_kept_spans SELECT * FROM availability_spans s WHERE NOT EXISTS (SELECT 1 FROM test_kept_spans k WHERE k.id = s.id)`);
}

/** Per clerk: the exact seconds (fractions kept) of their kept spans within the scope's local days, and in how many pieces (span × day). */
export async function directAvailability(knex: Knex, s: Scope): Promise<Map<string, { seconds: number; pieces: number }>> {
  const rows = (await knex.raw(
    `SELECT k.user_id, sum(extract(epoch FROM least(k.ended_at, d.e) - greatest(k.started_at, d.b))) AS seconds, count(*) AS pieces
       FROM test_kept_spans k
       CROSS JOIN LATERAL (SELECT (g::date)::timestamp AT TIME ZONE ? AS b, (g::date + 1)::timestamp AT TIME ZONE ? AS e
                             FROM generate_series(CAST(? AS date), CAST(? AS date), interval '1 day') g) d
      WHERE k.organisation_id = ? AND k.started_at < d.e AND k.ended_at > d.b ${s.clerkId ? 'AND k.user_id = ?' : ''}
      GROUP BY k.user_id`,
    [s.timeZone, s.timeZone, s.from, s.to, s.organisationId, ...(s.clerkId ? [s.clerkId] : [])],
  )).rows as { user_id: string; seconds: string; pieces: string }[];
  return new Map(rows.map((r) => [r.user_id, { seconds: Number(r.seconds), pieces: Number(r.pieces) }]));
}

const COUNTS = ['calls_started', 'calls_completed', 'calls_unanswered', 'via_link', 'via_queue', 'via_widget', 'via_api', 'queue_answered', 'queue_abandoned', 'cards_shown', 'calls_with_cards', 'calls_with_favourite', 'recordings', 'consents_granted', 'consents_refused', 'available_seconds'];

/**
 * Where the organisation's monthly figures (insight_months per clerk,
 * insight_team_months, insight_product_months) differ from the sums of their days, computed
 * here: counts, the durations in their steps, exact waits, weekday × hour,
 * products with the name of their last day. Empty when they agree.
 */
export async function monthDisagreements(knex: Knex, organisationId: string): Promise<string[]> {
  const check = async (perClerk: boolean): Promise<string[]> => {
    const ofMonth = `x.organisation_id = ? AND date_trunc('month', x.day) = s.m${perClerk ? ' AND x.clerk_id IS NOT DISTINCT FROM s.clerk_id' : ''}`;
    const hist = (column: string, step: boolean) => `(SELECT coalesce(jsonb_object_agg(k, n), '{}') FROM (
        SELECT ${step ? stepOf('e.key::int') + '::int' : 'e.key::int'} AS k, sum(e.value::int) AS n
          FROM insight_days x, jsonb_each_text(x.${column}) e WHERE ${ofMonth} GROUP BY 1) h)`;
    const clerk = perClerk ? 'clerk_id' : 'NULL::uuid AS clerk_id';
    const { rows } = await knex.raw(
      `WITH s AS (
         SELECT date_trunc('month', day) AS m, ${clerk}, ${COUNTS.map((c) => `sum(${c})::int AS ${c}`).join(', ')}
           FROM insight_days WHERE organisation_id = ? GROUP BY 1${perClerk ? ', 2' : ''}),
       want AS (
         SELECT s.m::date::text AS month, s.clerk_id, ${COUNTS.map((c) => `s.${c}`).join(', ')},
                ${hist('durations', true)} AS durations, ${hist('waits', false)} AS waits,
                (SELECT array_agg(coalesce((SELECT sum(x.hours[slot % 24 + 1]) FROM insight_days x WHERE ${ofMonth} AND extract(isodow FROM x.day) = slot / 24 + 1), 0)::int ORDER BY slot)
                   FROM generate_series(0, 167) slot) AS week_hours
           FROM s),
       got AS (SELECT month::text AS month, ${clerk}, ${COUNTS.join(', ')}, durations, waits, week_hours FROM ${perClerk ? 'insight_months' : 'insight_team_months'} WHERE organisation_id = ?)
       SELECT coalesce(w.month, g.month) AS month, coalesce(w.clerk_id, g.clerk_id) AS clerk_id, to_jsonb(w) AS want, to_jsonb(g) AS got
         FROM want w FULL JOIN got g ON g.month = w.month AND g.clerk_id IS NOT DISTINCT FROM w.clerk_id
        WHERE to_jsonb(w) IS DISTINCT FROM to_jsonb(g)`,
      Array<string>(5).fill(organisationId),
    );
    return (rows as { month: string; clerk_id: string | null; want: unknown; got: unknown }[]).map((r) => `${perClerk ? 'clerk' : 'team'} month ${r.month} clerk ${r.clerk_id ?? '-'}: got ${JSON.stringify(r.got)}, want ${JSON.stringify(r.want)}`);
  };
  const products = await knex.raw(
    `WITH want AS (
       SELECT date_trunc('month', day)::date::text AS month, product_key, (array_agg(name ORDER BY day DESC))[1] AS name, max(day)::text AS last_day, sum(shown)::int AS shown, sum(favourited)::int AS favourited
         FROM insight_products WHERE organisation_id = ? GROUP BY 1, 2),
     got AS (SELECT month::text AS month, product_key, name, last_day::text AS last_day, shown, favourited FROM insight_product_months WHERE organisation_id = ?)
     SELECT coalesce(w.month, g.month) AS month, coalesce(w.product_key, g.product_key) AS product_key, to_jsonb(w) AS want, to_jsonb(g) AS got
       FROM want w FULL JOIN got g ON g.month = w.month AND g.product_key = w.product_key
      WHERE to_jsonb(w) IS DISTINCT FROM to_jsonb(g)`,
    [organisationId, organisationId],
  );
  return [
    ...(await check(true)),
    ...(await check(false)),
    ...(products.rows as { month: string; product_key: string; want: unknown; got: unknown }[]).map((r) => `products ${r.month} ${r.product_key}: got ${JSON.stringify(r.got)}, want ${JSON.stringify(r.want)}`),
  ];
}
