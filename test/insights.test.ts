import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { AppError } from '../app/core/errors';
import { aggregateInsights } from '../app/insights/aggregate';
import { CHANNELS, type Figure, type InsightsReport } from '../app/insights/figures';
import { InsightsService, type Viewer } from '../app/insights/service';
import { runRetention } from '../app/retention/run';
import { seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { useTestDatabase } from './support/database';
import {
  addDays, directAvailability, directFigures, insertCall, insertQueueEntry, keepSpans, seedHistory, setInsightsSettings, setTimeZone,
  type Direct, type Scope,
} from './support/insights-seed';
import { setRetention } from './retention-seed';

/**
 * Insights (issue 20): the report, read from the daily figures the job
 * writes, checked against what the raw rows say (test/support/insights-seed.ts
 * computes that with PostgreSQL: local days, percentile_cont over whole
 * seconds); the small-numbers rule; figures outliving the calls; local days
 * and hours across summer time; and who may read whose figures.
 */

const FIRST_DAY = '2026-09-28'; // a Monday; six weeks, through the end of summer time (New York 1 November, Berlin 25 October)
const DAYS = 42;

interface World {
  org: SeededOrganisation;
  admin: SeededUser;
  clerks: SeededUser[];
  timeZone: string;
}

async function seedWorld(knex: Knex, name: string, timeZone: string, seed: number, busy = 10): Promise<World> {
  const org = await seedOrganisation(knex, name);
  await setTimeZone(knex, org.id, timeZone);
  const admin = await seedUser(knex, org, 'admin');
  const clerks = [];
  for (const n of ['Anna', 'Ben', 'Cleo', 'Dario']) clerks.push(await seedUser(knex, org, 'clerk', { name: `${n} ${name}` }));
  await seedHistory(knex, { organisationId: org.id, clerkIds: clerks.map((c) => c.id), timeZone, from: FIRST_DAY, days: DAYS, seed, busy });
  return { org, admin, clerks, timeZone };
}

const adminOf = (w: World): Viewer => ({ organisationId: w.org.id, userId: w.admin.id, role: 'admin' });
const clerkViewer = (w: World, clerk: SeededUser): Viewer => ({ organisationId: w.org.id, userId: clerk.id, role: 'clerk' });
const report = (knex: Knex, viewer: Viewer, query: Record<string, unknown>) => new InsightsService(knex).report(viewer, query);

/**
 * Compares a report with the direct computation, figure by figure, and
 * answers every disagreement (so that one run names them all). The
 * small-numbers rule as the issue states it: a figure built from 0 < n <
 * threshold calls (or queue entries) is withheld; a count is built from the
 * calls it counts; a share, an average or a percentile from the calls it is
 * taken over.
 */
function disagreements(r: InsightsReport, d: Direct, s: Scope, available: Map<string, { seconds: number; pieces: number }>): string[] {
  const k = r.threshold;
  const out: string[] = [];
  const check = (label: string, f: Figure | undefined, value: number | null, basis: number) => {
    const tooFew = basis > 0 && basis < k;
    const want = tooFew || (basis === 0 && value === null) ? null : value;
    if (!f) return void out.push(`${label}: missing (want ${want})`);
    const same = f.value === want || (f.value !== null && want !== null && Math.abs(f.value - want) <= 1e-9 * Math.max(1, Math.abs(want)));
    if (!same || f.tooFew !== tooFew) out.push(`${label}: got ${JSON.stringify({ value: f.value, tooFew: f.tooFew })}, want ${JSON.stringify({ value: want, tooFew })} (from ${basis})`);
  };
  const count = (label: string, f: Figure | undefined, n: number) => check(label, f, n, n);

  assert.equal(r.timeZone, s.timeZone);
  // The series: one point per day (week from its Monday, month from its 1st) of the period, once, in order.
  const bucketOf = (day: string): string => {
    if (r.period.bucket === 'day') return day;
    if (r.period.bucket === 'month') return `${day.slice(0, 7)}-01`;
    return addDays(day, -((new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7));
  };
  const points = new Map<string, { started: number; completed: number }>();
  for (let day = s.from; day <= s.to; day = addDays(day, 1)) {
    const p = points.get(bucketOf(day)) ?? { started: 0, completed: 0 };
    const got = d.days.get(day);
    points.set(bucketOf(day), { started: p.started + (got?.started ?? 0), completed: p.completed + (got?.completed ?? 0) });
  }
  assert.deepEqual(r.calls.map((p) => p.bucket), [...points.keys()], `one point per ${r.period.bucket}`);
  for (const p of r.calls) {
    count(`calls ${p.bucket} started`, p.started, points.get(p.bucket)?.started ?? 0);
    count(`calls ${p.bucket} completed`, p.completed, points.get(p.bucket)?.completed ?? 0);
  }
  count('totals.started', r.totals.started, d.totals.started);
  count('totals.completed', r.totals.completed, d.totals.completed);
  count('totals.unanswered', r.totals.unanswered, d.totals.unanswered);
  assert.deepEqual(r.channels.map((c) => c.channel), [...CHANNELS]);
  for (const c of r.channels) count(`channels.${c.channel}`, c.calls, d.channels[c.channel] ?? 0);

  const q = d.queue;
  const settled = q.answered + q.abandoned;
  count('queue.answered', r.queue.answered, q.answered);
  if (r.subject.kind === 'clerk') {
    // Abandoned customers belong to no clerk: not shown on a clerk's page.
    check('queue.abandoned', r.queue.abandoned, null, 0);
    check('queue.abandonment', r.queue.abandonment, null, 0);
  } else {
    count('queue.abandoned', r.queue.abandoned, q.abandoned);
    check('queue.abandonment', r.queue.abandonment, settled ? q.abandoned / settled : null, settled);
  }
  check('queue.waitMedian', r.queue.waitMedian, q.waitMedian, q.answered);
  check('queue.waitP90', r.queue.waitP90, q.waitP90, q.answered);
  check('queue.serviceLevel', r.queue.serviceLevel, settled ? q.within / settled : null, settled);

  check('durations.median', r.durations.median, d.durations.median, d.durations.n);
  check('durations.p90', r.durations.p90, d.durations.p90, d.durations.n);

  assert.equal(r.hours.length, 168, 'the heat map has every weekday × hour');
  for (const cell of r.hours) count(`hours ${cell.weekday}-${cell.hour}`, cell.calls, d.hours.get(`${cell.weekday}-${cell.hour}`) ?? 0);

  for (const c of r.clerks) {
    const want = d.clerks.get(c.clerkId) ?? { calls: 0, completed: 0, durationMedian: null };
    count(`clerk ${c.name} calls`, c.calls, want.calls);
    check(`clerk ${c.name} durationMedian`, c.durationMedian, want.durationMedian, want.completed);
    // Available time is not a call figure: shown as it is, to the second (rounding: at most a second per piece of span and day).
    const a = available.get(c.clerkId) ?? { seconds: 0, pieces: 0 };
    if (Math.abs(c.availableSeconds - a.seconds) > Math.max(1, a.pieces)) out.push(`clerk ${c.name} availableSeconds: got ${c.availableSeconds}, want ${a.seconds.toFixed(3)} (±${a.pieces})`);
  }
  const listed = new Set(r.clerks.map((c) => c.clerkId));
  for (const [id, c] of d.clerks) if (c.calls > 0 && !listed.has(id)) out.push(`clerk ${id} with ${c.calls} calls not listed`);
  for (const [id, a] of available) if (a.seconds >= 1 && !listed.has(id)) out.push(`clerk ${id} with ${a.seconds} s available not listed`);

  check('curation.cardsPerCall', r.curation.cardsPerCall, d.totals.started ? d.curation.cards / d.totals.started : null, d.totals.started);
  check('curation.favouriteShare', r.curation.favouriteShare, d.totals.started ? d.curation.withFavourite / d.totals.started : null, d.totals.started);

  if (!s.clerkId) {
    for (const by of ['shown', 'favourited'] as const) {
      const ranked = d.products.filter((p) => p[by] > 0).sort((a, b) => b[by] - a[by]);
      const got = r.products[by];
      if (got.length !== Math.min(10, ranked.length)) out.push(`products.${by}: ${got.length} listed, want ${Math.min(10, ranked.length)}`);
      for (const [i, p] of got.entries()) {
        const want = ranked.find((x) => x.name === p.name);
        if (!want) out.push(`products.${by}: ${p.name} not among the shown products`);
        else count(`products.${by} ${p.name}`, p.count, want[by]);
        if (i > 0 && want && (ranked.find((x) => x.name === got[i - 1]!.name)?.[by] ?? 0) < want[by]) out.push(`products.${by}: ${p.name} listed below a product shown less`);
      }
      const last = ranked[Math.min(10, ranked.length) - 1]?.[by] ?? 0;
      for (const p of ranked.filter((x) => x[by] > last)) if (!got.some((g) => g.name === p.name)) out.push(`products.${by}: ${p.name} (${p[by]}) missing from the top ten`);
    }
  }
  count('recordings.made', r.recordings.made, d.recordings.made);
  count('recordings.consentsGranted', r.recordings.consentsGranted, d.recordings.granted);
  count('recordings.consentsRefused', r.recordings.consentsRefused, d.recordings.refused);
  return out;
}

async function compare(knex: Knex, viewer: Viewer, query: Record<string, unknown>, scope: Omit<Scope, 'from' | 'to' | 'serviceLevelSeconds'>): Promise<{ report: InsightsReport; direct: Direct; problems: string[] }> {
  const r = await report(knex, viewer, query);
  const s: Scope = { ...scope, from: r.period.from, to: r.period.to, serviceLevelSeconds: r.serviceLevelSeconds };
  const direct = await directFigures(knex, s);
  return { report: r, direct, problems: disagreements(r, direct, s, await directAvailability(knex, s)) };
}

describe('insights: every figure against the raw rows', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let main: World;
  let other: World;

  before(async function () {
    this.timeout(120000);
    // New York (not the default zone): the organisation's own setting must be used.
    main = await seedWorld(knex(), 'Insights Bank', 'America/New_York', 20261206);
    other = await seedWorld(knex(), 'Other Bank', 'Europe/Berlin', 7);
    await keepSpans(knex());
    await aggregateInsights(knex(), { organisationId: main.org.id });
    await aggregateInsights(knex(), { organisationId: other.org.id });
  });

  it('seeds what the figures need: every channel, unanswered calls, answered and abandoned queue entries, cards, recordings, consents', async () => {
    const d = await directFigures(knex(), { organisationId: main.org.id, timeZone: main.timeZone, from: FIRST_DAY, to: addDays(FIRST_DAY, DAYS - 1), serviceLevelSeconds: 60 });
    for (const channel of CHANNELS) assert.ok((d.channels[channel] ?? 0) >= 10, channel);
    assert.ok(d.totals.unanswered >= 10 && d.totals.started - d.totals.completed >= 10);
    assert.ok(d.queue.answered >= 50 && d.queue.abandoned >= 30 && d.queue.within > 0 && d.queue.within < d.queue.answered);
    assert.ok(d.curation.cards > 100 && d.curation.withFavourite > 20 && d.products.length === 16);
    assert.ok(d.recordings.made > 20 && d.recordings.granted > 10 && d.recordings.refused > 2);
    assert.equal(Number((await knex()('calls').where({ organisation_id: main.org.id }).whereNot({ status: 'ended' }).count({ n: '*' }))[0]!.n), 1, 'an open call, not counted');
  });

  it('a month (October 2026, with the change from summer time): every figure of the team', async () => {
    const { report: r, problems } = await compare(knex(), adminOf(main), { period: 'month', date: '2026-10-15' }, { organisationId: main.org.id, timeZone: main.timeZone });
    assert.deepEqual([r.period.from, r.period.to, r.period.bucket], ['2026-10-01', '2026-10-31', 'day']);
    assert.equal(r.clerks.length, 4, 'the admin sees every clerk');
    assert.deepEqual(problems, []);
  });

  it('a custom period of four weeks across two months: every figure of the team', async () => {
    const { report: r, problems } = await compare(knex(), adminOf(main), { period: 'custom', from: '2026-10-12', to: '2026-11-08' }, { organisationId: main.org.id, timeZone: main.timeZone });
    assert.deepEqual([r.period.from, r.period.to, r.period.bucket], ['2026-10-12', '2026-11-08', 'day']);
    assert.deepEqual(problems, []);
  });

  it('the whole six weeks, and one week: every figure of the team', async () => {
    for (const query of [{ period: 'custom', from: FIRST_DAY, to: addDays(FIRST_DAY, DAYS - 1) }, { period: 'week', date: '2026-11-01' }]) {
      const { problems } = await compare(knex(), adminOf(main), query, { organisationId: main.org.id, timeZone: main.timeZone });
      assert.deepEqual(problems, [], JSON.stringify(query));
    }
  });

  it("one clerk's month: every figure of theirs (the queue entries they answered, their calls)", async () => {
    const clerk = main.clerks[1]!;
    const { report: r, problems } = await compare(knex(), adminOf(main), { period: 'month', date: '2026-10-15', subject: clerk.id }, { organisationId: main.org.id, timeZone: main.timeZone, clerkId: clerk.id });
    assert.deepEqual(r.subject, { kind: 'clerk', clerkId: clerk.id, name: clerk.name });
    assert.deepEqual(r.clerks.map((c) => c.clerkId), [clerk.id]);
    assert.deepEqual(problems, []);
  });

  it('ninety days in weeks, and the service level at another threshold', async () => {
    const { report: r, problems } = await compare(knex(), adminOf(main), { period: 'custom', from: '2026-09-30', to: '2026-12-28' }, { organisationId: main.org.id, timeZone: main.timeZone });
    assert.equal(r.period.bucket, 'week');
    assert.equal(r.calls[0]!.bucket, '2026-09-28', 'the first week from its Monday');
    assert.deepEqual(problems, []);
    await setInsightsSettings(knex(), main.org.id, { serviceLevelSeconds: 30 });
    try {
      const at30 = await compare(knex(), adminOf(main), { period: 'month', date: '2026-10-15' }, { organisationId: main.org.id, timeZone: main.timeZone });
      assert.equal(at30.report.serviceLevelSeconds, 30);
      assert.deepEqual(at30.problems, []);
    } finally {
      await setInsightsSettings(knex(), main.org.id, { serviceLevelSeconds: 60 });
    }
  });

  it("another organisation's figures are its own (the same days, its own time zone)", async () => {
    const { problems } = await compare(knex(), adminOf(other), { period: 'month', date: '2026-10-15' }, { organisationId: other.org.id, timeZone: other.timeZone });
    assert.deepEqual(problems, []);
  });
});

describe('insights: the small-numbers rule', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;

  /** `n` completed calls of `clerk` on `date` at 10:00 local (Berlin, the default zone), lasting 60 + 10·i seconds (and half a second), and `entries` queue customers answered after 10·i seconds. */
  async function day(org: SeededOrganisation, clerk: SeededUser, date: string, n: number, entries = 0): Promise<void> {
    for (let i = 0; i < n; i++) {
      const started = new Date(`${date}T08:00:00.000Z`);
      await insertCall(knex(), org.id, { clerkId: clerk.id, channel: 'link', createdAt: started, startedAt: started, endedAt: new Date(started.getTime() + (60 + 10 * i) * 1000 + 500) });
    }
    for (let i = 0; i < entries; i++) {
      const created = new Date(`${date}T09:00:00.000Z`);
      await insertQueueEntry(knex(), org.id, { status: 'accepted', channel: 'queue', createdAt: created, acceptedAt: new Date(created.getTime() + 10_000 * i + 700), acceptedBy: clerk.id });
    }
  }

  it('a day with 3 calls shows "too few" for its counts and percentiles; one with 7 shows them; a threshold of 10 withholds both', async () => {
    const org = await seedOrganisation(knex(), 'Small Numbers Bank');
    const admin = await seedUser(knex(), org, 'admin');
    const clerk = await seedUser(knex(), org, 'clerk');
    await day(org, clerk, '2026-10-14', 3, 4);
    await day(org, clerk, '2026-10-15', 7, 5);
    await aggregateInsights(knex(), { organisationId: org.id });
    const viewer: Viewer = { organisationId: org.id, userId: admin.id, role: 'admin' };

    const three = await report(knex(), viewer, { period: 'day', date: '2026-10-14' });
    assert.equal(three.threshold, 5);
    for (const f of [three.totals.started, three.totals.completed, three.calls[0]!.started, three.channels[0]!.calls, three.durations.median, three.durations.p90, three.clerks[0]!.calls, three.clerks[0]!.durationMedian, three.queue.waitMedian, three.queue.answered, three.hours.find((h) => h.weekday === 3 && h.hour === 10)!.calls]) {
      assert.equal(f.value, null);
      assert.equal(f.tooFew, true);
    }
    assert.deepEqual(three.totals.unanswered, { value: 0, basis: 0, tooFew: false }, 'none is not "too few"');
    assert.equal(three.hours.find((h) => h.weekday === 3 && h.hour === 11)!.calls.value, 0);

    const seven = await report(knex(), viewer, { period: 'day', date: '2026-10-15' });
    assert.equal(seven.totals.started.value, 7);
    assert.equal(seven.durations.median.value, 90, 'the median of 60..120 s (the half second floored)');
    assert.equal(seven.durations.p90.value, 114);
    assert.equal(seven.queue.answered.value, 5, 'five waits: shown');
    assert.equal(seven.queue.waitMedian.value, 20);

    const both = await report(knex(), viewer, { period: 'custom', from: '2026-10-14', to: '2026-10-15' });
    assert.equal(both.totals.started.value, 10);

    await setInsightsSettings(knex(), org.id, { threshold: 10 });
    const strict = await report(knex(), viewer, { period: 'day', date: '2026-10-15' });
    assert.equal(strict.threshold, 10);
    assert.deepEqual([strict.totals.started.value, strict.totals.started.tooFew, strict.durations.median.value, strict.queue.waitMedian.value], [null, true, null, null]);
    assert.equal((await report(knex(), viewer, { period: 'custom', from: '2026-10-14', to: '2026-10-15' })).totals.started.value, 10, 'ten calls: shown at a threshold of 10');
  });

  it('a withheld figure does not tell its count (in the API and CSV every field of a figure is shown)', async () => {
    const org = await seedOrganisation(knex(), 'Basis Bank');
    const admin = await seedUser(knex(), org, 'admin');
    const clerk = await seedUser(knex(), org, 'clerk');
    await day(org, clerk, '2026-10-14', 3, 2);
    await aggregateInsights(knex(), { organisationId: org.id });
    const r = await report(knex(), { organisationId: org.id, userId: admin.id, role: 'admin' }, { period: 'day', date: '2026-10-14' });
    const withheld = [r.totals.started, r.durations.median, r.queue.answered, r.queue.waitMedian, r.channels[0]!.calls];
    for (const f of withheld) assert.ok(f.tooFew && f.value === null);
    assert.deepEqual(withheld.map((f) => f.basis).filter((b) => b !== null && b > 0 && b < r.threshold), [], `a withheld figure's basis is its hidden count: ${JSON.stringify(withheld)}`);
  });

  it('recordings and consents follow the rule like every other count: one refusal among many calls is withheld', async () => {
    const org = await seedOrganisation(knex(), 'Consent Bank');
    const admin = await seedUser(knex(), org, 'admin');
    const clerk = await seedUser(knex(), org, 'clerk');
    await day(org, clerk, '2026-10-14', 8);
    const [call] = await knex()('calls').where({ organisation_id: org.id }).select('id');
    await knex()('recording_consents').insert({ organisation_id: org.id, call_id: call!.id, role: 'customer', answer: 'declined', notice_text: 'We record.', notice_version: 'v1', language: 'en', answered_at: new Date('2026-10-14T08:00:10Z') });
    await aggregateInsights(knex(), { organisationId: org.id });
    const r = await report(knex(), { organisationId: org.id, userId: admin.id, role: 'admin' }, { period: 'day', date: '2026-10-14' });
    assert.equal(r.totals.started.value, 8);
    assert.deepEqual([r.recordings.consentsRefused.value, r.recordings.consentsRefused.tooFew], [null, true], `one customer's refusal: ${JSON.stringify(r.recordings)}`);
  });
});

