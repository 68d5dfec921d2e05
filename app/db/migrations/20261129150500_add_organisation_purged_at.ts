import type { Knex } from 'knex';

/**
 * When a closed organisation's data was purged (60 days after closing):
 * the organisation row stays as a closed shell with its audit trail.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('organisations', (t) => {
    t.timestamp('purged_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('organisations', (t) => {
    t.dropColumn('purged_at');
  });
}
