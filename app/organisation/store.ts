import type { Knex } from 'knex';
import { type Json, type OrganisationRow } from '../db/tables';

/**
 * The owner of `organisations`: every query on the table is built here.
 * The profile and branding, the settings kept in `settings` (queue,
 * widget, recording policy, retention, privacy contact), closure and
 * purge, setup and the status page call these functions, passing their
 * transaction.
 */

export interface Organisation {
  id: string;
  slug: string;
  name: string;
  vatNumber: string | null;
  brandColor: string | null;
  hasLogo: boolean;
  settings: Record<string, unknown>;
  closedAt: Date | null;
  updatedAt: Date;
}

const COLUMNS = ['id', 'slug', 'name', 'vat_number', 'brand_color', 'logo_type', 'settings', 'closed_at', 'updated_at'] as const;

type OrganisationColumns = Pick<OrganisationRow, (typeof COLUMNS)[number]>;

export function toOrganisation(row: OrganisationColumns): Organisation {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    vatNumber: row.vat_number ?? null,
    brandColor: row.brand_color ?? null,
    hasLogo: Boolean(row.logo_type),
    settings: row.settings ?? {},
    closedAt: row.closed_at ?? null,
    updatedAt: row.updated_at,
  };
}

const organisations = (db: Knex) => db('organisations');

export async function countOrganisations(db: Knex): Promise<number> {
  const [row] = (await organisations(db).count({ n: '*' })) as unknown as [{ n: string }];
  return Number(row.n);
}

export async function findOrganisation(db: Knex, where: Partial<Pick<OrganisationRow, 'id' | 'slug'>>): Promise<Organisation | undefined> {
  const row = await organisations(db).where(where).first(...COLUMNS);
  return row ? toOrganisation(row) : undefined;
}

/** The organisation's row read through the caller's organisation scope (`organisations.id`). */
export async function ownOrganisation(db: Knex, id: string): Promise<Organisation | undefined> {
  const row = await organisations(db).where('organisations.id', id).first(...COLUMNS);
  return row ? toOrganisation(row) : undefined;
}

export async function slugTaken(db: Knex, slug: string): Promise<boolean> {
  return Boolean(await organisations(db).where({ slug }).first('id'));
}

export async function insertOrganisation(trx: Knex.Transaction, values: Pick<OrganisationRow, 'slug' | 'name' | 'vat_number'>): Promise<Organisation> {
  const [row] = await organisations(trx).insert(values).returning(COLUMNS);
  return toOrganisation(row!);
}

/** Locks the organisation's row and gives `closed_at` and the columns asked for (profile and branding changes). */
export async function lockOwnOrganisation(trx: Knex.Transaction, id: string, columns: (string | Knex.Raw)[]): Promise<Record<string, any> | undefined> {
  return trx('organisations').where('organisations.id', id).forUpdate().first(['closed_at', ...columns]);
}

/** Changes profile or branding columns; `updated_at` is set now. */
export async function updateOwnOrganisation(trx: Knex.Transaction, id: string, values: Partial<Pick<OrganisationRow, 'name' | 'vat_number' | 'brand_color' | 'logo' | 'logo_type'>>): Promise<void> {
  await organisations(trx).where('organisations.id', id).update({ ...values, updated_at: trx.fn.now() });
}

/** The organisation's settings (jsonb), or undefined for an unknown organisation. */
export async function organisationSettings(db: Knex, id: string): Promise<Json | undefined> {
  return (await organisations(db).where({ id }).first('settings'))?.settings;
}

/** The same, locking the row for the rest of the transaction. */
export async function lockOrganisationSettings(trx: Knex.Transaction, id: string): Promise<Json | undefined> {
  return (await organisations(trx).where({ id }).forUpdate().first('settings'))?.settings;
}

/** Merges `patch` into the settings (`settings || patch`); `updated_at` is set now. */
export async function mergeOrganisationSettings(trx: Knex.Transaction, id: string, patch: Record<string, unknown>): Promise<void> {
  await organisations(trx).where({ id }).update({
    settings: trx.raw(`settings || ?::jsonb`, [JSON.stringify(patch)]),
    updated_at: trx.fn.now(),
  });
}

