import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Knex } from 'knex';
import type { Response } from 'supertest';
import { actorOf, type Caller } from '../app/access/caller';
import { CallService } from '../app/calls/service';
import { routes, type Route } from '../app/routes';
import { WebhookDispatcher } from '../app/webhooks/dispatcher';
import { createWebhook, deleteWebhook, listWebhooks, rotateWebhookSecret, toggleWebhook } from '../app/webhooks/routes';
import { sign, verifySignature } from '../app/webhooks/verify';
import { csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp, silentLogger } from './support/context';
import { useTestDatabase } from './support/database';

/** The lines app/routes.ts gets for this feature. */
function webhookRoutes(knex: Knex): Route[] {
  const ADMIN = ['admin'] as const;
  return [
    { method: 'get', path: '/admin/webhooks', access: ADMIN, handlers: [listWebhooks(knex)] },
    { method: 'post', path: '/admin/webhooks', access: ADMIN, handlers: [createWebhook(knex)] },
    { method: 'post', path: '/admin/webhooks/:id/toggle', access: ADMIN, handlers: [toggleWebhook(knex)] },
    { method: 'post', path: '/admin/webhooks/:id/rotate', access: ADMIN, handlers: [rotateWebhookSecret(knex)] },
    { method: 'post', path: '/admin/webhooks/:id/delete', access: ADMIN, handlers: [deleteWebhook(knex)] },
  ];
}

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A receiver on 127.0.0.1: paths under /fail/ answer 500, the others 204. Records every request. */
async function startReceiver(): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = req.url?.startsWith('/fail/') ? 500 : 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const ALL_EVENTS = ['call.started', 'call.joined', 'call.left', 'call.ended', 'call.link_revoked'];
const CLIENT_IP = '203.0.113.77';
const CLIENT_AGENT = 'VerySpecialBrowser/9.9';

