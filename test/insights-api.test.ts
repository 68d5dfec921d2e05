import assert from 'node:assert/strict';
import type { Express } from 'express';
import type { Knex } from 'knex';
import request from 'supertest';
import { z } from 'zod';
import { openApiDocument } from '../app/api/openapi';
import { aggregateInsights } from '../app/insights/aggregate';
import { CHARTS } from '../app/insights/figures';
import { InsightsService } from '../app/insights/service';
import { sha256 } from '../app/security/tokens';
import { csrfFrom, seedOrganisation, seedUser, signIn, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { eventually } from './support/wait';
import { insertCall, insertQueueEntry, localInstant, setTimeZone } from './support/insights-seed';

const ZONE = 'Europe/Berlin';
const SECOND = 1000;
/** The month every figure below is read for, and the report the service gives for it. */
const MARCH = { period: 'month', date: '2026-03-15' };


/** A validator for one of the OpenAPI document's component schemas (its $refs resolved within the document). */
function schemaOf(name: string): z.ZodType {
  const defs = JSON.parse(JSON.stringify(openApiDocument().components.schemas).replaceAll('#/components/schemas/', '#/$defs/'));
  return z.fromJSONSchema({ $defs: defs, $ref: `#/$defs/${name}` } as never);
}

/** A call of `clerk` that started at a local time of `day` and lasted `seconds`, with its queue entry when it came through the queue or the widget. */
async function seedCall(knex: Knex, org: { id: string }, c: { clerk: SeededUser; day: string; localSeconds: number; seconds: number; channel: 'link' | 'queue' | 'widget' | 'api'; endReason: string; waited?: number; cards?: { sku: string; name: string; favourite?: boolean }[] }): Promise<string> {
  const startedAt = localInstant(c.day, c.localSeconds * SECOND, ZONE);
  const createdAt = new Date(startedAt.getTime() - 5 * SECOND);
  const id = await insertCall(knex, org.id, { clerkId: c.clerk.id, channel: c.channel, createdAt, startedAt, endedAt: new Date(startedAt.getTime() + c.seconds * SECOND + 400), endReason: c.endReason });
  if (c.waited !== undefined) {
    await insertQueueEntry(knex, org.id, { status: 'accepted', channel: c.channel === 'widget' ? 'widget' : 'queue', createdAt: new Date(createdAt.getTime() - c.waited * SECOND), acceptedAt: createdAt, acceptedBy: c.clerk.id, callId: id });
  }
  for (const [i, card] of (c.cards ?? []).entries()) {
    await knex('call_items').insert({ organisation_id: org.id, call_id: id, sku: card.sku, name: card.name, price_cents: 100, currency: 'EUR', position: i + 1, favourite: card.favourite ?? false, shown_at: startedAt });
  }
  return id;
}

describe('Insights in the REST API (issue 20)', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let app: Express;
  let org: SeededOrganisation;
  let other: SeededOrganisation;
  let anna: SeededUser;
  let ben: SeededUser;
  let cleo: SeededUser;
  /** Created on the API keys page with the scope insights:read only. */
  let insightsKey: string;
  let insightsKeyId: string;
  let callsKey: string;
  let foreignKey: string;

  const api = (key: string, path: string, query: Record<string, string | string[]> = {}) => request(app).get(path).query(query).set('Authorization', `Bearer ${key}`);
  const serviceReport = async (organisationId: string, query: Record<string, unknown>) =>
    JSON.parse(JSON.stringify(await new InsightsService(knex()).report({ organisationId, userId: null, role: 'api' }, query)));

  /** Creates a key through the admin page, with the scopes ticked there; answers the key shown once. */
  async function createKey(admin: SeededUser, name: string, scopes: string[]): Promise<string> {
    const { agent } = await signIn(app, admin);
    const page = await agent.get('/admin/api-keys').expect(200);
    const created = await agent.post('/admin/api-keys').type('form').send({ _csrf: csrfFrom(page.text), name, scopes }).expect(201);
    const key = /id="issued-key" type="text" value="([^"]+)"/.exec(created.text)?.[1];
    assert.ok(key, 'the key is shown once');
    return key;
  }

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(knex(), 'Insights Furniture');
    other = await seedOrganisation(knex(), 'Insights Elsewhere');
    await setTimeZone(knex(), org.id, ZONE);
    await setTimeZone(knex(), other.id, ZONE);
    const admin = await seedUser(knex(), org, 'admin');
    anna = await seedUser(knex(), org, 'clerk', { name: 'Anna Analyse' });
    ben = await seedUser(knex(), org, 'clerk', { name: 'Ben Berater' });
    const otherAdmin = await seedUser(knex(), other, 'admin');
    cleo = await seedUser(knex(), other, 'clerk', { name: 'Cleo Fremd' });

    // Anna: 8 calls on Tuesday 10 March around 10:00, 1 to 8 minutes; 5 by call link (the first five with the sofa, one favourited), 3 from the queue.
    for (let i = 0; i < 8; i++) {
      const fromQueue = i >= 5;
      await seedCall(knex(), org, {
        clerk: anna, day: '2026-03-10', localSeconds: 10 * 3600 + i * 300, seconds: 60 * (i + 1), channel: fromQueue ? 'queue' : 'link', endReason: 'ended_by_clerk',
        waited: fromQueue ? [10, 30, 90][i - 5] : undefined,
        cards: i < 5 ? [{ sku: 'SOFA-1', name: 'Sofa Alba', favourite: i === 0 }] : [],
      });
    }
    // Ben: 3 calls from the widget on Wednesday 11 March around 15:00 (too few for his own figures), two with the lamp.
    for (let i = 0; i < 3; i++) {
      await seedCall(knex(), org, { clerk: ben, day: '2026-03-11', localSeconds: 15 * 3600 + i * 600, seconds: 100 * (i + 1), channel: 'widget', endReason: 'all_left', waited: [20, 40, 200][i], cards: i < 2 ? [{ sku: 'LAMP-1', name: 'Lamp Clara' }] : [] });
    }
    // One customer who never came (unanswered), two who left the queue.
    const noon = localInstant('2026-03-12', 12 * 3600 * SECOND, ZONE);
    await insertCall(knex(), org.id, { clerkId: anna.id, channel: 'link', createdAt: noon, startedAt: null, endedAt: new Date(noon.getTime() + 3600 * SECOND), endReason: 'expired' });
    for (const minutes of [2, 7]) await insertQueueEntry(knex(), org.id, { status: 'left', channel: 'queue', createdAt: noon, endedAt: new Date(noon.getTime() + minutes * 60 * SECOND) });
    // 00:30 on 1 April in Berlin is still 31 March in UTC: it counts in April.
    await seedCall(knex(), org, { clerk: anna, day: '2026-04-01', localSeconds: 1800, seconds: 600, channel: 'link', endReason: 'ended_by_clerk' });

    // The other organisation: 20 calls through the API on the same Tuesday, all with a product of its own.
    for (let i = 0; i < 20; i++) {
      await seedCall(knex(), other, { clerk: cleo, day: '2026-03-10', localSeconds: 9 * 3600 + i * 60, seconds: 1000 + i, channel: 'api', endReason: 'ended_by_clerk', cards: [{ sku: 'SECRET-1', name: 'Geheimes Produkt' }] });
    }

    await aggregateInsights(knex(), { organisationId: org.id });
    await aggregateInsights(knex(), { organisationId: other.id });

    insightsKey = await createKey(admin, 'Reporting', ['insights:read']);
    insightsKeyId = (await knex()('api_keys').where({ key_hash: sha256(insightsKey) }).first('id'))!.id;
    callsKey = await createKey(admin, 'Calls only', ['calls:read', 'calls:write', 'recordings:read']);
    foreignKey = await createKey(otherAdmin, 'Elsewhere reporting', ['insights:read']);
  });

  it('offers the scope on the API keys page, in English and German', async () => {
    const { agent } = await signIn(app, await seedUser(knex(), org, 'admin'));
    const en = await agent.get('/admin/api-keys').set('Accept-Language', 'en').expect(200);
    assert.match(en.text, /<input type="checkbox" id="f-scope-insights-read" name="scopes" value="insights:read">/);
    assert.match(en.text, /<code>insights:read<\/code> read the Insights figures/);
    assert.match(en.text, /<code title="read the Insights figures">insights:read<\/code>/, 'the Reporting key is listed with its scope');
    const de = await agent.get('/admin/api-keys').set('Accept-Language', 'de').expect(200);
    assert.match(de.text, /<code>insights:read<\/code> Insights-Kennzahlen lesen/);
  });

  it('refuses a key without insights:read with 403 api_scope_missing (audited with the IP), and no key with 401', async () => {
    for (const path of ['/api/v1/insights', '/api/v1/insights/calls']) {
      const res = await api(callsKey, path).expect(403);
      assert.deepEqual(Object.keys(res.body), ['error']);
      assert.equal(res.body.error.code, 'api_scope_missing');
      assert.match(res.body.error.message, /insights:read/);
      assert.equal((await request(app).get(path).expect(401)).body.error.code, 'api_key_missing');
    }
    const refused = await eventually(() => knex()('audit_events').where({ action: 'api.refused', organisation_id: org.id }).whereRaw(`details->>'scope' = 'insights:read'`).first());
    assert.equal(refused.details.reason, 'scope');
    assert.match(refused.ip ?? '', /127\.0\.0\.1/);
    // The insights key may read nothing else.
    assert.equal((await api(insightsKey, '/api/v1/calls').expect(403)).body.error.code, 'api_scope_missing');
  });

  it('answers the whole report: what the service computes, matching the seeded calls, as the OpenAPI schema says', async () => {
    const res = await api(insightsKey, '/api/v1/insights', MARCH).expect(200).expect('Content-Type', /json/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.deepEqual(res.body, await serviceReport(org.id, { ...MARCH, subject: 'team' }));
    const schema = schemaOf('InsightsReport');
    const parsed = schema.safeParse(res.body);
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues.slice(0, 3)));
    // The check can fail: a field more, or a figure that is not one.
    assert.ok(!schema.safeParse({ ...res.body, extra: 1 }).success);
    assert.ok(!schema.safeParse({ ...res.body, queue: { ...res.body.queue, waitMedian: 35 } }).success);

    const r = res.body;
    assert.deepEqual(r.period, { kind: 'month', from: '2026-03-01', to: '2026-03-31', bucket: 'day', previous: { from: '2026-02-01', to: '2026-02-28' }, next: { from: '2026-04-01', to: '2026-04-30' } });
    assert.equal(r.timeZone, ZONE);
    assert.deepEqual(r.subject, { kind: 'organisation' });
    assert.equal(r.calls.length, 31);
    // Directly from the calls: started in March, local time (the call at 00:30 on 1 April is April's).
    const direct = (await knex().raw(
      `SELECT count(*)::int AS started,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY floor(extract(epoch FROM ended_at - started_at))) AS median,
              percentile_cont(0.9) WITHIN GROUP (ORDER BY floor(extract(epoch FROM ended_at - started_at))) AS p90
         FROM calls WHERE organisation_id = ? AND started_at IS NOT NULL AND (started_at AT TIME ZONE ?)::date BETWEEN '2026-03-01' AND '2026-03-31'`,
      [org.id, ZONE],
    )).rows[0];
    assert.equal(direct.started, 11);
    assert.deepEqual(r.totals.started, { value: 11, basis: 11, tooFew: false });
    assert.deepEqual(r.totals.completed, { value: 11, basis: 11, tooFew: false });
    assert.deepEqual(r.durations.median, { value: direct.median, basis: 11, tooFew: false });
    assert.deepEqual(r.durations.p90, { value: direct.p90, basis: 11, tooFew: false });
    assert.deepEqual(r.calls.find((p: { bucket: string }) => p.bucket === '2026-03-10').started, { value: 8, basis: 8, tooFew: false });
    assert.deepEqual(Object.fromEntries(r.channels.map((c: { channel: string; calls: { value: number | null } }) => [c.channel, c.calls.value])), { link: 5, queue: null, widget: null, api: 0 });
    // Queue: 6 answered (waits 10, 20, 30, 40, 90, 200 s), 2 left; 4 of 8 within the 60 s service level.
    assert.deepEqual(r.queue.answered, { value: 6, basis: 6, tooFew: false });
    assert.deepEqual(r.queue.waitMedian, { value: 35, basis: 6, tooFew: false });
    assert.deepEqual(r.queue.serviceLevel, { value: 0.5, basis: 8, tooFew: false });
    assert.deepEqual(r.queue.abandonment, { value: 0.25, basis: 8, tooFew: false });
    assert.deepEqual(r.hours.find((h: { weekday: number; hour: number }) => h.weekday === 2 && h.hour === 10).calls, { value: 8, basis: 8, tooFew: false });
    assert.deepEqual(r.curation.cardsPerCall, { value: 7 / 11, basis: 11, tooFew: false });
    assert.deepEqual(r.products.shown[0], { name: 'Sofa Alba', count: { value: 5, basis: 5, tooFew: false } });
  });

  it('withholds figures built from fewer than 5 calls: value and basis null, tooFew true', async () => {
    const r = (await api(insightsKey, '/api/v1/insights', MARCH).expect(200)).body;
    // Withheld: neither the figure nor its basis (which would tell the count).
    const withheld = { value: null, basis: null, tooFew: true };
    assert.deepEqual(r.threshold, 5);
    assert.deepEqual(r.totals.unanswered, withheld, 'one customer who never came');
    assert.deepEqual(r.queue.abandoned, withheld);
    assert.deepEqual(r.channels.find((c: { channel: string }) => c.channel === 'widget').calls, withheld);
    assert.deepEqual(r.hours.find((h: { weekday: number; hour: number }) => h.weekday === 3 && h.hour === 15).calls, withheld);
    assert.deepEqual(r.products.shown[1], { name: 'Lamp Clara', count: withheld });
    assert.deepEqual(r.products.favourited, [{ name: 'Sofa Alba', count: withheld }]);
    const byName = Object.fromEntries(r.clerks.map((c: { name: string }) => [c.name, c]));
    assert.deepEqual(byName['Ben Berater'].calls, withheld);
    assert.deepEqual(byName['Ben Berater'].durationMedian, withheld);
    assert.deepEqual(byName['Anna Analyse'].calls, { value: 8, basis: 8, tooFew: false });
    assert.deepEqual(byName['Anna Analyse'].durationMedian, { value: 270, basis: 8, tooFew: false });

    // One clerk's figures (clerk_id): Ben's whole month is too few to show.
    const one = (await api(insightsKey, '/api/v1/insights', { ...MARCH, clerk_id: ben.id }).expect(200)).body;
    assert.deepEqual(one, await serviceReport(org.id, { ...MARCH, subject: ben.id }));
    assert.deepEqual(one.subject, { kind: 'clerk', clerkId: ben.id, name: 'Ben Berater' });
    assert.deepEqual(one.totals.started, withheld);
    assert.deepEqual(one.durations.median, withheld);
    // April: the one call at 00:30 local on the 1st.
    const april = (await api(insightsKey, '/api/v1/insights', { period: 'month', date: '2026-04-01' }).expect(200)).body;
    assert.deepEqual(april.totals.started, withheld);
  });

  it('answers one chart with its period, time zone, threshold and subject; each the same as in the report', async () => {
    const report = (await api(insightsKey, '/api/v1/insights', MARCH).expect(200)).body;
    const chartSchema = schemaOf('InsightsChart');
    for (const chart of CHARTS) {
      const res = await api(insightsKey, `/api/v1/insights/${chart}`, MARCH).expect(200);
      const extras = chart === 'calls' ? ['totals'] : [];
      assert.deepEqual(Object.keys(res.body).sort(), ['period', 'timeZone', 'threshold', 'serviceLevelSeconds', 'subject', chart, ...extras].sort(), chart);
      for (const key of Object.keys(res.body)) assert.deepEqual(res.body[key], report[key], `${chart}: ${key}`);
      const parsed = chartSchema.safeParse(res.body);
      assert.ok(parsed.success, `${chart}: ${JSON.stringify(parsed.error?.issues.slice(0, 3))}`);
      assert.ok(!chartSchema.safeParse({ ...res.body, [chart === 'hours' ? 'clerks' : 'hours']: report.hours }).success, `${chart}: one chart only`);
    }
    // A custom year: weekly points.
    const year = await api(insightsKey, '/api/v1/insights/calls', { period: 'custom', from: '2025-04-01', to: '2026-03-31' }).expect(200);
    assert.equal(year.body.period.bucket, 'week');
    assert.deepEqual(year.body.totals.started, { value: 11, basis: 11, tooFew: false });
  });

  it('answers an unknown chart with 404 chart_not_found in JSON', async () => {
    for (const chart of ['nope', 'totals', 'period', '__proto__']) {
      const res = await api(insightsKey, `/api/v1/insights/${chart}`, MARCH).expect(404).expect('Content-Type', /json/);
      assert.deepEqual(Object.keys(res.body), ['error']);
      assert.equal(res.body.error.code, 'chart_not_found', chart);
      assert.deepEqual(res.body.error.details.charts, [...CHARTS]);
    }
  });

  it('refuses a bad query with 400 validation_failed naming the field, and answers nothing else', async () => {
    const cases: [Record<string, string | string[]>, { field: string; code: string }][] = [
      [{ period: 'year' }, { field: 'period', code: 'invalid_period' }],
      [{ period: ['month', 'day'] }, { field: 'period', code: 'invalid' }],
      [{ period: 'day', date: '2026-02-30' }, { field: 'date', code: 'invalid_date' }],
      [{ period: 'custom', to: '2026-03-31' }, { field: 'from', code: 'date_required' }],
      [{ period: 'custom', from: '2026-03-31', to: '2026-03-01' }, { field: 'to', code: 'before_from' }],
      [{ period: 'custom', from: '2020-01-01', to: '2026-03-31' }, { field: 'to', code: 'period_too_long' }],
      [{ clerk_id: 'team' }, { field: 'clerk_id', code: 'invalid' }],
      [{ clerk_id: cleo.id }, { field: 'clerk_id', code: 'unknown_clerk' }],
      [{ subject: ben.id }, { field: '_', code: 'invalid' }],
    ];
    for (const path of ['/api/v1/insights', '/api/v1/insights/queue']) {
      for (const [query, problem] of cases) {
        const res = await api(insightsKey, path, query).expect(400).expect('Content-Type', /json/);
        assert.deepEqual(Object.keys(res.body), ['error'], JSON.stringify(query));
        assert.equal(res.body.error.code, 'validation_failed');
        assert.deepEqual(res.body.error.details.fields, [problem], JSON.stringify(query));
      }
    }
  });

  it('never shows another organisation\'s figures: each key reads its own', async () => {
    const ours = await api(insightsKey, '/api/v1/insights', MARCH).expect(200);
    for (const foreign of [cleo.id, 'Cleo Fremd', 'Geheimes Produkt']) assert.ok(!ours.text.includes(foreign), foreign);
    assert.equal(ours.body.channels.find((c: { channel: string }) => c.channel === 'api').calls.value, 0);
    assert.deepEqual(ours.body.clerks.map((c: { name: string }) => c.name), ['Anna Analyse', 'Ben Berater']);

    const theirs = await api(foreignKey, '/api/v1/insights', MARCH).expect(200);
    assert.deepEqual(theirs.body, await serviceReport(other.id, { ...MARCH, subject: 'team' }));
    assert.deepEqual(theirs.body.totals.started, { value: 20, basis: 20, tooFew: false });
    assert.equal(theirs.body.channels.find((c: { channel: string }) => c.channel === 'api').calls.value, 20);
    assert.deepEqual(theirs.body.clerks.map((c: { clerkId: string }) => c.clerkId), [cleo.id]);
    assert.deepEqual(theirs.body.products.shown.map((p: { name: string }) => p.name), ['Geheimes Produkt']);
    for (const ourName of [anna.id, ben.id, 'Anna Analyse', 'Sofa Alba']) assert.ok(!theirs.text.includes(ourName), ourName);
    // Another organisation's clerk is unknown here, as one that never existed.
    const probe = await api(foreignKey, '/api/v1/insights/clerks', { ...MARCH, clerk_id: anna.id }).expect(400);
    assert.deepEqual(probe.body.error.details.fields, [{ field: 'clerk_id', code: 'unknown_clerk' }]);
  });

  it('logs each API call with its key, status and the client\'s IP, as the other API calls', async () => {
    // Told apart from the earlier tests' requests (logged once their responses were done) by the user agent.
    await api(insightsKey, '/api/v1/insights/durations', MARCH).set('User-Agent', 'reporting-tool/1.0').expect(200);
    await api(insightsKey, '/api/v1/insights', { period: 'year' }).set('User-Agent', 'reporting-tool/1.0').expect(400);
    const rows = await eventually(async () => {
      const found = await knex()('api_request_log').where({ user_agent: 'reporting-tool/1.0' }).orderBy('id');
      return found.length >= 2 ? found : undefined;
    });
    assert.deepEqual(rows.map((r) => [r.method, r.path, r.status]).sort(), [['GET', '/api/v1/insights', 400], ['GET', '/api/v1/insights/durations', 200]]);
    for (const row of rows) {
      assert.equal(row.organisation_id, org.id);
      assert.equal(row.api_key_id, insightsKeyId);
      assert.equal(row.key_prefix, insightsKey.slice(0, 12));
      assert.match(row.ip ?? '', /127\.0\.0\.1/);
    }
    assert.ok(!rows.some((r) => r.path.includes('?')), 'the query is not logged');
  });

  it('documents both endpoints and the scope in the OpenAPI document', () => {
    const doc = openApiDocument();
    for (const path of ['/api/v1/insights', '/api/v1/insights/{chart}'] as const) {
      const get = doc.paths[path].get;
      assert.deepEqual(get.security, [{ apiKey: ['insights:read'] }]);
      assert.match(get.summary, /scope insights:read/);
      assert.deepEqual(get.parameters.filter((p) => p.in === 'query').map((p) => p.name), ['period', 'date', 'from', 'to', 'clerk_id']);
    }
    assert.deepEqual((doc.paths['/api/v1/insights/{chart}'].get.parameters[0]!.schema as { enum?: string[] }).enum, [...CHARTS]);
    assert.match(doc.components.securitySchemes.apiKey.description, /insights:read/);
  });
});
