import type { Knex } from 'knex';

/**
 * Call links as the clerk creates them: an optional non-personal reference
 * (a case number), an optional scheduled time, and revocation.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('calls', (t) => {
    t.text('reference');
    t.timestamp('scheduled_at', { useTz: true });
    t.timestamp('link_revoked_at', { useTz: true });
    t.check(`reference IS NULL OR (length(reference) <= 64 AND position('@' in reference) = 0)`, [], 'calls_reference');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('calls', (t) => {
    t.dropChecks(['calls_reference']);
    t.dropColumns('reference', 'scheduled_at', 'link_revoked_at');
  });
}
