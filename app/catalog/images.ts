import crypto from 'node:crypto';
import type { Request, Response } from 'express';
import type { Knex } from 'knex';
import type { AuditAction } from '../audit/actions';
import { OrganisationScopedService } from '../access/scoped-service';
import { NotFoundError, ValidationError } from '../core/errors';
import { checkedImageType, type ImageType } from '../http/images';
import { productForImages } from './service';
import { type ProductImageRow } from '../db/tables';

/** At most this many images per product. */
export const MAX_IMAGES_PER_PRODUCT = 5;
/** The largest product image accepted, in bytes (2 MiB). */
export const MAX_IMAGE_BYTES = 2 * 1024 * 1024;
/** The form field of the upload, and the field image problems are reported on. */
export const IMAGE_FIELD = 'image';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** A product image as listed (without its bytes). */
export interface ProductImage {
  id: string;
  productId: string;
  position: number;
  contentType: ImageType;
  size: number;
  sha256: string;
  createdAt: Date;
}

/** A product image with its bytes, as served. */
export interface StoredProductImage {
  id: string;
  productId: string;
  contentType: string;
  data: Buffer;
  sha256: string;
}

const LIST_COLUMNS = ['id', 'product_id', 'position', 'content_type', 'size', 'sha256', 'created_at'] as const;

/**
 * For each product, the id of its first image (the lowest position): one
 * query for all of them. Products of another organisation, and products
 * without images, are simply absent from the map.
 */
export async function firstImageIds(knex: Knex, organisationId: string, productIds: string[]): Promise<Map<string, string>> {
  const ids = [...new Set(productIds.filter(isUuid))];
  if (ids.length === 0) return new Map();
  const rows: { product_id: string; id: string }[] = await knex('product_images')
    .distinctOn('product_id')
    .where('organisation_id', organisationId)
    .whereIn('product_id', ids)
    .orderBy([{ column: 'product_id' }, { column: 'position' }, { column: 'created_at' }])
    .select('product_id', 'id');
  return new Map(rows.map((r) => [r.product_id, r.id]));
}

/** One image with its bytes; undefined for a malformed or unknown id, or one of another organisation. */
export async function readProductImage(
  knex: Knex,
  organisationId: string,
  imageId: string,
): Promise<{ id: string; productId: string; contentType: string; data: Buffer; sha256: string } | undefined> {
  if (!isUuid(imageId)) return undefined;
  const row = await knex('product_images')
    .where({ id: imageId, organisation_id: organisationId })
    .first('id', 'product_id', 'content_type', 'data', 'sha256');
  return row ? { id: row.id, productId: row.product_id, contentType: row.content_type, data: row.data, sha256: row.sha256 } : undefined;
}

/**
 * Answers with an image's bytes. The type is the one checked at upload,
 * and browsers must not guess another (nosniff); shown inline, never
 * offered as a download. Images never change under their id, so browsers
 * keep them a day (privately: they are not public), and ask again with the
 * SHA-256 as ETag (304 when unchanged).
 */
export function sendProductImage(res: Response, image: { contentType: string; data: Buffer; sha256: string }, req: Request): void {
  res.set({
    'Content-Type': image.contentType,
    'X-Content-Type-Options': 'nosniff',
    'Content-Disposition': 'inline',
    'Cache-Control': 'private, max-age=86400',
    ETag: `"${image.sha256}"`,
  });
  if (req.fresh) {
    res.status(304).end();
    return;
  }
  res.send(image.data);
}

function problem(code: 'image_type' | 'image_too_large' | 'too_many_images' | 'image_required'): ValidationError {
  return new ValidationError([{ field: IMAGE_FIELD, code }]);
}

/**
 * The images of the caller's organisation's products. Built per request
 * with the caller: every query is scoped to the caller's organisation; a
 * product or image id of another organisation answers 404 and is audited.
 * Every change is audited in the same transaction (type, size and SHA-256,
 * never the bytes). Changes lock the product's row, so that two uploads at
 * once cannot pass the limit or share a position.
 */
export class ProductImages extends OrganisationScopedService {
  private scoped(trx: Knex | Knex.Transaction = this.knex) {
    return trx('product_images').where('product_images.organisation_id', this.organisationId);
  }

  /** The product, locked for a change when in a transaction; another organisation's is refused. */
  private async product(productId: string, trx?: Knex.Transaction): Promise<{ id: string; sku: string }> {
    if (!isUuid(productId)) throw new NotFoundError();
    const row = await productForImages(trx ?? this.knex, this.organisationId, productId, trx !== undefined);
    if (!row) return this.refuseForeign('products', 'product', productId);
    return row;
  }

