import type { RequestHandler } from 'express';
import { AuditService } from '../audit/service';
import { safeReturnPath } from '../http/redirect';
import { actorOf, requestMeta } from '../access/caller';
import type { LoginService } from './login-service';
import { authenticate, type PassportInstance } from './passport';
import { destroySession } from '../access/session';
import { SESSION_COOKIE } from '../access/session';
import { startSession } from '../access/sign-in';
import { limiterFor, rateLimited } from '../http/limiter';
import type { Knex } from 'knex';
import { isDatabaseUnavailable } from '../db/unavailable';

/** GET /login */
export const loginPage: RequestHandler = (req, res) => {
  if (req.user) return res.redirect(303, '/dashboard');
  res.render('auth/login', { title: req.t('auth.login_title'), values: {}, returnTo: safeReturnPath(req.query.return) });
};

/** POST /login: e-mail and password through passport-local; rate-limited per IP, throttled and audited. */
export function login(passport: PassportInstance, service: LoginService, knex: Knex): RequestHandler {
  return async (req, res) => {
    const returnTo = safeReturnPath(req.body?.return);
    const email = typeof req.body?.email === 'string' ? req.body.email.slice(0, 254) : '';
    // Per client IP, before any database work: a flood of wrong sign-ins ends here.
    const slot = limiterFor(knex).take('sign_in', req.ip);
    if (!slot.ok) throw rateLimited(knex, req, 'sign_in', slot.retryAfterSeconds);
    const outcome = await authenticate(passport, req).catch((err: unknown) => {
      // The appliance's own outage (its database out of reach) does not count against the visitor.
      if (isDatabaseUnavailable(err)) slot.refund();
      throw err;
    });
    if (outcome.ok) slot.refund();
    if (!outcome.ok) {
      const locked = outcome.reason === 'locked';
      const seconds = locked ? Math.max(1, Math.ceil((outcome.lockedUntil.getTime() - Date.now()) / 1000)) : 0;
      const minutes = Math.ceil(seconds / 60);
      // A lock is a 429 like the limiter's: it says when to come back.
      if (locked) res.setHeader('Retry-After', String(seconds));
      return res.status(locked ? 429 : outcome.reason === 'missing' ? 400 : outcome.reason === 'sso_only' || outcome.reason === 'sso_account' ? 403 : 401).render('auth/login', {
        title: req.t('auth.login_title'),
        values: { email },
        returnTo,
        error: locked ? req.t('auth.locked', { minutes }) : outcome.reason === 'missing' ? req.t('auth.missing_credentials') : outcome.reason === 'sso_only' ? req.t('auth.sso_only') : outcome.reason === 'sso_account' ? req.t('auth.sso_account') : req.t('auth.invalid_credentials'),
      });
    }
    await startSession(req, outcome.userId);
    await service.succeeded(outcome.userId, outcome.organisationId, outcome.email, requestMeta(req), { method: 'password', breakGlass: outcome.breakGlass });
    res.redirect(303, returnTo === '/' ? '/dashboard' : returnTo);
  };
}

/** POST /logout: ends the session on the server and clears the cookie. */
export function logout(knex: Knex): RequestHandler {
  return async (req, res) => {
    if (req.user) {
      await new AuditService(knex).record({
        organisationId: req.user.organisationId,
        actor: actorOf(req.user),
        action: 'auth.logout',
        target: { type: 'user', id: req.user.id },
        ...requestMeta(req),
      });
    }
    await destroySession(req);
    res.clearCookie(SESSION_COOKIE, { path: '/' });
    res.redirect(303, '/login');
  };
}
