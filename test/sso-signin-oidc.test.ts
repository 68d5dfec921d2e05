import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { BACKCHANNEL_LOGOUT_EVENT } from '../app/sso/oidc-logout';
import { forgetDiscovery } from '../app/sso/oidc-client';
import { seedOrganisation, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { decodeJwt, startTestProvider, tamperPayload, type TestProvider } from './support/oidc-provider';
import { seedSsoProvider } from './support/sso';

/**
 * OpenID Connect single sign-on through the routes, against a real
 * provider (oidc-provider on 127.0.0.1, test/support/oidc-provider.ts) and
 * the app listening on 127.0.0.1 (its public URL, so that the provider can
 * send back-channel logout tokens to it): the code flow, the role from the
 * groups claim, a tampered ID token and a replayed callback refused, a
 * person removed from the group refused with their session ended, and
 * back-channel logout by `sid` and by `sub`.
 */
describe('SSO: OpenID Connect sign-in through the routes', function () {
  this.timeout(60000);
  const db = useTestDatabase();
  let op: TestProvider;
  let org: SeededOrganisation;
  let server: http.Server;
  let base: string;

  before(async function () {
    this.timeout(60000);
    org = await seedOrganisation(db.current.knex, 'Oidc Bank');
    server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    server.on('request', buildApp(db.current, { env: { VCLERK_PUBLIC_URL: base } }));
    op = await startTestProvider({ redirectUri: `${base}/sso/${org.slug}/oidc/callback`, backchannelLogoutUri: `${base}/sso/${org.slug}/oidc/backchannel-logout` });
    await seedSsoProvider(db.current.knex, org.id, 'oidc', {
      settings: { issuer: op.issuer, clientId: op.clientId },
      secret: op.clientSecret,
      mappings: [
        { directory_group: 'vclerk-admins', role: 'admin' },
        { directory_group: 'vclerk-clerks', role: 'clerk' },
        { directory_group: 'vclerk-compliance', role: 'compliance' },
      ],
    });
  });

  after(async () => {
    forgetDiscovery();
    await op?.close();
    if (server) await new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  });

  const knex = () => db.current.knex;
  const audit = (action: string) => knex()('audit_events').where({ action, organisation_id: org.id }).orderBy('id');

  /** The browser's way: the chooser, the start (a redirect to the provider), the provider's redirects, the callback. */
  async function signIn(sub: string, options: { rewrite?: (idToken: string) => string | Promise<string> } = {}) {
    const agent = request.agent(base);
    const chooser = await agent.get(`/sso/${org.slug}`).expect(200);
    assert.match(chooser.text, new RegExp(`href="/sso/${org.slug}/oidc"`));
    const start = await agent.get(`/sso/${org.slug}/oidc`).expect(303);
    op.signInAs(sub);
    if (options.rewrite) op.rewriteNextIdToken(options.rewrite);
    const callback = await op.authorize(start.headers.location!);
    const callbackPath = `${callback.pathname}${callback.search}`;
    const res = await agent.get(callbackPath);
    return { agent, res, callbackPath };
  }

  const sessionsOf = async (userId: string) => knex()('sessions').where({ user_id: userId });

  it('signs in through the code flow with the role from the groups claim, keeping the provider session id', async () => {
    const { agent, res } = await signIn('bob-0002');
    assert.equal(res.status, 303, res.text);
    assert.equal(res.headers.location, '/dashboard');
    await agent.get('/dashboard').expect(200);
    const bob = await knex()('users').where({ email: 'bob@example.test' }).first();
    assert.equal(bob?.role, 'clerk');
    assert.equal(bob?.sso_subject, 'bob-0002');
    const [session] = await sessionsOf(bob.id);
    assert.equal(session?.data?.oidcSub, 'bob-0002');
    assert.ok(session?.data?.oidcSid, 'the provider session id is kept for logout');
    assert.equal(session?.data?.oidcPending, undefined, 'the pending attempt is gone');
    const [event] = await audit('auth.login_succeeded').where({ actor_id: bob.id });
    assert.equal(event?.details?.method, 'oidc');
    const alice = await signIn('alice-0001');
    assert.equal(alice.res.status, 303);
    assert.equal((await knex()('users').where({ email: 'alice@example.test' }).first())?.role, 'admin');
  });

  it('refuses a tampered ID token, audited, with no session', async () => {
    const { agent, res } = await signIn('bob-0002', { rewrite: tamperPayload });
    assert.equal(res.status, 403);
    assert.match(res.text, /could not be verified/);
    assert.ok((await audit('sso.login_refused')).some((e) => e.details?.reason === 'token_invalid'));
    assert.notEqual((await agent.get('/dashboard')).status, 200);
  });

  it('refuses an expired, wrong-audience, wrong-issuer or unsigned (alg: none) ID token, each audited with its reason', async () => {
    const now = () => Math.floor(Date.now() / 1000);
    const craft = (change: (claims: Record<string, unknown>) => void, key: 'provider' | 'none' = 'provider') => async (real: string) => {
      const { payload } = decodeJwt(real);
      change(payload);
      return op.mint(payload, { key });
    };
    const cases: [string, (idToken: string) => Promise<string>][] = [
      ['token_expired', craft((c) => Object.assign(c, { iat: now() - 7200, exp: now() - 3600 }))],
      ['wrong_audience', craft((c) => (c.aud = 'another-client'))],
      ['wrong_issuer', craft((c) => (c.iss = 'http://127.0.0.1:9'))],
      ['alg_not_allowed', craft(() => undefined, 'none')],
    ];
    for (const [reason, rewrite] of cases) {
      const before = (await audit('sso.login_refused')).length;
      const { agent, res } = await signIn('alice-0001', { rewrite });
      assert.equal(res.status, 403, `${reason}: ${res.status}`);
      assert.match(res.text, /could not be verified/);
      const refusals = (await audit('sso.login_refused')).slice(before);
      assert.deepEqual(refusals.map((e) => e.details?.reason), [reason]);
      assert.notEqual((await agent.get('/dashboard')).status, 200);
    }
  });

  it('refuses a replayed callback', async () => {
    const { agent, res, callbackPath } = await signIn('bob-0002');
    assert.equal(res.status, 303);
    const replayed = await agent.get(callbackPath);
    assert.equal(replayed.status, 403);
    assert.match(replayed.text, /expired or was already used/);
    // Another browser replaying it has no attempt under way either.
    const stranger = await request(base).get(callbackPath);
    assert.equal(stranger.status, 403);
    assert.ok((await audit('sso.login_refused')).some((e) => e.details?.reason === 'state_mismatch'));
  });

  it('refuses a person removed from the mapped group and ends their session', async () => {
    const first = await signIn('bob-0002');
    assert.equal(first.res.status, 303);
    await first.agent.get('/dashboard').expect(200);
    op.setGroups('bob-0002', ['someone-else']);
    try {
      const second = await signIn('bob-0002');
      assert.equal(second.res.status, 403);
      assert.match(second.res.text, /in no group that may use VClerk/);
      assert.notEqual((await first.agent.get('/dashboard')).status, 200, 'the earlier session ended');
    } finally {
      op.setGroups('bob-0002', ['vclerk-clerks']);
    }
  });

  it('ends the session the provider logs out over the back channel (by sid), and all of a subject\'s (by sub)', async () => {
    const one = await signIn('bob-0002');
    const two = await signIn('bob-0002');
    await one.agent.get('/dashboard').expect(200);
    await two.agent.get('/dashboard').expect(200);
    const bob = (await knex()('users').where({ email: 'bob@example.test' }).first())!;
    const sessions = await sessionsOf(bob.id);
    const sid = sessions.map((s) => s.data.oidcSid as string).find(Boolean)!;
    // The real provider sends the logout token for one provider session to the app's back-channel URI.
    await op.backchannelLogout('bob-0002', sid);
    const left = await sessionsOf(bob.id);
    assert.equal(left.length, sessions.length - 1, 'exactly the session of that sid ended');
    assert.ok(!left.some((s) => s.data.oidcSid === sid));
    const [logout] = await audit('auth.logout').where({ target_id: bob.id });
    assert.equal(logout?.details?.method, 'oidc_backchannel');
    assert.equal(logout?.details?.by, 'sid');

    // A token with only the subject ends all of the subject's sessions; replaying it is refused.
    const now = Math.floor(Date.now() / 1000);
    const token = await op.mint({ iss: op.issuer, aud: op.clientId, iat: now, exp: now + 120, jti: crypto.randomUUID(), sub: 'bob-0002', events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }, { typ: 'logout+jwt' });
    const ok = await request(base).post(`/sso/${org.slug}/oidc/backchannel-logout`).type('form').send({ logout_token: token });
    assert.equal(ok.status, 200, ok.text);
    assert.match(String(ok.headers['cache-control']), /no-store/);
    assert.equal((await sessionsOf(bob.id)).length, 0);
    assert.notEqual((await two.agent.get('/dashboard')).status, 200);
    const replay = await request(base).post(`/sso/${org.slug}/oidc/backchannel-logout`).type('form').send({ logout_token: token });
    assert.equal(replay.status, 400);
    assert.equal(replay.body.code, 'replayed');

    // A forged token (another key) or none at all: 400 with a stable code, nothing ends.
    const forged = await op.mint({ iss: op.issuer, aud: op.clientId, iat: now, jti: crypto.randomUUID(), sub: 'alice-0001', events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }, { key: 'other', typ: 'logout+jwt' });
    const bad = await request(base).post(`/sso/${org.slug}/oidc/backchannel-logout`).type('form').send({ logout_token: forged });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'invalid_request');
    assert.equal(typeof bad.body.code, 'string');
    const none = await request(base).post(`/sso/${org.slug}/oidc/backchannel-logout`).type('form').send({});
    assert.equal(none.status, 400);
    assert.equal(none.body.code, 'token_invalid');
  });
});
