import { z } from 'zod';

/**
 * One organisation's OpenID Connect settings, as the relying-party client
 * (`oidc-client.ts`) needs them. The client secret is a secret: it is never
 * logged, audited, shown back or returned by any function of app/sso.
 */

/** Signature algorithms an ID token may use unless the admin allows others. Never `none`. */
export const DEFAULT_OIDC_ALGS = ['RS256', 'ES256', 'PS256'] as const;
/** Every algorithm the allow-list may name: asymmetric ones, and HMAC (keyed with the client secret) only when listed explicitly. */
export const OIDC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'HS256', 'HS384', 'HS512'] as const;
export type OidcAlg = (typeof OIDC_ALGS)[number];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** `https:`, or `http:` only for a provider on this machine (tests, a provider beside the appliance). */
export function acceptableIssuerUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password || url.search || url.hash) return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && LOOPBACK.has(url.hostname);
}

/** Whether requests to this URL may go without TLS (loopback http only). */
export function isLoopbackHttp(value: string): boolean {
  const url = new URL(value);
  return url.protocol === 'http:' && LOOPBACK.has(url.hostname);
}

const claimPath = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_:\-/.]+$/, 'a claim name, or a dotted path such as realm_access.roles');

export const OidcSettings = z.object({
  /** The issuer identifier exactly as the provider's discovery document states it. */
  issuer: z
    .string()
    .trim()
    .max(500)
    .refine(acceptableIssuerUrl, 'an https URL (http only for 127.0.0.1 or localhost), without credentials, query or fragment'),
  clientId: z.string().trim().min(1).max(500),
  /** Secret; optional for public clients (PKCE only). */
  clientSecret: z.string().min(1).max(4000).optional(),
  /** The callback URL of VClerk's routes, registered at the provider. */
  redirectUri: z.url({ protocol: /^https?$/ }).max(2000),
  scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/))
    .max(30)
    .default(['openid', 'email', 'profile'])
    .refine((s) => s.includes('openid'), 'the scopes must include openid'),
  /** Where the groups or roles are: a claim name or a dotted path (Keycloak: `realm_access.roles`). */
  groupsClaim: claimPath.default('groups'),
  emailClaim: claimPath.default('email'),
  nameClaim: claimPath.default('name'),
  allowedAlgs: z
    .array(z.enum(OIDC_ALGS))
    .min(1)
    .max(OIDC_ALGS.length)
    .default([...DEFAULT_OIDC_ALGS]),
  clockSkewSeconds: z.number().int().min(0).max(300).default(60),
  /** PEM of a CA to trust for the provider's TLS, in addition to the public ones. */
  caPem: z
    .string()
    .max(100_000)
    .refine((pem) => pem.includes('-----BEGIN CERTIFICATE-----'), 'a PEM certificate')
    .optional(),
});
export type OidcSettings = z.output<typeof OidcSettings>;
export type OidcSettingsInput = z.input<typeof OidcSettings>;

/** Parses and defaults settings (throws a ZodError on bad input; the message never contains the secret's value). */
export function parseOidcSettings(input: OidcSettingsInput): OidcSettings {
  return OidcSettings.parse(input);
}

/** Reads a claim by name, or by a dotted path when no claim has the whole name (`realm_access.roles`). */
export function readClaim(claims: Record<string, unknown>, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(claims, path)) return claims[path];
  let value: unknown = claims;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The groups claim as strings: an array of strings/numbers, or one string (some providers send one group that way). */
export function groupsFrom(value: unknown): string[] {
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  const out: string[] = [];
  for (const item of list) {
    if (typeof item === 'string' && item.length > 0 && item.length <= 1000) out.push(item);
    else if (typeof item === 'number' && Number.isFinite(item)) out.push(String(item));
    if (out.length >= 1000) break;
  }
  return [...new Set(out)];
}

export function stringClaim(value: unknown): string | null {
  return typeof value === 'string' && value.trim().length > 0 ? value.trim().slice(0, 500) : null;
}