describe('insights: figures outlive the calls; the job counts each call once', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let dataDir: string;

  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-insights-'));
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  const queries = [{ period: 'month', date: '2026-10-01' }, { period: 'custom', from: FIRST_DAY, to: addDays(FIRST_DAY, DAYS - 1) }, { period: 'week', date: '2026-10-21' }];

  it('after retention deleted every call (and its cards, recordings and consents), the report is unchanged', async function () {
    this.timeout(120000);
    const w = await seedWorld(knex(), 'Retention Bank', 'Europe/Berlin', 99, 6);
    await aggregateInsights(knex(), { organisationId: w.org.id });
    const before = await Promise.all(queries.map((q) => report(knex(), adminOf(w), q)));
    assert.ok(before[1]!.totals.started.value! > 100);

    await setRetention(knex(), w.org.id, { recordings: 1, chat: 1, notes: 1, selections: 1, consents: 1, calls: 1 });
    await runRetention(knex(), { dataDir, organisationId: w.org.id });
    const left = await knex()('calls').where({ organisation_id: w.org.id }).select('status');
    assert.deepEqual(left.map((c) => c.status), ['active'], 'only the open call is left');
    for (const table of ['call_items', 'recordings', 'recording_consents']) assert.equal(Number((await knex()(table).where({ organisation_id: w.org.id }).count({ n: '*' }))[0]!.n), 0, table);

    const after = await Promise.all(queries.map((q) => report(knex(), adminOf(w), q)));
    assert.deepEqual(after, before);
  });

  it('retention counts calls not yet counted before deleting them', async () => {
    const w = await seedWorld(knex(), 'Uncounted Bank', 'Europe/Berlin', 5, 4);
    await keepSpans(knex());
    await setRetention(knex(), w.org.id, { recordings: 1, chat: 1, notes: 1, selections: 1, consents: 1, calls: 1 });
    const s: Scope = { organisationId: w.org.id, timeZone: w.timeZone, from: '2026-10-01', to: '2026-10-31', serviceLevelSeconds: 60 };
    const direct = await directFigures(knex(), s);
    const available = await directAvailability(knex(), s);
    await runRetention(knex(), { dataDir, organisationId: w.org.id });
    assert.equal(Number((await knex()('calls').where({ organisation_id: w.org.id, status: 'ended' }).count({ n: '*' }))[0]!.n), 0);
    const r = await report(knex(), adminOf(w), { period: 'month', date: '2026-10-01' });
    assert.deepEqual(disagreements(r, direct, s, available), []);
  });

  it('the insights retention deletes the days before its cutoff, and only those', async () => {
    const w = await seedWorld(knex(), 'Old Figures Bank', 'Europe/Berlin', 17, 4);
    const now = new Date('2026-12-06T12:00:00Z');
    await runRetention(knex(), { dataDir, organisationId: w.org.id, now });
    const kept = await report(knex(), adminOf(w), { period: 'custom', from: '2026-10-23', to: '2026-11-08' });
    await setRetention(knex(), w.org.id, { insights: 45 }); // cutoff 2026-10-22
    await runRetention(knex(), { dataDir, organisationId: w.org.id, now });
    assert.equal(Number((await knex()('insight_days').where({ organisation_id: w.org.id }).where('day', '<', '2026-10-22').count({ n: '*' }))[0]!.n), 0);
    assert.equal(Number((await knex()('insight_products').where({ organisation_id: w.org.id }).where('day', '<', '2026-10-22').count({ n: '*' }))[0]!.n), 0);
    assert.deepEqual(await report(knex(), adminOf(w), { period: 'custom', from: '2026-10-23', to: '2026-11-08' }), kept, 'the days after the cutoff are untouched');
    assert.equal((await report(knex(), adminOf(w), { period: 'custom', from: FIRST_DAY, to: '2026-10-21' })).totals.started.value, 0);
  });

  it('aggregating again changes nothing; a call ended after a run is added by the next; runs at once count each call once', async () => {
    const w = await seedWorld(knex(), 'Twice Bank', 'Europe/Berlin', 3, 6);
    await keepSpans(knex());
    await Promise.all([1, 2, 3].map(() => aggregateInsights(knex(), { organisationId: w.org.id })));
    const rows = async () => ({
      days: await knex()('insight_days').where({ organisation_id: w.org.id }).orderBy(['day', 'clerk_id']).select(knex().raw('day::text'), 'clerk_id', 'calls_started', 'calls_completed', 'calls_unanswered', 'via_link', 'via_queue', 'via_widget', 'via_api', 'durations', 'hours', 'queue_answered', 'queue_abandoned', 'waits', 'cards_shown', 'calls_with_cards', 'calls_with_favourite', 'recordings', 'consents_granted', 'consents_refused', 'available_seconds'),
      products: await knex()('insight_products').where({ organisation_id: w.org.id }).orderBy(['day', 'product_key']).select(knex().raw('day::text'), 'product_key', 'name', 'shown', 'favourited'),
    });
    const first = await rows();
    assert.deepEqual(await aggregateInsights(knex(), { organisationId: w.org.id }), { calls: 0, queueEntries: 0, availabilitySpans: 0 });
    assert.deepEqual(await rows(), first, 'a second run changes nothing');
    const month = { period: 'month', date: '2026-10-01' };
    const scope = { organisationId: w.org.id, timeZone: w.timeZone };
    assert.deepEqual((await compare(knex(), adminOf(w), month, scope)).problems, [], 'three runs at once counted each call once');

    // The open call ends; a customer waiting since 14 October is answered; both are added by the next run.
    const open = (await knex()('calls').where({ organisation_id: w.org.id, status: 'active' }).first('id', 'started_at'))!;
    await knex()('calls').where({ id: open.id }).update({ status: 'ended', ended_at: new Date(open.started_at!.getTime() + 321_900), end_reason: 'all_left' });
    await insertQueueEntry(knex(), w.org.id, { status: 'accepted', channel: 'widget', createdAt: new Date('2026-10-14T10:00:00Z'), acceptedAt: new Date('2026-10-14T10:00:42.9Z'), acceptedBy: w.clerks[0]!.id });
    assert.deepEqual(await aggregateInsights(knex(), { organisationId: w.org.id }), { calls: 1, queueEntries: 1, availabilitySpans: 0 });
    const november = { period: 'month', date: '2026-11-08' };
    assert.deepEqual((await compare(knex(), adminOf(w), november, scope)).problems, []);
    assert.deepEqual((await compare(knex(), adminOf(w), month, scope)).problems, []);
  });

  it('more calls than the job counts in one transaction: all counted, once', async function () {
    this.timeout(120000);
    const w = await seedWorld(knex(), 'Busy Bank', 'Europe/Berlin', 2468, 60);
    await keepSpans(knex());
    const result = await aggregateInsights(knex(), { organisationId: w.org.id });
    assert.ok(result.calls > 2000, `${result.calls} calls`);
    const { problems } = await compare(knex(), adminOf(w), { period: 'custom', from: FIRST_DAY, to: addDays(FIRST_DAY, DAYS - 1) }, { organisationId: w.org.id, timeZone: w.timeZone });
    assert.deepEqual(problems, []);
  });

  it('a product deleted from the catalogue between a call and the job is still one product in the top list', async () => {
    const org = await seedOrganisation(knex(), 'Catalogue Bank');
    const admin = await seedUser(knex(), org, 'admin');
    const clerk = await seedUser(knex(), org, 'clerk');
    const [product] = await knex()('products').insert({ organisation_id: org.id, sku: 'LAMP-1', name: 'Lamp', price_cents: 100, currency: 'EUR' }).returning('id');
    const showLamp = async (utc: string) => {
      for (let i = 0; i < 5; i++) {
        const at = new Date(utc);
        const callId = await insertCall(knex(), org.id, { clerkId: clerk.id, channel: 'link', createdAt: at, startedAt: at, endedAt: new Date(at.getTime() + 60_000) });
        await knex()('call_items').insert({ organisation_id: org.id, call_id: callId, product_id: product!.id, sku: 'LAMP-1', name: 'Lamp', price_cents: 100, currency: 'EUR', position: 1, favourite: i < 3 });
      }
    };
    await showLamp('2026-10-14T08:00:00Z');
    await aggregateInsights(knex(), { organisationId: org.id });
    await showLamp('2026-10-15T08:00:00Z');
    await knex()('products').where({ id: product!.id }).del(); // the cards keep their copy; their product_id becomes null
    await aggregateInsights(knex(), { organisationId: org.id });
    const r = await report(knex(), { organisationId: org.id, userId: admin.id, role: 'admin' }, { period: 'month', date: '2026-10-01' });
    assert.deepEqual(r.products.shown.map((p) => [p.name, p.count.value]), [['Lamp', 10]], JSON.stringify(r.products));
  });

  it('the job run for every organisation counts every organisation, their available time included', async () => {
    const a = await seedWorld(knex(), 'All A Bank', 'Europe/Berlin', 41, 3);
    const b = await seedWorld(knex(), 'All B Bank', 'America/New_York', 42, 3);
    await keepSpans(knex());
    await aggregateInsights(knex());
    for (const w of [a, b]) {
      const { problems } = await compare(knex(), adminOf(w), { period: 'month', date: '2026-10-01' }, { organisationId: w.org.id, timeZone: w.timeZone });
      assert.deepEqual(problems, [], w.org.name);
    }
  });
});

