import type { Knex } from 'knex';

/**
 * One row describing this installation: a random instance id (shown on the
 * status page and in exports, so that data can be traced to the appliance
 * that produced it) and when the database was first set up.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('appliance_info', (t) => {
    t.boolean('singleton').primary().defaultTo(true);
    t.uuid('instance_id').notNullable().defaultTo(knex.raw('gen_random_uuid()'));
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check('singleton', [], 'appliance_info_singleton');
  });
  await knex('appliance_info').insert({});
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('appliance_info');
}
