import type { DirectoryIdentity, DirectoryOutcome } from './identity';
import { discover, oidcLibs, type Discovered } from './oidc-discovery';
import { OidcRefusalError, refuse, refusalOf, type OidcRefusal } from './oidc-errors';
import { sameString, verifyIdToken, type Claims } from './oidc-verify';
import { groupsFrom, readClaim, stringClaim, type OidcSettings } from './oidc-settings';

/**
 * OpenID Connect relying party: authorization code flow with PKCE (S256),
 * `state` and `nonce`. openid-client (6) does discovery, the authorization
 * URL, the callback's checks and the code exchange; the ID token is then
 * verified again here with jose against the provider's JWKS and the
 * organisation's algorithm allow-list (openid-client checks the claims but
 * not the signature of an ID token that came over TLS from the token
 * endpoint). Every failure becomes a stable DirectoryRefusal code.
 * No function here logs or returns the client secret or a token.
 */
export { OidcSettings, parseOidcSettings, type OidcSettingsInput } from './oidc-settings';
export { forgetDiscovery } from './oidc-discovery';
export { OidcRefusalError, type OidcRefusal } from './oidc-errors';

/** What the routes keep in the session between `beginOidc` and the callback; single-use. */
export interface OidcPending {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** ms since the epoch */
  createdAt: number;
}

/** A sign-in attempt older than this is refused at the callback (`state_mismatch`). */
export const PENDING_MAX_AGE_MS = 10 * 60 * 1000;

export type OidcOutcome =
  | { ok: true; identity: DirectoryIdentity; /** the provider's session id (`sid`), to match back-channel logout tokens */ sid: string | null }
  | OidcRefusal;

/**
 * Starts a sign-in: the provider's authorization URL to redirect the browser
 * to, and the attempt to keep in the session until the callback. Throws an
 * OidcRefusalError (reason `directory_unavailable`, `tls_failed`,
 * `wrong_issuer`, ...) when the provider cannot be discovered.
 */
export async function beginOidc(settings: OidcSettings, extra: { loginHint?: string; prompt?: 'login' | 'select_account' } = {}): Promise<{ url: string; pending: OidcPending }> {
  const { oidc } = await oidcLibs();
  let config;
  try {
    ({ config } = await discover(settings));
  } catch (err) {
    throw new OidcRefusalError(refusalOf(err, 'discovery'));
  }
  const pending: OidcPending = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier(), createdAt: Date.now() };
  const params: Record<string, string> = {
    response_type: 'code',
    redirect_uri: settings.redirectUri,
    scope: settings.scopes.join(' '),
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
    code_challenge_method: 'S256',
  };
  if (extra.loginHint) params.login_hint = extra.loginHint;
  if (extra.prompt) params.prompt = extra.prompt;
  return { url: oidc.buildAuthorizationUrl(config, params).href, pending };
}

/** Where used values are remembered (SeenOnce: in the database, for every node). */
export interface UsedOnce {
  firstUse(key: string): Promise<boolean>;
}

const CALLBACK_PARAMS = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri', 'session_state'];

/** The callback's parameters on the configured redirect URI (the host and path the browser came in on do not matter). */
function callbackUrl(settings: OidcSettings, callback: URL | string | URLSearchParams | Record<string, unknown>): URL {
  let source: URLSearchParams;
  if (callback instanceof URL) source = callback.searchParams;
  else if (typeof callback === 'string') source = new URL(callback, settings.redirectUri).searchParams;
  else if (callback instanceof URLSearchParams) source = callback;
  else {
    source = new URLSearchParams();
    for (const [k, v] of Object.entries(callback)) if (typeof v === 'string') source.set(k, v);
  }
  const url = new URL(settings.redirectUri);
  for (const name of CALLBACK_PARAMS) {
    const values = source.getAll(name);
    if (values.length > 1) throw new Error(`the callback repeats "${name}"`);
    if (values.length === 1) url.searchParams.set(name, values[0]!);
  }
  return url;
}

/**
 * The callback: checks `state` against the pending attempt (and that it is
 * fresh and unused), exchanges the code with the PKCE verifier, verifies the
 * ID token and reads the identity from its claims.
 */
export async function completeOidc(
  settings: OidcSettings,
  pending: OidcPending | null | undefined,
  callback: URL | string | URLSearchParams | Record<string, unknown>,
  /** The states already used, on every node (a replayed callback fails even if the session still had its pending attempt). */
  consumed: UsedOnce,
  now = Date.now(),
): Promise<OidcOutcome> {
  let url: URL;
  try {
    url = callbackUrl(settings, callback);
  } catch (err) {
    return refuse('provider_error', (err as Error).message);
  }
  const error = url.searchParams.get('error');
  const state = url.searchParams.get('state');
  if (!pending || typeof pending.state !== 'string' || !state || !sameString(state, pending.state)) return refuse('state_mismatch', pending ? 'state differs' : 'no sign-in in progress');
  if (!(now - pending.createdAt < PENDING_MAX_AGE_MS && pending.createdAt <= now + 60_000)) return refuse('state_mismatch', 'sign-in attempt expired');
  if (!(await consumed.firstUse(`state:${pending.state}`))) return refuse('state_mismatch', 'callback replayed');
  if (error) return refuse('provider_error', error.slice(0, 60));

  let discovered: Discovered;
  try {
    discovered = await discover(settings);
  } catch (err) {
    return refusalOf(err, 'discovery');
  }
  const { oidc } = await oidcLibs();
  let idToken: string | undefined;
  try {
    const tokens = await oidc.authorizationCodeGrant(discovered.config, url, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    idToken = tokens.id_token;
  } catch (err) {
    return refusalOf(err, 'exchange');
  }
  if (!idToken) return refuse('token_invalid', 'no id_token');
  const verified = await verifyIdToken(settings, discovered, idToken, pending.nonce, now);
  if (!verified.ok) return verified;
  return { ok: true, identity: identityFrom(settings, verified.claims), sid: stringClaim(verified.claims.sid) };
}

function identityFrom(settings: OidcSettings, claims: Claims): DirectoryIdentity {
  const email = stringClaim(readClaim(claims, settings.emailClaim));
  // An address the provider says it has not verified is not used to match or create anyone.
  const unverified = settings.emailClaim === 'email' && claims.email_verified === false;
  return {
    kind: 'oidc',
    subject: claims.sub as string,
    email: email && !unverified ? email.toLowerCase() : null,
    name: stringClaim(readClaim(claims, settings.nameClaim)),
    groups: groupsFrom(readClaim(claims, settings.groupsClaim)),
  };
}

export type { DirectoryOutcome };
export { verifyLogoutToken, oidcLogoutSupport, oidcEndSessionUrl, type OidcLogoutSupport, type LogoutTokenOutcome } from './oidc-logout';
export { oidcTest, type OidcTestReport } from './oidc-test';
