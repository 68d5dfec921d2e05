import type { Knex } from 'knex';

/**
 * Organisations: the tenants of an appliance. `slug` is the organisation's
 * public identifier (generated from the name, or the organisation's own),
 * used in widget embeds and API paths; `id` is internal.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('organisations', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('slug').notNullable().unique();
    t.text('name').notNullable();
    t.text('vat_number');
    t.text('brand_color');
    t.binary('logo');
    t.text('logo_type');
    t.jsonb('settings').notNullable().defaultTo('{}');
    t.timestamp('closed_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'`, [], 'organisations_slug_format');
    t.check(`brand_color IS NULL OR brand_color ~ '^#[0-9a-f]{6}$'`, [], 'organisations_brand_color_format');
    t.check(`logo_type IS NULL OR logo_type IN ('image/png', 'image/jpeg', 'image/webp')`, [], 'organisations_logo_type');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('organisations');
}
