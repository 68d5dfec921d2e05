import type { Knex } from 'knex';
import { sha256 } from '../security/tokens';

/**
 * Values that may be used once within a time window (an OIDC `state`, a
 * logout token's `jti`), remembered in the database (`sso_used_values`,
 * their SHA-256 only) so that every node on it refuses a replay, and a
 * restart forgets nothing. After the window the value counts as new again;
 * the tokens' own age bounds make that harmless.
 */
export class SeenOnce {
  constructor(private readonly knex: Knex, private readonly maxAgeMs: number) {}

  /** True the first time `key` is offered within the window, false for a replay (atomic across nodes). */
  async firstUse(key: string): Promise<boolean> {
    const { rows } = await this.knex.raw<{ rows: unknown[] }>(
      `INSERT INTO sso_used_values (value_hash, expires_at) VALUES (?, now() + make_interval(secs => ?))
       ON CONFLICT (value_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE sso_used_values.expires_at <= now()
       RETURNING value_hash`,
      [sha256(key), this.maxAgeMs / 1000],
    );
    return rows.length === 1;
  }
}

/** Deletes the values whose window has ended (the housekeeping). */
export async function pruneUsedValues(knex: Knex): Promise<number> {
  return knex('sso_used_values').where('expires_at', '<=', knex.fn.now()).delete();
}
