import crypto from 'node:crypto';
import type { Discovered } from './oidc-discovery';
import { oidcLibs } from './oidc-discovery';
import { refuse, refusalOf, type OidcRefusal } from './oidc-errors';
import type { OidcSettings } from './oidc-settings';

/** The checks of a signed JWT from the provider (ID token, logout token), with jose. */

export function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export type Claims = Record<string, unknown>;

/** Signature (JWKS, or the client secret for an allowed HS*), algorithm allow-list, iss, aud/azp, exp/iat with the skew, nonce. */
export async function verifyIdToken(settings: OidcSettings, discovered: Discovered, token: string, nonce: string, now = Date.now()): Promise<{ ok: true; claims: Claims } | OidcRefusal> {
  const checked = await verifyJwt(settings, discovered, token, now);
  if (!checked.ok) return checked;
  const { claims } = checked;
  if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 255) return refuse('token_invalid', 'sub');
  if (typeof claims.exp !== 'number') return refuse('token_invalid', 'exp missing');
  if (typeof claims.nonce !== 'string' || !sameString(claims.nonce, nonce)) return refuse('nonce_mismatch', 'nonce');
  return checked;
}

/** The JWS checks ID tokens and logout tokens share. */
export async function verifyJwt(settings: OidcSettings, discovered: Discovered, token: string, now: number): Promise<{ ok: true; claims: Claims; typ?: string } | OidcRefusal> {
  const { jose } = await oidcLibs();
  let header: { alg?: unknown; typ?: unknown };
  try {
    header = jose.decodeProtectedHeader(token);
  } catch {
    return refuse('token_invalid', 'not a JWS');
  }
  const alg = typeof header.alg === 'string' ? header.alg : '';
  if (alg === 'none' || !(settings.allowedAlgs as readonly string[]).includes(alg)) return refuse('alg_not_allowed', alg.slice(0, 20) || 'missing');
  const hmac = alg.startsWith('HS');
  if (hmac && !settings.clientSecret) return refuse('alg_not_allowed', `${alg} without a client secret`);
  if (!hmac && !discovered.jwks) return refuse('misconfigured', 'the provider publishes no jwks_uri');
  try {
    const key = hmac ? new TextEncoder().encode(settings.clientSecret) : discovered.jwks!;
    const options = {
      algorithms: [...settings.allowedAlgs],
      issuer: discovered.metadata.issuer,
      audience: settings.clientId,
      clockTolerance: settings.clockSkewSeconds,
      currentDate: new Date(now),
      requiredClaims: ['iss', 'aud', 'iat'],
    };
    const { payload } = hmac ? await jose.jwtVerify(token, key as Uint8Array, options) : await jose.jwtVerify(token, discovered.jwks!, options);
    const claims = payload as Claims;
    if (typeof claims.iat !== 'number' || claims.iat > now / 1000 + settings.clockSkewSeconds) return refuse('token_invalid', 'iat in the future');
    const aud = claims.aud;
    if (Array.isArray(aud) && aud.length > 1 && claims.azp !== settings.clientId) return refuse('wrong_audience', 'azp');
    if (claims.azp !== undefined && claims.azp !== settings.clientId) return refuse('wrong_audience', 'azp');
    return { ok: true, claims, typ: typeof header.typ === 'string' ? header.typ : undefined };
  } catch (err) {
    return refusalOf(err, 'token');
  }
}

