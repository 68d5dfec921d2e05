import type { Knex } from 'knex';

/**
 * When the directory last took a single sign-on user's access away (no
 * longer in it, or in no mapped group): set by the sign-in refusal and the
 * periodic check, cleared by the next sign-in the directory allows. The
 * periodic check skips users already marked, so a departed person is
 * deprovisioned (and audited) once, not at every run.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.timestamp('sso_deprovisioned_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('sso_deprovisioned_at');
  });
}
