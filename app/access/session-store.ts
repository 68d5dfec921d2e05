import session from 'express-session';
import type { Knex } from 'knex';

/**
 * express-session store on the `sessions` table. The signed-in user's id is
 * kept in its own column, so that all of a user's sessions can be ended at
 * once (deactivation, password change).
 */
export class PgSessionStore extends session.Store {
  constructor(private readonly knex: Knex, private readonly idleMs: number) {
    super();
  }

  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    this.knex('sessions')
      .where({ sid })
      .where('expires_at', '>', this.knex.fn.now())
      .first('data')
      .then((row) => callback(null, row ? row.data : null), callback);
  }

  override set(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    const row = { sid, data: JSON.stringify(data), user_id: data.userId ?? null, expires_at: this.expiry(data) };
    this.knex('sessions')
      .insert(row)
      .onConflict('sid')
      .merge(['data', 'user_id', 'expires_at'])
      .then(() => callback?.(), (err) => callback?.(err));
  }

  override touch(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    this.knex('sessions')
      .where({ sid })
      .update({ expires_at: this.expiry(data) })
      .then(() => callback?.(), (err) => callback?.(err));
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    this.knex('sessions')
      .where({ sid })
      .delete()
      .then(() => callback?.(), (err) => callback?.(err));
  }

  private expiry(data: session.SessionData): Date {
    const expires = data.cookie?.expires;
    return expires ? new Date(expires) : new Date(Date.now() + this.idleMs);
  }
}

/** Ends every session of a user, except one (the caller's own) if given. */
export async function endUserSessions(knex: Knex | Knex.Transaction, userId: string, exceptSid?: string): Promise<number> {
  const query = knex('sessions').where({ user_id: userId });
  if (exceptSid) query.whereNot({ sid: exceptSid });
  return query.delete();
}

/** Removes expired sessions; the entry point runs it periodically. */
export async function pruneExpiredSessions(knex: Knex): Promise<number> {
  return knex('sessions').where('expires_at', '<=', knex.fn.now()).delete();
}

/** Ends every session of the users (purging an organisation). */
export async function deleteSessionsOfUsers(trx: Knex.Transaction, userIds: string[]): Promise<void> {
  await trx('sessions').whereIn('user_id', userIds).delete();
}

/** Ends the sessions started through an OpenID provider's session `sid` (back-channel logout; the sign-in keeps both in the session data); the users whose sessions ended. */
export async function endSessionsOfOidcSid(knex: Knex | Knex.Transaction, providerId: string, sid: string): Promise<(string | null)[]> {
  const ended: { user_id: string | null }[] = await knex('sessions').whereRaw(`data->>'ssoProviderId' = ? and data->>'oidcSid' = ?`, [providerId, sid]).delete().returning('user_id');
  return ended.map((row) => row.user_id);
}
