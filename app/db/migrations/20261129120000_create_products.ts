import type { Knex } from 'knex';

/**
 * The product catalog of an organisation. `sku` is unique per organisation
 * (re-imports update by it). Prices are integer cents with an ISO 4217
 * currency. `search` is a generated tsvector: the name, SKU, category and
 * tags as plain words ('simple'), and the name and description stemmed in
 * German and English, so that "Versicherungen" finds "Versicherung" and
 * "insurances" finds "insurance". A trigram index on the lower-cased name
 * catches typos and infixes (pg_trgm, shipped with PostgreSQL's contrib).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE EXTENSION IF NOT EXISTS pg_trgm');
  // array_to_string is only STABLE; a generated column needs IMMUTABLE (text[] output never changes).
  await knex.raw(`
    CREATE FUNCTION products_tags_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN array_to_string(tags, ' ')`);
  await knex.schema.createTable('products', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('sku').notNullable();
    t.text('name').notNullable();
    t.text('description').notNullable().defaultTo('');
    t.bigInteger('price_cents').notNullable();
    t.specificType('currency', 'char(3)').notNullable();
    t.text('product_url');
    t.text('category');
    t.specificType('tags', 'text[]').notNullable().defaultTo('{}');
    t.boolean('active').notNullable().defaultTo(true);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['organisation_id', 'sku']);
    t.check(`length(sku) BETWEEN 1 AND 64`, [], 'products_sku');
    t.check(`length(name) BETWEEN 1 AND 200`, [], 'products_name');
    t.check(`length(description) <= 5000`, [], 'products_description');
    t.check(`price_cents >= 0`, [], 'products_price');
    t.check(`currency ~ '^[A-Z]{3}$'`, [], 'products_currency');
    t.check(`product_url IS NULL OR product_url ~* '^(http|https)://'`, [], 'products_url');
    t.index(['organisation_id', 'category']);
  });
  await knex.raw(`
    ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
      setweight(to_tsvector('simple'::regconfig, name || ' ' || sku), 'A') ||
      setweight(to_tsvector('english'::regconfig, name), 'A') ||
      setweight(to_tsvector('german'::regconfig, name), 'A') ||
      setweight(to_tsvector('simple'::regconfig, coalesce(category, '') || ' ' || products_tags_text(tags)), 'B') ||
      setweight(to_tsvector('english'::regconfig, description), 'C') ||
      setweight(to_tsvector('german'::regconfig, description), 'C')
    ) STORED`);
  await knex.raw('CREATE INDEX products_search_idx ON products USING gin (search)');
  await knex.raw('CREATE INDEX products_name_trgm_idx ON products USING gin (lower(name) gin_trgm_ops)');
  // SKUs are searched from their start, as typed.
  await knex.raw('CREATE INDEX products_sku_prefix_idx ON products (lower(sku) text_pattern_ops)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('products');
  await knex.raw('DROP FUNCTION IF EXISTS products_tags_text(text[])');
  await knex.raw('DROP EXTENSION IF EXISTS pg_trgm');
}
