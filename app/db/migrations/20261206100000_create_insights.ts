import type { Knex } from 'knex';

/**
 * Insights (issue 20): daily figures per organisation, clerk and product,
 * kept apart from the calls they were counted from, so that they outlive
 * the calls' retention (they have a retention setting of their own).
 *
 * - `calls.channel`: how the customer arrived (a clerk's call link, the
 *   waiting queue, the website widget, the REST API); null for calls made
 *   before it was recorded (a separate migration fills what it can).
 * - `calls.counted_at`, `queue_entries.counted_at`: when the insights job
 *   added the ended call or the settled queue entry to the figures; each is
 *   counted once.
 * - `queue_entries.channel`: the queue's own page or the website widget.
 * - `users.available_since`: since when a clerk is available; the time up to
 *   a change is kept in `availability_spans` until the job folds it into
 *   the day's figures and deletes it.
 * - `insight_days`: one row per organisation, local day (in the
 *   organisation's time zone) and clerk; `clerk_id` null holds what belongs
 *   to no clerk (customers who left the queue unanswered). Only counts and
 *   histograms of whole seconds (`{"seconds": count}`), never an id of a
 *   call or a customer.
 * - `insight_products`: cards shown and favourited per day and product (by
 *   its SKU, which a card keeps when its product is renamed or deleted).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('calls', (t) => {
    t.text('channel');
    t.timestamp('counted_at', { useTz: true });
  });
  await knex.raw(`ALTER TABLE calls ADD CONSTRAINT calls_channel_check CHECK (channel IN ('link', 'queue', 'widget', 'api'))`);
  await knex.raw(`CREATE INDEX calls_uncounted_idx ON calls (organisation_id, ended_at) WHERE status = 'ended' AND counted_at IS NULL`);

  await knex.schema.alterTable('queue_entries', (t) => {
    t.text('channel').notNullable().defaultTo('queue');
    t.timestamp('counted_at', { useTz: true });
  });
  await knex.raw(`ALTER TABLE queue_entries ADD CONSTRAINT queue_entries_channel_check CHECK (channel IN ('queue', 'widget'))`);
  await knex.raw(`CREATE INDEX queue_entries_uncounted_idx ON queue_entries (organisation_id, created_at) WHERE status <> 'waiting' AND counted_at IS NULL`);

  await knex.schema.alterTable('users', (t) => {
    t.timestamp('available_since', { useTz: true });
  });
  await knex.schema.createTable('availability_spans', (t) => {
    t.bigIncrements('id');
    t.uuid('organisation_id').notNullable().references('id').inTable('organisations').onDelete('CASCADE');
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.timestamp('started_at', { useTz: true }).notNullable();
    t.timestamp('ended_at', { useTz: true }).notNullable();
    t.index(['organisation_id']);
  });

  await knex.schema.createTable('insight_days', (t) => {
    t.bigIncrements('id');
    t.uuid('organisation_id').notNullable().references('id').inTable('organisations').onDelete('CASCADE');
    t.date('day').notNullable();
    // No foreign key: the figures stay when a clerk's account goes.
    t.uuid('clerk_id');
    t.integer('calls_started').notNullable().defaultTo(0);
    t.integer('calls_completed').notNullable().defaultTo(0);
    t.integer('calls_unanswered').notNullable().defaultTo(0);
    t.integer('via_link').notNullable().defaultTo(0);
    t.integer('via_queue').notNullable().defaultTo(0);
    t.integer('via_widget').notNullable().defaultTo(0);
    t.integer('via_api').notNullable().defaultTo(0);
    t.jsonb('durations').notNullable().defaultTo('{}');
    t.specificType('hours', 'integer[]').notNullable().defaultTo(knex.raw(`array_fill(0, ARRAY[24])`));
    t.integer('queue_answered').notNullable().defaultTo(0);
    t.integer('queue_abandoned').notNullable().defaultTo(0);
    t.jsonb('waits').notNullable().defaultTo('{}');
    t.integer('cards_shown').notNullable().defaultTo(0);
    t.integer('calls_with_cards').notNullable().defaultTo(0);
    t.integer('calls_with_favourite').notNullable().defaultTo(0);
    t.integer('recordings').notNullable().defaultTo(0);
    t.integer('consents_granted').notNullable().defaultTo(0);
    t.integer('consents_refused').notNullable().defaultTo(0);
    t.integer('available_seconds').notNullable().defaultTo(0);
  });
  await knex.raw(`CREATE UNIQUE INDEX insight_days_key ON insight_days (organisation_id, day, coalesce(clerk_id, '00000000-0000-0000-0000-000000000000'::uuid))`);

  await knex.schema.createTable('insight_products', (t) => {
    t.bigIncrements('id');
    t.uuid('organisation_id').notNullable().references('id').inTable('organisations').onDelete('CASCADE');
    t.date('day').notNullable();
    t.text('product_key').notNullable();
    t.text('name').notNullable();
    t.integer('shown').notNullable().defaultTo(0);
    t.integer('favourited').notNullable().defaultTo(0);
    t.unique(['organisation_id', 'day', 'product_key']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('insight_products');
  await knex.schema.dropTable('insight_days');
  await knex.schema.dropTable('availability_spans');
  await knex.schema.alterTable('users', (t) => t.dropColumn('available_since'));
  await knex.raw('DROP INDEX IF EXISTS queue_entries_uncounted_idx');
  await knex.schema.alterTable('queue_entries', (t) => {
    t.dropColumn('counted_at');
    t.dropColumn('channel');
  });
  await knex.raw('DROP INDEX IF EXISTS calls_uncounted_idx');
  await knex.schema.alterTable('calls', (t) => {
    t.dropColumn('counted_at');
    t.dropColumn('channel');
  });
}
