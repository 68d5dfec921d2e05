import type { Request, RequestHandler } from 'express';
import type { SessionData } from 'express-session';
import '../access/session-data';

type Flash = NonNullable<SessionData['flash']>[number];

/** Queues a message (an i18n key) for the next page the user sees. */
export function flash(req: Request, type: Flash['type'], key: string, params?: Flash['params']): void {
  (req.session.flash ??= []).push({ type, key, ...(params ? { params } : {}) });
}

/** Moves queued messages into the view locals, once. */
export function flashMessages(): RequestHandler {
  return (req, res, next) => {
    const queued = req.session?.flash;
    res.locals.flash = queued ?? [];
    if (queued && req.method === 'GET') delete req.session.flash;
    next();
  };
}
