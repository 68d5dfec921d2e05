import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { ForbiddenError, UnauthorizedError } from '../core/errors';
import { actorOf, requestMeta, type Role } from './caller';

/** Who may use a route: everyone, any signed-in staff user, or the listed roles. */
export type Access = 'public' | 'staff' | readonly Role[];

/**
 * The guard the route table puts in front of each handler. Without a
 * session, pages redirect to the sign-in page and API calls get 401; a
 * signed-in user without the role gets 403, and the attempt is audited.
 */
export function guard(access: Access, knex: Knex): RequestHandler | undefined {
  if (access === 'public') return undefined;
  return async (req, res, next) => {
    if (!req.user) {
      if (req.method === 'GET' && req.accepts(['html', 'json']) === 'html') {
        return res.redirect(303, `/login?return=${encodeURIComponent(req.originalUrl)}`);
      }
      return next(new UnauthorizedError());
    }
    if (access === 'staff' || access.includes(req.user.role)) return next();
    await new AuditService(knex).record({
      organisationId: req.user.organisationId,
      actor: actorOf(req.user),
      action: 'security.role_denied',
      ...requestMeta(req),
      details: { method: req.method, path: req.path, role: req.user.role },
    });
    next(new ForbiddenError());
  };
}
