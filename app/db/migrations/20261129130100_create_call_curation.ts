import type { Knex } from 'knex';

/**
 * What a clerk curates for the customer during a call, the chat between
 * them, and the clerk's private notes.
 *
 * `call_items`: the products shown to the customer, one row per product
 * and call. The product's name, SKU, price, currency and link are copied
 * when it is shown, so the customer's summary stays what they were shown
 * even when the catalog changes or the product is deleted later
 * (`product_id` then becomes null). `image_id` names a `product_images`
 * row without a foreign key: a removed image simply no longer shows.
 * `note` is the clerk's note for the customer; `withdrawn_at` hides the
 * card from the customer; `favourite` and `asked_at` are the customer's.
 *
 * `call_messages`: the chat (kind `text`), and the customer's questions
 * about a card (kind `question`, `item_id` set, the text optional).
 * `call_notes`: the clerk's private notes, never shown to the customer.
 *
 * Everything goes with its call (ON DELETE CASCADE); the retention job
 * deletes chat and selections by their own settings.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('call_items', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.uuid('call_id').notNullable().references('calls.id').onDelete('CASCADE');
    t.uuid('product_id').references('products.id').onDelete('SET NULL');
    t.uuid('image_id');
    t.text('sku').notNullable();
    t.text('name').notNullable();
    t.bigInteger('price_cents').notNullable();
    t.specificType('currency', 'char(3)').notNullable();
    t.text('product_url');
    t.text('note').notNullable().defaultTo('');
    t.integer('position').notNullable();
    t.boolean('favourite').notNullable().defaultTo(false);
    t.timestamp('asked_at', { useTz: true });
    t.timestamp('shown_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('withdrawn_at', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['call_id', 'product_id']);
    t.check(`length(note) <= 1000`, [], 'call_items_note');
    t.check(`product_url IS NULL OR product_url ~* '^(http|https)://'`, [], 'call_items_url');
    t.index(['call_id', 'position']);
  });

  await knex.schema.createTable('call_messages', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.uuid('call_id').notNullable().references('calls.id').onDelete('CASCADE');
    t.text('sender').notNullable();
    t.uuid('user_id').references('users.id').onDelete('SET NULL');
    t.text('kind').notNullable().defaultTo('text');
    t.uuid('item_id').references('call_items.id').onDelete('SET NULL');
    t.text('body').notNullable().defaultTo('');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`sender IN ('clerk', 'customer')`, [], 'call_messages_sender');
    t.check(`kind IN ('text', 'question')`, [], 'call_messages_kind');
    t.check(`length(body) <= 2000 AND (kind = 'question' OR length(body) >= 1)`, [], 'call_messages_body');
    t.index(['call_id', 'created_at']);
  });

  await knex.schema.createTable('call_notes', (t) => {
    t.uuid('call_id').primary().references('calls.id').onDelete('CASCADE');
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('body').notNullable();
    t.uuid('updated_by').references('users.id').onDelete('SET NULL');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`length(body) <= 5000`, [], 'call_notes_body');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('call_notes');
  await knex.schema.dropTable('call_messages');
  await knex.schema.dropTable('call_items');
}
