import { discover, oidcLibs } from './oidc-discovery';
import { refuse, refusalOf, type OidcRefusal } from './oidc-errors';
import type { OidcSettings } from './oidc-settings';
import { verifyJwt } from './oidc-verify';

/**
 * Logout with the provider: back-channel logout tokens (OpenID Connect
 * Back-Channel Logout 1.0, section 2.6) and what the provider's discovery
 * offers (back-channel, front-channel, RP-initiated logout).
 */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** A logout token older than this (plus the clock skew) is refused. */
export const LOGOUT_TOKEN_MAX_AGE_S = 300;

export type LogoutTokenOutcome = { ok: true; sub?: string; sid?: string; jti: string } | OidcRefusal;

/**
 * Verifies the `logout_token` the provider POSTed to the back-channel
 * logout URI: signature and algorithm, iss, aud, iat (fresh), the events
 * claim, no nonce, and a sub or a sid. The routes then end the sessions of
 * that subject (or of that provider session) and should remember `jti` for
 * a while to refuse a replayed token.
 */
export async function verifyLogoutToken(settings: OidcSettings, logoutToken: unknown, now = Date.now()): Promise<LogoutTokenOutcome> {
  if (typeof logoutToken !== 'string' || logoutToken.length === 0 || logoutToken.length > 16_384) return refuse('token_invalid', 'no logout_token');
  let discovered;
  try {
    discovered = await discover(settings);
  } catch (err) {
    return refusalOf(err, 'discovery');
  }
  const checked = await verifyJwt(settings, discovered, logoutToken, now);
  if (!checked.ok) return checked;
  const { claims, typ } = checked;
  if (typ !== undefined && !['logout+jwt', 'application/logout+jwt', 'JWT'].includes(typ)) return refuse('token_invalid', 'typ');
  if (now / 1000 - (claims.iat as number) > LOGOUT_TOKEN_MAX_AGE_S + settings.clockSkewSeconds) return refuse('token_expired', 'iat too old');
  const events = claims.events;
  if (!events || typeof events !== 'object' || Array.isArray(events)) return refuse('token_invalid', 'events');
  const event = (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT];
  if (!event || typeof event !== 'object' || Array.isArray(event)) return refuse('token_invalid', 'events');
  if (claims.nonce !== undefined) return refuse('token_invalid', 'nonce present');
  if (typeof claims.jti !== 'string' || claims.jti.length === 0) return refuse('token_invalid', 'jti');
  const sub = typeof claims.sub === 'string' && claims.sub.length > 0 ? claims.sub : undefined;
  const sid = typeof claims.sid === 'string' && claims.sid.length > 0 ? claims.sid : undefined;
  if (sub === undefined && sid === undefined) return refuse('token_invalid', 'neither sub nor sid');
  return { ok: true, jti: claims.jti, ...(sub !== undefined ? { sub } : {}), ...(sid !== undefined ? { sid } : {}) };
}

export interface OidcLogoutSupport {
  ok: true;
  backchannel: boolean;
  /** The provider puts `sid` into logout tokens (and ID tokens). */
  backchannelSession: boolean;
  frontchannel: boolean;
  frontchannelSession: boolean;
  endSessionEndpoint: string | null;
}

/** What the provider's discovery document says about logout. */
export async function oidcLogoutSupport(settings: OidcSettings): Promise<OidcLogoutSupport | OidcRefusal> {
  try {
    const { metadata } = await discover(settings);
    return {
      ok: true,
      backchannel: metadata.backchannel_logout_supported === true,
      backchannelSession: metadata.backchannel_logout_session_supported === true,
      frontchannel: metadata.frontchannel_logout_supported === true,
      frontchannelSession: metadata.frontchannel_logout_session_supported === true,
      endSessionEndpoint: typeof metadata.end_session_endpoint === 'string' ? metadata.end_session_endpoint : null,
    };
  } catch (err) {
    return refusalOf(err, 'discovery');
  }
}

/** The provider's RP-initiated logout URL (null when it has none): where the routes send a person who signs out of VClerk. */
export async function oidcEndSessionUrl(settings: OidcSettings, options: { postLogoutRedirectUri?: string; state?: string } = {}): Promise<string | null> {
  const { oidc } = await oidcLibs();
  const { config, metadata } = await discover(settings);
  if (typeof metadata.end_session_endpoint !== 'string') return null;
  const params: Record<string, string> = { client_id: settings.clientId };
  if (options.postLogoutRedirectUri) params.post_logout_redirect_uri = options.postLogoutRedirectUri;
  if (options.state) params.state = options.state;
  return oidc.buildEndSessionUrl(config, params).href;
}
