import type { Knex } from 'knex';

/**
 * Which node holds a call's media room (issue 19): set when a participant
 * first connects (the least loaded node that takes calls), kept while that
 * node is alive, set again when it is gone. Null until placed, and for calls
 * of an appliance without a node registry. Counting the open calls per node
 * (the placement's load) uses the partial index.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('calls', (t) => {
    t.uuid('node_id').references('id').inTable('nodes').onDelete('SET NULL');
  });
  await knex.raw(`CREATE INDEX calls_open_node_idx ON calls (node_id) WHERE status <> 'ended'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS calls_open_node_idx');
  await knex.schema.alterTable('calls', (t) => {
    t.dropColumn('node_id');
  });
}
