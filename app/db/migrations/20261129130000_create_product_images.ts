import type { Knex } from 'knex';

/**
 * Images of a product, stored by the appliance itself (no outside image
 * host): the bytes, their type as checked from the first bytes (PNG, JPEG
 * or WebP; never SVG), size and SHA-256 (for the audit trail and as the
 * ETag). `position` orders a product's images; 0 is the one shown first.
 * The limits (5 per product, 2 MiB each) are checked by the service; the
 * size check here is the last line of defence.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('product_images', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.uuid('product_id').notNullable().references('products.id').onDelete('CASCADE');
    t.integer('position').notNullable();
    t.text('content_type').notNullable();
    t.binary('data').notNullable();
    t.integer('size').notNullable();
    t.text('sha256').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`content_type IN ('image/png', 'image/jpeg', 'image/webp')`, [], 'product_images_content_type');
    t.check(`position >= 0`, [], 'product_images_position');
    t.check(`size = octet_length(data) AND size BETWEEN 1 AND 2097152`, [], 'product_images_size');
    t.check(`sha256 ~ '^[0-9a-f]{64}$'`, [], 'product_images_sha256');
    t.index(['product_id', 'position']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('product_images');
}
