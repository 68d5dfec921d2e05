import assert from 'node:assert/strict';
import { AppError } from '../app/core/errors';
import { aggregateInsights } from '../app/insights/aggregate';
import type { InsightsReport } from '../app/insights/figures';
import type { Viewer } from '../app/insights/service';
import { seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { useTestDatabase } from './support/database';
import { directFigures, type Scope } from './support/insights-direct';
import { insertCall, insertQueueEntry, setInsightsSettings, setTimeZone } from './support/insights-seed';
import { adminOf, clerkViewer, report, seedWorld, type World } from './support/insights-world';

/**
 * Insights (issue 20): local days and hours across time zones and summer
 * time, the clerks' available time, and who may read whose figures.
 */

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
