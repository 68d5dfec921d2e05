import assert from 'node:assert/strict';
import request from 'supertest';
import { csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

describe('waiting queue', () => {
  const db = useTestDatabase();
  let app: ReturnType<typeof buildApp>;
  let org: SeededOrganisation;
  let clerk: Browser;
  let foreignClerk: Browser;

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(db.current.knex, 'Queue Bank');
    clerk = await signIn(app, await seedUser(db.current.knex, org, 'clerk'));
    const other = await seedOrganisation(db.current.knex, 'Queue Insurer');
    foreignClerk = await signIn(app, await seedUser(db.current.knex, other, 'clerk'));
  });

  async function setAvailability(browser: Browser, availability: string) {
    await browser.agent.post('/availability').type('form').send({ _csrf: browser.csrf, availability }).expect(303);
  }

  /** A customer enters the queue through the public page; returns their ticket. */
  async function enter(): Promise<string> {
    const agent = request.agent(app);
    const page = await agent.get(`/q/${org.slug}`).expect(200);
    const res = await agent.post(`/q/${org.slug}`).type('form').send({ _csrf: csrfFrom(page.text) }).expect(303);
    const ticket = /#ticket=([A-Za-z0-9_-]{43})$/.exec(res.headers.location ?? '')?.[1];
    assert.ok(ticket, `redirect to the waiting page with the ticket in the fragment: ${res.headers.location}`);
    return ticket;
  }

  const status = (ticket: string) => request(app).get('/queue/ticket').set('X-Queue-Ticket', ticket).expect(200).then((r) => r.body);

  it('tells customers to come back when no clerk is available, and lets nobody in', async () => {
    await setAvailability(clerk, 'away');
    const page = await request(app).get(`/q/${org.slug}`).expect(200);
    assert.match(page.text, /Nobody is available right now/);
    assert.doesNotMatch(page.text, /id="enter-queue"/);
    await request(app).get('/q/no-such-org').expect(404);
  });

  it('customers wait with a visible position; the clerk accepts the next one, who is moved into the call', async () => {
    await setAvailability(clerk, 'available');
    const first = await enter();
    const second = await enter();
    assert.deepEqual(await status(first).then((s) => [s.status, s.position]), ['waiting', 1]);
    const s2 = await status(second);
    assert.equal(s2.position, 2);
    assert.ok(s2.estimatedWaitSeconds > 0);

    const live = await clerk.agent.get('/queue.json').expect(200);
    assert.equal(live.body.entries.length, 2);
    assert.match(live.body.entries[0].label, /^Customer [0-9A-F]{4}$/);
    const dashboard = await clerk.agent.get('/dashboard').expect(200);
    assert.match(dashboard.text, /2 customers waiting/);

    const accepted = await clerk.agent.post('/queue/accept').type('form').send({ _csrf: clerk.csrf }).expect(303);
    const callId = /^\/calls\/([0-9a-f-]{36})#autojoin$/.exec(accepted.headers.location ?? '')![1];
    const moved = await status(first);
    assert.deepEqual(moved, { status: 'accepted', joinPath: `/join/${first}` });
    await request(app).get(moved.joinPath).expect(200);
    const call = await db.current.knex('calls').where({ id: callId }).first();
    assert.equal(call!.status, 'waiting');
    assert.equal((await status(second)).position, 1, 'the next customer moves up');
  });

  it('a clerk can accept a chosen customer; a customer can leave; gone entries cannot be accepted', async () => {
    const a = await enter();
    const b = await enter();
    const entries = (await clerk.agent.get('/queue.json').expect(200)).body.entries as { id: string }[];
    const chosen = entries[entries.length - 1]!.id;
    await clerk.agent.post('/queue/accept').type('form').send({ _csrf: clerk.csrf, entry_id: chosen }).expect(303);
    assert.equal((await status(b)).status, 'accepted', 'the chosen (latest) customer was taken');
    const agent = request.agent(app);
    const page = await agent.get(`/q/${org.slug}`);
    await agent.post('/queue/ticket/leave').set('X-Queue-Ticket', a).set('X-CSRF-Token', csrfFrom(page.text)).expect(200);
    assert.equal((await status(a)).status, 'left');
    const res = await clerk.agent.post('/queue/accept').set('Accept', 'application/json').type('form').send({ _csrf: clerk.csrf, entry_id: chosen }).expect(409);
    assert.equal(res.body.error.code, 'queue_entry_gone');
  });

  it('customers whose waiting page went silent leave the queue by themselves', async () => {
    const ticket = await enter();
    await db.current.knex('queue_entries').update({ last_seen_at: new Date(Date.now() - 120_000) });
    const live = await clerk.agent.get('/queue.json').expect(200);
    assert.equal(live.body.entries.length, 0);
    const res = await request(app).get('/queue/ticket').set('X-Queue-Ticket', ticket).expect(200);
    assert.equal(res.body.status, 'expired');
    const empty = await clerk.agent.post('/queue/accept').set('Accept', 'application/json').type('form').send({ _csrf: clerk.csrf }).expect(409);
    assert.equal(empty.body.error.code, 'queue_empty');
  });

  it('a clerk of another organisation never sees or takes this queue', async () => {
    await enter();
    const theirs = await foreignClerk.agent.get('/queue.json').expect(200);
    assert.equal(theirs.body.entries.length, 0);
    const ours = (await clerk.agent.get('/queue.json').expect(200)).body.entries as { id: string }[];
    await foreignClerk.agent.post('/queue/accept').set('Accept', 'application/json').type('form').send({ _csrf: foreignClerk.csrf, entry_id: ours[0]!.id }).expect(409);
    assert.equal((await clerk.agent.get('/queue.json')).body.entries.length, ours.length);
  });

  it('outside opening hours the queue is closed and shows when to come back', async () => {
    await setAvailability(clerk, 'available');
    const admin = await signIn(app, await seedUser(db.current.knex, org, 'admin'));
    const bad = await admin.agent.post('/admin/organisation/queue').set('Accept', 'application/json').type('form').send({ _csrf: admin.csrf, timezone: 'Mars/Olympus', mon_from: '09:00', mon_to: '08:00' }).expect(400);
    assert.deepEqual(bad.body.error.details.fields.map((f: { field: string }) => f.field).sort(), ['mon_from', 'timezone']);
    // Open only on a day that is not today (in UTC), so the queue is closed now.
    const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    const other = days[(new Date().getUTCDay() + 3) % 7]!;
    await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: admin.csrf, timezone: 'UTC', [`${other}_from`]: '00:00', [`${other}_to`]: '23:59' }).expect(303);
    const page = await request(app).get(`/q/${org.slug}`).expect(200);
    assert.match(page.text, /We are closed right now/);
    assert.match(page.text, /00:00–23:59/);
    const widget = await request(app).get(`/q/${org.slug}/widget.json`).expect(200);
    assert.equal(widget.body.available, false);
    // Always open again: no day set.
    await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: admin.csrf, timezone: 'UTC' }).expect(303);
    assert.doesNotMatch((await request(app).get(`/q/${org.slug}`)).text, /We are closed/);
  });

  it('automatic routing is off by default; switched on (audited), it gives the waiting customer to a free clerk', async () => {
    await db.current.knex('queue_entries').update({ status: 'left' }).where({ status: 'waiting' });
    await setAvailability(clerk, 'available');
    const waiting = await enter();
    assert.equal((await status(waiting)).status, 'waiting', 'off by default: nobody is assigned');
    const admin = await signIn(app, await seedUser(db.current.knex, org, 'admin'));
    await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: admin.csrf, timezone: 'UTC', auto_routing: 'on' }).expect(303);
    const [event] = await db.current.knex('audit_events').where({ action: 'organisation.auto_routing_changed', organisation_id: org.id });
    assert.deepEqual(event!.details, { automated_decision: true, enabled: true });
    const routed = await status(waiting);
    assert.equal(routed.status, 'accepted');
    const live = await clerk.agent.get('/queue.json').expect(200);
    assert.match(live.body.assignedCallId, /^[0-9a-f-]{36}$/);
    await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: admin.csrf, timezone: 'UTC' }).expect(303);
    assert.equal((await db.current.knex('audit_events').where({ action: 'organisation.auto_routing_changed', organisation_id: org.id })).length, 2);
  });

  it('unknown tickets answer 404 JSON', async () => {
    const res = await request(app).get('/queue/ticket').set('Accept', 'application/json').set('X-Queue-Ticket', 'A'.repeat(43)).expect(404);
    assert.equal(res.body.error.code, 'ticket_unknown');
    await request(app).get('/queue/ticket').expect(404);
  });

  it('one client IP (an IPv6 client: its /64) holds at most the set number of waiting places per organisation, and guessing tickets is rate-limited (issue 13)', async () => {
    await setAvailability(clerk, 'available');
    const limited = buildApp(db.current, { env: { VCLERK_TRUST_PROXY: 'loopback', VCLERK_REFUSAL_BURST: '25', VCLERK_REFUSAL_PER_MINUTE: '1', VCLERK_QUEUE_TICKETS_PER_IP: '3' } });
    const page = await request(limited).get(`/q/${org.slug}`).set('X-Forwarded-For', '203.0.113.50').expect(200);
    const cookie = String(page.headers['set-cookie']).split(';')[0]!;
    const take = (ip: string) => request(limited).post(`/q/${org.slug}`).set('X-Forwarded-For', ip).set('Cookie', cookie).set('Accept', 'application/json')
      .type('form').send({ _csrf: csrfFrom(page.text) });
    const burst = await Promise.all(Array.from({ length: 20 }, () => take('203.0.113.50')));
    const entered = burst.filter((r) => r.status === 303);
    assert.equal(entered.length, 3, 'three places, not twenty');
    const refused = burst.filter((r) => r.status === 429);
    assert.ok(refused.length === 17 && refused.every((r) => r.body.error.code === 'queue_limit'));
    assert.ok(refused.every((r) => Number(r.headers['retry-after']) >= 1));
    await take('203.0.113.51').expect(303);
    // An IPv6 client taking a new address of its /64 for each place still gets only 3.
    const v6 = await Promise.all(Array.from({ length: 6 }, (_, i) => take(`2001:db8:5:6::${i + 1}`)));
    assert.equal(v6.filter((r) => r.status === 303).length, 3);
    await take('2001:db8:5:7::1').expect(303);

    // A place that is given up frees it for the same client.
    const ticket = /#ticket=([A-Za-z0-9_-]{43})$/.exec(entered[0]!.headers.location ?? '')![1]!;
    await request(limited).post('/queue/ticket/leave').set('X-Forwarded-For', '203.0.113.50').set('Cookie', cookie).set('X-Queue-Ticket', ticket).set('X-CSRF-Token', csrfFrom(page.text)).expect(200);
    await take('203.0.113.50').expect(303);

    // Guessing tickets: beyond the burst of refusals, 429 without database work.
    const guesses = await Promise.all(Array.from({ length: 30 }, () => request(limited).get('/queue/ticket').set('X-Forwarded-For', '203.0.113.52').set('X-Queue-Ticket', 'A'.repeat(43)).set('Accept', 'application/json')));
    assert.equal(guesses.filter((r) => r.status === 404).length, 25);
    assert.equal(guesses.filter((r) => r.status === 429 && r.body.error.code === 'rate_limited').length, 5);
    await db.current.knex('queue_entries').where({ organisation_id: org.id, status: 'waiting' }).update({ status: 'left' });
  });
});
