import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { aggregateInsights } from '../app/insights/aggregate';
import { CHANNELS } from '../app/insights/figures';
import type { Viewer } from '../app/insights/service';
import { runRetention } from '../app/retention/run';
import { seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { useTestDatabase } from './support/database';
import { directAvailability, directFigures, keepSpans, monthDisagreements, type Scope } from './support/insights-direct';
import { addDays, insertCall, insertQueueEntry, setInsightsSettings } from './support/insights-seed';
import { adminOf, compare, DAYS, disagreements, FIRST_DAY, report, seedWorld, type World } from './support/insights-world';
import { setRetention } from './retention-seed';

/**
 * Insights (issue 20): the report, read from the daily figures the job
 * writes, checked against what the raw rows say (test/support/insights-seed.ts
 * computes that with PostgreSQL: local days, percentile_cont over whole
 * seconds); the small-numbers rule; figures outliving the calls; local days
 * and hours across summer time; and who may read whose figures.
 */

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

  it('ninety days in weeks (whole months read from the monthly figures), and the service level at another threshold', async () => {
    // October and November, the whole months inside, are read from the monthly figures: their durations in steps.
    const { report: r, problems } = await compare(knex(), adminOf(main), { period: 'custom', from: '2026-09-30', to: '2026-12-28' }, { organisationId: main.org.id, timeZone: main.timeZone, stepped: ['2026-10-01', '2026-11-30'] });
    assert.equal(r.period.bucket, 'week');
    assert.equal(r.calls[0]!.bucket, '2026-09-28', 'the first week from its Monday');
    assert.deepEqual(problems, []);
    const clerk = main.clerks[2]!;
    const mine = await compare(knex(), adminOf(main), { period: 'custom', from: '2026-09-30', to: '2026-12-28', subject: clerk.id }, { organisationId: main.org.id, timeZone: main.timeZone, clerkId: clerk.id, stepped: ['2026-10-01', '2026-11-30'] });
    assert.deepEqual(mine.problems, [], "one clerk's ninety days");
    assert.deepEqual(await monthDisagreements(knex(), main.org.id), [], 'each month is the sum of its days');
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
    // The monthly figures follow: September's are gone, October's are the sum of the days left.
    assert.deepEqual(await monthDisagreements(knex(), w.org.id), []);
    assert.equal(Number((await knex()('insight_months').where({ organisation_id: w.org.id }).where('month', '<', '2026-10-01').count({ n: '*' }))[0]!.n), 0);
    const long = await report(knex(), adminOf(w), { period: 'custom', from: FIRST_DAY, to: '2026-12-31' });
    assert.equal(long.period.bucket, 'week');
    const left = await report(knex(), adminOf(w), { period: 'custom', from: '2026-10-22', to: '2026-11-08' });
    assert.ok(left.totals.started.value! > 50);
    assert.deepEqual([long.totals, long.channels, long.recordings, long.queue.answered], [left.totals, left.channels, left.recordings, left.queue.answered], 'a long period (October and November read as months) counts the days left');
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
    assert.deepEqual(await monthDisagreements(knex(), w.org.id), [], 'the months of the late call and queue entry were rebuilt');
  });

  it('more calls than the job counts in one transaction: all counted, once', async function () {
    this.timeout(120000);
    const w = await seedWorld(knex(), 'Busy Bank', 'Europe/Berlin', 2468, 60);
    await keepSpans(knex());
    const result = await aggregateInsights(knex(), { organisationId: w.org.id });
    assert.ok(result.calls > 2000, `${result.calls} calls`);
    const { problems } = await compare(knex(), adminOf(w), { period: 'custom', from: FIRST_DAY, to: addDays(FIRST_DAY, DAYS - 1) }, { organisationId: w.org.id, timeZone: w.timeZone });
    assert.deepEqual(problems, []);
    assert.deepEqual(await monthDisagreements(knex(), w.org.id), []);
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
