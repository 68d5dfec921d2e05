import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Config } from '../../config';
import { requestMeta } from '../access/caller';
import { saveSession } from '../access/session';
import { startSession } from '../access/sign-in';
import { limiterFor, rateLimited } from '../http/limiter';
import { parseQuery } from '../http/query';
import { publicBase } from '../http/links';
import { ssoUrls } from './urls';
import type { LoginService } from '../sign-in/login-service';
import { accountKey, ipKey, type LoginThrottle } from '../sign-in/throttle';
import type { SsoProviderRow } from '../db/tables';
import { beginOidc, OidcRefusalError } from './oidc-client';
import type { SsoSecrets } from './provider-settings';
import { SsoSignIn, type SsoSignInOutcome } from './signin-service';
import './session-data';

/**
 * Single sign-on for staff, per organisation (chosen by its slug):
 * GET /sso/:slug (its enabled methods), the LDAP form (GET and POST
 * /sso/:slug/ldap, throttled like /login), the OpenID Connect code flow
 * (GET /sso/:slug/oidc, GET /sso/:slug/oidc/callback) and the provider's
 * back-channel logout (POST /sso/:slug/oidc/backchannel-logout, no CSRF:
 * the provider's server sends it, with a signed logout token).
 */
export interface SsoRouteDeps {
  db: Knex;
  config: Config;
  secrets: SsoSecrets;
  login: LoginService;
  throttle: LoginThrottle;
}

type Reason = Exclude<SsoSignInOutcome, { ok: true }>['reason'] | 'locked' | 'missing';

/** The message of a refusal (what the person can do about it; the directory's details stay in the audit trail). */
const MESSAGES: Record<Reason, string> = {
  invalid_credentials: 'sso.refused.invalid_credentials',
  not_found: 'sso.refused.invalid_credentials',
  ambiguous: 'sso.refused.invalid_credentials',
  missing: 'sso.refused.missing',
  locked: 'sso.refused.locked',
  directory_unavailable: 'sso.refused.unavailable',
  tls_failed: 'sso.refused.unavailable',
  misconfigured: 'sso.refused.misconfigured',
  state_mismatch: 'sso.refused.state_mismatch',
  nonce_mismatch: 'sso.refused.token_invalid',
  token_invalid: 'sso.refused.token_invalid',
  token_expired: 'sso.refused.token_invalid',
  wrong_audience: 'sso.refused.token_invalid',
  wrong_issuer: 'sso.refused.token_invalid',
  alg_not_allowed: 'sso.refused.token_invalid',
  provider_error: 'sso.refused.provider_error',
  no_mapped_group: 'sso.refused.no_mapped_group',
  no_email: 'sso.refused.no_email',
  email_taken: 'sso.refused.email_taken',
  organisation_closed: 'sso.refused.organisation_closed',
  provider_disabled: 'sso.refused.misconfigured',
  deactivated: 'sso.refused.deactivated',
};

const CREDENTIALS: ReadonlySet<Reason> = new Set(['invalid_credentials', 'not_found', 'ambiguous']);

function statusOf(reason: Reason): number {
  if (reason === 'locked') return 429;
  if (reason === 'missing') return 400;
  if (CREDENTIALS.has(reason)) return 401;
  if (reason === 'directory_unavailable' || reason === 'tls_failed') return 503;
  if (reason === 'misconfigured') return 503;
  return 403;
}

const slugOf = (req: Request) => String(req.params.slug ?? '');
const redirectUri = (req: Request, deps: SsoRouteDeps, slug: string) => ssoUrls(publicBase(req, deps.config), slug).callback;

async function signedIn(req: Request, res: Response, deps: SsoRouteDeps, row: SsoProviderRow, outcome: Extract<SsoSignInOutcome, { ok: true }>, oidc?: { sid?: string | null; sub?: string }): Promise<void> {
  await startSession(req, outcome.userId);
  req.session.ssoProviderId = row.id;
  if (oidc?.sid) req.session.oidcSid = oidc.sid;
  if (oidc?.sub) req.session.oidcSub = oidc.sub;
  await saveSession(req);
  await deps.login.succeeded(outcome.userId, outcome.organisationId, outcome.email, requestMeta(req), { method: row.kind });
  res.redirect(303, '/dashboard');
}

