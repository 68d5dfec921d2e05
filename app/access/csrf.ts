import crypto from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import { refusalsFor } from '../audit/refusals';
import { actorOf, requestMeta } from './caller';
import { ForbiddenError } from '../core/errors';
import { SESSION_COOKIE } from './session';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function hasSessionCookie(req: Request): boolean {
  return (req.get('cookie') ?? '').split(';').some((c) => c.trim().startsWith(`${SESSION_COOKIE}=`));
}

/** The session's CSRF token, created on first use (that creates the session). */
export function csrfToken(req: Request): string {
  req.session.csrfToken ??= crypto.randomBytes(32).toString('base64url');
  return req.session.csrfToken;
}

/** Anonymous forms (sign-in, links, setup) use a double-submit cookie instead, so no session row is made for a visitor. */
export const CSRF_COOKIE = 'vclerk_csrf';
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Over HTTPS the cookie carries the `__Host-` prefix: browsers then accept
 * it only from this host, Secure and for path /, so a neighbouring
 * subdomain or a plain-HTTP answer cannot plant a token of its choosing
 * (a double-submit cookie is only as good as its integrity).
 */
function cookieName(req: Request): string {
  return req.secure ? `__Host-${CSRF_COOKIE}` : CSRF_COOKIE;
}

function cookieToken(req: Request): string | undefined {
  const wanted = cookieName(req);
  for (const c of (req.get('cookie') ?? '').split(';')) {
    const [name, value] = c.trim().split('=', 2);
    if (name === wanted && value && TOKEN_SHAPE.test(value)) return value;
  }
  return undefined;
}

/** The token a form carries: the session's while there is one with a token or a user, else the visitor's cookie (set when first needed). */
function formToken(req: Request, res: Response): string {
  if (req.session?.csrfToken || req.session?.userId) return csrfToken(req);
  let token = cookieToken(req);
  if (!token) {
    token = crypto.randomBytes(32).toString('base64url');
    res.cookie(cookieName(req), token, { httpOnly: true, sameSite: 'lax', secure: req.secure, path: '/' });
  }
  return token;
}

/** What a submitted token must match: the session's token, or (without one) the visitor's cookie. */
function expectedToken(req: Request): string | undefined {
  if (req.session?.csrfToken) return req.session.csrfToken;
  return req.session?.userId ? undefined : cookieToken(req);
}

function submittedToken(req: Request): string | undefined {
  const fromBody = (req.body as Record<string, unknown> | undefined)?._csrf;
  const candidates = [fromBody, req.get('x-csrf-token'), req.query._csrf];
  return candidates.find((c): c is string => typeof c === 'string' && c.length > 0);
}

/**
 * The token as pages carry it, masked anew for every use (BREACH: a
 * secret repeated unchanged in compressed responses that also reflect
 * input can be read from their sizes): a random pad followed by the pad
 * XOR the token, base64url. Any masking of the token unmasks to it.
 */
export function maskToken(token: string): string {
  const secret = Buffer.from(token, 'base64url');
  const pad = crypto.randomBytes(secret.length);
  const xored = Buffer.alloc(secret.length);
  for (let i = 0; i < secret.length; i++) xored[i] = pad[i]! ^ secret[i]!;
  return Buffer.concat([pad, xored]).toString('base64url');
}

/** The token a masked value stands for; a value of the unmasked token's length is taken as it is (pages served before masking). */
export function unmaskToken(value: string, tokenLength: number): string | undefined {
  if (value.length === tokenLength) return value;
  if (!/^[A-Za-z0-9_-]+$/.test(value)) return undefined;
  const bytes = Buffer.from(value, 'base64url');
  if (bytes.length % 2 !== 0 || bytes.length === 0) return undefined;
  const half = bytes.length / 2;
  const secret = Buffer.alloc(half);
  for (let i = 0; i < half; i++) secret[i] = bytes[i]! ^ bytes[half + i]!;
  return secret.toString('base64url');
}

function matches(expected: string | undefined, submitted: string | undefined): boolean {
  if (!expected || !submitted) return false;
  const actual = unmaskToken(submitted, expected.length);
  if (!actual) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(actual);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** The OpenID back-channel logout endpoint: a machine endpoint without cookies (sso/routes.ts). */
const BACKCHANNEL_LOGOUT = /^\/sso\/[^/]+\/oidc\/backchannel-logout$/;

/**
 * Synchroniser-token CSRF protection for every state-changing request:
 * forms carry `_csrf` (multipart forms in the action URL), scripts send the
 * `X-CSRF-Token` header. A mismatch is refused with 403 `csrf_invalid` and
 * audited. Views get `csrfToken()` to put the token in their forms: the
 * session's token, or for a visitor without a session a double-submit
 * cookie (`vclerk_csrf`, `__Host-vclerk_csrf` over HTTPS; HttpOnly,
 * SameSite=Lax), so that showing the
 * sign-in form stores nothing in the database.
 */
export function csrfProtection(knex: Knex): RequestHandler {
  return async (req, res, next) => {
    // Masked anew on every call: each form and page carries a different string for the same token.
    res.locals.csrfToken = () => maskToken(formToken(req, res));
    if (SAFE_METHODS.has(req.method)) return next();
    // The REST API authenticates by API key, never by cookie: a request without a
    // session cookie has no ambient credential a forgery could ride on, and the
    // route's apiKeyAuth answers it (401 without a valid key).
    if (req.path.startsWith('/api/') && !hasSessionCookie(req)) return next();
    // An OpenID provider's back-channel logout comes from its server, with no cookie: the signed logout token is its proof.
    if (BACKCHANNEL_LOGOUT.test(req.path) && !hasSessionCookie(req)) return next();
    if (matches(expectedToken(req), submittedToken(req))) return next();
    // Audited like every refusal: the first of a source at once, further ones aggregated per window.
    await refusalsFor(knex).note({
      organisationId: req.user?.organisationId ?? null,
      actor: req.user ? actorOf(req.user) : { type: 'guest' },
      action: 'security.csrf_rejected',
      ...requestMeta(req),
      details: { method: req.method, path: req.path },
    });
    next(new ForbiddenError('csrf_invalid'));
  };
}
