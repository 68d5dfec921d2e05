import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { passwordVerifications } from '../app/security/passwords';
import { csrfFrom, PASSWORD, seedOrganisation, seedUser, signIn, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/**
 * Issue 13, finding 2: the lockout must hold against concurrent attempts.
 * Each attempt is reserved (counted) in one atomic step before its password
 * is evaluated, so a burst cannot pass the check together; argon2
 * verifications are counted to see how many attempts were evaluated.
 */
describe('brute-force protection under concurrency', () => {
  const db = useTestDatabase();
  const MAX_ACCOUNT = 5;
  const MAX_IP = 20;
  // The DB throttle alone: the pre-database limiter is set out of the way here (its own test below).
  const env = {
    VCLERK_LOGIN_MAX_FAILURES_PER_ACCOUNT: String(MAX_ACCOUNT),
    VCLERK_LOGIN_MAX_FAILURES_PER_IP: String(MAX_IP),
    VCLERK_LOGIN_LOCKOUT_MINUTES: '15',
    VCLERK_TRUST_PROXY: 'loopback',
    VCLERK_REFUSAL_BURST: '10000',
  };
  let org: SeededOrganisation;
  let server: http.Server;
  let url: string;
  let nextIp = 1;
  const freshIp = () => `198.51.100.${nextIp++}`;

  before(async () => {
    org = await seedOrganisation(db.current.knex, 'Race Bank');
    server = http.createServer(buildApp(db.current, { env }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** The sign-in form's CSRF token and its cookie (anonymous forms carry no session). */
  async function form(): Promise<{ cookie: string; csrf: string }> {
    const page = await request(url).get('/login').expect(200);
    return { cookie: String(page.headers['set-cookie']).split(';')[0]!, csrf: csrfFrom(page.text) };
  }

  function attempt(f: { cookie: string; csrf: string }, ip: string, email: string, password: string) {
    return request(url).post('/login').set('Cookie', f.cookie).set('X-Forwarded-For', ip).type('form').send({ _csrf: f.csrf, email, password });
  }

  it('of 150 concurrent wrong guesses at most the account limit are evaluated, and the right password inside the burst does not sign in', async () => {
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const f = await form();
    const ip = freshIp();
    const before = passwordVerifications.count;
    const burst = Array.from({ length: 151 }, (_, i) => attempt(f, ip, clerk.email, i === 100 ? PASSWORD : `wrong guess ${i}`));
    const responses = await Promise.all(burst);
    const evaluated = passwordVerifications.count - before;
    const statuses = responses.map((r) => r.status);
    console.log(`      151 concurrent sign-ins: ${evaluated} evaluated, ${statuses.filter((s) => s === 429).length} refused as locked, ${statuses.filter((s) => s >= 500).length} errors`);
    assert.ok(evaluated <= MAX_ACCOUNT, `${evaluated} evaluated`);
    assert.equal(statuses.filter((s) => s >= 500).length, 0, 'no 500 (no duplicate key on login_throttles)');
    assert.equal(statuses.filter((s) => s === 303).length, 0, 'nobody signed in');
    assert.ok(statuses.every((s) => s === 401 || s === 429), `statuses: ${[...new Set(statuses)].join(', ')}`);
    assert.equal(responses[100]!.status, 429, 'the right password inside the burst is refused');
    assert.equal((await db.current.knex('audit_events').where({ action: 'auth.lockout', target_id: clerk.id })).length, 1, 'the lockout is audited once');
    // Still locked afterwards, for the right password too.
    assert.equal((await attempt(f, freshIp(), clerk.email, PASSWORD)).status, 429);
  });

  it('of 200 concurrent sign-ins from one IP with different e-mails at most the per-IP limit are evaluated', async () => {
    const f = await form();
    const ip = freshIp();
    const before = passwordVerifications.count;
    const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => attempt(f, ip, `spray${i}@example.org`, 'wrong password!!')));
    const evaluated = passwordVerifications.count - before;
    console.log(`      200 concurrent sign-ins from one IP: ${evaluated} evaluated`);
    assert.ok(evaluated <= MAX_IP, `${evaluated} evaluated`);
    assert.ok(responses.every((r) => r.status === 401 || r.status === 429));
    assert.equal(responses.filter((r) => r.status === 401).length + responses.filter((r) => r.status === 429).length, 200);
  });

  it('a right password in time signs in and gives its IP reservation back', async () => {
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const f = await form();
    const ip = freshIp();
    for (let i = 0; i < MAX_IP - 1; i++) await attempt(f, ip, clerk.email, PASSWORD).expect(303);
    const row = await db.current.knex('login_throttles').where({ key: `ip:${ip}` }).first();
    assert.equal(row?.failures ?? 0, 0, 'successful sign-ins are not counted against the IP');
  });

  it('retries on a locked account are not counted against the address: a colleague behind the same NAT still signs in', async () => {
    const locked = await seedUser(db.current.knex, org, 'clerk');
    const colleague = await seedUser(db.current.knex, org, 'clerk');
    const f = await form();
    const ip = freshIp();
    for (let i = 0; i < MAX_ACCOUNT; i++) await attempt(f, ip, locked.email, `wrong guess ${i}`);
    for (let i = 0; i < MAX_IP; i++) await attempt(f, ip, locked.email, PASSWORD).expect(429);
    const row = await db.current.knex('login_throttles').where({ key: `ip:${ip}` }).first();
    assert.equal(row!.failures, MAX_ACCOUNT, 'only the evaluated attempts count');
    await attempt(f, ip, colleague.email, PASSWORD).expect(303);
  });

  it('answers 429 rate_limited with Retry-After before any database work once an IP has used up its refusals', async () => {
    const app = buildApp(db.current, { env: { ...env, VCLERK_REFUSAL_BURST: '10', VCLERK_REFUSAL_PER_MINUTE: '1' } });
    const page = await request(app).get('/login').expect(200);
    const f = { cookie: String(page.headers['set-cookie']).split(';')[0]!, csrf: csrfFrom(page.text) };
    const ip = freshIp();
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      request(app).post('/login').set('Cookie', f.cookie).set('X-Forwarded-For', ip).set('Accept', 'application/json').type('form')
        .send({ _csrf: f.csrf, email: `limit${i}@example.org`, password: 'wrong password!!' })));
    const limited = responses.filter((r) => r.status === 429 && r.body?.error?.code === 'rate_limited');
    assert.equal(limited.length, 30, 'beyond the burst of 10, every attempt is refused by the limiter');
    assert.ok(limited.every((r) => Number(r.headers['retry-after']) >= 1));
    const row = await db.current.knex('login_throttles').where({ key: `ip:${ip}` }).first();
    assert.equal(row!.failures, 10, 'only the 10 within the burst reached the database');
  });

  describe('the current-password check of the password change', () => {
    it('is throttled per user: after the limit even the right password is refused, until the window passes', async () => {
      const app = buildApp(db.current, { env });
      const clerk = await seedUser(db.current.knex, org, 'clerk');
      const { agent, csrf } = await signIn(app, clerk);
      const ip = freshIp();
      const change = (current: string) => agent.post('/account/password').set('X-Forwarded-For', ip).type('form')
        .send({ _csrf: csrf, current_password: current, password: 'a brand new passphrase here', password_confirm: 'a brand new passphrase here' });

      const before = passwordVerifications.count;
      const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => change(`wrong current ${i}`)));
      const evaluated = passwordVerifications.count - before;
      console.log(`      30 concurrent wrong current passwords: ${evaluated} evaluated`);
      assert.ok(evaluated <= MAX_ACCOUNT, `${evaluated} evaluated`);
      assert.ok(responses.every((r) => r.status === 400));
      assert.equal(responses.filter((r) => /The current password is not correct/.test(r.text)).length, evaluated);

      const right = await change(PASSWORD).expect(400);
      assert.match(right.text, /Too many wrong attempts/);
      const unchanged = await db.current.knex('users').where({ id: clerk.id }).first('password_changed_at');
      assert.equal(unchanged!.password_changed_at, null, 'the right password did not pass the lock');
      assert.equal((await db.current.knex('audit_events').where({ action: 'auth.lockout', target_id: clerk.id })).length, 1);

      // The window passes (for the user's key and the IP's, which the 30 attempts locked too).
      await db.current.knex('login_throttles').whereIn('key', [`password:${clerk.id}`, `ip:${ip}`]).update({ locked_until: new Date(Date.now() - 1000) });
      await change(PASSWORD).expect(303);
      assert.ok((await db.current.knex('users').where({ id: clerk.id }).first('password_changed_at'))!.password_changed_at instanceof Date);
      assert.equal(await db.current.knex('login_throttles').where({ key: `password:${clerk.id}` }).first(), undefined, 'cleared by the right password');
    });
  });
});
