import type { Knex } from 'knex';

/**
 * Failed sign-in counters for brute-force protection, one row per key:
 * `account:<sha256 of the lower-cased e-mail>` or `ip:<address>`. A key is
 * locked until `locked_until` once its failures in the window pass the limit.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('login_throttles', (t) => {
    t.text('key').primary();
    t.integer('failures').notNullable().defaultTo(0);
    t.timestamp('window_started_at', { useTz: true }).notNullable();
    t.timestamp('locked_until', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('login_throttles');
}
