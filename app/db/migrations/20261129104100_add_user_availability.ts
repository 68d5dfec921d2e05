import type { Knex } from 'knex';

/** A clerk's availability for the waiting queue: available, busy or away. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.text('availability').notNullable().defaultTo('away');
    t.check(`availability IN ('available', 'busy', 'away')`, [], 'users_availability');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropChecks(['users_availability']);
    t.dropColumn('availability');
  });
}
