import type { RequestHandler } from 'express';
import type { Config } from '../../config';

/** Where the clerk's call page renews its session. */
export const KEEPALIVE_PATH = '/session/keepalive';

/** How often a page renews: half the idle timeout, so one lost renewal still leaves time for the next. */
export function keepaliveIntervalMs(config: Pick<Config, 'sessionIdleMinutes'>): number {
  return (config.sessionIdleMinutes * 60_000) / 2;
}

/**
 * POST /session/keepalive (staff, CSRF token in `X-CSRF-Token`): renews the
 * session's idle expiry and nothing else. The session middleware is rolling,
 * so answering is enough: it pushes the cookie's and the stored row's expiry
 * a full idle time ahead. The sign-in time (`authenticatedAt`) is untouched,
 * so the absolute lifetime still ends the session. Without a live session
 * (expired, over-age, never signed in) or without the token the request is
 * refused before it gets here: 403 csrf_invalid (the token belongs to the
 * session), else the guard's 401. Cheap: nothing beyond loading the session
 * and its user, as for every request, and the store's touch.
 */
export const keepalive: RequestHandler = (_req, res) => {
  res.set('Cache-Control', 'no-store').status(204).end();
};

/**
 * In front of a page that keeps its session alive (the clerk's call page):
 * gives its view `keepalive` { url, intervalMs } for the page's data
 * attributes.
 */
export function offerKeepalive(deps: { config: Pick<Config, 'sessionIdleMinutes'> }): RequestHandler {
  return (_req, res, next) => {
    res.locals.keepalive = { url: KEEPALIVE_PATH, intervalMs: keepaliveIntervalMs(deps.config) };
    next();
  };
}
