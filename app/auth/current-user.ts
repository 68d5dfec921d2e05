import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { SessionUser } from './caller';
import { destroySession } from './session';

/**
 * Loads the signed-in user for each request from the session. The session
 * no longer counts (and is destroyed) when the user was deactivated, the
 * password changed after sign-in, the organisation was closed, or the
 * absolute session lifetime has passed.
 */
export function loadCurrentUser(knex: Knex, options: { absoluteHours: number }): RequestHandler {
  const absoluteMs = options.absoluteHours * 3600_000;
  return async (req, res, next) => {
    const data = req.session;
    if (!data?.userId) return next();
    const row = await knex('users')
      .join('organisations', 'organisations.id', 'users.organisation_id')
      .where('users.id', data.userId)
      .first(
        'users.id', 'users.organisation_id', 'users.name', 'users.email', 'users.role', 'users.status', 'users.language',
        'users.sessions_valid_after', 'organisations.slug', 'organisations.name as organisation_name',
        'organisations.closed_at', 'organisations.updated_at as organisation_updated_at',
      );
    const authenticatedAt = data.authenticatedAt ?? 0;
    const valid = row
      && row.status === 'active'
      && !row.closed_at
      && authenticatedAt >= new Date(row.sessions_valid_after).getTime() - 1000
      && Date.now() - authenticatedAt < absoluteMs;
    if (!valid) {
      await destroySession(req);
      return next();
    }
    const user: SessionUser = {
      id: row.id,
      organisationId: row.organisation_id,
      organisationSlug: row.slug,
      organisationName: row.organisation_name,
      organisationBrandVersion: new Date(row.organisation_updated_at).getTime(),
      name: row.name,
      email: row.email,
      role: row.role,
      language: row.language,
    };
    req.user = user;
    res.locals.user = user;
    next();
  };
}
