import type { Knex } from 'knex';

/**
 * Calls made before their channel was recorded: a call a clerk accepted
 * from the waiting queue came from the queue (the widget's customers could
 * not be told apart then); any other came by a call link (the API's calls
 * included: they were not told apart either). Insights counts them so.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`UPDATE calls SET channel = CASE WHEN EXISTS (SELECT 1 FROM queue_entries q WHERE q.call_id = calls.id) THEN 'queue' ELSE 'link' END WHERE channel IS NULL`);
}

export async function down(): Promise<void> {
  // The channel stays: the schema migration's down drops it.
}
