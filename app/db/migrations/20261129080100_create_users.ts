import type { Knex } from 'knex';

/**
 * Staff users. E-mail addresses are unique across the appliance (staff sign
 * in with e-mail and password alone). `status`: invited (no password yet),
 * active, deactivated. `sessions_valid_after` ends every session created
 * before it (password change, deactivation).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('email').notNullable();
    t.text('role').notNullable();
    t.text('status').notNullable().defaultTo('invited');
    t.text('password_hash');
    t.text('language');
    t.timestamp('password_changed_at', { useTz: true });
    t.timestamp('sessions_valid_after', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_login_at', { useTz: true });
    t.text('last_login_ip');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`role IN ('admin', 'clerk', 'compliance')`, [], 'users_role');
    t.check(`status IN ('invited', 'active', 'deactivated')`, [], 'users_status');
    t.check(`language IS NULL OR language IN ('en', 'de')`, [], 'users_language');
    t.index(['organisation_id']);
  });
  await knex.raw('CREATE UNIQUE INDEX users_email_unique ON users (lower(email))');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('users');
}
