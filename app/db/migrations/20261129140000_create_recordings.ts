import type { Knex } from 'knex';

/**
 * Recordings of calls, their raw tracks, and the consent ledger.
 *
 * `recordings`: one per start of recording in a call. `status` moves
 * recording → processing → ready, or ends `partial` (the recorder died, the
 * appliance restarted, the disk ran full: the final file holds what was
 * recorded) or `failed` (nothing could be made). `file_name` is relative to
 * the recording's directory (<dataDir>/recordings/<organisation>/<id>/);
 * `sha256` is that of the plaintext final file, also in the audit trail.
 *
 * `recording_tracks`: the raw per-participant files ffmpeg wrote during the
 * call (Matroska, media copied without re-encoding), with when they
 * started, so the final file can place them on one timeline.
 *
 * `recording_consents`: the ledger. For each participant and recording:
 * what was asked (the notice text shown and its version), the answer
 * (granted, declined, withdrawn), when, and from which client IP.
 * A consent asked before joining (policy "always") has no recording yet:
 * `recording_id` is set when the recording starts.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('recordings', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.uuid('call_id').notNullable().references('calls.id').onDelete('CASCADE');
    t.text('status').notNullable().defaultTo('recording');
    t.uuid('started_by').references('users.id').onDelete('SET NULL');
    t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('stopped_at', { useTz: true });
    t.text('stop_reason');
    t.integer('progress').notNullable().defaultTo(0);
    t.bigInteger('duration_ms');
    t.text('file_name');
    t.bigInteger('size');
    t.text('sha256');
    t.boolean('encrypted').notNullable().defaultTo(false);
    t.text('error');
    t.timestamp('finalised_at', { useTz: true });
    t.check(`status IN ('recording', 'processing', 'ready', 'partial', 'failed')`, [], 'recordings_status');
    t.check(`progress BETWEEN 0 AND 100`, [], 'recordings_progress');
    t.check(`sha256 IS NULL OR sha256 ~ '^[0-9a-f]{64}$'`, [], 'recordings_sha256');
    t.index(['organisation_id', 'started_at']);
    t.index(['call_id']);
    t.index(['status']);
  });

  await knex.schema.createTable('recording_tracks', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('recording_id').notNullable().references('recordings.id').onDelete('CASCADE');
    t.text('role').notNullable();
    t.text('file_name').notNullable();
    t.specificType('kinds', 'text[]').notNullable().defaultTo('{}');
    t.bigInteger('started_at_ms').notNullable();
    t.bigInteger('ended_at_ms');
    t.integer('exit_code');
    t.boolean('partial').notNullable().defaultTo(false);
    t.check(`role IN ('clerk', 'customer')`, [], 'recording_tracks_role');
    t.unique(['recording_id', 'file_name']);
  });

  await knex.schema.createTable('recording_consents', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.uuid('call_id').notNullable().references('calls.id').onDelete('CASCADE');
    t.uuid('recording_id').references('recordings.id').onDelete('CASCADE');
    t.text('role').notNullable();
    t.uuid('user_id').references('users.id').onDelete('SET NULL');
    t.text('answer').notNullable();
    t.text('notice_text').notNullable();
    t.text('notice_version').notNullable();
    t.text('language').notNullable();
    t.specificType('ip', 'inet');
    t.timestamp('answered_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`role IN ('clerk', 'customer')`, [], 'recording_consents_role');
    t.check(`answer IN ('granted', 'declined', 'withdrawn')`, [], 'recording_consents_answer');
    t.index(['call_id', 'answered_at']);
    t.index(['recording_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('recording_consents');
  await knex.schema.dropTable('recording_tracks');
  await knex.schema.dropTable('recordings');
}
