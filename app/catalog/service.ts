import type { Knex } from 'knex';
import { z } from 'zod';
import { OrganisationScopedService } from '../access/scoped-service';
import { NotFoundError, ValidationError } from '../core/errors';
import { parseBody } from '../http/forms';
import { type ProductRow } from '../db/tables';

export interface Product {
  id: string;
  sku: string;
  name: string;
  description: string;
  priceCents: number;
  currency: string;
  url: string | null;
  category: string | null;
  tags: string[];
  active: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** What a catalog change is called in the audit trail (details.catalog). */
export type CatalogChange = 'product_created' | 'product_updated' | 'product_deactivated' | 'product_activated' | 'import_applied';

const TRUE = new Set(['true', '1', 'yes', 'ja', 'on', 'y', 'j']);
const FALSE = new Set(['false', '0', 'no', 'nein', 'off', 'n']);

/** "12.50", "12,5", "1200", 12.5 -> cents; undefined when not a price. */
export function parsePrice(value: unknown): number | undefined {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : undefined;
  const match = text === undefined ? null : /^(\d{1,12})(?:[.,](\d{1,2}))?$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}

export function formatPrice(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

const optionalText = (max: number) =>
  z.preprocess((v) => (v === undefined || v === null ? '' : v), z.string('invalid').trim().max(max, 'too_long'));

/**
 * One product as typed in the form or read from an import row. Field codes
 * are i18n keys under `catalog.errors` (or the shared `forms.*` ones).
 */
export const productSchema = z.object({
  sku: z.preprocess((v) => (v === undefined || v === null ? '' : v), z.string('required').trim().min(1, 'required').max(64, 'too_long').regex(/^[A-Za-z0-9._\-/]+$/, 'invalid_sku')),
  name: z.preprocess((v) => (v === undefined || v === null ? '' : v), z.string('required').trim().min(1, 'required').max(200, 'too_long')),
  description: optionalText(5000),
  price: z.unknown().optional().transform((v, ctx) => {
    const cents = parsePrice(v);
    if (cents === undefined) {
      ctx.addIssue({ code: 'custom', message: v === undefined || v === '' ? 'required' : 'invalid_price' });
      return z.NEVER;
    }
    return cents;
  }),
  currency: z.preprocess((v) => (typeof v === 'string' ? v.trim().toUpperCase() : v), z.string('required').regex(/^[A-Z]{3}$/, 'invalid_currency')),
  url: optionalText(2000).transform((v, ctx) => {
    if (v === '') return null;
    let parsed: URL | undefined;
    try {
      parsed = new URL(v);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || !/^https?:\/\//i.test(v)) {
      ctx.addIssue({ code: 'custom', message: 'invalid_url' });
      return z.NEVER;
    }
    return v;
  }),
  category: optionalText(100).transform((v) => (v === '' ? null : v)),
  tags: z
    .preprocess((v) => (v === undefined || v === null ? [] : typeof v === 'string' ? v.split('|') : v), z.array(z.string('invalid_tags'), 'invalid_tags'))
    .transform((tags) => [...new Set(tags.map((t) => t.trim()).filter((t) => t !== ''))])
    .refine((tags) => tags.length <= 20 && tags.every((t) => t.length <= 50), 'invalid_tags'),
  active: z.unknown().optional().transform((v, ctx) => {
    if (typeof v === 'boolean') return v;
    const text = v === undefined || v === null ? '' : String(v).trim().toLowerCase();
    if (text === '') return true;
    if (TRUE.has(text)) return true;
    if (FALSE.has(text)) return false;
    ctx.addIssue({ code: 'custom', message: 'invalid_active' });
    return z.NEVER;
  }),
});

export type ProductInput = z.infer<typeof productSchema>;

export const searchSchema = z.object({
  q: optionalText(200),
  category: optionalText(100),
  active: z.enum(['', 'active', 'inactive']).catch(''),
  page: z.coerce.number().int().min(1).max(10000).catch(1),
});

/** How close a typed word must be to a word of the name (pg_trgm word_similarity, 0..1). */
const WORD_SIMILARITY = 0.4;

export interface SearchOptions {
  category?: string;
  active?: boolean;
  limit?: number;
  offset?: number;
  /** Count all matches too (for paging); the in-call search does without. */
  withTotal?: boolean;
}

/** The words of a query (letters and digits only): safe to put into a tsquery. */
export function queryWords(query: string): string[] {
  return (query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 8).map((w) => w.slice(0, 50));
}

/** `w1:* & w2:*`: every word, as a prefix (search as you type). */
export function prefixQuery(words: string[]): string {
  return words.map((w) => `${w}:*`).join(' & ');
}

/**
 * The product catalog of the caller's organisation. Built per request with
 * the caller: every query is scoped to the caller's organisation, and every
 * change is audited in the same transaction, as `catalog.<change>` with
 * `details.catalog` naming the change.
 */
export class CatalogService extends OrganisationScopedService {
  /** Public: the importer scopes its own queries with it. */
  override get organisationId(): string {
    return this.caller.user.organisationId;
  }

  scoped(trx: Knex | Knex.Transaction = this.knex) {
    return trx('products').where('products.organisation_id', this.organisationId);
  }

  /**
   * Products matching a query, most relevant first: every word as a prefix
   * of a word in the plain, English or German index (so "versicherungen"
   * finds "Versicherung"), or the whole query close to the name by
   * trigrams (typos). An empty query lists by name.
   */
  async search(query: string, options: SearchOptions = {}): Promise<{ products: Product[]; total: number }> {
    const limit = Math.min(Math.max(options.limit ?? 25, 1), 200);
    const offset = Math.max(options.offset ?? 0, 0);
    const words = queryWords(query);
    const base = this.scoped();
    if (options.category) base.where('category', options.category);
    if (options.active !== undefined) base.where('active', options.active);
    const withTotal = options.withTotal ?? true;
    if (words.length === 0) {
      const [counted] = withTotal ? await base.clone().count<{ count: string }[]>({ count: '*' }) : [undefined];
      const rows = await base.clone().orderByRaw('lower(name), sku').limit(limit).offset(offset).select('*');
      return { products: rows.map(toProduct), total: counted ? Number(counted.count) : rows.length };
    }
    const tsq = prefixQuery(words);
    const plain = words.join(' ');
    // An SKU is matched as typed, from its start (the text parser splits "HR-1" into "hr" and "-1").
    const skuPrefix = `${query.trim().toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const tsquery = this.knex.raw(`(to_tsquery('simple', ?) || to_tsquery('english', ?) || to_tsquery('german', ?))`, [tsq, tsq, tsq]);
    // Candidates come from the indexes (GIN on search, GIN trigram on lower(name)); only they are ranked.
    // Word and SKU matches first; only when there are none are names close by trigrams (typos)
    // looked for: word_similarity on every row is what costs.
    const byWords = (w: Knex.QueryBuilder) => w.whereRaw('search @@ ?', [tsquery]).orWhereRaw('lower(sku) LIKE ?', [skuPrefix]);
    const byWordsOrTypos = (w: Knex.QueryBuilder) => byWords(w).orWhereRaw('? <% lower(name)', [plain]);
    const run = async (trx: Knex.Transaction, match: (w: Knex.QueryBuilder) => Knex.QueryBuilder) => {
      const hits = base.clone().transacting(trx).where(match);
      const [counted] = withTotal ? await hits.clone().count<{ count: string }[]>({ count: '*' }) : [undefined];
      const rows = await hits
        .clone()
        .select('*')
        .select(trx.raw(
          `CASE WHEN lower(sku) LIKE ? THEN 3 WHEN search @@ ? THEN 1 + ts_rank(search, ?) ELSE word_similarity(?, lower(name)) END AS rank`,
          [skuPrefix, tsquery, tsquery, plain],
        ))
        .orderBy([{ column: 'rank', order: 'desc' }, { column: 'name' }])
        .limit(limit)
        .offset(offset);
      return { products: rows.map(toProduct), total: counted ? Number(counted.count) : rows.length };
    };
    return this.knex.transaction(async (trx) => {
      const found = await run(trx, byWords);
      if (found.total > 0 || plain.length < 3) return found;
      // Typos in short words leave few trigrams in common: a lower bar than the default 0.6, ranked below word matches.
      await trx.raw(`SET LOCAL pg_trgm.word_similarity_threshold = ${WORD_SIMILARITY}`);
      return run(trx, byWordsOrTypos);
    });
  }

  async categories(): Promise<string[]> {
    const rows = await this.scoped().whereNotNull('category').distinct('category').orderBy('category');
    return rows.map((r) => r.category!);
  }

  /** One product; an id of another organisation answers like an unknown one, and is audited. */
  async get(id: string, trx: Knex | Knex.Transaction = this.knex): Promise<Product> {
    if (!z.uuid().safeParse(id).success) throw new NotFoundError();
    const row = await this.scoped(trx).where({ id }).first();
    if (!row) return this.refuseForeign('products', 'product', id);
    return toProduct(row);
  }

  async create(body: unknown): Promise<Product> {
    const input = parseBody(productSchema, body);
    return this.knex.transaction(async (trx) => {
      if (await this.scoped(trx).where({ sku: input.sku }).first('id')) throw new ValidationError([{ field: 'sku', code: 'sku_taken' }]);
      const [row] = await trx('products').insert({ organisation_id: this.organisationId, ...columns(input) }).returning('*');
      await this.record(trx, 'product_created', row!.id, row!.sku);
      return toProduct(row!);
    });
  }

  async update(id: string, body: unknown): Promise<Product> {
    const input = parseBody(productSchema, body);
    return this.knex.transaction(async (trx) => {
      const current = await this.get(id, trx);
      if (input.sku !== current.sku && (await this.scoped(trx).where({ sku: input.sku }).first('id'))) {
        throw new ValidationError([{ field: 'sku', code: 'sku_taken' }]);
      }
      const [row] = await this.scoped(trx).where({ id }).update({ ...columns(input), updated_at: trx.fn.now() }).returning('*');
      await this.record(trx, 'product_updated', id, row!.sku);
      return toProduct(row!);
    });
  }

  async setActive(id: string, active: boolean): Promise<Product> {
    return this.knex.transaction(async (trx) => {
      const current = await this.get(id, trx);
      if (current.active === active) return current;
      const [row] = await this.scoped(trx).where({ id }).update({ active, updated_at: trx.fn.now() }).returning('*');
      await this.record(trx, active ? 'product_activated' : 'product_deactivated', id, row!.sku);
      return toProduct(row!);
    });
  }

  /** Every product, by SKU (for the export). */
  async all(): Promise<Product[]> {
    return (await this.scoped().orderBy('sku').select('*')).map(toProduct);
  }

  record(trx: Knex.Transaction, change: CatalogChange, id: string | null, sku: string | null, extra: Record<string, unknown> = {}) {
    return this.audit.record(
      { ...this.base(), action: `catalog.${change}`, ...(id ? { target: { type: 'product', id } } : {}), details: { catalog: change, ...(sku ? { sku } : {}), ...extra } },
      trx,
    );
  }
}

/** Table columns from a validated product. */
export function columns(input: ProductInput) {
  return {
    sku: input.sku,
    name: input.name,
    description: input.description,
    price_cents: input.price,
    currency: input.currency,
    product_url: input.url,
    category: input.category,
    tags: input.tags,
    active: input.active,
  };
}

export function toProduct(row: ProductRow): Product {
  return {
    id: row.id,
    sku: row.sku,
    name: row.name,
    description: row.description,
    priceCents: Number(row.price_cents),
    currency: row.currency,
    url: row.product_url ?? null,
    category: row.category ?? null,
    tags: row.tags ?? [],
    active: row.active,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

// --- For other features (their transaction passed in) ------------------------

/** Writes products of the organisation, a new SKU inserted and a known one updated (the import). */
export async function upsertProducts(trx: Knex.Transaction, organisationId: string, products: ProductInput[]): Promise<void> {
  await trx('products')
    .insert(products.map((p) => ({ organisation_id: organisationId, ...columns(p) })))
    .onConflict(['organisation_id', 'sku'])
    // excluded.updated_at is the column default, now().
    .merge(['name', 'description', 'price_cents', 'currency', 'product_url', 'category', 'tags', 'active', 'updated_at']);
}

/** The organisation's product (id and SKU); in a transaction, locked for a change (its images). */
export async function productForImages(db: Knex, organisationId: string, id: string, lock: boolean): Promise<{ id: string; sku: string } | undefined> {
  const query = db('products').where({ id, organisation_id: organisationId });
  if (lock) query.forUpdate();
  return query.first('id', 'sku');
}

/** The organisation's active product as a card copies it when shown in a call. */
export async function productForCard(trx: Knex.Transaction, organisationId: string, id: string): Promise<{ id: string; sku: string; name: string; price_cents: string; currency: string; product_url: string | null } | undefined> {
  return trx('products').where({ id, organisation_id: organisationId, active: true }).first('id', 'sku', 'name', 'price_cents', 'currency', 'product_url');
}

/** Deletes the organisation's catalog (purging it; the images go with their products); returns how many products. */
export async function deleteOrganisationProducts(trx: Knex.Transaction, organisationId: string): Promise<number> {
  return trx('products').where({ organisation_id: organisationId }).delete();
}

