/**
 * The Insights tests' world (issue 20): an organisation with four clerks and
 * six weeks of seeded history, and the comparison of a report with the
 * direct computation (test/support/insights-direct.ts), figure by figure.
 */
import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { CHANNELS, type Figure, type InsightsReport } from '../../app/insights/figures';
import { InsightsService, type Viewer } from '../../app/insights/service';
import { seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from './accounts';
import { directAvailability, directFigures, type Direct, type Scope } from './insights-direct';
import { addDays, seedHistory, setTimeZone } from './insights-seed';

export const FIRST_DAY = '2026-09-28'; // a Monday; six weeks, through the end of summer time (New York 1 November, Berlin 25 October)
export const DAYS = 42;

export interface World {
  org: SeededOrganisation;
  admin: SeededUser;
  clerks: SeededUser[];
  timeZone: string;
}

export async function seedWorld(knex: Knex, name: string, timeZone: string, seed: number, busy = 10): Promise<World> {
  const org = await seedOrganisation(knex, name);
  await setTimeZone(knex, org.id, timeZone);
  const admin = await seedUser(knex, org, 'admin');
  const clerks = [];
  for (const n of ['Anna', 'Ben', 'Cleo', 'Dario']) clerks.push(await seedUser(knex, org, 'clerk', { name: `${n} ${name}` }));
  await seedHistory(knex, { organisationId: org.id, clerkIds: clerks.map((c) => c.id), timeZone, from: FIRST_DAY, days: DAYS, seed, busy });
  return { org, admin, clerks, timeZone };
}

export const adminOf = (w: World): Viewer => ({ organisationId: w.org.id, userId: w.admin.id, role: 'admin' });
export const clerkViewer = (w: World, clerk: SeededUser): Viewer => ({ organisationId: w.org.id, userId: clerk.id, role: 'clerk' });
export const report = (knex: Knex, viewer: Viewer, query: Record<string, unknown>) => new InsightsService(knex).report(viewer, query);

/**
 * Compares a report with the direct computation, figure by figure, and
 * answers every disagreement (so that one run names them all). The
 * small-numbers rule as the issue states it: a figure built from 0 < n <
 * threshold calls (or queue entries) is withheld; a count is built from the
 * calls it counts; a share, an average or a percentile from the calls it is
 * taken over.
 */
export function disagreements(r: InsightsReport, d: Direct, s: Scope, available: Map<string, { seconds: number; pieces: number }>): string[] {
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

export async function compare(knex: Knex, viewer: Viewer, query: Record<string, unknown>, scope: Omit<Scope, 'from' | 'to' | 'serviceLevelSeconds'>): Promise<{ report: InsightsReport; direct: Direct; problems: string[] }> {
  const r = await report(knex, viewer, query);
  const s: Scope = { ...scope, from: r.period.from, to: r.period.to, serviceLevelSeconds: r.serviceLevelSeconds };
  const direct = await directFigures(knex, s);
  return { report: r, direct, problems: disagreements(r, direct, s, await directAvailability(knex, s)) };
}
