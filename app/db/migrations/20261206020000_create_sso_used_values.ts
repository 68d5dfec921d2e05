import type { Knex } from 'knex';

/**
 * Values of single sign-on that may be used once within a window (an OIDC
 * callback's `state`, a back-channel logout token's `jti`), shared by every
 * node on the database so that a replay sent to another node is refused
 * too (issue 19). Only their SHA-256 is kept, until the window ends; the
 * housekeeping deletes expired ones.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sso_used_values', (t) => {
    t.text('value_hash').primary();
    t.timestamp('expires_at', { useTz: true }).notNullable().index();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('sso_used_values');
}
