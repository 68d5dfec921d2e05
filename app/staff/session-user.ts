import type { SessionData } from 'express-session';
import type { Knex } from 'knex';
import type { SessionUser } from '../access/caller';
import { sessionUser } from './store';

/**
 * The signed-in user a session stands for, or undefined when the session
 * no longer counts: the user was deactivated, the password changed after
 * sign-in, the organisation was closed, or the absolute session lifetime
 * has passed. Used for pages and for the signalling connection alike.
 */
export async function resolveSessionUser(knex: Knex, data: Partial<SessionData> | undefined, absoluteHours: number): Promise<SessionUser | undefined> {
  if (!data?.userId) return undefined;
  const row = await sessionUser(knex, data.userId);
  const authenticatedAt = data.authenticatedAt ?? 0;
  const valid = row
    && row.status === 'active'
    && !row.closed_at
    && authenticatedAt >= new Date(row.sessions_valid_after).getTime() - 1000
    && Date.now() - authenticatedAt < absoluteHours * 3600_000;
  if (!valid) return undefined;
  return {
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
}