/** Sets the widget's allowed origins in the settings (`jsonb_set`); `updated_at` is set now. */
export async function setWidgetOrigins(trx: Knex.Transaction, id: string, origins: string[]): Promise<void> {
  await organisations(trx).where({ id }).update({ settings: trx.raw(`jsonb_set(settings, '{widgetOrigins}', ?::jsonb)`, [JSON.stringify(origins)]), updated_at: trx.fn.now() });
}

/** A public page's logo by the organisation's slug, with the SHA-256 of its bytes. */
export async function logoBySlug(db: Knex, slug: string): Promise<{ logo: Buffer; logo_type: string; sha256: string } | undefined> {
  return db('organisations').where({ slug }).whereNotNull('logo').whereNotNull('logo_type').first('logo', 'logo_type', db.raw(`encode(sha256(logo), 'hex') AS sha256`));
}

export async function brandColorBySlug(db: Knex, slug: string): Promise<{ brand_color: string | null } | undefined> {
  return organisations(db).where({ slug }).first('brand_color');
}

/** Name and closure of the organisation. */
export async function closureOf(db: Knex, id: string): Promise<Pick<OrganisationRow, 'name' | 'closed_at'> | undefined> {
  return organisations(db).where({ id }).first('name', 'closed_at');
}

/** The same, locking the row (closing the organisation). */
export async function lockClosureOf(trx: Knex.Transaction, id: string): Promise<Pick<OrganisationRow, 'name' | 'closed_at'> | undefined> {
  return organisations(trx).where({ id }).forUpdate().first('name', 'closed_at');
}

export async function markClosed(trx: Knex.Transaction, id: string, now: Date): Promise<void> {
  await organisations(trx).where({ id }).update({ closed_at: now, updated_at: now });
}

/** Closed organisations due for the purge (closed at or before `cutoff`, not purged yet), the longest closed first. */
export async function organisationsDueForPurge(db: Knex, cutoff: Date): Promise<string[]> {
  return (await organisations(db).whereNotNull('closed_at').where('closed_at', '<=', cutoff).whereNull('purged_at').orderBy('closed_at').select('id')).map((o) => o.id);
}

/** Locks the organisation for its purge and gives when it closed and whether it was purged. */
export async function lockForPurge(trx: Knex.Transaction, id: string): Promise<Pick<OrganisationRow, 'closed_at' | 'purged_at'> | undefined> {
  return organisations(trx).where({ id }).forUpdate().first('closed_at', 'purged_at');
}

/** The purge clears logo, colour and settings; `completed` marks the organisation purged. */
export async function clearPurgedOrganisation(trx: Knex.Transaction, id: string, now: Date, completed: boolean): Promise<void> {
  await organisations(trx).where({ id }).update({
    logo: null,
    logo_type: null,
    brand_color: null,
    settings: '{}' as unknown as Json,
    updated_at: now,
    purged_at: completed ? now : null,
  });
}

/** Every organisation's id, the oldest first. */
export async function organisationIds(db: Knex): Promise<string[]> {
  return (await organisations(db).orderBy('created_at').select('id')).map((r) => r.id);
}

/** Whether any organisation other than `id` exists. */
export async function otherOrganisationExists(db: Knex, id: string): Promise<boolean> {
  return Boolean(await organisations(db).whereNot({ id }).first('id'));
}

/** Whether the organisation's staff may sign in with a password (off: only its break-glass users). Locks the row in a transaction. */
export async function passwordSignInOf(db: Knex, id: string, lock = false): Promise<boolean | undefined> {
  const query = organisations(db).where({ id });
  if (lock) query.forUpdate();
  return (await query.first('password_sign_in'))?.password_sign_in;
}

export async function setPasswordSignIn(trx: Knex.Transaction, id: string, on: boolean): Promise<void> {
  await organisations(trx).where({ id }).update({ password_sign_in: on, updated_at: trx.fn.now() });
}
