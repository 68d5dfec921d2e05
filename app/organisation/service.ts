import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import type { Actor } from '../audit/actions';
import { ValidationError } from '../core/errors';
import { countOrganisations, findOrganisation, insertOrganisation, slugTaken, type Organisation } from './store';

export type { Organisation } from './store';
export { toOrganisation } from './store';

export const SLUG = /^[a-z0-9][a-z0-9-]{1,62}$/;

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
    return countOrganisations(this.knex);
  }

  async byId(id: string): Promise<Organisation | undefined> {
    return findOrganisation(this.knex, { id });
  }

  async bySlug(slug: string): Promise<Organisation | undefined> {
    if (!SLUG.test(slug)) return undefined;
    return findOrganisation(this.knex, { slug });
  }

  /**
   * Creates an organisation with the given slug (the organisation's own
   * identifier) or one generated from its name, made unique.
   */
  async create(input: { name: string; vatNumber?: string | null; slug?: string | null }, actor: Actor, trx: Knex.Transaction): Promise<Organisation> {
    let slug = input.slug ?? slugify(input.name);
    if (input.slug) {
      if (await slugTaken(trx, slug)) throw new ValidationError([{ field: 'slug', code: 'taken' }]);
    } else {
      for (let n = 2; await slugTaken(trx, slug); n++) slug = `${slugify(input.name).slice(0, 45)}-${n}`;
    }
    const organisation = await insertOrganisation(trx, { slug, name: input.name, vat_number: input.vatNumber || null });
    await new AuditService(this.knex as Knex).record(
      { organisationId: organisation.id, actor, action: 'organisation.created', target: { type: 'organisation', id: organisation.id }, details: { name: organisation.name, slug } },
      trx,
    );
    return organisation;
  }
}
