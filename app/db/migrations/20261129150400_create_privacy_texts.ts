import type { Knex } from 'knex';

/**
 * The organisation's own privacy notice (shown to customers before a call)
 * and recording notice (what a customer consents to), per language. Each
 * save is a new version (1, 2, ...); a version is never changed (a trigger
 * refuses UPDATE), so the consent ledger can name the exact text shown
 * (`notice_version` `org-v<n>`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('privacy_texts', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('language').notNullable();
    t.integer('version').notNullable();
    t.text('text').notNullable();
    t.uuid('created_by').references('users.id').onDelete('SET NULL');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`kind IN ('privacy_notice', 'recording_notice')`, [], 'privacy_texts_kind');
    t.check(`language IN ('en', 'de')`, [], 'privacy_texts_language');
    t.check(`version >= 1`, [], 'privacy_texts_version');
    t.check(`length(text) BETWEEN 1 AND 10000`, [], 'privacy_texts_text');
    t.unique(['organisation_id', 'kind', 'language', 'version']);
  });
  await knex.raw(`
    CREATE FUNCTION privacy_texts_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'privacy_texts versions cannot be changed; save a new version';
    END $$`);
  await knex.raw(`
    CREATE TRIGGER privacy_texts_no_update BEFORE UPDATE ON privacy_texts
    FOR EACH ROW EXECUTE FUNCTION privacy_texts_immutable()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('privacy_texts');
  await knex.raw('DROP FUNCTION privacy_texts_immutable()');
}
