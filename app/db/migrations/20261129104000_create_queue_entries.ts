import type { Knex } from 'knex';

/**
 * The waiting queue: a customer who enters gets a ticket (only its SHA-256
 * is stored); a clerk accepting the entry creates a call whose customer
 * token is that same ticket, so no new secret has to reach the customer.
 * `last_seen_at` is refreshed by the waiting page; silent entries expire.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('queue_entries', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('status').notNullable().defaultTo('waiting');
    t.text('ticket_hash').notNullable().unique();
    t.uuid('call_id').references('calls.id').onDelete('SET NULL');
    t.uuid('accepted_by').references('users.id').onDelete('SET NULL');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('accepted_at', { useTz: true });
    t.timestamp('ended_at', { useTz: true });
    t.check(`status IN ('waiting', 'accepted', 'left', 'expired')`, [], 'queue_entries_status');
    t.index(['organisation_id', 'status', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('queue_entries');
}