function refusedPage(req: Request, res: Response, slug: string, reason: Reason): void {
  res.status(statusOf(reason)).setHeader('Cache-Control', 'no-store');
  res.render('sso/refused', { title: req.t('sso.refused_title'), slug, message: req.t(MESSAGES[reason]) });
}

const findQuery = z.object({ organisation: z.string().trim().toLowerCase().max(100, 'too_long').regex(/^[a-z0-9-]+$/, 'invalid').optional() });

/** GET /sso: asks for the organisation (its short name, as in its addresses), then sends the browser to its page. */
export const ssoFind: RequestHandler = (req, res) => {
  const { organisation } = parseQuery(findQuery, req);
  if (organisation) return res.redirect(303, `/sso/${organisation}`);
  res.render('sso/find', { title: req.t('sso.choose_title') });
};

/** GET /sso/:slug: the organisation's enabled single sign-on methods. */
export function ssoChoose(deps: SsoRouteDeps): RequestHandler {
  return async (req, res) => {
    const service = new SsoSignIn(deps.db, deps.secrets);
    const organisation = await service.organisation(slugOf(req));
    const providers = await service.enabledProviders(organisation.id);
    res.render('sso/choose', { title: req.t('sso.choose_title'), organisationName: organisation.name, slug: organisation.slug, providers });
  };
}

async function ldapContext(deps: SsoRouteDeps, req: Request) {
  const service = new SsoSignIn(deps.db, deps.secrets);
  const organisation = await service.organisation(slugOf(req));
  const row = await service.provider(organisation.id, 'ldap');
  return { service, organisation, row };
}

function ldapForm(req: Request, res: Response, context: { slug: string; label: string; username?: string; error?: string }, status = 200): void {
  res.status(status).setHeader('Cache-Control', 'no-store');
  res.render('sso/ldap', { title: req.t('sso.ldap_title', { label: context.label }), slug: context.slug, label: context.label, values: { username: context.username ?? '' }, error: context.error });
}

/** GET /sso/:slug/ldap: the directory's user name and password form. */
export function ldapPage(deps: SsoRouteDeps): RequestHandler {
  return async (req, res) => {
    const { organisation, row } = await ldapContext(deps, req);
    ldapForm(req, res, { slug: organisation.slug, label: row.label });
  };
}

/** POST /sso/:slug/ldap: rate-limited per IP, throttled per name and IP (as /login), then the directory decides. */
export function ldapSignIn(deps: SsoRouteDeps): RequestHandler {
  return async (req, res) => {
    const { service, organisation, row } = await ldapContext(deps, req);
    const username = typeof req.body?.username === 'string' ? req.body.username.trim().slice(0, 256) : '';
    const password = typeof req.body?.password === 'string' ? req.body.password.slice(0, 1024) : '';
    const form = { slug: organisation.slug, label: row.label, username };
    const refuse = (reason: Reason) => ldapForm(req, res, { ...form, error: req.t(MESSAGES[reason]) }, statusOf(reason));
    if (!username || !password) return refuse('missing');
    const slot = limiterFor(deps.db).take('sign_in', req.ip);
    if (!slot.ok) throw rateLimited(deps.db, req, 'sign_in', slot.retryAfterSeconds);
    const keys = { account: accountKey(`ldap:${organisation.id}:${username}`), ip: ipKey(req.ip ?? 'unknown') };
    const [account, ip] = await Promise.all([deps.throttle.reserve(keys.account, 'account'), deps.throttle.reserve(keys.ip, 'ip')]);
    const release = () => Promise.all([deps.throttle.release(keys.account, 'account'), deps.throttle.release(keys.ip, 'ip')]);
    if (!account.allowed || !ip.allowed) {
      await release();
      await service.locked(row, requestMeta(req), username);
      return refuse('locked');
    }
    const outcome = await service.ldap(row, organisation.slug, username, password, requestMeta(req));
    if (outcome.ok) {
      slot.refund();
      await Promise.all([deps.throttle.clear(keys.account), deps.throttle.release(keys.ip, 'ip')]);
      return signedIn(req, res, deps, row, outcome);
    }
    // Only a wrong name or password counts against the throttle; the directory's or the mapping's answer does not.
    if (!CREDENTIALS.has(outcome.reason)) {
      await release();
      return refuse(outcome.reason);
    }
    const lockedNow = (['account', 'ip'] as const).filter((scope) => (scope === 'account' ? account : ip).lockedNow);
    if (lockedNow.length) await service.locked(row, requestMeta(req), username, [...lockedNow]);
    return refuse(lockedNow.length ? 'locked' : outcome.reason);
  };
}

