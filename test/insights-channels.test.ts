import assert from 'node:assert/strict';
import request from 'supertest';
import { ApiKeyService } from '../app/api-keys/service';
import { aggregateInsights, splitByLocalDay } from '../app/insights/aggregate';
import { callerFor, csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';


/**
 * Insights (issue 20): how customers arrived is recorded on each call as it
 * is made, through the product's own paths (a clerk's call link, the REST
 * API, the queue page, the website widget's queue page), and a clerk's
 * available time is kept until the insights job counts it.
 */
describe('insights: channels and available time, recorded where they happen', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let app: ReturnType<typeof buildApp>;
  let org: SeededOrganisation;
  let clerk: Browser;
  let clerkId: string;
  let apiKey: string;

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(db.current.knex, 'Channel Bank');
    const user = await seedUser(db.current.knex, org, 'clerk');
    clerkId = user.id;
    clerk = await signIn(app, user);
    const admin = await seedUser(db.current.knex, org, 'admin');
    apiKey = (await new ApiKeyService(db.current.knex, callerFor(admin, org)).create({ name: 'CRM', scopes: ['calls:write'], own_key: undefined })).key;
  });

  const channelOf = async (callId: string) => (await db.current.knex('calls').where({ id: callId }).first('channel'))!.channel;

  async function enterAndAccept(path: string): Promise<string> {
    const agent = request.agent(app);
    const page = await agent.get(path).expect(200);
    await agent.post(`/q/${org.slug}`).type('form').send({ _csrf: csrfFrom(page.text), ...(/name="via" value="widget"/.test(page.text) ? { via: 'widget' } : {}) }).expect(303);
    const accepted = await clerk.agent.post('/queue/accept').type('form').send({ _csrf: clerk.csrf }).expect(303);
    return /^\/calls\/([0-9a-f-]{36})/.exec(accepted.headers.location ?? '')![1]!;
  }

  it('a clerk\'s call link, an API call link, the queue page and the widget each mark the call', async () => {
    const link = await clerk.agent.post('/calls').type('form').send({ _csrf: clerk.csrf }).expect(303);
    assert.equal(await channelOf(/\/calls\/([0-9a-f-]{36})/.exec(link.headers.location ?? '')![1]!), 'link');

    const api = await request(app).post('/api/v1/call-links').set('Authorization', `Bearer ${apiKey}`).send({ clerkId }).expect(201);
    assert.equal(await channelOf(api.body.call.id), 'api');

    await clerk.agent.post('/availability').type('form').send({ _csrf: clerk.csrf, availability: 'available' }).expect(303);
    assert.equal(await channelOf(await enterAndAccept(`/q/${org.slug}`)), 'queue');

    // The widget opens the queue page with ?via=widget (widget.json says so); the page's form carries it.
    const widget = await request(app).get(`/q/${org.slug}/widget.json`).expect(200);
    assert.equal(widget.body.url, `/q/${org.slug}?via=widget`);
    assert.equal(await channelOf(await enterAndAccept(widget.body.url)), 'widget');
  });

  it('anything else sent as `via` counts as the queue page', async () => {
    const agent = request.agent(app);
    const page = await agent.get(`/q/${org.slug}`).expect(200);
    await agent.post(`/q/${org.slug}`).type('form').send({ _csrf: csrfFrom(page.text), via: 'api' }).expect(303);
    const entry = await db.current.knex('queue_entries').where({ organisation_id: org.id, status: 'waiting' }).orderBy('created_at', 'desc').first('channel');
    assert.equal(entry!.channel, 'queue');
    await db.current.knex('queue_entries').where({ organisation_id: org.id, status: 'waiting' }).update({ status: 'left' });
  });

  it('a clerk\'s available time is kept until the job counts it, on the local days it fell on', async () => {
    const knex = db.current.knex;
    await clerk.agent.post('/availability').type('form').send({ _csrf: clerk.csrf, availability: 'away' }).expect(303);
    // Available from 22:00 to 02:00 Berlin time (winter: UTC+1) two days ago: two hours on each local day.
    const from = new Date(Date.UTC(2026, 0, 14, 21, 0, 0));
    const to = new Date(Date.UTC(2026, 0, 15, 1, 0, 0));
    await knex('availability_spans').del();
    await knex('availability_spans').insert({ organisation_id: org.id, user_id: clerkId, started_at: from, ended_at: to });
    await aggregateInsights(knex, { organisationId: org.id });
    const rows = (await knex('insight_days').where({ organisation_id: org.id, clerk_id: clerkId }).whereIn('day', ['2026-01-14', '2026-01-15']).orderBy('day').select(knex.raw('day::text AS day'), 'available_seconds')) as unknown as { day: string; available_seconds: number }[];
    assert.deepEqual(rows.map((r) => [r.day, r.available_seconds]), [['2026-01-14', 7200], ['2026-01-15', 7200]]);
    assert.equal((await knex('availability_spans').count<{ n: string }[]>({ n: '*' }))[0]!.n, '0', 'the spans are gone once counted');
  });

  it('a clerk available now has the time up to the run counted, and again from there on', async () => {
    const knex = db.current.knex;
    await clerk.agent.post('/availability').type('form').send({ _csrf: clerk.csrf, availability: 'available' }).expect(303);
    const since = (await knex('users').where({ id: clerkId }).first('available_since'))!.available_since!;
    const total = async () => Number((await knex('insight_days').where({ organisation_id: org.id, clerk_id: clerkId }).sum({ s: 'available_seconds' }))[0]!.s);
    const before = await total();
    await aggregateInsights(knex, { organisationId: org.id, now: new Date(since.getTime() + 600_000) });
    assert.equal(await total(), before + 600);
    assert.equal((await knex('users').where({ id: clerkId }).first('available_since'))!.available_since!.getTime(), since.getTime() + 600_000);
  });

  it('splits time at local midnight, also across a change of daylight saving time', () => {
    // Europe/Berlin moves from UTC+1 to UTC+2 at 01:00 UTC on 29 March 2026: that local day has 23 hours.
    const split = splitByLocalDay(new Date(Date.UTC(2026, 2, 28, 22, 0, 0)), new Date(Date.UTC(2026, 2, 29, 23, 0, 0)), 'Europe/Berlin');
    assert.deepEqual([...split.entries()], [['2026-03-28', 3600], ['2026-03-29', 23 * 3600], ['2026-03-30', 3600]]);
  });
});