describe('insights: local days and hours (time zones, summer time)', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;

  /** Three completed calls starting at `utc` (the threshold is 3: each spot is shown). */
  async function three(org: SeededOrganisation, clerk: SeededUser, utc: string): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const at = new Date(utc);
      await insertCall(knex(), org.id, { clerkId: clerk.id, channel: 'link', createdAt: new Date(at.getTime() - 60_000), startedAt: at, endedAt: new Date(at.getTime() + 600_000) });
    }
  }

  const started = (r: InsightsReport) => Object.fromEntries(r.calls.filter((p) => p.started.value).map((p) => [p.bucket, p.started.value]));
  const cells = (r: InsightsReport) => Object.fromEntries(r.hours.filter((h) => h.calls.value).map((h) => [`${h.weekday}-${h.hour}`, h.calls.value]));

  it('Berlin: a call at 23:30 or 00:30 local counts on its local day and hour, in summer, in winter and in the weeks the clocks change', async () => {
    const org = await seedOrganisation(knex(), 'Berlin Bank');
    await setTimeZone(knex(), org.id, 'Europe/Berlin');
    await setInsightsSettings(knex(), org.id, { threshold: 3 });
    const admin = await seedUser(knex(), org, 'admin');
    const clerk = await seedUser(knex(), org, 'clerk');
    await three(org, clerk, '2026-10-23T21:30:00Z'); // Fri 23 Oct 23:30 CEST
    await three(org, clerk, '2026-10-23T22:30:00Z'); // Sat 24 Oct 00:30 CEST (UTC: Friday)
    await three(org, clerk, '2026-10-25T00:30:00Z'); // Sun 25 Oct 02:30 CEST, the first of the two
    await three(org, clerk, '2026-10-25T01:30:00Z'); // Sun 25 Oct 02:30 CET, the second
    await three(org, clerk, '2026-10-25T22:30:00Z'); // Sun 25 Oct 23:30 CET
    await three(org, clerk, '2026-10-25T23:30:00Z'); // Mon 26 Oct 00:30 CET (UTC: Sunday)
    await three(org, clerk, '2026-03-28T22:30:00Z'); // Sat 28 Mar 23:30 CET
    await three(org, clerk, '2026-03-28T23:30:00Z'); // Sun 29 Mar 00:30 CET (UTC: Saturday)
    await three(org, clerk, '2026-03-29T01:30:00Z'); // Sun 29 Mar 03:30 CEST (02:00-03:00 does not exist)
    await three(org, clerk, '2026-03-29T21:30:00Z'); // Sun 29 Mar 23:30 CEST
    await three(org, clerk, '2026-03-29T22:30:00Z'); // Mon 30 Mar 00:30 CEST (UTC: Sunday)
    // Customers who entered the queue at 23:50 on Saturday 24 October and were answered after midnight; some who left at 23:55 local.
    for (let i = 0; i < 3; i++) {
      await insertQueueEntry(knex(), org.id, { status: 'accepted', channel: 'queue', createdAt: new Date('2026-10-24T21:50:00Z'), acceptedAt: new Date('2026-10-24T22:10:00Z'), acceptedBy: clerk.id });
      await insertQueueEntry(knex(), org.id, { status: 'left', channel: 'widget', createdAt: new Date('2026-10-24T21:55:00Z'), endedAt: new Date('2026-10-24T22:05:00Z') });
    }
    await aggregateInsights(knex(), { organisationId: org.id });
    const viewer: Viewer = { organisationId: org.id, userId: admin.id, role: 'admin' };

    const autumn = await report(knex(), viewer, { period: 'week', date: '2026-10-21' });
    assert.deepEqual([autumn.period.from, autumn.period.to], ['2026-10-19', '2026-10-25']);
    assert.deepEqual(started(autumn), { '2026-10-23': 3, '2026-10-24': 3, '2026-10-25': 9 });
    assert.deepEqual(cells(autumn), { '5-23': 3, '6-0': 3, '7-2': 6, '7-23': 3 }, 'the local hour; the hour 02:00 of the long night twice');
    const queueOn = async (date: string) => {
      const r = await report(knex(), viewer, { period: 'day', date });
      return [r.queue.answered.value, r.queue.abandoned.value, r.queue.waitMedian.value];
    };
    assert.deepEqual(await queueOn('2026-10-24'), [3, 3, 1200], 'queue entries count on the local day they were entered');
    assert.deepEqual(await queueOn('2026-10-25'), [0, 0, null]);
    const monday = await report(knex(), viewer, { period: 'day', date: '2026-10-26' });
    assert.deepEqual([started(monday), cells(monday)], [{ '2026-10-26': 3 }, { '1-0': 3 }]);

    const spring = await report(knex(), viewer, { period: 'week', date: '2026-03-25' });
    assert.deepEqual(started(spring), { '2026-03-28': 3, '2026-03-29': 9 });
    assert.deepEqual(cells(spring), { '6-23': 3, '7-0': 3, '7-3': 3, '7-23': 3 }, 'no call in the hour that does not exist');
    assert.deepEqual(started(await report(knex(), viewer, { period: 'day', date: '2026-03-30' })), { '2026-03-30': 3 });
  });

  it('New York: a call at 23:30 local (the next day in UTC) counts on its local day and hour', async () => {
    const org = await seedOrganisation(knex(), 'Hudson Bank');
    await setTimeZone(knex(), org.id, 'America/New_York');
    await setInsightsSettings(knex(), org.id, { threshold: 3 });
    const admin = await seedUser(knex(), org, 'admin');
    const clerk = await seedUser(knex(), org, 'clerk');
    await three(org, clerk, '2026-10-15T03:30:00Z'); // Wed 14 Oct 23:30 EDT
    await three(org, clerk, '2026-11-02T04:30:00Z'); // Sun 1 Nov 23:30 EST, the day the clocks went back
    await aggregateInsights(knex(), { organisationId: org.id });
    const viewer: Viewer = { organisationId: org.id, userId: admin.id, role: 'admin' };
    const r = await report(knex(), viewer, { period: 'custom', from: '2026-10-14', to: '2026-11-02' });
    assert.deepEqual(started(r), { '2026-10-14': 3, '2026-11-01': 3 });
    assert.deepEqual(cells(r), { '3-23': 3, '7-23': 3 });
  });

  it("available time is split at local midnight, the 25-hour day included", async () => {
    const org = await seedOrganisation(knex(), 'Shift Bank');
    await setTimeZone(knex(), org.id, 'Europe/Berlin');
    const admin = await seedUser(knex(), org, 'admin');
    const [a, b, c] = [await seedUser(knex(), org, 'clerk', { name: 'A' }), await seedUser(knex(), org, 'clerk', { name: 'B' }), await seedUser(knex(), org, 'clerk', { name: 'C' })];
    await knex()('availability_spans').insert([
      { organisation_id: org.id, user_id: a.id, started_at: new Date('2026-10-24T22:00:00Z'), ended_at: new Date('2026-10-25T23:00:00Z') }, // all of Sunday 25 October: 25 hours
      { organisation_id: org.id, user_id: b.id, started_at: new Date('2026-10-23T21:00:00Z'), ended_at: new Date('2026-10-23T23:00:00Z') }, // 23:00-01:00 CEST
      { organisation_id: org.id, user_id: c.id, started_at: new Date('2026-10-23T21:42:17Z'), ended_at: new Date('2026-10-23T22:20:00Z') }, // 23:42:17-00:20:00 CEST
    ]);
    await aggregateInsights(knex(), { organisationId: org.id });
    const viewer: Viewer = { organisationId: org.id, userId: admin.id, role: 'admin' };
    const seconds = async (date: string) => Object.fromEntries((await report(knex(), viewer, { period: 'day', date })).clerks.map((x) => [x.name, x.availableSeconds]));
    assert.deepEqual(await seconds('2026-10-23'), { B: 3600, C: 1063 });
    assert.deepEqual(await seconds('2026-10-24'), { B: 3600, C: 1200 });
    assert.deepEqual(await seconds('2026-10-25'), { A: 90000 });
  });
});

