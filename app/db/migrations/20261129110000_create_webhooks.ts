import type { Knex } from 'knex';

/**
 * Webhooks: the organisation's own systems are told about call events.
 *
 * `webhook_endpoints` are the targets an organisation configures (http or
 * https only). `secret` is the HMAC-SHA256 key the appliance signs each
 * delivery with. Unlike API keys it cannot be stored as a hash: signing
 * needs the key itself. It is shown once, at creation or rotation, never
 * logged, and only this table holds it. `events` is the subset of call
 * actions the target wants. `last_event_id` is the cursor: the id of the
 * last audit event (of the organisation) already turned into deliveries, so
 * a restart continues where it stopped.
 *
 * `webhook_deliveries` is the delivery queue and log: one row per endpoint
 * and audit event (unique, so an event is never queued twice), with its
 * attempts, the last answer's status or a short error (never a secret), and
 * when the next attempt is due.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_endpoints', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('url').notNullable();
    t.text('secret').notNullable();
    t.specificType('events', 'text[]').notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.bigInteger('last_event_id').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`url ~ '^(http|https)://' AND length(url) <= 2000`, [], 'webhook_endpoints_url');
    t.check(`length(secret) >= 32`, [], 'webhook_endpoints_secret');
    t.check(
      `cardinality(events) > 0 AND events <@ ARRAY['call.started', 'call.joined', 'call.left', 'call.ended', 'call.link_revoked']::text[]`,
      [],
      'webhook_endpoints_events',
    );
    t.index(['organisation_id', 'created_at']);
  });

  await knex.schema.createTable('webhook_deliveries', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('endpoint_id').notNullable().references('webhook_endpoints.id').onDelete('CASCADE');
    t.bigInteger('audit_event_id').notNullable();
    t.text('event').notNullable();
    t.integer('attempt').notNullable().defaultTo(0);
    t.text('status').notNullable().defaultTo('pending');
    t.integer('response_status');
    t.text('error');
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('delivered_at', { useTz: true });
    t.unique(['endpoint_id', 'audit_event_id']);
    t.check(`status IN ('pending', 'delivered', 'failed')`, [], 'webhook_deliveries_status');
    t.check(`attempt >= 0`, [], 'webhook_deliveries_attempt');
    t.check(`error IS NULL OR length(error) <= 200`, [], 'webhook_deliveries_error');
    t.index(['status', 'next_attempt_at']);
    t.index(['endpoint_id', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('webhook_deliveries');
  await knex.schema.dropTable('webhook_endpoints');
}
