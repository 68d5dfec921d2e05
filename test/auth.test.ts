import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { REFUSAL_COUNT_SQL, refusalsFor } from '../app/audit/refusals';
import request from 'supertest';
import { anonymous, csrfFrom, PASSWORD, seedOrganisation, seedUser, signIn, type SeededOrganisation } from './support/accounts';
import { buildApp, TEST_SECRET } from './support/context';
import { useTestDatabase } from './support/database';

function sid(res: request.Response): string | undefined {
  const cookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  return cookies.find((c) => c.startsWith('vclerk_sid='))?.split(';')[0];
}

describe('sign-in and sessions', () => {
  const db = useTestDatabase();
  let org: SeededOrganisation;
  before(async () => {
    org = await seedOrganisation(db.current.knex, 'Auth Bank');
  });

  const audit = (action: string) => db.current.knex('audit_events').where({ action }).orderBy('id');

  it('signs in with e-mail and password, records time and IP, and audits it', async () => {
    const user = await seedUser(db.current.knex, org, 'clerk');
    const app = buildApp(db.current);
    const { agent, csrf } = await anonymous(app);
    await agent.post('/login').type('form').send({ _csrf: csrf, email: user.email.toUpperCase(), password: PASSWORD }).expect(303).expect('Location', '/dashboard');
    const dashboard = await agent.get('/dashboard').expect(200);
    assert.match(dashboard.text, new RegExp(`Hello, ${user.name}`));
    const row = await db.current.knex('users').where({ id: user.id }).first();
    assert.ok(row!.last_login_at instanceof Date);
    assert.match(row!.last_login_ip!, /127\.0\.0\.1/);
    const [event] = await audit('auth.login_succeeded').where({ actor_id: user.id });
    assert.equal(event!.organisation_id, org.id);
    assert.match(event!.ip!, /127\.0\.0\.1/);
  });

  it('sets HttpOnly, SameSite=Lax cookies (CSRF for the form, session at sign-in), Secure behind HTTPS', async () => {
    const user = await seedUser(db.current.knex, org, 'clerk');
    const plain = await request(buildApp(db.current)).get('/login').expect(200);
    const cookie = String(plain.headers['set-cookie']);
    assert.match(cookie, /vclerk_csrf=.*HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.doesNotMatch(cookie, /Secure/);
    assert.doesNotMatch(cookie, /vclerk_sid=/, 'showing the form starts no session');
    const app = buildApp(db.current, { env: { VCLERK_TRUST_PROXY: 'loopback' } });
    const secure = await request(app).get('/login').set('X-Forwarded-Proto', 'https').expect(200);
    // Over HTTPS with the __Host- prefix: only this host can set it (no planted token from a subdomain).
    assert.match(String(secure.headers['set-cookie']), /^__Host-vclerk_csrf=.*Path=\/.*Secure/);
    // A token planted under the plain name is not taken over HTTPS.
    const planted = await request(app).post('/login').set('X-Forwarded-Proto', 'https').set('Cookie', `vclerk_csrf=${'A'.repeat(43)}`).type('form')
      .send({ _csrf: 'A'.repeat(43), email: user.email, password: PASSWORD });
    assert.equal(planted.status, 403);
    // (A Secure cookie is not sent back over plain HTTP by the test client: handed over by hand.)
    const signedIn = await request(app).post('/login').set('X-Forwarded-Proto', 'https').set('Cookie', String(secure.headers['set-cookie']).split(';')[0]!).type('form')
      .send({ _csrf: csrfFrom(secure.text), email: user.email, password: PASSWORD }).expect(303);
    assert.match(String(signedIn.headers['set-cookie']), /vclerk_sid=.*HttpOnly.*Secure.*SameSite=Lax/);
  });

  it('creates no session row for visitors who only look at the sign-in form (issue 13)', async () => {
    const app = buildApp(db.current);
    const count = async () => Number((await db.current.knex('sessions').count({ n: '*' }))[0]!.n);
    const before = await count();
    for (let i = 0; i < 40; i++) await request(app).get('/login').expect(200);
    await Promise.all(Array.from({ length: 160 }, () => request(app).get('/login').expect(200)));
    assert.equal(await count(), before, '200 visits, no session rows');
    // The form still works without a session: its token is the double-submit cookie's.
    const user = await seedUser(db.current.knex, org, 'clerk');
    await signIn(app, user);
    const forged = await anonymous(app);
    await forged.agent.post('/login').type('form').send({ _csrf: 'A'.repeat(43), email: user.email, password: PASSWORD }).expect(403);
    await request(app).post('/login').type('form').send({ _csrf: forged.csrf, email: user.email, password: PASSWORD }).expect(403);
  });

  it('regenerates the session at sign-in: the pre-login session id stops working', async () => {
    const user = await seedUser(db.current.knex, org, 'clerk');
    const app = buildApp(db.current);
    // A session that existed before sign-in (e.g. planted by an attacker, or one holding a flash message).
    const fixated = crypto.randomBytes(24).toString('base64url');
    await db.current.knex('sessions').insert({ sid: fixated, data: JSON.stringify({ cookie: { path: '/', httpOnly: true } }), expires_at: new Date(Date.now() + 600_000) });
    const before = `vclerk_sid=${encodeURIComponent(`s:${fixated}.${crypto.createHmac('sha256', TEST_SECRET).update(fixated).digest('base64').replace(/=+$/, '')}`)}`;
    const agent = request.agent(app);
    const page = await agent.get('/login').set('Cookie', before).expect(200);
    const res = await agent.post('/login').set('Cookie', before).type('form')
      .send({ _csrf: csrfFrom(page.text), email: user.email, password: PASSWORD }).expect(303);
    const after = sid(res)!;
    assert.ok(after && after !== before, 'a new session id is issued');
    await request(app).get('/dashboard').set('Cookie', after).expect(200);
    await request(app).get('/dashboard').set('Cookie', before).expect(303).expect('Location', /\/login/);
  });

  it('answers an unknown e-mail exactly like a wrong password (no enumeration)', async () => {
    const user = await seedUser(db.current.knex, org, 'clerk');
    const app = buildApp(db.current);
    const a = await anonymous(app);
    const wrong = await a.agent.post('/login').type('form').send({ _csrf: a.csrf, email: user.email, password: 'wrong password here' });
    const b = await anonymous(app);
    const unknown = await b.agent.post('/login').type('form').send({ _csrf: b.csrf, email: 'nobody@example.org', password: 'wrong password here' });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    const message = (text: string) => /<p class="flash flash-error" role="alert">([^<]+)</.exec(text)?.[1];
    assert.equal(message(wrong.text), 'The e-mail address or password is not correct.');
    assert.equal(message(unknown.text), message(wrong.text));
    const failures = await audit('auth.login_failed');
    const known = failures.find((e) => e.target_id === user.id)!;
    assert.equal(known.details.reason, 'wrong_password');
    assert.match(known.ip!, /127\.0\.0\.1/);
    const stranger = failures.find((e) => e.details.reason === 'unknown_account')!;
    assert.equal(stranger.organisation_id, null);
    assert.doesNotMatch(JSON.stringify(stranger), /nobody@example\.org/);
  });

  it('refuses deactivated and invited users with the same answer', async () => {
    const app = buildApp(db.current);
    for (const status of ['deactivated', 'invited'] as const) {
      const user = await seedUser(db.current.knex, org, 'clerk', { status });
      const { agent, csrf } = await anonymous(app);
      const res = await agent.post('/login').type('form').send({ _csrf: csrf, email: user.email, password: PASSWORD }).expect(401);
      assert.match(res.text, /The e-mail address or password is not correct/);
    }
  });

  it('logout destroys the session on the server', async () => {
    const user = await seedUser(db.current.knex, org, 'clerk');
    const app = buildApp(db.current);
    const { agent, csrf } = await signIn(app, user);
    assert.equal(Number((await db.current.knex('sessions').where({ user_id: user.id }).count({ n: '*' }))[0]!.n), 1);
    await agent.post('/logout').type('form').send({ _csrf: csrf }).expect(303).expect('Location', '/login');
    assert.equal(Number((await db.current.knex('sessions').where({ user_id: user.id }).count({ n: '*' }))[0]!.n), 0);
    await agent.get('/dashboard').expect(303).expect('Location', /\/login/);
    assert.equal((await audit('auth.logout').where({ actor_id: user.id })).length, 1);
  });

  describe('CSRF', () => {
    it('refuses state-changing requests without the token, and audits them', async () => {
      const user = await seedUser(db.current.knex, org, 'clerk');
      const app = buildApp(db.current);
      const { agent } = await anonymous(app);
      const res = await agent.post('/login').type('form').send({ email: user.email, password: PASSWORD }).set('Accept', 'application/json').expect(403);
      assert.equal(res.body.error.code, 'csrf_invalid');
      const signedIn = await signIn(app, user);
      await signedIn.agent.post('/logout').type('form').send({ _csrf: 'forged' }).expect(403);
      await signedIn.agent.post('/account/language').type('form').send({ language: 'de' }).expect(403);
      await signedIn.agent.get('/dashboard').expect(200);
      const row = await db.current.knex('users').where({ id: user.id }).first('language');
      assert.equal(row!.language, null, 'nothing changed');
      // Refusals are audited in aggregate: the first of a source at once, the rest counted until the window ends.
      await refusalsFor(db.current.knex).flush();
      const total = await audit('security.csrf_rejected').clearOrder().sum({ n: db.current.knex.raw(REFUSAL_COUNT_SQL) });
      assert.ok(Number(total[0]?.n) >= 3);
    });

    it('accepts the token from the X-CSRF-Token header', async () => {
      const user = await seedUser(db.current.knex, org, 'clerk');
      const { agent, csrf } = await signIn(buildApp(db.current), user);
      await agent.post('/account/language').set('X-CSRF-Token', csrf).type('form').send({ language: 'de' }).expect(303);
    });
  });

  describe('timeouts', () => {
    it('ends a session after the idle timeout', async () => {
      const user = await seedUser(db.current.knex, org, 'clerk');
      const { agent } = await signIn(buildApp(db.current), user);
      await db.current.knex('sessions').where({ user_id: user.id }).update({ expires_at: new Date(Date.now() - 1000) });
      await agent.get('/dashboard').expect(303).expect('Location', /\/login/);
    });

    it('ends a session after the absolute timeout however active it is', async () => {
      const user = await seedUser(db.current.knex, org, 'clerk');
      const { agent } = await signIn(buildApp(db.current), user);
      const thirteenHoursAgo = Date.now() - 13 * 3600_000;
      await db.current.knex('sessions').where({ user_id: user.id })
        .update({ data: db.current.knex.raw(`jsonb_set(data, '{authenticatedAt}', to_jsonb(?::bigint))`, [thirteenHoursAgo]) });
      await agent.get('/dashboard').expect(303).expect('Location', /\/login/);
      assert.equal((await db.current.knex('sessions').where({ user_id: user.id })).length, 0, 'the stale session is destroyed');
    });
  });
});

describe('brute-force protection', () => {
  const db = useTestDatabase();
  const env = { VCLERK_LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', VCLERK_LOGIN_MAX_FAILURES_PER_IP: '8', VCLERK_LOGIN_LOCKOUT_MINUTES: '15' };
  let org: SeededOrganisation;
  before(async () => {
    org = await seedOrganisation(db.current.knex, 'Throttle Bank');
  });

  async function attempt(app: ReturnType<typeof buildApp>, email: string, password: string) {
    const { agent, csrf } = await anonymous(app);
    return agent.post('/login').type('form').send({ _csrf: csrf, email, password });
  }

  it('locks an account after repeated failures, refuses even the right password, audits it; an admin sees it and unlocks', async () => {
    const app = buildApp(db.current, { env });
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const admin = await seedUser(db.current.knex, org, 'admin');
    await db.current.knex('login_throttles').delete();
    for (let i = 0; i < 2; i++) assert.equal((await attempt(app, clerk.email, 'wrong password!!')).status, 401);
    const third = await attempt(app, clerk.email, 'wrong password!!');
    assert.equal(third.status, 429);
    assert.match(third.text, /Sign-in is locked; try again in 15 minutes/);
    const right = await attempt(app, clerk.email, PASSWORD);
    assert.equal(right.status, 429, 'the right password does not pass a lock');

    const [lockout] = await db.current.knex('audit_events').where({ action: 'auth.lockout', target_id: clerk.id });
    assert.equal(lockout!.details.scope, 'account');
    assert.equal(lockout!.organisation_id, org.id);

    const adminBrowser = await signIn(app, admin);
    const list = await adminBrowser.agent.get('/admin/users').expect(200);
    assert.match(list.text, new RegExp(`${clerk.email}[\\s\\S]*?badge-locked`));
    const page = await adminBrowser.agent.get(`/admin/users/${clerk.id}`).expect(200);
    await adminBrowser.agent.post(`/admin/users/${clerk.id}/unlock`).type('form').send({ _csrf: csrfFrom(page.text) }).expect(303);
    assert.equal((await attempt(app, clerk.email, PASSWORD)).status, 303);
    assert.equal((await db.current.knex('audit_events').where({ action: 'user.unlocked', target_id: clerk.id })).length, 1);
  });

  it('releases a lock by itself when it expires', async () => {
    const app = buildApp(db.current, { env });
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    await db.current.knex('login_throttles').delete();
    for (let i = 0; i < 3; i++) await attempt(app, clerk.email, 'wrong password!!');
    assert.equal((await attempt(app, clerk.email, PASSWORD)).status, 429);
    await db.current.knex('login_throttles').update({ locked_until: new Date(Date.now() - 1000) });
    assert.equal((await attempt(app, clerk.email, PASSWORD)).status, 303);
  });

  it('locks unknown e-mail addresses the same way (no enumeration through the lock)', async () => {
    const app = buildApp(db.current, { env });
    await db.current.knex('login_throttles').delete();
    const responses = [];
    for (let i = 0; i < 3; i++) responses.push((await attempt(app, 'ghost@example.org', 'wrong password!!')).status);
    assert.deepEqual(responses, [401, 401, 429]);
  });

  it('locks a client IP address that tries many accounts', async () => {
    const app = buildApp(db.current, { env });
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    await db.current.knex('login_throttles').delete();
    for (let i = 0; i < 8; i++) await attempt(app, `spray${i}@example.org`, 'wrong password!!');
    const res = await attempt(app, clerk.email, PASSWORD);
    assert.equal(res.status, 429, 'the IP is locked even for a valid account');
    const events = await db.current.knex('audit_events').where({ action: 'auth.lockout' }).whereRaw(`details->>'scope' = 'ip'`);
    assert.equal(events.length, 1);
  });
});
