import type { Knex } from 'knex';

/**
 * Call links the clerk can be shown again: the customer token of a call
 * started since is derived (HMAC-SHA256 under a key derived from the session
 * secret) from the call's id and this random nonce, so the token itself is
 * still never stored (`guest_token_hash` stays the lookup key). NULL for
 * links made before, for queue calls (the customer's ticket is their token)
 * and after retention anonymised the call: those cannot be shown again.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('calls', (t) => {
    t.text('link_nonce');
    t.check(`link_nonce IS NULL OR link_nonce ~ '^[A-Za-z0-9_-]{43}$'`, [], 'calls_link_nonce');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('calls', (t) => {
    t.dropChecks(['calls_link_nonce']);
    t.dropColumn('link_nonce');
  });
}
