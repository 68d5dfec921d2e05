import type { Knex } from 'knex';

/**
 * The node registry (issue 19): every appliance node sharing this database
 * registers itself by name at start, renews its row with its load every
 * heartbeat, and marks it stopped on a clean shutdown. Appliance-wide (no
 * organisation). `run_id` is the process now holding the name (a new one
 * at each start), so two processes given the same name do not renew each
 * other's row unnoticed. `draining` is the operator's: a start keeps it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('nodes', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable().unique();
    t.text('url').notNullable();
    /** The address browsers send media to (VCLERK_MEDIA_ANNOUNCED_ADDRESS or the one found); null: the listen address. */
    t.text('media_address');
    t.integer('capacity').notNullable();
    /** Calls with a media room on this node at the last renewal. */
    t.integer('calls').notNullable().defaultTo(0);
    /** Media workers alive at the last renewal. */
    t.integer('workers').notNullable().defaultTo(0);
    t.boolean('draining').notNullable().defaultTo(false);
    t.text('version').notNullable();
    t.integer('heartbeat_seconds').notNullable();
    t.uuid('run_id').notNullable();
    t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('renewed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('stopped_at', { useTz: true });
    t.check(`name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9]){0,1}$'`, [], 'nodes_name');
    t.check('capacity > 0 AND calls >= 0 AND workers >= 0 AND heartbeat_seconds > 0', [], 'nodes_figures');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('nodes');
}
