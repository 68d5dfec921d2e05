import type { Knex } from 'knex';

/**
 * Single sign-on (issue 18). Per organisation at most one provider of each
 * kind (OIDC, LDAP), its settings (no secret) and its secret sealed with
 * the appliance's secrets key (AES-256-GCM, security/sealed.ts; never shown
 * back); the role mapping from directory groups or claim values to roles.
 * Users signed in through a provider are linked to it by the directory's
 * stable subject (OIDC `sub`, LDAP entryUUID/objectGUID/DN) and have no
 * password. An organisation may turn password sign-in off; then only its
 * break-glass administrators can still sign in with a password.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sso_providers', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('organisation_id').notNullable().references('organisations.id').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.boolean('enabled').notNullable().defaultTo(false);
    t.text('label').notNullable();
    t.jsonb('settings').notNullable().defaultTo('{}');
    t.text('secret_sealed');
    /** Minutes between checks that the directory still has each linked user (LDAP); 0: only at sign-in. */
    t.integer('check_minutes').notNullable().defaultTo(60);
    t.timestamp('checked_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['organisation_id', 'kind']);
    t.check(`kind IN ('oidc', 'ldap')`, [], 'sso_providers_kind');
    t.check('check_minutes BETWEEN 0 AND 10080', [], 'sso_providers_check_minutes');
  });
  await knex.schema.createTable('sso_role_mappings', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('provider_id').notNullable().references('sso_providers.id').onDelete('CASCADE');
    /** A group DN (LDAP) or claim value (OIDC), compared case-insensitively. */
    t.text('directory_group').notNullable();
    t.text('role').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check(`role IN ('admin', 'clerk', 'compliance')`, [], 'sso_role_mappings_role');
    t.check('length(directory_group) BETWEEN 1 AND 1000', [], 'sso_role_mappings_group');
  });
  await knex.raw('CREATE UNIQUE INDEX sso_role_mappings_unique ON sso_role_mappings (provider_id, lower(directory_group))');
  await knex.schema.alterTable('users', (t) => {
    t.uuid('sso_provider_id').references('sso_providers.id').onDelete('SET NULL');
    t.text('sso_subject');
    t.boolean('break_glass').notNullable().defaultTo(false);
    t.unique(['sso_provider_id', 'sso_subject']);
    t.check('(sso_provider_id IS NULL) = (sso_subject IS NULL)', [], 'users_sso_link');
  });
  await knex.schema.alterTable('organisations', (t) => {
    t.boolean('password_sign_in').notNullable().defaultTo(true);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('organisations', (t) => t.dropColumn('password_sign_in'));
  await knex.schema.alterTable('users', (t) => {
    t.dropChecks(['users_sso_link']);
    t.dropUnique(['sso_provider_id', 'sso_subject']);
    t.dropColumn('break_glass');
    t.dropColumn('sso_subject');
    t.dropColumn('sso_provider_id');
  });
  await knex.schema.dropTable('sso_role_mappings');
  await knex.schema.dropTable('sso_providers');
}
