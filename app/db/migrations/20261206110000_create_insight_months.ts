import type { Knex } from 'knex';

/**
 * Insights over long periods (issue 20): the daily figures rolled up per
 * calendar month, so that a report of a year or three reads a row per month
 * and clerk instead of one per day.
 *
 * - `insight_months`: the sums of `insight_days` per organisation, month
 *   (its first day) and clerk. `week_hours` holds calls started per ISO
 *   weekday and hour (168 slots, Monday 00 first). `waits` are exact, like
 *   the days'. `durations` are kept in steps (`insight_duration_step`):
 *   whole seconds below 2 minutes, 5 s to 15 minutes, 30 s to an hour,
 *   5 minutes beyond; so that a month has a few hundred keys at most.
 * - `insight_team_months`: the same per organisation and month, all clerks
 *   together (what a report of the whole team reads).
 * - `insight_product_months`: the sums of `insight_products` per month and
 *   product, with the name of the product's last day in the month.
 * - `insight_rebuild_months(organisation, months)`: replaces the given
 *   months' rows by the sums of their days. It is the only writer of these
 *   tables (the insights job after adding days, the insights retention
 *   after deleting some), so a month is always the sum of its days. The
 *   caller holds the organisation's insights lock.
 *
 * The months of existing figures are built here.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE FUNCTION insight_duration_step(seconds integer) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
      SELECT CASE WHEN seconds < 120 THEN seconds
                  WHEN seconds < 900 THEN seconds - seconds % 5
                  WHEN seconds < 3600 THEN seconds - seconds % 30
                  ELSE seconds - seconds % 300 END
    $$`);

  await knex.schema.createTable('insight_months', (t) => {
    t.bigIncrements('id');
    t.uuid('organisation_id').notNullable().references('id').inTable('organisations').onDelete('CASCADE');
    t.date('month').notNullable();
    t.uuid('clerk_id');
    for (const c of COUNTS) t.integer(c).notNullable().defaultTo(0);
    t.jsonb('durations').notNullable().defaultTo('{}');
    t.jsonb('waits').notNullable().defaultTo('{}');
    t.specificType('week_hours', 'integer[]').notNullable().defaultTo(knex.raw('array_fill(0, ARRAY[168])'));
  });
  await knex.raw(`CREATE UNIQUE INDEX insight_months_key ON insight_months (organisation_id, month, coalesce(clerk_id, '00000000-0000-0000-0000-000000000000'::uuid))`);

  await knex.schema.createTable('insight_team_months', (t) => {
    t.bigIncrements('id');
    t.uuid('organisation_id').notNullable().references('id').inTable('organisations').onDelete('CASCADE');
    t.date('month').notNullable();
    for (const c of COUNTS) t.integer(c).notNullable().defaultTo(0);
    t.jsonb('durations').notNullable().defaultTo('{}');
    t.jsonb('waits').notNullable().defaultTo('{}');
    t.specificType('week_hours', 'integer[]').notNullable().defaultTo(knex.raw('array_fill(0, ARRAY[168])'));
    t.unique(['organisation_id', 'month']);
  });

  await knex.schema.createTable('insight_product_months', (t) => {
    t.bigIncrements('id');
    t.uuid('organisation_id').notNullable().references('id').inTable('organisations').onDelete('CASCADE');
    t.date('month').notNullable();
    t.text('product_key').notNullable();
    t.text('name').notNullable();
    t.date('last_day').notNullable();
    t.integer('shown').notNullable().defaultTo(0);
    t.integer('favourited').notNullable().defaultTo(0);
    t.unique(['organisation_id', 'month', 'product_key']);
  });

  const within = (alias: string) => `${alias}.organisation_id = org AND ${alias}.day >= (SELECT min(x) FROM unnest(months) x) AND ${alias}.day < (SELECT max(x) FROM unnest(months) x) + 31
                 AND date_trunc('month', ${alias}.day)::date = ANY(months)`;
  // The months' days are read once; their histograms and hours unfolded once, summed per clerk and month, then over the clerks for the team.
  const ZERO = `'00000000-0000-0000-0000-000000000000'::uuid`;
  const rebuild = `
      WITH d AS MATERIALIZED (
             SELECT date_trunc('month', d.day)::date AS month, d.day, coalesce(d.clerk_id, ${ZERO}) AS clerk, ${COUNTS.map((c) => `d.${c}`).join(', ')}, d.durations, d.waits, d.hours
               FROM insight_days d WHERE ${within('d')}),
           counts AS (SELECT month, clerk, ${COUNTS.map((c) => `sum(${c})::int AS ${c}`).join(', ')} FROM d GROUP BY 1, 2),
           durations AS (SELECT month, clerk, insight_duration_step(e.key::int) AS k, sum(e.value::int) AS n FROM d, jsonb_each_text(d.durations) e GROUP BY 1, 2, 3),
           waits AS (SELECT month, clerk, e.key::int AS k, sum(e.value::int) AS n FROM d, jsonb_each_text(d.waits) e GROUP BY 1, 2, 3),
           hours AS (SELECT month, clerk, (extract(isodow FROM d.day)::int - 1) * 24 + h.i::int - 1 AS slot, sum(h.n)::int AS n
                       FROM d, unnest(d.hours) WITH ORDINALITY AS h(n, i) GROUP BY 1, 2, 3),
           slots AS (SELECT c.month, c.clerk, s.slot, coalesce(h.n, 0) AS n FROM counts c CROSS JOIN generate_series(0, 167) AS s(slot)
                       LEFT JOIN hours h ON h.month = c.month AND h.clerk = c.clerk AND h.slot = s.slot),
           per_clerk AS (
             INSERT INTO insight_months (organisation_id, month, clerk_id, ${COUNTS.join(', ')}, durations, waits, week_hours)
             SELECT org, c.month, nullif(c.clerk, ${ZERO}), ${COUNTS.map((x) => `c.${x}`).join(', ')}, coalesce(du.h, '{}'), coalesce(w.h, '{}'), wh.a
               FROM counts c
               LEFT JOIN (SELECT month, clerk, jsonb_object_agg(k, n) AS h FROM durations GROUP BY 1, 2) du ON du.month = c.month AND du.clerk = c.clerk
               LEFT JOIN (SELECT month, clerk, jsonb_object_agg(k, n) AS h FROM waits GROUP BY 1, 2) w ON w.month = c.month AND w.clerk = c.clerk
               JOIN (SELECT month, clerk, array_agg(n ORDER BY slot) AS a FROM slots GROUP BY 1, 2) wh ON wh.month = c.month AND wh.clerk = c.clerk)
      INSERT INTO insight_team_months (organisation_id, month, ${COUNTS.join(', ')}, durations, waits, week_hours)
      SELECT org, c.month, ${COUNTS.map((x) => `c.${x}`).join(', ')}, coalesce(du.h, '{}'), coalesce(w.h, '{}'), wh.a
        FROM (SELECT month, ${COUNTS.map((x) => `sum(${x})::int AS ${x}`).join(', ')} FROM counts GROUP BY 1) c
        LEFT JOIN (SELECT month, jsonb_object_agg(k, n) AS h FROM (SELECT month, k, sum(n) AS n FROM durations GROUP BY 1, 2) x GROUP BY 1) du ON du.month = c.month
        LEFT JOIN (SELECT month, jsonb_object_agg(k, n) AS h FROM (SELECT month, k, sum(n) AS n FROM waits GROUP BY 1, 2) x GROUP BY 1) w ON w.month = c.month
        JOIN (SELECT month, array_agg(n ORDER BY slot) AS a FROM (SELECT month, slot, sum(n)::int AS n FROM slots GROUP BY 1, 2) x GROUP BY 1) wh ON wh.month = c.month;`;
  await knex.raw(`CREATE FUNCTION insight_rebuild_months(org uuid, months date[]) RETURNS void
    LANGUAGE sql VOLATILE AS $$
      DELETE FROM insight_months WHERE organisation_id = org AND month = ANY(months);
      DELETE FROM insight_team_months WHERE organisation_id = org AND month = ANY(months);
      DELETE FROM insight_product_months WHERE organisation_id = org AND month = ANY(months);
      ${rebuild}
      INSERT INTO insight_product_months (organisation_id, month, product_key, name, last_day, shown, favourited)
      SELECT org, date_trunc('month', p.day)::date, p.product_key, (array_agg(p.name ORDER BY p.day DESC))[1], max(p.day), sum(p.shown), sum(p.favourited)
        FROM insight_products p
       WHERE ${within('p')}
       GROUP BY 2, 3;
    $$`);

  await knex.raw(`SELECT insight_rebuild_months(organisation_id, array_agg(DISTINCT date_trunc('month', day)::date))
                    FROM insight_days GROUP BY organisation_id`);
}

const COUNTS = ['calls_started', 'calls_completed', 'calls_unanswered', 'via_link', 'via_queue', 'via_widget', 'via_api', 'queue_answered', 'queue_abandoned', 'cards_shown', 'calls_with_cards', 'calls_with_favourite', 'recordings', 'consents_granted', 'consents_refused', 'available_seconds'];

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION insight_rebuild_months(uuid, date[])');
  await knex.schema.dropTable('insight_product_months');
  await knex.schema.dropTable('insight_team_months');
  await knex.schema.dropTable('insight_months');
  await knex.raw('DROP FUNCTION insight_duration_step(integer)');
}
