import type { Knex } from 'knex';

/**
 * Keys for the customers' personal data in the audit trail (crypto-shredding).
 * A customer's IP address and user agent are written to `audit_events` only
 * encrypted (AES-256-GCM) under one of these keys; the hash chain covers the
 * ciphertext. Destroying a key (retention, an erasure request) makes what was
 * encrypted under it unreadable without touching the append-only trail.
 *
 * A key belongs to one call (`call_id`: every customer event of the call) or,
 * for customer events without a call, to one organisation and calendar month
 * (`period` 'YYYY-MM', UTC). `last_used_at` is the newest event under the key:
 * retention destroys a key once that is older than the organisation's setting.
 * A destroyed key keeps its row (`key` NULL, `destroyed_at` and why) so that
 * readers can say "erased"; at most one live key per scope.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_personal_keys', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    // No foreign key: the key outlives neither its data nor its call's erasure, but the call row may go first.
    t.uuid('call_id');
    t.text('period');
    t.binary('key');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('destroyed_at', { useTz: true });
    t.text('destroyed_by');
    t.check(`(call_id IS NULL) <> (period IS NULL)`, [], 'audit_personal_keys_scope');
    t.check(`period IS NULL OR period ~ '^[0-9]{4}-[0-9]{2}$'`, [], 'audit_personal_keys_period');
    t.check(`(key IS NULL) = (destroyed_at IS NOT NULL)`, [], 'audit_personal_keys_destroyed');
    t.check(`key IS NULL OR octet_length(key) = 32`, [], 'audit_personal_keys_length');
    t.check(`destroyed_by IS NULL OR destroyed_by IN ('retention', 'erasure', 'purge')`, [], 'audit_personal_keys_destroyed_by');
    t.index(['organisation_id', 'last_used_at']);
    t.index(['organisation_id', 'call_id']);
  });
  await knex.raw(`CREATE UNIQUE INDEX audit_personal_keys_live_call ON audit_personal_keys (organisation_id, call_id) WHERE destroyed_at IS NULL AND call_id IS NOT NULL`);
  await knex.raw(`CREATE UNIQUE INDEX audit_personal_keys_live_period ON audit_personal_keys (organisation_id, period) WHERE destroyed_at IS NULL AND period IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_personal_keys');
}