describe("insights: clerks' available time", () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;

  it('a clerk available now counts up to each run, without counting any second twice', async () => {
    const org = await seedOrganisation(knex(), 'Available Bank');
    const admin = await seedUser(knex(), org, 'admin');
    const clerk = await seedUser(knex(), org, 'clerk', { name: 'Ava' });
    await knex()('users').where({ id: clerk.id }).update({ availability: 'available', available_since: new Date('2026-11-02T08:00:00Z') });
    const viewer: Viewer = { organisationId: org.id, userId: admin.id, role: 'admin' };
    const seconds = async () => (await report(knex(), viewer, { period: 'day', date: '2026-11-02' })).clerks.map((c) => [c.name, c.availableSeconds]);
    await aggregateInsights(knex(), { organisationId: org.id, now: new Date('2026-11-02T10:00:00Z') });
    assert.deepEqual(await seconds(), [['Ava', 7200]]);
    await aggregateInsights(knex(), { organisationId: org.id, now: new Date('2026-11-02T11:00:00Z') });
    await aggregateInsights(knex(), { organisationId: org.id, now: new Date('2026-11-02T11:00:00Z') });
    assert.deepEqual(await seconds(), [['Ava', 10800]]);
  });
});

describe('insights: who may read whose figures', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let w: World;
  let stranger: World;

  before(async function () {
    this.timeout(120000);
    w = await seedWorld(knex(), 'Access Bank', 'Europe/Berlin', 11, 6);
    stranger = await seedWorld(knex(), 'Stranger Bank', 'Europe/Berlin', 12, 6);
    await aggregateInsights(knex(), { organisationId: w.org.id });
    await aggregateInsights(knex(), { organisationId: stranger.org.id });
  });

  const month = { period: 'month', date: '2026-10-01' };
  const rejects = (promise: Promise<unknown>, status: number, code: string) =>
    assert.rejects(promise, (err: unknown) => err instanceof AppError && err.status === status && err.code === code);

  it("a clerk sees their own figures and the team's, not another clerk's", async () => {
    const [anna, ben] = w.clerks as [SeededUser, SeededUser];
    await setInsightsSettings(knex(), w.org.id, { clerksSeeEachOther: false });
    const own = await report(knex(), clerkViewer(w, anna), month);
    assert.deepEqual(own.subject, { kind: 'clerk', clerkId: anna.id, name: anna.name }, 'by default, their own');
    assert.deepEqual(own.clerks.map((c) => c.clerkId), [anna.id]);
    await rejects(report(knex(), clerkViewer(w, anna), { ...month, subject: ben.id }), 403, 'insights_not_yours');
    const team = await report(knex(), clerkViewer(w, anna), { ...month, subject: 'team' });
    assert.deepEqual(team.subject, { kind: 'organisation' });
    assert.deepEqual(team.clerks.map((c) => c.clerkId), [anna.id], "the team's figures list only their own row");
    assert.deepEqual(team.totals, (await report(knex(), adminOf(w), month)).totals, "the team's totals are the admin's");
  });

  it('where the admin allows it, clerks see each other; an admin always sees every clerk', async () => {
    const [anna, ben] = w.clerks as [SeededUser, SeededUser];
    const asAdmin = await report(knex(), adminOf(w), { ...month, subject: ben.id });
    assert.deepEqual(asAdmin.subject, { kind: 'clerk', clerkId: ben.id, name: ben.name });
    assert.deepEqual((await report(knex(), adminOf(w), month)).clerks.map((c) => c.clerkId).sort(), w.clerks.map((c) => c.id).sort());
    const api = await report(knex(), { organisationId: w.org.id, userId: null, role: 'api' }, month);
    assert.equal(api.clerks.length, 4);

    await setInsightsSettings(knex(), w.org.id, { clerksSeeEachOther: true });
    try {
      assert.deepEqual(await report(knex(), clerkViewer(w, anna), { ...month, subject: ben.id }), asAdmin);
      assert.equal((await report(knex(), clerkViewer(w, anna), { ...month, subject: 'team' })).clerks.length, 4);
    } finally {
      await setInsightsSettings(knex(), w.org.id, { clerksSeeEachOther: false });
    }
  });

  it("never another organisation's calls or clerks", async () => {
    const s: Scope = { organisationId: w.org.id, timeZone: w.timeZone, from: '2026-10-01', to: '2026-10-31', serviceLevelSeconds: 60 };
    const mine = await directFigures(knex(), s);
    const theirs = await directFigures(knex(), { ...s, organisationId: stranger.org.id });
    assert.notEqual(mine.totals.started, theirs.totals.started);
    const r = await report(knex(), adminOf(w), month);
    assert.equal(r.totals.started.value, mine.totals.started);
    assert.ok(r.clerks.every((c) => w.clerks.some((x) => x.id === c.clerkId)));
    const names = new Set([...r.products.shown, ...r.products.favourited].map((p) => p.name));
    assert.ok(names.size > 0);
    // A clerk of another organisation is no subject here, for an admin nor for a clerk allowed to see the others.
    await rejects(report(knex(), adminOf(w), { ...month, subject: stranger.clerks[0]!.id }), 400, 'validation_failed');
    await setInsightsSettings(knex(), w.org.id, { clerksSeeEachOther: true });
    try {
      await rejects(report(knex(), clerkViewer(w, w.clerks[0]!), { ...month, subject: stranger.clerks[0]!.id }), 400, 'validation_failed');
    } finally {
      await setInsightsSettings(knex(), w.org.id, { clerksSeeEachOther: false });
    }
  });
});
