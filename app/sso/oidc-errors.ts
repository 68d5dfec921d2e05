import type { DirectoryRefusal } from './identity';

/**
 * Turns what openid-client (oauth4webapi codes), jose (JOSE error codes) or
 * the network threw into the stable refusal codes of identity.ts. The detail
 * is a short technical reason for the audit trail: built from error codes,
 * claim names and the provider's OAuth error code only, never from token
 * contents or the client secret.
 */
export type OidcRefusal = { ok: false; reason: DirectoryRefusal; detail?: string };

/** Thrown by `beginOidc` when the provider cannot be used (discovery failed): carries the refusal code for the audit trail. */
export class OidcRefusalError extends Error {
  readonly reason: DirectoryRefusal;
  readonly detail: string | undefined;
  constructor(refusal: OidcRefusal) {
    super(`oidc: ${refusal.reason}${refusal.detail ? ` (${refusal.detail})` : ''}`);
    this.name = 'OidcRefusalError';
    this.reason = refusal.reason;
    this.detail = refusal.detail;
  }
}

export function refuse(reason: DirectoryRefusal, detail?: string): OidcRefusal {
  return detail === undefined ? { ok: false, reason } : { ok: false, reason, detail: detail.slice(0, 200) };
}

interface Facts {
  codes: string[];
  claim?: string;
  oauthError?: string;
  messages: string[];
}

function facts(err: unknown): Facts {
  const out: Facts = { codes: [], messages: [] };
  let current: unknown = err;
  for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
    const e = current as { code?: unknown; claim?: unknown; error?: unknown; message?: unknown; cause?: unknown };
    if (typeof e.code === 'string') out.codes.push(e.code);
    if (typeof e.claim === 'string' && out.claim === undefined) out.claim = e.claim;
    if (typeof e.error === 'string' && out.oauthError === undefined) out.oauthError = e.error;
    if (typeof e.message === 'string') out.messages.push(e.message);
    const cause = e.cause as { claim?: unknown } | undefined;
    if (cause && typeof cause === 'object' && typeof cause.claim === 'string' && out.claim === undefined) out.claim = cause.claim;
    current = e.cause;
  }
  return out;
}

const NETWORK = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|UND_ERR_\w+|ERR_JWKS_TIMEOUT|ABORT_ERR|OAUTH_TIMEOUT)$/;
const TLS = /^(CERT_\w+|UNABLE_TO_\w+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_\w+|ERR_SSL_\w+|HOSTNAME_MISMATCH)$/;

const byClaim = (claim: string | undefined): DirectoryRefusal => {
  switch (claim) {
    case 'iss':
      return 'wrong_issuer';
    case 'aud':
    case 'azp':
      return 'wrong_audience';
    case 'nonce':
      return 'nonce_mismatch';
    case 'exp':
      return 'token_expired';
    default:
      return 'token_invalid';
  }
};

/** Maps an error thrown during discovery, the code exchange or token verification. */
export function refusalOf(err: unknown, stage: 'discovery' | 'exchange' | 'token'): OidcRefusal {
  const f = facts(err);
  const code = (c: string) => f.codes.includes(c);
  const message = f.messages.join(' | ');
  const claimDetail = f.claim ? `${f.codes[0] ?? 'error'} (${f.claim})` : f.codes[0];

  if (f.codes.some((c) => TLS.test(c))) return refuse('tls_failed', f.codes.find((c) => TLS.test(c)));
  if (f.codes.some((c) => NETWORK.test(c)) || /did not answer within|socket hang up|aborted/i.test(message) || (err instanceof Error && err.name === 'TimeoutError')) {
    return refuse('directory_unavailable', f.codes.find((c) => NETWORK.test(c)) ?? 'timeout');
  }
  // jose
  if (code('ERR_JOSE_ALG_NOT_ALLOWED')) return refuse('alg_not_allowed', 'ERR_JOSE_ALG_NOT_ALLOWED');
  if (code('ERR_JWT_EXPIRED')) return refuse('token_expired', 'ERR_JWT_EXPIRED');
  if (code('ERR_JWT_CLAIM_VALIDATION_FAILED')) return refuse(byClaim(f.claim), claimDetail);
  if (f.codes.some((c) => c.startsWith('ERR_JW') || c.startsWith('ERR_JOSE'))) return refuse('token_invalid', f.codes.find((c) => c.startsWith('ERR_J')));
  // openid-client / oauth4webapi
  if (code('OAUTH_AUTHORIZATION_RESPONSE_ERROR')) return refuse('provider_error', f.oauthError ?? 'authorization_error');
  if (code('OAUTH_RESPONSE_BODY_ERROR')) {
    return refuse(f.oauthError === 'invalid_client' || f.oauthError === 'unauthorized_client' ? 'misconfigured' : 'provider_error', f.oauthError ?? 'token_error');
  }
  if (code('OAUTH_WWW_AUTHENTICATE_CHALLENGE')) {
    // A 401 from the token endpoint: the client's authentication (id or secret) was not accepted.
    const challenges = (err as { cause?: unknown }).cause;
    const first = Array.isArray(challenges) ? (challenges[0] as { parameters?: { error?: unknown } } | undefined) : undefined;
    const oauthError = typeof first?.parameters?.error === 'string' ? first.parameters.error : undefined;
    return refuse(oauthError === undefined || oauthError === 'invalid_client' ? 'misconfigured' : 'provider_error', oauthError ?? 'authentication challenge');
  }
  if (code('OAUTH_JWT_TIMESTAMP_CHECK_FAILED')) return refuse(f.claim === 'exp' ? 'token_expired' : 'token_invalid', claimDetail);
  if (code('OAUTH_JWT_CLAIM_COMPARISON_FAILED')) return refuse(byClaim(f.claim), claimDetail);
  if (code('OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED')) {
    // Discovery: the document names another issuer; callback: the `iss` parameter (RFC 9207) or `state` differ.
    if (/"state"/.test(message)) return refuse('state_mismatch', 'state');
    return refuse('wrong_issuer', stage === 'discovery' ? 'discovery issuer differs' : 'iss parameter differs');
  }
  if (/"alg"/.test(message)) return refuse('alg_not_allowed', f.codes[0]);
  if (/"state"/.test(message)) return refuse('state_mismatch', 'state');
  if (/"iss"/.test(message) && /parameter/.test(message)) return refuse('wrong_issuer', 'iss parameter');
  if (code('OAUTH_HTTP_REQUEST_FORBIDDEN') || code('OAUTH_REQUEST_PROTOCOL_FORBIDDEN') || code('OAUTH_MISSING_SERVER_METADATA') || code('OAUTH_INVALID_SERVER_METADATA')) {
    return refuse('misconfigured', f.codes[0]);
  }
  if (stage === 'token' || code('OAUTH_INVALID_RESPONSE') || code('OAUTH_PARSE_ERROR')) {
    return refuse(stage === 'discovery' ? 'provider_error' : 'token_invalid', f.codes[0] ?? 'invalid');
  }
  if (stage === 'discovery') return refuse('directory_unavailable', f.codes[0] ?? 'discovery failed');
  return refuse('provider_error', f.codes[0] ?? 'error');
}
