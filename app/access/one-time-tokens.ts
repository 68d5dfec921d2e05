import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { randomToken, sha256 } from '../security/tokens';

export type TokenPurpose = 'setup' | 'invite' | 'password_reset';

export interface TokenRecord {
  id: string;
  purpose: TokenPurpose;
  organisationId: string | null;
  userId: string | null;
  expiresAt: Date;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Single-use links (setup, invitation, password reset). The raw token is
 * returned once to be shown or printed; only its SHA-256 is stored.
 */
export class OneTimeTokens {
  constructor(private readonly knex: Knex) {}

  async issue(
    purpose: TokenPurpose,
    scope: { organisationId?: string | null; userId?: string | null },
    ttlHours: number,
    trx: Knex | Knex.Transaction = this.knex,
  ): Promise<{ token: string; expiresAt: Date }> {
    const token = randomToken();
    const expiresAt = new Date(Date.now() + ttlHours * 3600_000);
    // A new link for the same purpose and user replaces the old one.
    if (scope.userId) await trx('one_time_tokens').where({ purpose, user_id: scope.userId }).whereNull('used_at').update({ used_at: trx.fn.now() });
    if (purpose === 'setup') await trx('one_time_tokens').where({ purpose }).whereNull('used_at').update({ used_at: trx.fn.now() });
    await trx('one_time_tokens').insert({
      purpose,
      token_hash: sha256(token),
      organisation_id: scope.organisationId ?? null,
      user_id: scope.userId ?? null,
      expires_at: expiresAt,
    });
    return { token, expiresAt };
  }

  /** The token's record if it is valid (right purpose, unused, unexpired), without using it. */
  async find(purpose: TokenPurpose, token: unknown, trx: Knex | Knex.Transaction = this.knex, forUpdate = false): Promise<TokenRecord | undefined> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return undefined;
    const query = trx('one_time_tokens')
      .where({ purpose, token_hash: sha256(token) })
      .whereNull('used_at')
      .where('expires_at', '>', trx.fn.now())
      .first();
    if (forUpdate) query.forUpdate();
    const row = await query;
    if (!row) return undefined;
    return { id: row.id, purpose: row.purpose, organisationId: row.organisation_id, userId: row.user_id, expiresAt: row.expires_at };
  }

  /** Marks a valid token used, inside the caller's transaction; undefined if it was not valid. */
  async consume(purpose: TokenPurpose, token: unknown, trx: Knex.Transaction): Promise<TokenRecord | undefined> {
    const record = await this.find(purpose, token, trx, true);
    if (!record) return undefined;
    await trx('one_time_tokens').where({ id: record.id }).update({ used_at: trx.fn.now() });
    return record;
  }

  async revokeForUser(userId: string, trx: Knex | Knex.Transaction = this.knex): Promise<void> {
    await trx('one_time_tokens').where({ user_id: userId }).whereNull('used_at').update({ used_at: trx.fn.now() });
  }
}

/** Deletes the users' one-time links (purging an organisation). */
export async function deleteTokensOfUsers(trx: Knex.Transaction, userIds: string[]): Promise<void> {
  await trx('one_time_tokens').whereIn('user_id', userIds).delete();
}

/** Deletes the organisation's one-time links (purging it). */
export async function deleteTokensOfOrganisation(trx: Knex.Transaction, organisationId: string): Promise<void> {
  await trx('one_time_tokens').where({ organisation_id: organisationId }).delete();
}
