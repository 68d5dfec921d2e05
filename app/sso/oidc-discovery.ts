import crypto from 'node:crypto';
import type { ClientMetadata, Configuration, CustomFetch, ServerMetadata } from 'openid-client' with { 'resolution-mode': 'import' };
import { providerFetch, PROVIDER_TIMEOUT_MS } from './oidc-http';
import { isLoopbackHttp, type OidcSettings } from './oidc-settings';

/**
 * Discovery of an OpenID provider, cached per issuer and client for a
 * bounded time: openid-client's configuration (server metadata, client
 * authentication) and jose's remote key set for the provider's JWKS.
 * openid-client 6 and jose 6 are ES modules: TypeScript (module node16)
 * keeps these dynamic imports real `import()`s, which a CommonJS module may
 * use on every Node version VClerk supports.
 */
const importOidc = () => import('openid-client');
const importJose = () => import('jose');
export type OidcLib = Awaited<ReturnType<typeof importOidc>>;
export type JoseLib = Awaited<ReturnType<typeof importJose>>;

let libs: Promise<{ oidc: OidcLib; jose: JoseLib }> | undefined;
export function oidcLibs(): Promise<{ oidc: OidcLib; jose: JoseLib }> {
  libs ??= Promise.all([importOidc(), importJose()]).then(([oidc, jose]) => ({ oidc, jose }));
  return libs;
}

export interface Discovered {
  config: Configuration;
  metadata: ServerMetadata;
  /** Resolves the provider's signing key for a JWS header (jose remote JWKS, cached and refreshed on an unknown `kid`). */
  jwks: ReturnType<JoseLib['createRemoteJWKSet']> | undefined;
  fetch: ReturnType<typeof providerFetch>;
  expires: number;
}

/** How long a discovery result is reused before the document is fetched again. */
export const DISCOVERY_TTL_MS = 10 * 60 * 1000;
const MAX_ENTRIES = 32;
const cache = new Map<string, Promise<Discovered>>();

function cacheKey(settings: OidcSettings): string {
  const digest = (v: string | undefined) => (v === undefined ? '-' : crypto.createHash('sha256').update(v).digest('base64url'));
  return JSON.stringify([settings.issuer, settings.clientId, digest(settings.clientSecret), digest(settings.caPem), settings.clockSkewSeconds]);
}

export function discover(settings: OidcSettings, now = Date.now()): Promise<Discovered> {
  const key = cacheKey(settings);
  const hit = cache.get(key);
  if (hit) {
    return hit.then((entry) => (entry.expires > now ? entry : refresh(settings, key)));
  }
  return refresh(settings, key);
}

/** Forgets every cached discovery (tests; an admin saving new settings gets new keys anyway). */
export function forgetDiscovery(): void {
  cache.clear();
}

function refresh(settings: OidcSettings, key: string): Promise<Discovered> {
  const pending = load(settings);
  cache.delete(key);
  cache.set(key, pending);
  while (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value!);
  // A failed discovery is not cached: the next sign-in tries again.
  pending.catch(() => {
    if (cache.get(key) === pending) cache.delete(key);
  });
  return pending;
}

async function load(settings: OidcSettings): Promise<Discovered> {
  const { oidc, jose } = await oidcLibs();
  const fetch = providerFetch({ caPem: settings.caPem });
  const metadata: Partial<ClientMetadata> = { [oidc.clockTolerance]: settings.clockSkewSeconds };
  const auth = settings.clientSecret ? oidc.ClientSecretBasic(settings.clientSecret) : oidc.None();
  const config = await oidc.discovery(new URL(settings.issuer), settings.clientId, metadata, auth, {
    [oidc.customFetch]: fetch as CustomFetch,
    timeout: PROVIDER_TIMEOUT_MS / 1000,
    execute: isLoopbackHttp(settings.issuer) ? [oidc.allowInsecureRequests] : [],
  });
  const server = config.serverMetadata();
  if (server.jwks_uri && !(server.jwks_uri.startsWith('https://') || isLoopbackHttp(server.jwks_uri))) {
    throw new Error('the provider\'s jwks_uri is not an https URL');
  }
  const jwks = server.jwks_uri
    ? jose.createRemoteJWKSet(new URL(server.jwks_uri), {
        [jose.customFetch]: fetch as never,
        timeoutDuration: PROVIDER_TIMEOUT_MS,
        cooldownDuration: 30_000,
        cacheMaxAge: DISCOVERY_TTL_MS,
      })
    : undefined;
  return { config, metadata: server, jwks, fetch, expires: Date.now() + DISCOVERY_TTL_MS };
}
