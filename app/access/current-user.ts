import type { RequestHandler } from 'express';
import type { SessionData } from 'express-session';
import type { SessionUser } from './caller';
import { destroySession } from './session';

/** Who a session stands for, or undefined when it no longer counts (staff/session-user.ts). */
export type SessionResolver = (data: Partial<SessionData>) => Promise<SessionUser | undefined>;

/** Loads the signed-in user for each request; a session that no longer counts is destroyed. */
export function loadCurrentUser(resolve: SessionResolver): RequestHandler {
  return async (req, res, next) => {
    if (!req.session?.userId) return next();
    const user = await resolve(req.session);
    if (!user) {
      await destroySession(req);
      return next();
    }
    req.user = user;
    res.locals.user = user;
    next();
  };
}
