import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import request from 'supertest';
import { generateKey } from '../app/api-keys/service';
import { REFUSAL_COUNT_SQL, refusalsFor } from '../app/audit/refusals';
import { csrfFrom, seedOrganisation, seedUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { connect, sessionCookie } from './support/signal-client';

/**
 * Issue 13, finding 3: an unauthenticated flood must not starve the
 * database. The real app with its HTTP server and signalling on loopback;
 * hundreds of bad-token sockets, bad API keys and wrong sign-ins at once,
 * while a signed-in clerk keeps loading the dashboard. Counts only, no timings.
 */
describe('an unauthenticated flood', () => {
  const db = useTestDatabase();
  let server: CallServer;
  const SOCKETS = 300;
  const API_KEYS = 500;
  const SIGN_INS = 100;
  const REFUSAL_ACTIONS = ['security.signalling_refused', 'api.refused', 'auth.login_failed', 'security.rate_limited'];

  before(async () => {
    server = await startCallServer(db.current);
  });
  after(async () => server?.close());

  it('leaves a signed-in user\'s pages answering, and audits the refusals in aggregate', async function () {
    this.timeout(120_000);
    const knex = db.current.knex;
    const org = await seedOrganisation(knex, 'Flood Bank');
    const clerk = await seedUser(knex, org, 'clerk');
    const cookie = await sessionCookie(server.url, clerk);
    const form = await request(server.url).get('/login').expect(200);
    const formCookie = String(form.headers['set-cookie']).split(';')[0]!;
    const lastId = Number((await knex('audit_events').max({ id: 'id' }))[0]?.id ?? 0);

    const sockets = Array.from({ length: SOCKETS }, () =>
      connect(server.url, { token: crypto.randomBytes(32).toString('base64url') }).then(
        (s) => {
          s.close();
          return 'connected';
        },
        (err: Error) => err.message,
      ));
    const apiCalls = Array.from({ length: API_KEYS }, () =>
      request(server.url).get('/api/v1/whoami').set('Authorization', `Bearer ${generateKey()}`).then((r) => `${r.status} ${r.body?.error?.code}`));
    const signIns = Array.from({ length: SIGN_INS }, (_, i) =>
      request(server.url).post('/login').set('Cookie', formCookie).set('Accept', 'application/json').type('form')
        .send({ _csrf: csrfFrom(form.text), email: `flood${i}@example.org`, password: 'not the password' }).then((r) => r.status));
    const flood = Promise.all([Promise.all(sockets), Promise.all(apiCalls), Promise.all(signIns)]);
    let floodDone = false;
    void flood.finally(() => (floodDone = true));

    // The signed-in clerk works through the flood (bounded: at most 40 loads).
    const dashboard: number[] = [];
    while (dashboard.length < 40 && (!floodDone || dashboard.length < 5)) {
      const res = await request(server.url).get('/dashboard').set('Cookie', cookie);
      dashboard.push(res.status);
    }
    const [socketOutcomes, apiOutcomes, signInStatuses] = await flood;

    const tally = (xs: (string | number)[]) => xs.reduce<Record<string, number>>((acc, x) => ({ ...acc, [x]: (acc[x] ?? 0) + 1 }), {});
    console.log('      sockets', tally(socketOutcomes), 'api', tally(apiOutcomes), 'sign-ins', tally(signInStatuses), `dashboard loads ${dashboard.length}`);
    assert.ok(dashboard.every((s) => s === 200), `dashboard answers: ${dashboard.join(' ')}`);
    assert.ok(socketOutcomes.every((o) => o === 'token_invalid' || o === 'rate_limited'), 'every bad socket refused cleanly (no internal_error)');
    assert.ok(apiOutcomes.every((o) => o === '401 api_key_invalid' || o === '429 rate_limited'));
    assert.ok(signInStatuses.every((s) => s === 401 || s === 429));
    assert.ok(socketOutcomes.filter((o) => o === 'rate_limited').length > 0 && apiOutcomes.some((o) => o.startsWith('429')), 'the limiter answered the rest');

    const rowsDuringFlood = Number((await knex('audit_events').where('id', '>', lastId).count({ n: '*' }))[0]!.n);
    await refusalsFor(knex).flush();
    const rows = await knex('audit_events').where('id', '>', lastId).whereIn('action', REFUSAL_ACTIONS).select('action', 'details');
    const counted = Number((await knex('audit_events').where('id', '>', lastId).whereIn('action', REFUSAL_ACTIONS).sum({ n: knex.raw(REFUSAL_COUNT_SQL) }))[0]!.n);
    const allRows = Number((await knex('audit_events').where('id', '>', lastId).count({ n: '*' }))[0]!.n);
    const refusals = SOCKETS + API_KEYS + SIGN_INS;
    console.log(`      ${refusals} refusals: ${rowsDuringFlood} audit rows during the flood, ${allRows} after the flush; counts sum to ${counted}`);
    assert.ok(allRows < 20, `${allRows} audit rows for ${refusals} refusals`);
    assert.equal(counted, refusals, 'the aggregated counts add up to every refusal');
    assert.ok(rows.some((r) => r.details.aggregated === true && (r.details.count as number) > 100));
  });
});
