import crypto from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { actorOf, requestMeta } from './caller';
import { ForbiddenError } from '../errors';
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

function submittedToken(req: Request): string | undefined {
  const fromBody = (req.body as Record<string, unknown> | undefined)?._csrf;
  const candidates = [fromBody, req.get('x-csrf-token'), req.query._csrf];
  return candidates.find((c): c is string => typeof c === 'string' && c.length > 0);
}

function matches(expected: string | undefined, actual: string | undefined): boolean {
  if (!expected || !actual) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(actual);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/**
 * Synchroniser-token CSRF protection for every state-changing request:
 * forms carry `_csrf` (multipart forms in the action URL), scripts send the
 * `X-CSRF-Token` header. A mismatch is refused with 403 `csrf_invalid` and
 * audited. Views get `csrfToken()` to put the token in their forms.
 */
export function csrfProtection(knex: Knex): RequestHandler {
  return async (req, res, next) => {
    res.locals.csrfToken = () => csrfToken(req);
    if (SAFE_METHODS.has(req.method)) return next();
    // The REST API authenticates by API key, never by cookie: a request without a
    // session cookie has no ambient credential a forgery could ride on, and the
    // route's apiKeyAuth answers it (401 without a valid key).
    if (req.path.startsWith('/api/') && !hasSessionCookie(req)) return next();
    if (matches(req.session?.csrfToken, submittedToken(req))) return next();
    await new AuditService(knex).record({
      organisationId: req.user?.organisationId ?? null,
      actor: req.user ? actorOf(req.user) : { type: 'guest' },
      action: 'security.csrf_rejected',
      ...requestMeta(req),
      details: { method: req.method, path: req.path },
    });
    next(new ForbiddenError('csrf_invalid'));
  };
}
