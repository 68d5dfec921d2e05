import type { Knex } from 'knex';

/**
 * Legal holds, and a consent ledger that outlives its recording.
 *
 * `legal_holds`: compliance staff put a hold on a whole organisation, one
 * call, or one recording, with a reason; lifting it takes a reason too. A
 * held thing is never deleted by the retention job nor by an erasure.
 * `call_id` and `recording_id` carry no foreign key on purpose: a lifted
 * hold stays in the list after the data it held is gone. A recording hold
 * also stores the recording's call (`call_id`), so "is this call held?"
 * needs no join. At most one active hold per target.
 *
 * `recording_consents.recording_id` changes from ON DELETE CASCADE to
 * SET NULL: when retention deletes a recording, the proof of consent is
 * kept by its own (longer) retention setting.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('legal_holds', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('scope').notNullable();
    t.uuid('call_id');
    t.uuid('recording_id');
    t.text('reason').notNullable();
    t.uuid('created_by').references('users.id').onDelete('SET NULL');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('lifted_at', { useTz: true });
    t.uuid('lifted_by').references('users.id').onDelete('SET NULL');
    t.text('lift_reason');
    t.check(`scope IN ('organisation', 'call', 'recording')`, [], 'legal_holds_scope');
    t.check(
      `(scope = 'organisation' AND call_id IS NULL AND recording_id IS NULL) OR (scope = 'call' AND call_id IS NOT NULL AND recording_id IS NULL) OR (scope = 'recording' AND call_id IS NOT NULL AND recording_id IS NOT NULL)`,
      [],
      'legal_holds_target',
    );
    t.check(`length(reason) BETWEEN 1 AND 1000`, [], 'legal_holds_reason');
    t.check(`(lifted_at IS NULL) = (lift_reason IS NULL)`, [], 'legal_holds_lifted');
    t.check(`lift_reason IS NULL OR length(lift_reason) BETWEEN 1 AND 1000`, [], 'legal_holds_lift_reason');
    t.index(['organisation_id', 'created_at']);
  });
  await knex.raw(`CREATE UNIQUE INDEX legal_holds_active_target ON legal_holds (organisation_id, scope, coalesce(recording_id, call_id, organisation_id)) WHERE lifted_at IS NULL`);

  await knex.schema.alterTable('recording_consents', (t) => {
    t.dropForeign(['recording_id']);
    t.foreign('recording_id').references('recordings.id').onDelete('SET NULL');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('recording_consents', (t) => {
    t.dropForeign(['recording_id']);
    t.foreign('recording_id').references('recordings.id').onDelete('CASCADE');
  });
  await knex.schema.dropTable('legal_holds');
}
