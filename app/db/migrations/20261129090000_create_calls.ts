import type { Knex } from 'knex';

/**
 * Video calls. A clerk starts a call; the customer joins with a link whose
 * token is stored only as its SHA-256. No personal data about the customer
 * is kept. `status`: waiting (not everyone there yet), active (clerk and
 * customer have met), ended (with a reason).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('calls', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.uuid('clerk_id').references('users.id').onDelete('SET NULL');
    t.text('status').notNullable().defaultTo('waiting');
    t.text('guest_token_hash').unique();
    t.timestamp('guest_token_expires_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('ended_at', { useTz: true });
    t.text('end_reason');
    t.check(`status IN ('waiting', 'active', 'ended')`, [], 'calls_status');
    t.check(`(status = 'ended') = (ended_at IS NOT NULL)`, [], 'calls_ended_at');
    t.index(['organisation_id', 'created_at']);
    t.index(['clerk_id', 'status']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('calls');
}
