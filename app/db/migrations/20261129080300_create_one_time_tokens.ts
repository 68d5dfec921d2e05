import type { Knex } from 'knex';

/**
 * Single-use links: first-run setup, staff invitations, password resets.
 * Only the SHA-256 of the token is stored.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('one_time_tokens', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('purpose').notNullable();
    t.text('token_hash').notNullable().unique();
    t.uuid('organisation_id').references('organisations.id').onDelete('CASCADE');
    t.uuid('user_id').references('users.id').onDelete('CASCADE');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('used_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`purpose IN ('setup', 'invite', 'password_reset')`, [], 'one_time_tokens_purpose');
    t.index(['user_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('one_time_tokens');
}
