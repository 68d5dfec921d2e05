import { discover } from './oidc-discovery';
import { refusalOf, type OidcRefusal } from './oidc-errors';
import type { OidcSettings } from './oidc-settings';

/**
 * The admin's *Test* button: what discovery found and how the claims would
 * be read. Nothing secret: the client secret is reported only as set or not.
 */
export interface OidcTestReport {
  ok: true;
  issuer: string;
  endpoints: { authorization: string | null; token: string | null; userinfo: string | null; jwks: string | null; endSession: string | null };
  /** ID token signature algorithms the provider offers, and those of them the allow-list accepts. */
  algorithmsOffered: string[];
  algorithmsUsable: string[];
  keys: { count: number; algorithms: string[] } | null;
  scopesRequested: string[];
  scopesSupported: string[] | null;
  claimsSupported: string[] | null;
  pkceS256: boolean | null;
  logout: { backchannel: boolean; frontchannel: boolean; endSession: boolean };
  mapping: {
    groupsClaim: string;
    emailClaim: string;
    nameClaim: string;
    /** Whether the provider lists the claim (null: it lists no claims, or the setting is a dotted path). */
    groupsClaimAdvertised: boolean | null;
  };
  client: { clientId: string; redirectUri: string; authentication: 'client_secret_basic' | 'none'; secretSet: boolean };
  warnings: string[];
}

export async function oidcTest(settings: OidcSettings): Promise<OidcTestReport | OidcRefusal> {
  let discovered;
  try {
    discovered = await discover(settings);
  } catch (err) {
    return refusalOf(err, 'discovery');
  }
  const m = discovered.metadata;
  const strings = (v: unknown): string[] | null => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : null);
  const offered = strings(m.id_token_signing_alg_values_supported) ?? [];
  const usable = offered.filter((alg) => (settings.allowedAlgs as readonly string[]).includes(alg));
  const claims = strings(m.claims_supported);
  const warnings: string[] = [];
  if (offered.length > 0 && usable.length === 0) warnings.push('no_common_algorithm');
  const pkce = strings(m.code_challenge_methods_supported);
  if (pkce && !pkce.includes('S256')) warnings.push('pkce_s256_not_offered');
  if (settings.groupsClaim && claims && !settings.groupsClaim.includes('.') && !claims.includes(settings.groupsClaim)) warnings.push('groups_claim_not_listed');
  let keys: OidcTestReport['keys'] = null;
  if (m.jwks_uri) {
    try {
      const response = await discovered.fetch(m.jwks_uri, { headers: { accept: 'application/json' } });
      const body = (await response.json()) as { keys?: { alg?: unknown; kty?: unknown }[] };
      const list = Array.isArray(body.keys) ? body.keys : [];
      keys = { count: list.length, algorithms: [...new Set(list.map((k) => (typeof k.alg === 'string' ? k.alg : `${String(k.kty)} (no alg)`)))] };
    } catch {
      warnings.push('jwks_unreachable');
    }
  } else warnings.push('no_jwks_uri');
  return {
    ok: true,
    issuer: m.issuer,
    endpoints: {
      authorization: m.authorization_endpoint ?? null,
      token: m.token_endpoint ?? null,
      userinfo: m.userinfo_endpoint ?? null,
      jwks: m.jwks_uri ?? null,
      endSession: typeof m.end_session_endpoint === 'string' ? m.end_session_endpoint : null,
    },
    algorithmsOffered: offered,
    algorithmsUsable: usable,
    keys,
    scopesRequested: [...settings.scopes],
    scopesSupported: strings(m.scopes_supported),
    claimsSupported: claims,
    pkceS256: pkce ? pkce.includes('S256') : null,
    logout: { backchannel: m.backchannel_logout_supported === true, frontchannel: m.frontchannel_logout_supported === true, endSession: typeof m.end_session_endpoint === 'string' },
    mapping: {
      groupsClaim: settings.groupsClaim,
      emailClaim: settings.emailClaim,
      nameClaim: settings.nameClaim,
      groupsClaimAdvertised: claims && !settings.groupsClaim.includes('.') ? claims.includes(settings.groupsClaim) : null,
    },
    client: { clientId: settings.clientId, redirectUri: settings.redirectUri, authentication: settings.clientSecret ? 'client_secret_basic' : 'none', secretSet: Boolean(settings.clientSecret) },
    warnings,
  };
}
