import type { Knex } from 'knex';

/**
 * Data-subject requests (GDPR Art. 15 access, Art. 17 erasure) as compliance
 * staff register them for a customer, who is identified by their call link,
 * a call reference, or a time window (optionally one clerk's calls).
 *
 * `subject_requests`: the request, the calls it was resolved to when it was
 * registered (`call_ids`; a call link is looked up by the SHA-256 of its
 * token, the token itself is never stored), the due date (30 days after
 * registration), the status (open → in_progress → completed or rejected),
 * and, once executed, what was done and what was held back (`result`).
 * `subject_request_notes`: the status history with the note given at
 * each step; rows are only ever added.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('subject_requests', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('status').notNullable().defaultTo('open');
    t.text('identified_by').notNullable();
    t.text('call_reference');
    t.timestamp('window_from', { useTz: true });
    t.timestamp('window_to', { useTz: true });
    t.uuid('window_clerk_id').references('users.id').onDelete('SET NULL');
    t.specificType('call_ids', 'uuid[]').notNullable().defaultTo('{}');
    t.timestamp('due_at', { useTz: true }).notNullable();
    t.uuid('created_by').references('users.id').onDelete('SET NULL');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('executed_at', { useTz: true });
    t.uuid('executed_by').references('users.id').onDelete('SET NULL');
    t.jsonb('result');
    t.timestamp('closed_at', { useTz: true });
    t.check(`kind IN ('erasure', 'access')`, [], 'subject_requests_kind');
    t.check(`status IN ('open', 'in_progress', 'completed', 'rejected')`, [], 'subject_requests_status');
    t.check(`identified_by IN ('call_link', 'reference', 'window')`, [], 'subject_requests_identified_by');
    t.check(`call_reference IS NULL OR length(call_reference) <= 64`, [], 'subject_requests_reference');
    t.index(['organisation_id', 'status', 'due_at']);
  });

  await knex.schema.createTable('subject_request_notes', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('request_id').notNullable().references('subject_requests.id').onDelete('CASCADE');
    t.text('status').notNullable();
    t.text('note').notNullable().defaultTo('');
    t.uuid('created_by').references('users.id').onDelete('SET NULL');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`length(note) <= 2000`, [], 'subject_request_notes_note');
    t.index(['request_id', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('subject_request_notes');
  await knex.schema.dropTable('subject_requests');
}