/** GET /sso/:slug/oidc: starts the code flow; the attempt waits in the session. */
export function oidcStart(deps: SsoRouteDeps): RequestHandler {
  return async (req, res) => {
    const service = new SsoSignIn(deps.db, deps.secrets);
    const organisation = await service.organisation(slugOf(req));
    const row = await service.provider(organisation.id, 'oidc');
    const settings = service.oidcSettings(row, organisation.slug, redirectUri(req, deps, organisation.slug));
    if (!settings) {
      await service.refused(row, 'misconfigured', requestMeta(req));
      return refusedPage(req, res, organisation.slug, 'misconfigured');
    }
    let started;
    try {
      started = await beginOidc(settings);
    } catch (err) {
      if (!(err instanceof OidcRefusalError)) throw err;
      await service.refused(row, err.reason, requestMeta(req));
      return refusedPage(req, res, organisation.slug, err.reason);
    }
    req.session.oidcPending = { ...started.pending, providerId: row.id };
    await saveSession(req);
    res.setHeader('Cache-Control', 'no-store');
    res.redirect(303, started.url);
  };
}

/** GET /sso/:slug/oidc/callback: the pending attempt is taken out of the session first (single use), then the provider's answer is checked. */
export function oidcCallback(deps: SsoRouteDeps): RequestHandler {
  return async (req, res) => {
    const service = new SsoSignIn(deps.db, deps.secrets);
    const organisation = await service.organisation(slugOf(req));
    const row = await service.provider(organisation.id, 'oidc');
    const stored = req.session.oidcPending;
    if (stored) {
      delete req.session.oidcPending;
      await saveSession(req);
    }
    const pending = stored && stored.providerId === row.id ? { state: stored.state, nonce: stored.nonce, codeVerifier: stored.codeVerifier, createdAt: stored.createdAt } : undefined;
    const settings = service.oidcSettings(row, organisation.slug, redirectUri(req, deps, organisation.slug));
    if (!settings) {
      await service.refused(row, 'misconfigured', requestMeta(req));
      return refusedPage(req, res, organisation.slug, 'misconfigured');
    }
    const outcome = await service.oidc(row, settings, pending, req.originalUrl, requestMeta(req));
    if (!outcome.ok) return refusedPage(req, res, organisation.slug, outcome.reason);
    return signedIn(req, res, deps, row, outcome, { sid: outcome.sid, sub: outcome.sub });
  };
}

/** POST /sso/:slug/oidc/backchannel-logout: the provider ends sessions (form body `logout_token`); 200 or 400 with a stable code. */
export function oidcBackchannelLogout(deps: SsoRouteDeps): RequestHandler {
  return async (req, res) => {
    const service = new SsoSignIn(deps.db, deps.secrets);
    const organisation = await service.organisation(slugOf(req));
    const row = await service.provider(organisation.id, 'oidc');
    res.setHeader('Cache-Control', 'no-store');
    const settings = service.oidcSettings(row, organisation.slug, redirectUri(req, deps, organisation.slug));
    if (!settings) return res.status(400).json({ error: 'invalid_request', code: 'misconfigured' });
    const outcome = await service.backchannelLogout(row, settings, req.body?.logout_token, requestMeta(req));
    if (!outcome.ok) return res.status(400).json({ error: 'invalid_request', code: outcome.reason });
    res.status(200).end();
  };
}
