import type { Knex } from 'knex';

/**
 * Anchors of the audit hash chains: the head of a chain (seq and hash) at
 * a moment, signed with the appliance's Ed25519 key (app/audit/checkpoints.ts).
 * A chain re-hashed after the fact no longer matches its earlier
 * checkpoints. Append-only like the audit trail: triggers refuse UPDATE,
 * DELETE and TRUNCATE, and the app role may only INSERT and SELECT
 * (app/db/roles.ts). A copy of each checkpoint also goes to a file in the
 * data directory.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_checkpoints', (t) => {
    t.bigIncrements('id').primary();
    t.text('chain').notNullable();
    t.bigInteger('seq').notNullable();
    t.text('hash').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.text('key_id').notNullable();
    t.text('signature').notNullable();
    t.check('seq >= 1', [], 'audit_checkpoints_seq');
    t.check(`hash ~ '^[0-9a-f]{64}$'`, [], 'audit_checkpoints_hash');
    t.index(['chain', 'seq']);
  });
  await knex.raw(`
    CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_checkpoints is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END
    $$`);
  await knex.raw(`
    CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only()`);
  await knex.raw(`
    CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only()`);
  // Whatever role runs the app gets its grants from app/db/roles.ts; nobody but the owner may change a checkpoint.
  await knex.raw('REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoints FROM PUBLIC');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_checkpoints');
  await knex.raw('DROP FUNCTION audit_checkpoints_append_only()');
}
