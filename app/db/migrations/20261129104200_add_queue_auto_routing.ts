import type { Knex } from 'knex';

/** Marks queue entries given to a clerk by automatic routing (an automated decision, opt-in). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('queue_entries', (t) => {
    t.boolean('auto_routed').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('queue_entries', (t) => {
    t.dropColumn('auto_routed');
  });
}
