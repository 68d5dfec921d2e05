import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { REFUSAL_COUNT_SQL, refusalsFor } from '../app/audit/refusals';
import { SecuritySignals } from '../app/compliance/security';
import { passwordVerifications } from '../app/security/passwords';
import { VerificationGate } from '../app/security/verify-gate';
import { csrfFrom, PASSWORD, seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/**
 * Issue 17, abuse: a sign-in flood from many client addresses. Real
 * distinct source addresses on loopback (the client sockets bound to
 * 127.0.0.2 … 127.0.0.200; the app trusts no proxy, so the socket address is
 * the client IP), against one account and against many, bounded counts.
 * Throttling engages per account and per address, refusals are audited with
 * the client IP and counted as security signals, and a colleague from
 * another address still signs in during and right after the flood.
 */
describe('a sign-in flood from many addresses (issue 17)', () => {
  const db = useTestDatabase();
  const MAX_ACCOUNT = 5;
  const MAX_IP = 5;
  const env = {
    VCLERK_LOGIN_MAX_FAILURES_PER_ACCOUNT: String(MAX_ACCOUNT),
    VCLERK_LOGIN_MAX_FAILURES_PER_IP: String(MAX_IP),
    VCLERK_LOGIN_LOCKOUT_MINUTES: '15',
  };
  let org: SeededOrganisation;
  let server: http.Server;
  let port: number;
  let form: { cookie: string; csrf: string };
  /** 127.0.0.2 … 127.0.0.200: a few for each test, never reused (the limits are per address). */
  let nextHost = 2;
  const addresses = (n: number) => Array.from({ length: n }, () => {
    assert.ok(nextHost <= 200, 'out of loopback addresses');
    return `127.0.0.${nextHost++}`;
  });

  interface Answer { status: number; retryAfter: number | null; location: string | null }

  /** One sign-in from a socket bound to `from` (no keep-alive: each attempt its own connection). */
  function attempt(from: string, email: string, password: string, headers: Record<string, string> = {}): Promise<Answer> {
    const body = new URLSearchParams({ _csrf: form.csrf, email, password }).toString();
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port, localAddress: from, method: 'POST', path: '/login', agent: false,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body), Cookie: form.cookie, Accept: 'text/html', ...headers },
      }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] ? Number(res.headers['retry-after']) : null, location: res.headers.location ?? null }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  const tally = (xs: number[]) => xs.reduce<Record<number, number>>((acc, x) => ({ ...acc, [x]: (acc[x] ?? 0) + 1 }), {});
  const knex = () => db.current.knex;

  before(async () => {
    org = await seedOrganisation(knex(), 'Flood Login Bank');
    // Views cached as in production: the flood measures the sign-in, not EJS compiling a page per answer.
    const nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      server = http.createServer(buildApp(db.current, { env }));
    } finally {
      if (nodeEnv === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = nodeEnv;
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    const page = await request(`http://127.0.0.1:${port}`).get('/login').expect(200);
    form = { cookie: String(page.headers['set-cookie']).split(';')[0]!, csrf: csrfFrom(page.text) };
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Every refusal since `sinceId`, summed over aggregated rows, by action. */
  async function auditedRefusals(sinceId: number): Promise<{ rows: { action: string; ip: string | null }[]; counted: Record<string, number> }> {
    await refusalsFor(knex()).flush();
    const rows = await knex()('audit_events').where('id', '>', sinceId).whereIn('action', ['auth.login_failed', 'auth.lockout', 'security.rate_limited']).select('action', 'ip');
    const sums = await knex()('audit_events').where('id', '>', sinceId).whereIn('action', ['auth.login_failed', 'auth.lockout', 'security.rate_limited']).groupBy('action').select('action').sum({ n: knex().raw(REFUSAL_COUNT_SQL) });
    return { rows, counted: Object.fromEntries(sums.map((s) => [s.action as string, Number(s.n)])) };
  }
  const lastAuditId = async () => Number((await knex()('audit_events').max({ id: 'id' }))[0]?.id ?? 0);

  it('one account from 60 addresses: at most the account limit is evaluated, the rest 429 with Retry-After, audited with the addresses; a colleague signs in during and after', async function () {
    this.timeout(60_000);
    const victim = await seedUser(knex(), org, 'clerk');
    const colleague = await seedUser(knex(), org, 'clerk');
    const [colleagueHost] = addresses(1);
    const flooders = addresses(60);
    const since = await lastAuditId();
    const before = passwordVerifications.count;

    const flood = Promise.all(flooders.flatMap((from, i) => [attempt(from, victim.email, `wrong guess ${i}a`), attempt(from, victim.email, `wrong guess ${i}b`)]));
    const during = await attempt(colleagueHost!, colleague.email, PASSWORD);
    const answers = await flood;
    const evaluated = passwordVerifications.count - before - 1;
    const statuses = answers.map((a) => a.status);
    console.log(`      ${answers.length} guesses at one account from ${flooders.length} addresses: ${evaluated} evaluated, statuses ${JSON.stringify(tally(statuses))}`);

    assert.equal(during.status, 303, 'the colleague signed in during the flood');
    assert.ok(evaluated <= MAX_ACCOUNT, `${evaluated} guesses evaluated`);
    assert.ok(statuses.every((s) => s === 401 || s === 429), 'wrong or locked, no 500');
    const refused = answers.filter((a) => a.status === 429);
    assert.ok(refused.length >= answers.length - MAX_ACCOUNT);
    assert.ok(refused.every((a) => a.retryAfter !== null && a.retryAfter >= 1), 'every 429 says when to come back (Retry-After)');

    // The account is locked per policy: the right password from a fresh address is refused too.
    const [fresh] = addresses(1);
    assert.equal((await attempt(fresh!, victim.email, PASSWORD)).status, 429);
    // And the colleague still signs in right after.
    assert.equal((await attempt(colleagueHost!, colleague.email, PASSWORD)).status, 303);

    const { rows, counted } = await auditedRefusals(since);
    const lockouts = rows.filter((r) => r.action === 'auth.lockout');
    assert.equal(lockouts.length, 1, 'the lockout audited once');
    assert.ok(flooders.includes(lockouts[0]!.ip!), `the lockout carries a flooding address (${lockouts[0]!.ip})`);
    assert.equal(counted['auth.login_failed'], answers.length + 1, 'every refused sign-in is audited (aggregated), the last one too');
    const failedIps = new Set(rows.filter((r) => r.action === 'auth.login_failed').map((r) => r.ip));
    assert.ok([...failedIps].every((ip) => ip === fresh || flooders.includes(ip!)), 'refusals carry the client address');
    assert.ok(failedIps.size >= flooders.length, `refusals of ${failedIps.size} addresses`);
    const signals = await new SecuritySignals(knex()).counts(org.id);
    assert.ok(signals.find((s) => s.kind === 'auth.login_failed')!.day >= answers.length, 'detectable in the security signals');
    assert.ok(signals.find((s) => s.kind === 'auth.lockout')!.day >= 1);
  });

  it('many accounts from 30 addresses: each address stops at its limit (429, Retry-After), the guesses are bounded, and a colleague from another address signs in during and after the flood', async function () {
    this.timeout(60_000);
    const targets: SeededUser[] = [];
    for (let i = 0; i < 10; i++) targets.push(await seedUser(knex(), org, 'clerk'));
    const colleague = await seedUser(knex(), org, 'clerk');
    const [colleagueHost] = addresses(1);
    const flooders = addresses(30);
    const PER_ADDRESS = 6;
    const since = await lastAuditId();
    const before = passwordVerifications.count;

    // Each address sprays 20 accounts (10 real, 10 unknown).
    const flood = Promise.all(flooders.flatMap((from, a) => Array.from({ length: PER_ADDRESS }, (_, k) => {
      const n = a * PER_ADDRESS + k;
      return attempt(from, n % 2 ? targets[(n >> 1) % targets.length]!.email : `spray-${(n >> 1) % 10}@example.org`, `spray guess ${n}`);
    })));
    // The colleague comes once the flood is being evaluated.
    while (passwordVerifications.count - before < 10) await new Promise((r) => setTimeout(r, 5));
    const startedAt = passwordVerifications.count;
    const during = await attempt(colleagueHost!, colleague.email, PASSWORD);
    const aheadOfColleague = passwordVerifications.count - startedAt;
    const answers = await flood;
    const evaluated = passwordVerifications.count - before - 1;
    const statuses = answers.map((a) => a.status);
    console.log(`      ${answers.length} guesses at many accounts from ${flooders.length} addresses: ${evaluated} evaluated, statuses ${JSON.stringify(tally(statuses))}; ${aheadOfColleague} verifications ran while the colleague waited`);

    assert.equal(during.status, 303, 'the colleague signed in during the flood');
    // How long the colleague waits is reported, not asserted: on a shared machine the wait before the
    // password check (accepting the connection, the database) is the CPU's; the order of the checks
    // themselves is asserted on the gate below.
    assert.ok(evaluated <= Math.min(20 * MAX_ACCOUNT, flooders.length * MAX_IP), `${evaluated} guesses evaluated, at most ${MAX_ACCOUNT} per account (20) and ${MAX_IP} per address`);
    assert.ok(statuses.every((s) => s === 401 || s === 429), 'wrong or locked, no 500');
    const refused = answers.filter((a) => a.status === 429);
    assert.ok(refused.length >= answers.length - flooders.length * MAX_IP, 'each address refused beyond its limit');
    assert.ok(refused.every((a) => a.retryAfter !== null && a.retryAfter >= 1), 'every 429 says when to come back (Retry-After)');
    // An address's guesses at accounts already locked are not charged to it (a shared office address
    // stays usable), so not every address reaches its own lock; none passes its limit.
    const charged = await knex()('login_throttles').whereIn('key', flooders.map((ip) => `ip:${ip}`)).select('failures', 'locked_until');
    assert.ok(charged.every((r) => r.failures <= MAX_IP), 'no address evaluated beyond its limit');
    assert.ok(charged.some((r) => r.locked_until !== null && r.locked_until > new Date()), 'addresses are locked');

    assert.equal((await attempt(colleagueHost!, colleague.email, PASSWORD)).status, 303, 'the colleague signs in right after');
    const { rows, counted } = await auditedRefusals(since);
    assert.equal(counted['auth.login_failed'], answers.length, 'every refused sign-in is audited (aggregated)');
    assert.ok(rows.filter((r) => r.action === 'auth.lockout').every((r) => flooders.includes(r.ip!)));
    assert.ok(rows.filter((r) => r.action === 'auth.lockout').length >= flooders.length, 'each address lockout audited');
  });

  it('an address past its refusal burst is answered 429 rate_limited before any database work, with Retry-After', async function () {
    this.timeout(60_000);
    const [from] = addresses(1);
    const before = passwordVerifications.count;
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => attempt(from!, `burst-${i}@example.org`, 'wrong password!!', { Accept: 'application/json' })));
    assert.ok(passwordVerifications.count - before <= MAX_IP);
    assert.ok(answers.filter((a) => a.status === 429).length >= 60 - 30, 'the limiter answered beyond the burst');
    assert.ok(answers.every((a) => a.status === 401 || (a.status === 429 && a.retryAfter! >= 1)));
  });

  it('X-Forwarded-For from a client the app does not trust does not make it many addresses', async function () {
    this.timeout(60_000);
    const [from] = addresses(1);
    const before = passwordVerifications.count;
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => attempt(from!, `xff-${i}@example.org`, 'wrong password!!', { 'X-Forwarded-For': `198.51.100.${i + 1}` })));
    assert.ok(passwordVerifications.count - before <= MAX_IP, 'counted against the socket address');
    assert.ok(answers.every((a) => a.status === 401 || a.status === 429));
    const row = await knex()('login_throttles').where({ key: `ip:${from}` }).first();
    assert.equal(row?.failures, MAX_IP);
    assert.equal(await knex()('login_throttles').where('key', 'like', 'ip:198.51.100.%').first(), undefined);
  });

  it('behind a trusted proxy, addresses of one IPv6 /64 count as one client: the per-address limit holds', async function () {
    this.timeout(60_000);
    // The proxy is on loopback; the client addresses come in X-Forwarded-For.
    const app = buildApp(db.current, { env: { ...env, VCLERK_TRUST_PROXY: 'loopback' } });
    const before = passwordVerifications.count;
    const answers = await Promise.all(Array.from({ length: 25 }, (_, i) =>
      request(app).post('/login').set('Cookie', form.cookie).set('X-Forwarded-For', `2001:db8:17:17::${(i + 1).toString(16)}`).type('form')
        .send({ _csrf: form.csrf, email: `v6-${i}@example.org`, password: 'wrong password!!' })));
    const evaluated = passwordVerifications.count - before;
    console.log(`      25 guesses from 25 addresses of one /64: ${evaluated} evaluated, statuses ${JSON.stringify(tally(answers.map((a) => a.status)))}`);
    assert.ok(evaluated <= MAX_IP, `${evaluated} evaluated`);
    assert.ok(answers.every((a) => a.status === 401 || (a.status === 429 && Number(a.headers['retry-after']) >= 1)));
    // The refusals are still audited with each client's own address.
    const { rows } = await auditedRefusals(0);
    assert.ok(rows.some((r) => r.ip === '2001:db8:17:17::19'));
  });
});

