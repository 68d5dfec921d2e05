import assert from 'node:assert/strict';
import type { Express } from 'express';
import request from 'supertest';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

const IDLE_MINUTES = 5;

/**
 * Issue 16: a clerk's session must not run out during a long call. The call
 * page renews it (POST /session/keepalive, CSRF token in a header) at an
 * interval the server gives it; renewing moves only the idle expiry, never
 * the absolute lifetime. A form that expired anyway (403 csrf_invalid) says
 * so and links back to the same-site page it came from.
 */
describe('session keep-alive during calls, and the expired-form page', () => {
  const db = useTestDatabase();
  let app: Express;
  let clerk: SeededUser;

  before(async () => {
    app = buildApp(db.current, { env: { VCLERK_SESSION_IDLE_MINUTES: String(IDLE_MINUTES) } });
    const org = await seedOrganisation(db.current.knex, 'Keepalive Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
  });

  async function sessionRow(userId: string): Promise<{ sid: string; expires_at: Date; data: { authenticatedAt?: number } }> {
    const rows = await db.current.knex('sessions').where({ user_id: userId }).orderBy('expires_at', 'desc').select('sid', 'expires_at', 'data');
    assert.ok(rows[0], 'a session row');
    return rows[0] as never;
  }

  /** Moves the session's idle expiry to `ms` from now (the idle time as good as over). */
  async function expireIn(sid: string, ms: number): Promise<void> {
    await db.current.knex('sessions').where({ sid }).update({ expires_at: new Date(Date.now() + ms) });
  }

  async function freshClerk(): Promise<{ browser: Browser; sid: string }> {
    await db.current.knex('sessions').where({ user_id: clerk.id }).delete();
    const browser = await signIn(app, clerk);
    return { browser, sid: (await sessionRow(clerk.id)).sid };
  }

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('the keep-alive renews the idle expiry: past the old idle end the clerk is still signed in', async () => {
    const { browser, sid } = await freshClerk();
    await expireIn(sid, 800);
    const res = await browser.agent.post('/session/keepalive').set('X-CSRF-Token', browser.csrf).expect(204);
    assert.match(String(res.headers['cache-control']), /no-store/);
    const row = await sessionRow(clerk.id);
    assert.equal(row.sid, sid, 'the same session');
    assert.ok(row.expires_at.getTime() > Date.now() + (IDLE_MINUTES * 60_000) - 30_000, `idle expiry pushed a full idle time ahead: ${row.expires_at.toISOString()}`);
    await sleep(1000);
    await browser.agent.get('/dashboard').expect(200);
  });

  it('without the keep-alive the session ends after the idle time', async () => {
    const { browser, sid } = await freshClerk();
    await expireIn(sid, 800);
    await sleep(1000);
    await browser.agent.get('/dashboard').expect(303).expect('Location', /^\/login/);
    await browser.agent.post('/session/keepalive').set('X-CSRF-Token', browser.csrf).expect(403);
  });

  it('does not extend the absolute lifetime: sign-in time unchanged, an over-age session is refused', async () => {
    const { browser, sid } = await freshClerk();
    const before = (await sessionRow(clerk.id)).data.authenticatedAt;
    assert.ok(before);
    await browser.agent.post('/session/keepalive').set('X-CSRF-Token', browser.csrf).expect(204);
    assert.equal((await sessionRow(clerk.id)).data.authenticatedAt, before, 'the sign-in time stays');

    // Signed in 12 hours (the default absolute lifetime) ago: renewing does not save it.
    const old = Date.now() - 12 * 3600_000 - 1000;
    await db.current.knex('sessions').where({ sid }).update({ data: db.current.knex.raw(`jsonb_set(data::jsonb, '{authenticatedAt}', ?::jsonb)`, [String(old)]) });
    // The over-age session is ended before the CSRF check, so its token no longer counts either.
    const refused = await browser.agent.post('/session/keepalive').set('Accept', 'application/json').set('X-CSRF-Token', browser.csrf).expect(403);
    assert.equal(refused.body.error.code, 'csrf_invalid');
    assert.equal(await db.current.knex('sessions').where({ sid }).first('sid'), undefined, 'the over-age session is gone, not renewed');
    await browser.agent.get('/dashboard').expect(303).expect('Location', /^\/login/);
  });

  it('refuses without a session (403 or 401) and without the CSRF token (403 csrf_invalid)', async () => {
    const stranger = await request(app).post('/session/keepalive').set('Accept', 'application/json');
    assert.ok(stranger.status === 401 || stranger.status === 403, `no session: ${stranger.status}`);
    assert.equal(await db.current.knex('sessions').whereNull('user_id').count({ n: '*' }).first().then((r) => Number(r?.n)), 0, 'no session row made for a stranger');

    const { browser } = await freshClerk();
    const res = await browser.agent.post('/session/keepalive').set('Accept', 'application/json').expect(403);
    assert.equal(res.body.error.code, 'csrf_invalid');
    await browser.agent.get('/session/keepalive').expect(404);
  });

  it('the clerk\'s call page tells the client where and how often to renew (half the idle time)', async () => {
    const { browser } = await freshClerk();
    const started = await browser.agent.post('/calls').type('form').send({ _csrf: browser.csrf }).expect(303);
    const id = /^\/calls\/([0-9a-f-]{36})/.exec(started.headers.location ?? '')?.[1];
    assert.ok(id);
    const page = await browser.agent.get(`/calls/${id}`).expect(200);
    assert.match(page.text, /data-keepalive-url="\/session\/keepalive"/);
    assert.match(page.text, new RegExp(`data-keepalive-ms="${(IDLE_MINUTES * 60_000) / 2}"`));
    assert.match(page.text, /id="session-keepalive"[^>]*data-csrf="[A-Za-z0-9_-]+"/);
  });

  it('an expired End-call form: 403 csrf_invalid, says so, and links back to the call', async () => {
    const { browser } = await freshClerk();
    const started = await browser.agent.post('/calls').type('form').send({ _csrf: browser.csrf }).expect(303);
    const id = /^\/calls\/([0-9a-f-]{36})/.exec(started.headers.location ?? '')?.[1];
    assert.ok(id);
    const page = await browser.agent
      .post(`/calls/${id}/end`).type('form').set('Accept', 'text/html')
      .set('Referer', `http://127.0.0.1/calls/${id}`).set('Host', '127.0.0.1')
      .send({ _csrf: 'expired' }).expect(403);
    assert.match(page.text, /The form has expired/);
    assert.match(page.text, new RegExp(`<a href="/calls/${id}"[^>]*data-retry`), 'a link back to the call page');
    // As a browser sends it: no Referer (the pages' referrer policy is no-referrer), the form's own `_back` field.
    const html = await browser.agent.get(`/calls/${id}`).expect(200);
    const back = /<input type="hidden" name="_back" value="([^"]+)">/.exec(html.text)?.[1];
    assert.equal(back, `/calls/${id}`, 'the End-call form names its page');
    const noReferer = await browser.agent.post(`/calls/${id}/end`).type('form').set('Accept', 'text/html').send({ _csrf: 'expired', _back: back }).expect(403);
    assert.match(noReferer.text, new RegExp(`<a href="/calls/${id}"[^>]*data-retry`));
    const json = await browser.agent.post(`/calls/${id}/end`).set('Accept', 'application/json').set('X-CSRF-Token', 'expired').expect(403);
    assert.equal(json.body.error.code, 'csrf_invalid');
    const call = await db.current.knex('calls').where({ id }).first('status');
    assert.notEqual(call?.status, 'ended', 'the call is still open');
  });

  it('the retry link goes only to a same-site page, never to another origin', async () => {
    const { browser } = await freshClerk();
    const foreign = await browser.agent
      .post('/account/language').type('form').set('Accept', 'text/html').set('Host', '127.0.0.1')
      .set('Referer', 'https://evil.example/calls/abc').send({ _csrf: 'expired', language: 'de' }).expect(403);
    assert.doesNotMatch(foreign.text, /evil\.example/);
    assert.doesNotMatch(foreign.text, /data-retry/);
    const sneaky = await browser.agent
      .post('/account/language').type('form').set('Accept', 'text/html').set('Host', '127.0.0.1')
      .set('Referer', 'http://127.0.0.1//evil.example/x').send({ _csrf: 'expired', language: 'de' }).expect(403);
    assert.doesNotMatch(sneaky.text, /href="\/\/evil/);
    for (const back of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
      const page = await browser.agent.post('/account/language').type('form').set('Accept', 'text/html')
        .send({ _csrf: 'expired', language: 'de', _back: back }).expect(403);
      assert.doesNotMatch(page.text, /data-retry/, `no retry link for _back=${back}`);
      assert.doesNotMatch(page.text, /evil\.example|javascript:/);
    }
    const same = await browser.agent
      .post('/account/language').type('form').set('Accept', 'text/html').set('Host', '127.0.0.1')
      .set('Referer', 'http://127.0.0.1/account?tab=1').send({ _csrf: 'expired', language: 'de' }).expect(403);
    assert.match(same.text, /<a href="\/account\?tab=1"[^>]*data-retry/);
  });
});