  /** One image of the product (without its bytes); another organisation's is refused. */
  private async image(trx: Knex.Transaction, productId: string, imageId: string): Promise<ProductImage> {
    if (!isUuid(imageId)) throw new NotFoundError();
    const row = await this.scoped(trx).where({ id: imageId }).first(...LIST_COLUMNS);
    if (!row) return this.refuseForeign('product_images', 'product_image', imageId);
    if (row.product_id !== productId) throw new NotFoundError();
    return toImage(row);
  }

  /** The product's images, first first. */
  async list(productId: string): Promise<ProductImage[]> {
    const product = await this.product(productId);
    const rows = await this.scoped().where({ product_id: product.id }).orderBy([{ column: 'position' }, { column: 'created_at' }]).select(...LIST_COLUMNS);
    return rows.map(toImage);
  }

  /** One image with its bytes, for serving; another organisation's is refused (404, audited). */
  async read(imageId: string): Promise<StoredProductImage> {
    if (!isUuid(imageId)) throw new NotFoundError();
    const image = await readProductImage(this.knex, this.organisationId, imageId);
    if (!image) return this.refuseForeign('product_images', 'product_image', imageId);
    return image;
  }

  /**
   * Adds an image after the product's others. The bytes must be a PNG,
   * JPEG or WebP image of the type the browser declared (SVG and anything
   * else are refused), at most MAX_IMAGE_BYTES, and the product may have at
   * most MAX_IMAGES_PER_PRODUCT images.
   */
  async add(productId: string, data: Buffer, declaredType: string): Promise<ProductImage> {
    if (data.length === 0) throw problem('image_required');
    if (data.length > MAX_IMAGE_BYTES) throw problem('image_too_large');
    const type = checkedImageType(data, declaredType);
    if (!type) throw problem('image_type');
    const sha256 = crypto.createHash('sha256').update(data).digest('hex');
    return this.knex.transaction(async (trx) => {
      const product = await this.product(productId, trx);
      const [counted] = (await this.scoped(trx).where({ product_id: product.id })
        .select(trx.raw('count(*)::int AS n'), trx.raw('coalesce(max(position) + 1, 0)::int AS next'))) as unknown as [{ n: number; next: number }];
      if (counted.n >= MAX_IMAGES_PER_PRODUCT) throw problem('too_many_images');
      const [row] = await trx('product_images')
        .insert({ organisation_id: this.organisationId, product_id: product.id, position: counted.next, content_type: type, data, size: data.length, sha256 })
        .returning(LIST_COLUMNS);
      const image = toImage(row!);
      await this.record(trx, 'catalog.image_added', product, image);
      return image;
    });
  }

  /** Removes an image; the others close up behind it. */
  async remove(productId: string, imageId: string): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const product = await this.product(productId, trx);
      const image = await this.image(trx, product.id, imageId);
      await this.scoped(trx).where({ id: image.id }).delete();
      await this.renumber(trx, product.id);
      await this.record(trx, 'catalog.image_removed', product, image);
    });
  }

  /** Moves an image to the first place (position 0); the ones before it move one down. */
  async makeFirst(productId: string, imageId: string): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const product = await this.product(productId, trx);
      const image = await this.image(trx, product.id, imageId);
      const first = await this.scoped(trx).where({ product_id: product.id }).orderBy([{ column: 'position' }, { column: 'created_at' }]).first('id');
      if (first?.id === image.id) return;
      await this.scoped(trx).where({ product_id: product.id }).whereNot({ id: image.id }).update({ position: trx.raw('position + 1') });
      await this.scoped(trx).where({ id: image.id }).update({ position: 0 });
      await this.renumber(trx, product.id);
      await this.record(trx, 'catalog.image_made_first', product, image, { from: image.position });
    });
  }

  /** Positions 0, 1, 2, ... in the current order. */
  private async renumber(trx: Knex.Transaction, productId: string): Promise<void> {
    await trx.raw(
      `UPDATE product_images AS i SET position = o.n - 1
         FROM (SELECT id, row_number() OVER (ORDER BY position, created_at) AS n FROM product_images WHERE product_id = ? AND organisation_id = ?) AS o
        WHERE i.id = o.id AND i.position <> o.n - 1`,
      [productId, this.organisationId],
    );
  }

  private record(trx: Knex.Transaction, action: AuditAction, product: { id: string; sku: string }, image: ProductImage, extra: Record<string, unknown> = {}) {
    return this.audit.record({
      ...this.base(),
      action,
      target: { type: 'product', id: product.id },
      details: { catalog: action.slice('catalog.'.length), sku: product.sku, image: image.id, type: image.contentType, size: image.size, sha256: image.sha256, ...extra },
    }, trx);
  }
}

function toImage(row: Pick<ProductImageRow, (typeof LIST_COLUMNS)[number]>): ProductImage {
  return {
    id: row.id,
    productId: row.product_id,
    position: Number(row.position),
    contentType: row.content_type as ImageType,
    size: Number(row.size),
    sha256: row.sha256,
    createdAt: row.created_at,
  };
}
