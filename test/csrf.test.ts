import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { maskToken, unmaskToken } from '../app/access/csrf';
import { anonymous, csrfFrom, PASSWORD, seedOrganisation, seedUser, signIn, type Browser, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/** Every CSRF token value in a page (hidden fields, form actions, data attributes). */
function tokensIn(html: string): string[] {
  return [...html.matchAll(/(?:name="_csrf" value="|_csrf=|data-csrf=")([A-Za-z0-9_%-]+)/g)].map((m) => decodeURIComponent(m[1]!));
}

/**
 * CSRF tokens against BREACH: pages are compressed, so the token they carry
 * is masked anew in every response (pad || pad XOR token); and responses
 * that show a secret once are not compressed at all.
 */
describe('CSRF token masking and uncompressed secrets', () => {
  const db = useTestDatabase();
  let app: Express;
  let admin: SeededUser;
  let browser: Browser;

  before(async () => {
    app = buildApp(db.current);
    const org = await seedOrganisation(db.current.knex, 'Masking Bank');
    admin = await seedUser(db.current.knex, org, 'admin');
    browser = await signIn(app, admin);
  });

  it('masks and unmasks: a different string every time, the same token behind it', () => {
    const token = crypto.randomBytes(32).toString('base64url');
    const a = maskToken(token);
    const b = maskToken(token);
    assert.notEqual(a, b);
    assert.equal(a.length, 86);
    assert.equal(unmaskToken(a, 43), token);
    assert.equal(unmaskToken(b, 43), token);
    assert.equal(unmaskToken('!!!', 43), undefined);
  });

  it('two GETs of the same form carry different token strings, and never the session\'s token itself', async () => {
    const first = await browser.agent.get('/account').expect(200);
    const second = await browser.agent.get('/account').expect(200);
    const one = tokensIn(first.text);
    const two = tokensIn(second.text);
    assert.ok(one.length >= 2, 'the page and the header\'s sign-out form');
    assert.equal(new Set([...one, ...two]).size, one.length + two.length, 'every token string differs, within a page and between pages');
    const [session] = await db.current.knex('sessions').where({ user_id: admin.id }).select('data');
    const secret = (session!.data as { csrfToken: string }).csrfToken;
    assert.ok(secret);
    assert.ok(!first.text.includes(secret) && !second.text.includes(secret), 'the unmasked token is in no page');
  });

  it('accepts each masked token, in the form and in the header', async () => {
    const [a, b] = [csrfFrom((await browser.agent.get('/account')).text), csrfFrom((await browser.agent.get('/account')).text)];
    assert.notEqual(a, b);
    await browser.agent.post('/account/language').type('form').send({ _csrf: a, language: 'de' }).expect(303);
    await browser.agent.post('/account/language').type('form').send({ _csrf: b, language: 'en' }).expect(303);
    await browser.agent.post('/account/language').set('X-CSRF-Token', a).type('form').send({ language: 'en' }).expect(303);
  });

  it('refuses a tampered, a foreign or a missing token (403 csrf_invalid)', async () => {
    const token = csrfFrom((await browser.agent.get('/account')).text);
    const flipped = token.slice(0, 50) + (token[50] === 'A' ? 'B' : 'A') + token.slice(51);
    const other = await signIn(app, await seedUser(db.current.knex, await seedOrganisation(db.current.knex), 'admin'));
    for (const bad of [flipped, token.slice(0, 43), token + 'AA', other.csrf, 'x'.repeat(86)]) {
      const res = await browser.agent.post('/account/language').set('Accept', 'application/json').type('form').send({ _csrf: bad, language: 'de' });
      assert.equal(res.status, 403, bad);
      assert.equal(res.body.error.code, 'csrf_invalid');
    }
    const none = await browser.agent.post('/account/language').set('Accept', 'application/json').type('form').send({ language: 'de' });
    assert.equal(none.body.error.code, 'csrf_invalid');
  });

  it('masks the sign-in form\'s token too, and signing in with it works', async () => {
    const visitor = await anonymous(app);
    const again = csrfFrom((await visitor.agent.get('/login')).text);
    assert.notEqual(again, visitor.csrf);
    await visitor.agent.post('/login').type('form').send({ _csrf: again, email: admin.email, password: PASSWORD }).expect(303);
  });

  it('the page showing a new API key is not compressed and not stored; ordinary pages still are compressed', async () => {
    const list = await browser.agent.get('/admin/api-keys').set('Accept-Encoding', 'gzip').expect(200);
    assert.equal(list.headers['content-encoding'], 'gzip', 'pages with CSRF tokens stay compressed (the tokens are masked)');
    const res = await browser.agent
      .post('/admin/api-keys')
      .set('Accept-Encoding', 'gzip')
      .type('form')
      .send({ _csrf: csrfFrom(list.text), name: 'CRM <b>echo</b>', scopes: 'calls:read' })
      .expect(201);
    assert.match(res.text, /id="issued-key"/);
    assert.equal(res.headers['content-encoding'], undefined, 'a secret next to the typed name: not compressed');
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  it('one-time links and the customer\'s call page are not compressed either', async () => {
    const page = await browser.agent.get('/admin/users').expect(200);
    const invite = await browser.agent
      .post('/admin/users')
      .set('Accept-Encoding', 'gzip')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), name: 'New Clerk', email: `new-${Date.now()}@example.org`, role: 'clerk' });
    assert.equal(invite.status, 201, invite.text.slice(0, 500));
    assert.equal(invite.headers['content-encoding'], undefined);
    assert.equal(invite.headers['cache-control'], 'no-store');

    const clerk = await signIn(app, await seedUser(db.current.knex, { id: admin.organisationId }, 'clerk'));
    const started = await clerk.agent.post('/calls').type('form').send({ _csrf: clerk.csrf }).expect(303);
    const token = /#customer=([A-Za-z0-9_-]+)/.exec(String(started.headers.location))?.[1];
    assert.ok(token, String(started.headers.location));
    const customer = await request(app).get(`/join/${token}`).set('Accept-Encoding', 'gzip').expect(200);
    assert.ok(customer.text.includes(token));
    assert.equal(customer.headers['content-encoding'], undefined);
  });
});
