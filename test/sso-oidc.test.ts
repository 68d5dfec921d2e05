import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  beginOidc,
  completeOidc,
  forgetDiscovery,
  oidcEndSessionUrl,
  oidcLogoutSupport,
  oidcTest,
  OidcRefusalError,
  OidcSettings,
  parseOidcSettings,
  PENDING_MAX_AGE_MS,
  verifyLogoutToken,
  type OidcOutcome,
  type OidcSettingsInput,
} from '../app/sso/oidc-client';
import { createSelfSignedCertificate } from '../app/net/self-signed';
import { SeenOnce } from '../app/sso/seen-once';
import { createKnex } from '../app/db/connection';
import { useTestDatabase } from './support/database';
import { decodeJwt, startTestProvider, tamperPayload, type IdTokenRewrite, type TestProvider } from './support/oidc-provider';

describe('sso: OpenID Connect relying party against a real provider (oidc-provider on 127.0.0.1)', function () {
  this.timeout(30_000);
  let op: TestProvider;
  let settings: OidcSettings;
  const db = useTestDatabase();
  /** Used states, in the test database as on every node. */
  let used: SeenOnce;
  const withSettings = (overrides: Partial<OidcSettingsInput>) =>
    parseOidcSettings({ issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret, redirectUri: op.redirectUri, ...overrides });

  before(async () => {
    const started = Date.now();
    op = await startTestProvider();
    if (process.env.OIDC_TIMING) console.log(`provider started in ${Date.now() - started} ms`);
    settings = withSettings({});
    used = new SeenOnce(db.current.knex, PENDING_MAX_AGE_MS);
  });
  after(async () => {
    forgetDiscovery();
    await op?.close();
  });

  /** One sign-in: authorization URL, the provider's redirects, the callback. */
  async function signIn(as: string, options: { settings?: OidcSettings; rewrite?: IdTokenRewrite } = {}): Promise<OidcOutcome> {
    const s = options.settings ?? settings;
    op.signInAs(as);
    const { url, pending } = await beginOidc(s);
    if (options.rewrite) op.rewriteNextIdToken(options.rewrite);
    const callback = await op.authorize(url);
    return completeOidc(s, pending, callback, used);
  }

  /** An ID token with the real one's claims changed, signed with the provider's key unless told otherwise. */
  const craft =
    (change: (claims: Record<string, unknown>) => void, key: 'provider' | 'other' | 'client-secret' | 'none' = 'provider'): IdTokenRewrite =>
    async (real) => {
      const { payload } = decodeJwt(real);
      change(payload);
      return op.mint(payload, { key });
    };
  const now = () => Math.floor(Date.now() / 1000);
  const refusedWith = (outcome: OidcOutcome, reason: string) => {
    assert.equal(outcome.ok, false, `expected a refusal (${reason}), got ${JSON.stringify(outcome)}`);
    if (!outcome.ok) assert.equal(outcome.reason, reason, `detail: ${outcome.detail}`);
    if (process.env.OIDC_DEBUG && !outcome.ok) console.log(`      ${outcome.reason}: ${outcome.detail}`);
  };

  it('the Test report shows discovery and the claims mapping, never the secret', async () => {
    const report = await oidcTest(settings);
    assert.ok(report.ok);
    assert.equal(report.issuer, op.issuer);
    assert.equal(report.endpoints.token, `${op.issuer}/token`);
    assert.deepEqual(report.algorithmsUsable, ['RS256']);
    assert.ok(report.algorithmsOffered.includes('HS256'));
    assert.deepEqual(report.keys, { count: 1, algorithms: ['RS256'] });
    assert.equal(report.mapping.groupsClaim, 'groups');
    assert.equal(report.mapping.groupsClaimAdvertised, true);
    assert.equal(report.client.secretSet, true);
    assert.ok(!JSON.stringify(report).includes(op.clientSecret));
    const logout = await oidcLogoutSupport(settings);
    assert.deepEqual(logout, { ok: true, backchannel: true, backchannelSession: true, frontchannel: false, frontchannelSession: false, endSessionEndpoint: `${op.issuer}/session/end` });
    const end = new URL((await oidcEndSessionUrl(settings, { postLogoutRedirectUri: 'http://127.0.0.1:9/' }))!);
    assert.equal(end.searchParams.get('client_id'), op.clientId);
  });

  it('an unreachable provider is directory_unavailable', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = withSettings({ issuer: `http://127.0.0.1:${port}` });
    const report = await oidcTest(unreachable);
    assert.equal(report.ok, false);
    if (!report.ok) assert.equal(report.reason, 'directory_unavailable');
    await assert.rejects(beginOidc(unreachable), (err: OidcRefusalError) => err instanceof OidcRefusalError && err.reason === 'directory_unavailable');
  });

  it("a provider's TLS is checked: its own CA (caPem) is trusted beside the public ones, without it tls_failed", async () => {
    const day = 24 * 3600 * 1000;
    const { certPem, keyPem } = createSelfSignedCertificate({ commonName: '127.0.0.1', dnsNames: [], ipAddresses: ['127.0.0.1'], notBefore: new Date(Date.now() - day), notAfter: new Date(Date.now() + day) });
    let issuer = '';
    const server = https.createServer({ cert: certPem, key: keyPem }, (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') {
        res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['ES256'] }));
      } else res.end(JSON.stringify({ keys: [] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const untrusted = await oidcTest(withSettings({ issuer }));
      assert.equal(untrusted.ok, false);
      if (!untrusted.ok) assert.equal(untrusted.reason, 'tls_failed', `detail: ${untrusted.detail}`);
      const trusted = await oidcTest(withSettings({ issuer, caPem: certPem }));
      assert.ok(trusted.ok, JSON.stringify(trusted));
      assert.deepEqual(trusted.algorithmsUsable, ['ES256']);
      assert.deepEqual(trusted.keys, { count: 0, algorithms: [] });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('sign-in gives the identity with the groups claim; a changed group shows at the next sign-in', async () => {
    const first = await signIn('alice-0001');
    assert.ok(first.ok, JSON.stringify(first));
    assert.deepEqual(first.identity, { kind: 'oidc', subject: 'alice-0001', email: 'alice@example.test', name: 'Alice Admin', groups: ['vclerk-admins', 'staff'] });
    assert.ok(first.sid);
    assert.ok(!JSON.stringify(first).includes(op.clientSecret));

    op.setGroups('alice-0001', ['staff']);
    const second = await signIn('alice-0001');
    assert.ok(second.ok);
    assert.deepEqual(second.identity.groups, ['staff']);
    op.setGroups('alice-0001', ['vclerk-admins', 'staff']);
  });

  it('reads a dotted groups path (Keycloak realm_access.roles); an e-mail the provider has not verified is not used', async () => {
    const outcome = await signIn('carol-0003', { settings: withSettings({ groupsClaim: 'realm_access.roles' }) });
    assert.ok(outcome.ok);
    assert.deepEqual(outcome.identity.groups, ['vclerk-compliance']);
    assert.equal(outcome.identity.email, null);
  });

  it('a tampered ID token (one payload byte) is token_invalid; one signed with another key too', async () => {
    refusedWith(await signIn('bob-0002', { rewrite: tamperPayload }), 'token_invalid');
    refusedWith(await signIn('bob-0002', { rewrite: craft(() => {}, 'other') }), 'token_invalid');
  });

  it('an expired ID token is token_expired; within the clock skew it passes, without skew it does not', async () => {
    refusedWith(await signIn('bob-0002', { rewrite: craft((c) => Object.assign(c, { iat: now() - 7200, exp: now() - 3600 })) }), 'token_expired');
    const justExpired = craft((c) => Object.assign(c, { iat: now() - 600, exp: now() - 20 }));
    assert.ok((await signIn('bob-0002', { rewrite: justExpired })).ok);
    refusedWith(await signIn('bob-0002', { settings: withSettings({ clockSkewSeconds: 0 }), rewrite: justExpired }), 'token_expired');
  });

  it('a wrong audience, a wrong issuer and a wrong nonce are refused with their codes', async () => {
    refusedWith(await signIn('bob-0002', { rewrite: craft((c) => (c.aud = 'another-client')) }), 'wrong_audience');
    refusedWith(await signIn('bob-0002', { rewrite: craft((c) => ((c.aud = [op.clientId, 'another-client']), delete c.azp)) }), 'wrong_audience');
    refusedWith(await signIn('bob-0002', { rewrite: craft((c) => (c.iss = 'http://127.0.0.1:1')) }), 'wrong_issuer');
    refusedWith(await signIn('bob-0002', { rewrite: craft((c) => (c.nonce = 'not-the-nonce')) }), 'nonce_mismatch');
  });

  it('alg none is refused, and HS256 with the client secret unless the allow-list names it', async () => {
    refusedWith(await signIn('bob-0002', { rewrite: craft(() => {}, 'none') }), 'alg_not_allowed');
    const hs256 = craft(() => {}, 'client-secret');
    refusedWith(await signIn('bob-0002', { rewrite: hs256 }), 'alg_not_allowed');
    const allowed = await signIn('bob-0002', { settings: withSettings({ allowedAlgs: ['RS256', 'HS256'] }), rewrite: hs256 });
    assert.ok(allowed.ok, JSON.stringify(allowed));
    assert.throws(() => withSettings({ allowedAlgs: ['none' as never] }));
  });

  it('a replayed callback, a wrong state, a stale or missing attempt and a provider error are refused', async () => {
    op.signInAs('bob-0002');
    const { url, pending } = await beginOidc(settings);
    const callback = await op.authorize(url);
    const wrong = new URL(callback);
    wrong.searchParams.set('state', 'forged-state');
    refusedWith(await completeOidc(settings, pending, wrong, used), 'state_mismatch');
    assert.ok((await completeOidc(settings, pending, callback, used)).ok);
    refusedWith(await completeOidc(settings, pending, callback, used), 'state_mismatch');
    // Replayed to another node (its own pool, the same database): refused there too.
    const otherNode = createKnex(db.current.url, 1);
    try {
      refusedWith(await completeOidc(settings, { ...pending }, callback, new SeenOnce(otherNode, PENDING_MAX_AGE_MS)), 'state_mismatch');
    } finally {
      await otherNode.destroy();
    }
    refusedWith(await completeOidc(settings, { ...pending }, Object.fromEntries(callback.searchParams), used), 'state_mismatch');
    refusedWith(await completeOidc(settings, null, callback, used), 'state_mismatch');

    const stale = await beginOidc(settings);
    const staleCallback = await op.authorize(stale.url);
    refusedWith(await completeOidc(settings, { ...stale.pending, createdAt: Date.now() - 11 * 60_000 }, staleCallback, used), 'state_mismatch');

    const denied = await beginOidc(settings);
    refusedWith(await completeOidc(settings, denied.pending, { state: denied.pending.state, error: 'access_denied' }, used), 'provider_error');
  });

  it('the wrong client secret is misconfigured; a used code under a fresh state (another process) is refused by the provider', async () => {
    op.signInAs('bob-0002');
    const bad = withSettings({ clientSecret: 'not-the-secret' });
    const first = await beginOidc(bad);
    refusedWith(await completeOidc(bad, first.pending, await op.authorize(first.url), used), 'misconfigured');

    const { url, pending } = await beginOidc(settings);
    const callback = await op.authorize(url);
    assert.ok((await completeOidc(settings, pending, callback, used)).ok);
    const replay = { ...pending, state: 'a-state-this-process-never-saw' };
    const params = Object.fromEntries(callback.searchParams);
    refusedWith(await completeOidc(settings, replay, { ...params, state: replay.state }, used), 'provider_error');
  });

  it("verifyLogoutToken accepts the provider's real back-channel logout token and refuses a tampered or wrong one", async () => {
    const outcome = await signIn('alice-0001');
    assert.ok(outcome.ok && outcome.sid);
    op.logoutTokens.length = 0;
    await op.backchannelLogout('alice-0001', outcome.sid);
    assert.equal(op.logoutTokens.length, 1);
    const real = op.logoutTokens[0]!;
    const verified = await verifyLogoutToken(settings, real);
    assert.ok(verified.ok, JSON.stringify(verified));
    assert.equal(verified.sub, 'alice-0001');
    assert.equal(verified.sid, outcome.sid);
    assert.ok(verified.jti);

    const claims = decodeJwt(real).payload;
    const refused = async (token: string, reason: string) => {
      const answer = await verifyLogoutToken(settings, token);
      assert.equal(answer.ok, false, `expected ${reason}`);
      if (!answer.ok) assert.equal(answer.reason, reason, `detail: ${answer.detail}`);
    };
    await refused(tamperPayload(real), 'token_invalid');
    const [h, p, s] = real.split('.');
    const flipped = Buffer.from(p!, 'base64url');
    flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 1;
    await refused(`${h}.${flipped.toString('base64url')}.${s}`, 'token_invalid');
    await refused(await op.mint({ ...claims, events: undefined }, { typ: 'logout+jwt' }), 'token_invalid');
    await refused(await op.mint({ ...claims, nonce: 'n' }, { typ: 'logout+jwt' }), 'token_invalid');
    await refused(await op.mint({ ...claims, sub: undefined, sid: undefined }, { typ: 'logout+jwt' }), 'token_invalid');
    await refused(await op.mint({ ...claims, aud: 'another-client' }, { typ: 'logout+jwt' }), 'wrong_audience');
    await refused(await op.mint({ ...claims, iat: now() - 3600 }, { typ: 'logout+jwt' }), 'token_expired');
    await refused(await op.mint(claims, { key: 'none' }), 'alg_not_allowed');
    await refused(await op.mint(claims, { key: 'other', typ: 'logout+jwt' }), 'token_invalid');
    await refused('not a token', 'token_invalid');
  });

  it('settings: http only on loopback, the skew bounded, no secret in validation errors', () => {
    const base = { clientId: 'c', redirectUri: 'https://vclerk.example/auth/oidc/callback' };
    assert.ok(OidcSettings.safeParse({ ...base, issuer: 'https://login.example.com/realms/x' }).success);
    assert.ok(OidcSettings.safeParse({ ...base, issuer: 'http://localhost:8080' }).success);
    assert.ok(!OidcSettings.safeParse({ ...base, issuer: 'http://login.example.com' }).success);
    assert.ok(!OidcSettings.safeParse({ ...base, issuer: 'https://login.example.com', clockSkewSeconds: 301 }).success);
    const parsed = OidcSettings.parse({ ...base, issuer: 'https://login.example.com' });
    assert.deepEqual(parsed.allowedAlgs, ['RS256', 'ES256', 'PS256']);
    assert.deepEqual(parsed.scopes, ['openid', 'email', 'profile']);
    assert.equal(parsed.clockSkewSeconds, 60);
    const failed = OidcSettings.safeParse({ ...base, issuer: 'ftp://x', clientSecret: 'super-secret-value' });
    assert.ok(!failed.success && !JSON.stringify(failed.error.issues).includes('super-secret-value'));
  });
});
