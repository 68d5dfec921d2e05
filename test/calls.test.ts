import assert from 'node:assert/strict';
import request from 'supertest';
import { loggableUrl } from '../app/http/request-context';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

describe('call pages', () => {
  const db = useTestDatabase();
  let app: ReturnType<typeof buildApp>;
  let clerk: SeededUser;
  let clerkBrowser: Browser;
  let otherClerk: Browser;
  let foreignClerk: Browser;

  before(async () => {
    app = buildApp(db.current);
    const org = await seedOrganisation(db.current.knex, 'Calls Bank');
    const other = await seedOrganisation(db.current.knex, 'Calls Insurer');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    clerkBrowser = await signIn(app, clerk);
    otherClerk = await signIn(app, await seedUser(db.current.knex, org, 'clerk'));
    foreignClerk = await signIn(app, await seedUser(db.current.knex, other, 'clerk'));
  });

  async function startCall(): Promise<{ id: string; token: string }> {
    const res = await clerkBrowser.agent.post('/calls').type('form').send({ _csrf: clerkBrowser.csrf }).expect(303);
    const match = /^\/calls\/([0-9a-f-]{36})#customer=([A-Za-z0-9_-]{43})$/.exec(res.headers.location ?? '');
    assert.ok(match, `redirect to the call page with the token in the fragment: ${res.headers.location}`);
    return { id: match[1]!, token: match[2]! };
  }

  it('a clerk starts a call: stored waiting, token only as a hash, audited', async () => {
    const { id, token } = await startCall();
    const row = await db.current.knex('calls').where({ id }).first();
    assert.equal(row!.status, 'waiting');
    assert.equal(row!.clerk_id, clerk.id);
    assert.notEqual(row!.guest_token_hash, token);
    assert.equal(row!.guest_token_hash!.length, 64);
    assert.ok(row!.guest_token_expires_at! > new Date());
    assert.equal((await db.current.knex('audit_events').where({ action: 'call.started', target_id: id })).length, 1);
    const page = await clerkBrowser.agent.get(`/calls/${id}`).expect(200);
    assert.match(page.text, new RegExp(`data-call-id="${id}"`));
    assert.doesNotMatch(page.text, new RegExp(token), 'the page never contains the token; it comes from the fragment');
  });

  it('another clerk, or a clerk of another organisation, cannot open the call (404, cross-organisation audited)', async () => {
    const { id } = await startCall();
    await otherClerk.agent.get(`/calls/${id}`).set('Accept', 'application/json').expect(404);
    await foreignClerk.agent.get(`/calls/${id}`).set('Accept', 'application/json').expect(404);
    await foreignClerk.agent.post(`/calls/${id}/end`).set('X-CSRF-Token', foreignClerk.csrf).set('Accept', 'application/json').expect(404);
    assert.equal((await db.current.knex('calls').where({ id }).first())!.status, 'waiting');
    const denied = await db.current.knex('audit_events').where({ action: 'security.cross_organisation_denied', target_id: id });
    assert.ok(denied.length >= 2);
  });

  it('the customer page opens with a valid link, and shows a clear page for a wrong, expired or ended one', async () => {
    const admin = await signIn(app, await seedUser(db.current.knex, (await db.current.knex('organisations').where({ name: 'Calls Bank' }).first())!, 'admin'));
    await admin.agent.post('/admin/organisation/privacy').type('form').send({ _csrf: admin.csrf, privacy_contact: 'privacy@calls-bank.example' }).expect(303);
    const { id, token } = await startCall();
    const page = await request(app).get(`/join/${token}`).expect(200);
    assert.match(page.text, /Calls Bank/);
    assert.match(page.text, /data-role="customer"/);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.equal(page.headers['set-cookie'], undefined, 'the customer page sets no cookie');
    assert.match(page.text, /What happens with your data/);
    assert.match(page.text, /Questions about your data: privacy@calls-bank\.example/);
    assert.match(page.text, /under the organisation&#39;s retention rules/);
    assert.match(page.text, /href="\/branding\/calls-bank\/theme\.css\?v=\d+"/, "the organisation's colours");
    assert.match(page.text, /This page sets no cookies/);
    await request(app).get(`/join/${'B'.repeat(43)}`).expect(404, /This link is not valid/);
    await request(app).get('/join/<script>').expect(404);
    await db.current.knex('calls').where({ id }).update({ guest_token_expires_at: new Date(Date.now() - 1000) });
    await request(app).get(`/join/${token}`).expect(404);
    const second = await startCall();
    await clerkBrowser.agent.post(`/calls/${second.id}/end`).type('form').send({ _csrf: clerkBrowser.csrf }).expect(303).expect('Location', '/dashboard');
    await request(app).get(`/join/${second.token}`).expect(200, /Your selection from Calls Bank/); // the customer's summary (test/curation-summary.test.ts)
    await request(buildApp(db.current, { env: { VCLERK_SUMMARY_DAYS: '0' } })).get(`/join/${second.token}`).expect(410);
    const row = await db.current.knex('calls').where({ id: second.id }).first();
    assert.equal(row!.status, 'ended');
    assert.equal(row!.end_reason, 'ended_by_clerk');
    const history = await clerkBrowser.agent.get('/dashboard').expect(200);
    assert.match(history.text, /My recent calls/);
    assert.match(history.text, /Ended by you/);
    const ended = await clerkBrowser.agent.post(`/calls/${second.id}/end`).set('X-CSRF-Token', clerkBrowser.csrf).set('Accept', 'application/json').expect(409);
    assert.equal(ended.body.error.code, 'call_ended');
  });

  it('a call link carries a reference, a scheduled time and a validity, and the dashboard lists it', async () => {
    const scheduled = new Date(Date.now() + 2 * 3600_000);
    const res = await clerkBrowser.agent.post('/calls').type('form')
      .send({ _csrf: clerkBrowser.csrf, reference: 'CASE-2026/0042', valid_hours: '4', scheduled_at: scheduled.toISOString().slice(0, 16) })
      .expect(303);
    const id = /\/calls\/([0-9a-f-]{36})#/.exec(res.headers.location!)![1]!;
    const row = await db.current.knex('calls').where({ id }).first();
    assert.equal(row!.reference, 'CASE-2026/0042');
    assert.ok(row!.scheduled_at);
    const hoursAfterSchedule = (row!.guest_token_expires_at!.getTime() - row!.scheduled_at.getTime()) / 3600_000;
    assert.ok(hoursAfterSchedule > 3.9 && hoursAfterSchedule <= 4.01, 'valid for 4 hours from the scheduled time');
    const dashboard = await clerkBrowser.agent.get('/dashboard').expect(200);
    assert.match(dashboard.text, /CASE-2026\/0042/);
  });

  it('refuses a personal-looking or malformed reference, and changes nothing', async () => {
    const before = await db.current.knex('calls').count({ n: '*' });
    for (const reference of ['anna@example.org', '<b>x</b>', 'x'.repeat(65)]) {
      const res = await clerkBrowser.agent.post('/calls').type('form').send({ _csrf: clerkBrowser.csrf, reference }).expect(400);
      assert.match(res.text, /aria-invalid="true"/);
    }
    await clerkBrowser.agent.post('/calls').type('form').send({ _csrf: clerkBrowser.csrf, valid_hours: '99999' }).expect(400);
    await clerkBrowser.agent.post('/calls').type('form').send({ _csrf: clerkBrowser.csrf, scheduled_at: 'tomorrow-ish' }).expect(400);
    assert.deepEqual(await db.current.knex('calls').count({ n: '*' }), before);
  });

  it('a revoked link opens nothing any more, and the revocation is audited', async () => {
    const { id, token } = await startCall();
    await request(app).get(`/join/${token}`).expect(200);
    await otherClerk.agent.post(`/calls/${id}/revoke`).set('X-CSRF-Token', otherClerk.csrf).set('Accept', 'application/json').expect(404);
    await clerkBrowser.agent.post(`/calls/${id}/revoke`).type('form').send({ _csrf: clerkBrowser.csrf }).expect(303);
    await request(app).get(`/join/${token}`).expect(404, /This link is not valid/);
    assert.equal((await db.current.knex('audit_events').where({ action: 'call.link_revoked', target_id: id })).length, 1);
    const dashboard = await clerkBrowser.agent.get('/dashboard').expect(200);
    assert.match(dashboard.text, /Revoked/);
  });

  it('call pages load no inline script and nothing from outside', async () => {
    const { id, token } = await startCall();
    for (const html of [(await clerkBrowser.agent.get(`/calls/${id}`)).text, (await request(app).get(`/join/${token}`)).text]) {
      assert.doesNotMatch(html, /<script(?![^>]*\s(src=|type="application\/json"))[^>]*>/i);
      assert.doesNotMatch(html, /\sstyle=|\son[a-z]+=/i);
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i);
    }
  });

  it('the token in a join URL never reaches the request log', async () => {
    const token = 'A'.repeat(43);
    assert.equal(loggableUrl(`/join/${token}`), '/join/[redacted]');
    assert.equal(loggableUrl(`/join/${token}/images/x`), '/join/[redacted]/images/x');
    // The language switcher hands the page's address along.
    assert.doesNotMatch(loggableUrl(`/language?lang=de&return=${encodeURIComponent(`/join/${token}`)}`), new RegExp(token));
  });
});
