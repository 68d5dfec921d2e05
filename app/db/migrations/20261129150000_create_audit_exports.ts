import type { Knex } from 'knex';

/**
 * Audit exports (app/audit/export.ts): one row per export an organisation's
 * compliance staff made, with the filter, the row count, the first and last
 * chain link, the SHA-256 of the file and the signed manifest (as served,
 * byte for byte). The file itself lives under
 * <dataDir>/exports/<organisation>/<id>.<format> until `expires_at`; when it
 * is deleted, `file_removed_at` is set and the row stays as the record.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_exports', (t) => {
    t.uuid('id').primary();
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('format').notNullable();
    t.jsonb('filters').notNullable().defaultTo('{}');
    t.bigInteger('row_count').notNullable();
    t.bigInteger('first_seq');
    t.text('first_hash');
    t.bigInteger('last_seq');
    t.text('last_hash');
    t.boolean('complete_chain').notNullable();
    t.bigInteger('bytes').notNullable();
    t.text('sha256').notNullable();
    t.text('file_name').notNullable();
    t.text('manifest').notNullable();
    t.text('key_fingerprint').notNullable();
    t.uuid('created_by').references('users.id').onDelete('SET NULL');
    t.text('created_by_label');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('file_removed_at', { useTz: true });
    t.check(`format IN ('ndjson', 'csv')`, [], 'audit_exports_format');
    t.check(`sha256 ~ '^[0-9a-f]{64}$'`, [], 'audit_exports_sha256');
    t.index(['organisation_id', 'created_at']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_exports');
}
