import assert from 'node:assert/strict';
import request from 'supertest';
import { dateFormat, localDate, localMidnight, wallTimeToIso } from '../app/i18n/dates';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

describe('dates in the organisation\'s time zone and the reader\'s language', () => {
  const db = useTestDatabase();
  let app: ReturnType<typeof buildApp>;
  let org: SeededOrganisation;
  let admin: Browser;

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(db.current.knex, 'Zone Bank');
    admin = await signIn(app, await seedUser(db.current.knex, org, 'admin'));
  });

  it('formats in the zone and language given; reads a typed time in the zone', () => {
    const at = new Date('2026-03-01T23:30:00Z');
    assert.equal(dateFormat('de', 'Europe/Berlin').dateTime(at), '02.03.2026, 00:30');
    assert.equal(dateFormat('en', 'Europe/Berlin').dateTime(at), '2 Mar 2026, 00:30');
    assert.equal(dateFormat('en', 'America/New_York').time(at), '18:30');
    assert.equal(dateFormat('de', 'Europe/Berlin').dateTime(null), '');
    assert.equal(wallTimeToIso('2026-03-02T00:30', 'Europe/Berlin'), '2026-03-01T23:30:00.000Z');
    assert.equal(wallTimeToIso('2026-07-02T00:30', 'Europe/Berlin'), '2026-07-01T22:30:00.000Z', 'summer time');
    assert.equal(wallTimeToIso('2026-03-01T23:30Z', 'Europe/Berlin'), '2026-03-01T23:30Z', 'a time with its offset stays');
  });

  it('the local day of a moment, and the moment a local day begins, across the clock changes', () => {
    assert.equal(localDate(new Date('2026-03-01T23:30:00Z'), 'Europe/Berlin'), '2026-03-02');
    assert.equal(localDate(Date.parse('2026-03-01T23:30:00Z'), 'America/New_York'), '2026-03-01');
    assert.equal(new Date(localMidnight('2026-07-01', 'Europe/Berlin')).toISOString(), '2026-06-30T22:00:00.000Z');
    assert.equal(new Date(localMidnight('2026-10-25', 'Europe/Berlin')).toISOString(), '2026-10-24T22:00:00.000Z');
    assert.equal(new Date(localMidnight('2026-10-26', 'Europe/Berlin')).toISOString(), '2026-10-25T23:00:00.000Z');
    // Santiago skips 00:00 when its summer time begins (6 September 2026): that day begins at 01:00 local.
    assert.equal(new Date(localMidnight('2026-09-06', 'America/Santiago')).toISOString(), '2026-09-06T04:00:00.000Z');
  });

  it('the time zone is a select of the known zones; an unknown zone is refused at the field', async () => {
    const page = await admin.agent.get('/admin/organisation').expect(200);
    assert.match(page.text, /<select id="f-timezone" name="timezone"/);
    assert.match(page.text, /<option value="Europe\/Berlin" selected>/, 'the default, shown as chosen');
    assert.match(page.text, /<option value="America\/New_York">/);
    const before = await db.current.knex('organisations').where({ id: org.id }).first('settings');
    const refused = await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: admin.csrf, timezone: 'Mars/Base' }).expect(400);
    assert.match(refused.text, /<select id="f-timezone" name="timezone" aria-invalid="true" aria-describedby="f-timezone-error"/);
    assert.match(refused.text, /id="f-timezone-error"/);
    assert.match(refused.text, /Please choose a valid time zone/);
    assert.match(refused.text, /<option value="Mars\/Base" selected>/, 'what was sent is kept');
    assert.deepEqual(await db.current.knex('organisations').where({ id: org.id }).first('settings'), before, 'nothing changed');
    await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: admin.csrf, timezone: 'America/New_York' }).expect(303);
    const saved = await admin.agent.get('/admin/organisation').expect(200);
    assert.match(saved.text, /<option value="America\/New_York" selected>/, 'kept without opening hours too');
  });

  it('a clerk reading German sees a call scheduled at 23:30 UTC as 00:30 on the next day in Berlin', async () => {
    await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: admin.csrf, timezone: 'Europe/Berlin' }).expect(303);
    const clerkUser = await seedUser(db.current.knex, org, 'clerk');
    await db.current.knex('users').where({ id: clerkUser.id }).update({ language: 'de' });
    const clerk = await signIn(app, clerkUser);
    // Typed into the form as the organisation's wall time.
    const res = await clerk.agent.post('/calls').type('form').send({ _csrf: clerk.csrf, reference: 'ZONE-1', scheduled_at: '2026-03-02T00:30' }).expect(303);
    const id = /^\/calls\/([0-9a-f-]{36})#/.exec(res.headers.location ?? '')![1]!;
    const row = await db.current.knex('calls').where({ id }).first();
    assert.equal(row!.scheduled_at!.toISOString(), '2026-03-01T23:30:00.000Z');
    const dashboard = await clerk.agent.get('/dashboard').expect(200);
    assert.match(dashboard.text, /<td>02\.03\.2026, 00:30<\/td>/);
    const token = /#customer=([A-Za-z0-9_-]{43})$/.exec(res.headers.location ?? '')![1]!;
    const customer = await request(app).get(`/join/${token}`).expect(200);
    assert.match(customer.text, /<meta name="vclerk-time-zone" content="Europe\/Berlin">/, "the customer page's chat times in the organisation's zone");

    await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: admin.csrf, timezone: 'Asia/Tokyo' }).expect(303);
    const tokyo = await clerk.agent.get('/dashboard').expect(200);
    assert.match(tokyo.text, /<td>02\.03\.2026, 08:30<\/td>/, 'follows the organisation\'s setting');
  });

  it('an admin page (the user list) uses the same formatter', async () => {
    await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: admin.csrf, timezone: 'Europe/Berlin' }).expect(303);
    const someone = await seedUser(db.current.knex, org, 'clerk');
    await db.current.knex('users').where({ id: someone.id }).update({ last_login_at: new Date('2026-03-01T23:30:00Z') });
    const list = await admin.agent.get('/admin/users').expect(200);
    assert.match(list.text, /2 Mar 2026, 00:30/);
  });
});
