import type { Knex } from 'knex';
import type { SsoProviderRow, SsoRoleMappingRow } from '../db/tables';

/**
 * The owner of `sso_providers` and `sso_role_mappings`: every query on them
 * is built here, scoped to an organisation. Rules, sealing and audit stay
 * with the callers (sso/service.ts, sso/provisioning.ts).
 */
const providers = (db: Knex) => db('sso_providers');
const mappings = (db: Knex) => db('sso_role_mappings');

export type SsoKindColumn = SsoProviderRow['kind'];

export async function providerOf(db: Knex, organisationId: string, kind: SsoKindColumn): Promise<SsoProviderRow | undefined> {
  return providers(db).where({ organisation_id: organisationId, kind }).first();
}

export async function providerById(db: Knex, organisationId: string, id: string): Promise<SsoProviderRow | undefined> {
  return providers(db).where({ organisation_id: organisationId, id }).first();
}

export async function providersOf(db: Knex, organisationId: string): Promise<SsoProviderRow[]> {
  return providers(db).where({ organisation_id: organisationId }).orderBy('kind');
}

/** Creates or changes the organisation's provider of `kind` (one per kind). */
export async function saveProvider(
  trx: Knex.Transaction,
  organisationId: string,
  kind: SsoKindColumn,
  values: Pick<SsoProviderRow, 'enabled' | 'label' | 'check_minutes'> & { settings: Record<string, unknown> },
): Promise<SsoProviderRow> {
  const row = { ...values, settings: JSON.stringify(values.settings) };
  const [saved] = await providers(trx)
    .insert({ organisation_id: organisationId, kind, ...row })
    .onConflict(['organisation_id', 'kind'])
    .merge({ ...row, updated_at: trx.fn.now() })
    .returning('*');
  return saved!;
}

export async function setProviderSecret(trx: Knex.Transaction, organisationId: string, id: string, sealed: string | null): Promise<void> {
  await providers(trx).where({ organisation_id: organisationId, id }).update({ secret_sealed: sealed, updated_at: trx.fn.now() });
}

export async function deleteProvider(trx: Knex.Transaction, organisationId: string, id: string): Promise<boolean> {
  return (await providers(trx).where({ organisation_id: organisationId, id }).delete()) > 0;
}

/** The enabled LDAP providers whose periodic directory check is due, with their organisation's slug. */
export async function providersDueForCheck(db: Knex, now: Date): Promise<(SsoProviderRow & { organisation_slug: string })[]> {
  return providers(db)
    .join('organisations', 'organisations.id', 'sso_providers.organisation_id')
    .where('sso_providers.enabled', true)
    .where('sso_providers.kind', 'ldap')
    .whereNull('organisations.closed_at')
    .where('sso_providers.check_minutes', '>', 0)
    .where((w) => w.whereNull('sso_providers.checked_at').orWhereRaw(`sso_providers.checked_at <= ?::timestamptz - make_interval(mins => sso_providers.check_minutes)`, [now.toISOString()]))
    .orderBy('sso_providers.checked_at', 'asc', 'first')
    .select('sso_providers.*', 'organisations.slug as organisation_slug') as Promise<(SsoProviderRow & { organisation_slug: string })[]>;
}

export async function markChecked(db: Knex, organisationId: string, id: string, at: Date): Promise<void> {
  await providers(db).where({ organisation_id: organisationId, id }).update({ checked_at: at });
}

export async function roleMappingsOf(db: Knex, providerId: string): Promise<SsoRoleMappingRow[]> {
  return mappings(db).where({ provider_id: providerId }).orderBy('directory_group');
}

/** Replaces the provider's mapping (the caller checked that the provider is the organisation's). */
export async function replaceRoleMappings(trx: Knex.Transaction, providerId: string, rows: Pick<SsoRoleMappingRow, 'directory_group' | 'role'>[]): Promise<void> {
  await mappings(trx).where({ provider_id: providerId }).delete();
  if (rows.length) await mappings(trx).insert(rows.map((r) => ({ provider_id: providerId, ...r })));
}
