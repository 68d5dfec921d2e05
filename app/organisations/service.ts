import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import type { Actor } from '../audit/actions';
import { ValidationError } from '../errors';

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

export const SLUG = /^[a-z0-9][a-z0-9-]{1,62}$/;

export function toOrganisation(row: Record<string, unknown>): Organisation {
  return {
    id: row.id as string,
    slug: row.slug as string,
    name: row.name as string,
    vatNumber: (row.vat_number as string | null) ?? null,
    brandColor: (row.brand_color as string | null) ?? null,
    hasLogo: Boolean(row.logo_type),
    settings: (row.settings as Record<string, unknown>) ?? {},
    closedAt: (row.closed_at as Date | null) ?? null,
    updatedAt: row.updated_at as Date,
  };
}

const COLUMNS = ['id', 'slug', 'name', 'vat_number', 'brand_color', 'logo_type', 'settings', 'closed_at', 'updated_at'];

/** What a customer page needs to show the organisation's branding. */
export function brandingOf(organisation: Organisation): { slug: string; name: string; version: number; hasLogo: boolean } {
  return { slug: organisation.slug, name: organisation.name, version: organisation.updatedAt.getTime(), hasLogo: organisation.hasLogo };
}

/** A URL-safe identifier from a name: "Müller & Söhne GmbH" -> "muller-sohne-gmbh". */
export function slugify(name: string): string {
  const base = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50);
  return base.length >= 2 ? base : `org-${base}`.replace(/-+$/, '') || 'org';
}

/** Organisations: creation (first run, CLI) and the reads every feature needs. */
export class OrganisationStore {
  constructor(private readonly knex: Knex | Knex.Transaction) {}

  async count(): Promise<number> {
    const [{ n }] = (await this.knex('organisations').count({ n: '*' })) as [{ n: string }];
    return Number(n);
  }

  async byId(id: string): Promise<Organisation | undefined> {
    const row = await this.knex('organisations').where({ id }).first(COLUMNS);
    return row ? toOrganisation(row) : undefined;
  }

  async bySlug(slug: string): Promise<Organisation | undefined> {
    if (!SLUG.test(slug)) return undefined;
    const row = await this.knex('organisations').where({ slug }).first(COLUMNS);
    return row ? toOrganisation(row) : undefined;
  }

  /**
   * Creates an organisation with the given slug (the organisation's own
   * identifier) or one generated from its name, made unique.
   */
  async create(input: { name: string; vatNumber?: string | null; slug?: string | null }, actor: Actor, trx: Knex.Transaction): Promise<Organisation> {
    let slug = input.slug ?? slugify(input.name);
    if (input.slug) {
      if (await trx('organisations').where({ slug }).first('id')) throw new ValidationError([{ field: 'slug', code: 'taken' }]);
    } else {
      for (let n = 2; await trx('organisations').where({ slug }).first('id'); n++) slug = `${slugify(input.name).slice(0, 45)}-${n}`;
    }
    const [row] = await trx('organisations').insert({ slug, name: input.name, vat_number: input.vatNumber || null }).returning(COLUMNS);
    const organisation = toOrganisation(row);
    await new AuditService(this.knex as Knex).record(
      { organisationId: organisation.id, actor, action: 'organisation.created', target: { type: 'organisation', id: organisation.id }, details: { name: organisation.name, slug } },
      trx,
    );
    return organisation;
  }
}