describe('password checks are scheduled fairly across clients (issue 17)', () => {
  it('a client arriving behind a flood from many addresses waits for one check per address, not for the whole flood', async () => {
    const gate = new VerificationGate(1);
    const order: string[] = [];
    const releases: (() => void)[] = [];
    const check = (client: string) => gate.run(client, () => new Promise<void>((resolve) => {
      order.push(client);
      releases.push(resolve);
    }));
    // 10 flooding addresses with 5 checks each, then a colleague.
    const flood = Array.from({ length: 10 }, (_, a) => Array.from({ length: 5 }, () => check(`flood-${a}`))).flat();
    const colleague = check('colleague');
    assert.equal(gate.queued, 50, 'one running, the rest waiting');
    while (order.length < 51 || releases.length > 0) {
      releases.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all([...flood, colleague]);
    assert.equal(order.length, 51);
    const at = order.indexOf('colleague');
    assert.ok(at <= 11, `the colleague ran ${at}th, after one check of each flooding address`);
    assert.equal(new Set(order.slice(1, 11)).size, 10, 'round robin over the addresses');
  });

  it('runs at most its concurrency at once, and goes on after a check fails', async () => {
    const gate = new VerificationGate(2);
    let running = 0;
    let peak = 0;
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => gate.run(`c${i % 3}`, async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      if (i % 4 === 0) throw new Error('bad hash');
      return i;
    })));
    assert.equal(peak, 2);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 9);
    assert.equal(gate.queued, 0);
  });
});
