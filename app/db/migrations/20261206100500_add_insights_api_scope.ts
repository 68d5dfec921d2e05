import type { Knex } from 'knex';

/**
 * API keys may carry the scope `insights:read` (issue 20: the Insights
 * figures under GET /api/v1/insights). Down refuses while a key holds it,
 * rather than take a permission from a key silently.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes');
  await knex.raw(`ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['calls:read', 'calls:write', 'recordings:read', 'insights:read']::text[])`);
}

export async function down(knex: Knex): Promise<void> {
  const holding = await knex('api_keys').whereRaw(`'insights:read' = ANY(scopes)`).count({ n: '*' });
  if (Number(holding[0]!.n) > 0) throw new Error(`${holding[0]!.n} API key(s) hold the scope insights:read: revoke them (or remove the scope) before migrating down`);
  await knex.raw('ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes');
  await knex.raw(`ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['calls:read', 'calls:write', 'recordings:read']::text[])`);
}