describe('webhooks', () => {
  const db = useTestDatabase();
  let app: Express;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let org: SeededOrganisation;
  let other: SeededOrganisation;
  let clerk: SeededUser;
  let otherClerk: SeededUser;
  let admin: Browser;
  let clerkBrowser: Browser;
  let foreignAdmin: Browser;

  const knex = () => db.current.knex;
  const dispatcher = (options: ConstructorParameters<typeof WebhookDispatcher>[2] = {}) =>
    new WebhookDispatcher(knex(), silentLogger, { maxAttempts: 3, backoff: (attempt) => attempt * 60_000, ...options });

  async function post(as: Browser, path: string, fields: Record<string, unknown>, status: number): Promise<Response> {
    const page = await as.agent.get('/account').expect(200);
    return as.agent.post(path).type('form').send({ _csrf: csrfFrom(page.text), ...fields }).expect(status);
  }

  /** Creates an endpoint through the admin page; returns its id, path and the secret shown. */
  async function createEndpoint(kind: 'ok' | 'fail' = 'ok', events = ALL_EVENTS): Promise<{ id: string; path: string; secret: string; html: string }> {
    const path = `/${kind}/${crypto.randomUUID()}`;
    const res = await post(admin, '/admin/webhooks', { url: `${receiver.url}${path}`, events }, 201);
    const secret = /id="issued-secret" type="text" value="([^"]+)"/.exec(res.text)?.[1];
    assert.ok(secret, 'the secret is on the page');
    const row = await knex()('webhook_endpoints').where({ url: `${receiver.url}${path}` }).first('id');
    return { id: row!.id, path, secret, html: res.text };
  }

  function callerFor(user: SeededUser): Caller {
    return { user: { id: user.id, organisationId: user.organisationId, email: user.email } as never, ip: CLIENT_IP, userAgent: CLIENT_AGENT, sessionId: 'test' };
  }

  /** A whole call: link created, customer joins, call ended by the clerk. */
  async function callLifecycle(user: SeededUser): Promise<string> {
    const calls = new CallService(knex());
    const { call } = await calls.start(callerFor(user), 1, { reference: 'CASE-7' });
    await calls.joined(call.id, { role: 'customer', label: 'Customer' }, false, { ip: CLIENT_IP, userAgent: CLIENT_AGENT });
    await calls.end(call.id, 'ended_by_clerk', actorOf(callerFor(user).user), { ip: CLIENT_IP, userAgent: CLIENT_AGENT });
    return call.id;
  }

  const at = (path: string) => receiver.received.filter((r) => r.path === path);

  before(async () => {
    receiver = await startReceiver();
    app = buildApp(db.current, { routes: (deps) => [...routes(deps), ...webhookRoutes(deps.db)] });
    org = await seedOrganisation(knex(), 'Hook Bank');
    other = await seedOrganisation(knex(), 'Other Hook Bank');
    clerk = await seedUser(knex(), org, 'clerk');
    otherClerk = await seedUser(knex(), other, 'clerk');
    admin = await signIn(app, await seedUser(knex(), org, 'admin'));
    clerkBrowser = await signIn(app, clerk);
    foreignAdmin = await signIn(app, await seedUser(knex(), other, 'admin'));
  });
  after(async () => receiver.close());

  it('an admin adds an endpoint: the secret is shown once, and the endpoint gets only what happens from then on', async () => {
    await callLifecycle(clerk);
    const { id, path, secret, html } = await createEndpoint();
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
    assert.match(html, /X-VClerk-Signature/);
    const row = await knex()('webhook_endpoints').where({ id }).first();
    assert.equal(row!.organisation_id, org.id);
    assert.deepEqual(row!.events, ALL_EVENTS);
    assert.equal(row!.enabled, true);

    const list = await admin.agent.get('/admin/webhooks').expect(200);
    assert.ok(list.text.includes(path), 'the endpoint is listed');
    assert.ok(!list.text.includes(secret), 'the secret is not shown again');

    await dispatcher().runOnce();
    assert.equal(at(path).length, 0, 'events before the endpoint existed are not sent');
  });

  it('delivers a call\'s events in order, signed, without IP address or user agent', async () => {
    const { id, path, secret } = await createEndpoint();
    const callId = await callLifecycle(clerk);
    const result = await dispatcher().runOnce();
    assert.ok(result.sent >= 3);

    const got = at(path);
    assert.deepEqual(got.map((r) => r.headers['x-vclerk-event']), ['call.started', 'call.joined', 'call.ended']);
    const ids: number[] = [];
    for (const r of got) {
      assert.equal(r.headers['content-type'], 'application/json');
      assert.ok(verifySignature(secret, r.headers['x-vclerk-timestamp'] as string, r.body, r.headers['x-vclerk-signature'] as string), 'the signature checks out');
      assert.ok(!verifySignature('another-secret-another-secret-xx', r.headers['x-vclerk-timestamp'] as string, r.body, r.headers['x-vclerk-signature'] as string));
      assert.ok(!r.body.includes(CLIENT_IP) && !r.body.includes(CLIENT_AGENT), 'no IP address or user agent');
      assert.ok(!r.body.includes(clerk.email), 'no personal data');
      const body = JSON.parse(r.body);
      assert.equal(body.event, r.headers['x-vclerk-event']);
      assert.equal(body.organisation, org.slug);
      assert.deepEqual(body.call, { id: callId });
      assert.ok(!Number.isNaN(Date.parse(body.occurredAt)));
      const delivery = await knex()('webhook_deliveries').where({ id: r.headers['x-vclerk-delivery'] as string }).first();
      assert.equal(delivery!.endpoint_id, id);
      assert.equal(String(delivery!.audit_event_id), String(body.id));
      ids.push(body.id);
    }
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'in the order they happened');
    assert.equal(JSON.parse(got[0]!.body).data.reference, 'CASE-7');
    assert.deepEqual(JSON.parse(got[1]!.body).data, { role: 'customer' });

    const deliveries = await knex()('webhook_deliveries').where({ endpoint_id: id });
    assert.ok(deliveries.every((d) => d.status === 'delivered' && d.attempt === 1 && d.response_status === 204 && d.delivered_at));
  });

  it('sends only the events an endpoint chose', async () => {
    const { path } = await createEndpoint('ok', ['call.ended']);
    await callLifecycle(clerk);
    await dispatcher().runOnce();
    assert.deepEqual(at(path).map((r) => r.headers['x-vclerk-event']), ['call.ended']);
  });

  it('retries a failing receiver with backoff, then gives up, and the log shows it', async () => {
    const { id, path } = await createEndpoint('fail', ['call.ended']);
    await callLifecycle(clerk);
    const d = dispatcher();
    for (let attempt = 1; attempt <= 3; attempt++) {
      const before = Date.now();
      await d.runOnce();
      assert.equal(at(path).length, attempt);
      const row = await knex()('webhook_deliveries').where({ endpoint_id: id }).first();
      assert.equal(row!.attempt, attempt);
      assert.equal(row!.response_status, 500);
      assert.equal(row!.error, 'HTTP 500');
      if (attempt < 3) {
        assert.equal(row!.status, 'pending');
        const wait = new Date(row!.next_attempt_at).getTime() - before;
        assert.ok(wait >= attempt * 60_000 - 1000 && wait <= attempt * 60_000 + 5000, `backoff after attempt ${attempt}: ${wait} ms`);
        await d.runOnce();
        assert.equal(at(path).length, attempt, 'nothing is sent before the next attempt is due');
        await knex()('webhook_deliveries').where({ endpoint_id: id }).update({ next_attempt_at: new Date(Date.now() - 1000) });
      } else {
        assert.equal(row!.status, 'failed');
      }
    }
    await knex()('webhook_deliveries').where({ endpoint_id: id }).update({ next_attempt_at: new Date(Date.now() - 1000) });
    await d.runOnce();
    assert.equal(at(path).length, 3, 'a failed delivery is not sent again');

    const page = await admin.agent.get('/admin/webhooks').expect(200);
    const delivery = await knex()('webhook_deliveries').where({ endpoint_id: id }).first('id');
    assert.match(page.text, new RegExp(`data-delivery="${delivery!.id}" data-status="failed"`));
    assert.match(page.text, /HTTP 500/);
  });

  it('never sends another organisation\'s events', async () => {
    const { path } = await createEndpoint();
    await callLifecycle(otherClerk);
    await dispatcher().runOnce();
    assert.equal(at(path).length, 0);
    assert.ok(!receiver.received.some((r) => r.body.includes(`"organisation":"${other.slug}"`)));
  });

  it('a disabled endpoint gets nothing; enabled again, it gets what happens from then on', async () => {
    const { id, path } = await createEndpoint();
    await post(admin, `/admin/webhooks/${id}/toggle`, {}, 303);
    assert.equal((await knex()('webhook_endpoints').where({ id }).first('enabled'))!.enabled, false);
    const changes = await knex()('audit_events').where({ target_id: id }).orderBy('seq').pluck('action');
    assert.deepEqual(changes, ['webhook.created', 'webhook.disabled'], 'changes to endpoints are audited');
    await callLifecycle(clerk);
    await dispatcher().runOnce();
    assert.equal(at(path).length, 0);

    await post(admin, `/admin/webhooks/${id}/toggle`, {}, 303);
    await dispatcher().runOnce();
    assert.equal(at(path).length, 0, 'what happened while it was off is not sent');
    await callLifecycle(clerk);
    await dispatcher().runOnce();
    assert.equal(at(path).length, 3);
  });

  it('a restart loses nothing and sends nothing twice', async () => {
    const { id, path } = await createEndpoint();
    await callLifecycle(clerk);
    await dispatcher().runOnce();
    assert.equal(at(path).length, 3);

    // Events queued by one instance that stopped before sending, and events while none ran.
    await callLifecycle(clerk);
    await dispatcher().enqueue();
    await callLifecycle(clerk);
    const restarted = dispatcher();
    await restarted.runOnce();
    await restarted.runOnce();
    await dispatcher().runOnce();
    const got = at(path);
    assert.equal(got.length, 9);
    const ids = got.map((r) => JSON.parse(r.body).id as number);
    assert.equal(new Set(ids).size, 9, 'no event twice');
    const audited = await knex()('audit_events').where({ organisation_id: org.id }).whereIn('action', ALL_EVENTS).where('id', '>=', Math.min(...ids)).orderBy('id').pluck('id');
    assert.deepEqual(ids, audited.map(Number), 'every event, in order');
    assert.equal(Number((await knex()('webhook_deliveries').where({ endpoint_id: id }).count({ n: '*' }))[0]!.n), 9);
  });

  it('three nodes\' dispatchers at once send every event once (issue 19)', async () => {
    const { path } = await createEndpoint();
    for (let i = 0; i < 5; i++) await callLifecycle(clerk);
    const nodes = [dispatcher(), dispatcher(), dispatcher()];
    for (let round = 0; round < 4; round++) await Promise.all(nodes.map((d) => d.runOnce()));
    const ids = at(path).map((r) => JSON.parse(r.body).id as number);
    assert.equal(ids.length, 15, 'each of the 15 events sent');
    assert.equal(new Set(ids).size, 15, 'none twice');
    // Not asserted: the order. Two nodes may send an endpoint's deliveries at the same moment
    // (docs/webhooks.md: receivers order by the event id).
  });

  it('start() and stop() run the loop and stop it cleanly', async () => {
    const { path } = await createEndpoint();
    await callLifecycle(clerk);
    const d = dispatcher({ intervalMs: 10 });
    d.start();
    const deadline = Date.now() + 10_000;
    while (at(path).length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await d.stop();
    assert.equal(at(path).length, 3);
  });

  it('refuses bad URLs and empty event choices with 400', async () => {
    const before = await knex()('webhook_endpoints').count({ n: '*' });
    for (const [url, message] of [
      ['ftp://files.example.org/in', /must begin with https:\/\/ or http:\/\//],
      [`http://user:secret@127.0.0.1/in`, /must not contain a user name or password/],
      ['not a url', /complete address/],
      ['', /Please fill in this field/],
    ] as const) {
      const res = await post(admin, '/admin/webhooks', { url, events: ['call.ended'] }, 400);
      assert.match(res.text, message);
    }
    const res = await post(admin, '/admin/webhooks', { url: 'https://crm.example.internal/in' }, 400);
    assert.match(res.text, /at least one event/);
    await post(admin, '/admin/webhooks', { url: 'https://crm.example.internal/in', events: ['call.ended', 'auth.login_failed'] }, 400);
    assert.deepEqual(await knex()('webhook_endpoints').count({ n: '*' }), before);
  });

  it('a new secret replaces the old one; deleting removes the endpoint and its log', async () => {
    const { id, path, secret } = await createEndpoint();
    const res = await post(admin, `/admin/webhooks/${id}/rotate`, {}, 200);
    const rotated = /id="issued-secret" type="text" value="([^"]+)"/.exec(res.text)?.[1];
    assert.ok(rotated && rotated !== secret);
    await callLifecycle(clerk);
    await dispatcher().runOnce();
    const r = at(path)[0]!;
    assert.ok(verifySignature(rotated, r.headers['x-vclerk-timestamp'] as string, r.body, r.headers['x-vclerk-signature'] as string));
    assert.ok(!verifySignature(secret, r.headers['x-vclerk-timestamp'] as string, r.body, r.headers['x-vclerk-signature'] as string));

    await post(admin, `/admin/webhooks/${id}/delete`, {}, 303);
    assert.equal(await knex()('webhook_endpoints').where({ id }).first(), undefined);
    assert.equal((await knex()('webhook_deliveries').where({ endpoint_id: id })).length, 0);
  });

  it('only admins of the organisation reach the pages', async () => {
    const { id } = await createEndpoint();
    await clerkBrowser.agent.get('/admin/webhooks').expect(403);
    await post(clerkBrowser, '/admin/webhooks', { url: 'https://crm.example.internal/in', events: ['call.ended'] }, 403);
    await post(clerkBrowser, `/admin/webhooks/${id}/toggle`, {}, 403);

    await post(foreignAdmin, `/admin/webhooks/${id}/toggle`, {}, 404);
    await post(foreignAdmin, `/admin/webhooks/${id}/delete`, {}, 404);
    assert.equal((await knex()('webhook_endpoints').where({ id }).first('enabled'))!.enabled, true);
    const denied = await knex()('audit_events').where({ action: 'security.cross_organisation_denied', target_id: id });
    assert.equal(denied.length, 4, 'each attempt in the prober\'s organisation and in this one');
    const page = await foreignAdmin.agent.get('/admin/webhooks').expect(200);
    assert.ok(!page.text.includes(receiver.url), 'another organisation\'s endpoints and deliveries are not listed');
  });

  describe('verifySignature', () => {
    const secret = 'a-secret-of-at-least-thirty-two-chars';
    const body = '{"id":1,"event":"call.ended"}';
    const now = new Date('2026-11-29T12:00:00Z');
    const ts = Math.floor(now.getTime() / 1000);
    const header = `sha256=${sign(secret, ts, body)}`;

    it('accepts a genuine delivery and refuses a changed body, another secret, an old timestamp or a bad header', () => {
      assert.equal(verifySignature(secret, String(ts), body, header, 300, now), true);
      assert.equal(verifySignature(secret, String(ts), Buffer.from(body), header, 300, now), true);
      assert.equal(verifySignature(secret, String(ts), body.replace('1', '2'), header, 300, now), false);
      assert.equal(verifySignature(`${secret}x`, String(ts), body, header, 300, now), false);
      assert.equal(verifySignature(secret, String(ts), body, header, 300, new Date(now.getTime() + 301_000)), false);
      assert.equal(verifySignature(secret, String(ts + 1), body, header, 300, now), false);
      assert.equal(verifySignature(secret, String(ts), body, header.slice(7), 300, now), false);
      assert.equal(verifySignature(secret, undefined, body, header, 300, now), false);
      assert.equal(verifySignature(secret, String(ts), body, undefined, 300, now), false);
    });
  });
});
