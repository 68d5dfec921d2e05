import type { Knex } from 'knex';

/**
 * The audit trail: append-only, enforced by the database. Triggers refuse
 * UPDATE, DELETE and TRUNCATE for everyone, the table owner included.
 *
 * Events form one hash chain per organisation (`chain` = the organisation id,
 * or 'system' for appliance-wide events): `seq` counts up from 1 without
 * gaps, and `hash` = SHA-256(prev_hash + canonical JSON of the event), so a
 * changed, removed or reordered row breaks the chain.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id').primary();
    t.text('chain').notNullable();
    t.bigInteger('seq').notNullable();
    t.timestamp('occurred_at', { useTz: true }).notNullable();
    t.uuid('organisation_id');
    t.text('actor_type').notNullable();
    t.text('actor_id');
    t.text('actor_label');
    t.text('action').notNullable();
    t.text('target_type');
    t.text('target_id');
    t.text('ip');
    t.text('user_agent');
    t.jsonb('details').notNullable().defaultTo('{}');
    t.text('prev_hash').notNullable();
    t.text('hash').notNullable();
    t.unique(['chain', 'seq']);
    t.check(`actor_type IN ('user', 'api_key', 'guest', 'system')`, [], 'audit_events_actor_type');
    t.index(['organisation_id', 'occurred_at']);
    t.index(['organisation_id', 'action']);
  });
  await knex.raw(`
    CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END
    $$`);
  await knex.raw(`
    CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()`);
  await knex.raw(`
    CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_events');
  await knex.raw('DROP FUNCTION audit_events_append_only()');
}
