import type { Knex } from 'knex';

/**
 * The log of accepted API requests: which key, what was asked, the answer's
 * status, and the client's IP and user agent. It used to be written to the
 * append-only audit trail (`api.request`), where it could never be deleted;
 * here the retention job prunes it by the organisation's setting. Refused
 * requests and key management stay in the audit trail. The key itself is
 * never stored, only its id and visible prefix.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_request_log', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.uuid('api_key_id').references('api_keys.id').onDelete('SET NULL');
    t.text('key_prefix').notNullable();
    t.text('method').notNullable();
    t.text('path').notNullable();
    t.integer('status').notNullable();
    t.boolean('aborted').notNullable().defaultTo(false);
    t.specificType('ip', 'inet');
    t.text('user_agent');
    t.timestamp('occurred_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`length(path) <= 2048 AND length(method) <= 16`, [], 'api_request_log_lengths');
    t.check(`user_agent IS NULL OR length(user_agent) <= 512`, [], 'api_request_log_user_agent');
    t.index(['organisation_id', 'occurred_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_request_log');
}
