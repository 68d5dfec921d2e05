import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import multer from 'multer';
import { z } from 'zod';
import { callerOf } from '../access/caller';
import { BadRequestError, PayloadTooLargeError, ValidationError } from '../core/errors';
import { receiveMultipart } from '../http/multipart';
import { flash } from '../http/flash';
import { fieldErrorKey } from '../http/forms';
import { formAction, renderPage, showPage, type Form, type FormFields, type FormPage } from '../http/form-page';
import { parseQuery } from '../http/query';
import { MAX_IMAGES_PER_PRODUCT, MAX_IMAGE_BYTES, ProductImages, firstImageIds } from './images';
import { CatalogImport, MAX_IMPORT_BYTES, catalogColumns, type CheckedImport, type ImportPreview, type ImportSummary, summarise } from './import';
import { checkImportInThread, summariseImport } from './import-thread';
import { CatalogService, formatPrice, searchSchema, type Product } from './service';

const PAGE_SIZE = 25;
const LIST = '/admin/catalog';

/** The upload (one file, 10 MB; one byte more is let through so that the reader says what is too large). */
const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: MAX_IMPORT_BYTES + 1, files: 1, fields: 5 } }).single('file');
/** The apply step: the previewed file again, base64 in a form field. */
const payloadForm = multer({ storage: multer.memoryStorage(), limits: { fieldSize: Math.ceil((MAX_IMPORT_BYTES * 4) / 3) + 16, files: 0, fields: 5 } }).none();

function receive(handler: RequestHandler, req: Request, res: Response): Promise<void> {
  return receiveMultipart(handler, req, res, (err) =>
    err.code === 'LIMIT_FILE_SIZE' || err.code === 'LIMIT_FIELD_VALUE'
      ? new PayloadTooLargeError('import_too_large', { messageKey: 'catalog.errors.import_too_large', cause: err })
      : undefined,
  );
}

function service(knex: Knex, req: Request): CatalogService {
  return new CatalogService(knex, callerOf(req));
}

function id(req: Request): string {
  return String(req.params.id);
}

/** The image limits, as the product page's texts show them. */
export const imageLimits = { max: MAX_IMAGES_PER_PRODUCT, megabytes: MAX_IMAGE_BYTES / (1024 * 1024) };

/** The image URL the pages and the search JSON use. */
export function imageUrl(imageId: string): string {
  return `/catalog/images/${imageId}`;
}

/** The product form's fields. */
const productFields: FormFields = { sku: 'text', name: 'text', description: 'text', price: 'text', currency: 'text', url: 'text', category: 'text', tags: 'text' };

/** /admin/catalog/:id: the product's form, its images and the upload form. */
export function productPage(knex: Knex): FormPage {
  return {
    view: 'catalog/form',
    async load(req) {
      const product = await service(knex, req).get(id(req));
      const images = await new ProductImages(knex, callerOf(req)).list(product.id);
      return {
        title: product.name,
        product,
        values: formValues(product),
        images: images.map((image) => ({ ...image, url: imageUrl(image.id) })),
        imageLimits,
      };
    },
  };
}

/** /admin/catalog/new: the form for a new product. */
const newProductForm: Form = {
  page: { view: 'catalog/form', load: async (req) => ({ title: req.t('catalog.new_title'), product: null, values: formValues() }) },
  fields: productFields,
};

/** The form's values for a product (price as typed: "12.50", tags "a|b"). */
function formValues(product?: Product): Record<string, string> {
  if (!product) return { currency: 'EUR' };
  return {
    sku: product.sku,
    name: product.name,
    description: product.description,
    price: formatPrice(product.priceCents),
    currency: product.currency,
    url: product.url ?? '',
    category: product.category ?? '',
    tags: product.tags.join('|'),
  };
}

function submitted(req: Request, product?: Product): Record<string, string> {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const values = Object.fromEntries(Object.entries(body).filter(([k, v]) => k !== '_csrf' && typeof v === 'string')) as Record<string, string>;
  // The form has no active field (the toggle button changes it): keep the product's state.
  if (product) values.active = String(product.active);
  return values;
}

/** GET /admin/catalog: search, filters and paging. */
export function listProducts(knex: Knex): RequestHandler {
  return async (req, res) => {
    const filter = parseQuery(searchSchema, req);
    const catalog = service(knex, req);
    const { products, total } = await catalog.search(filter.q, {
      category: filter.category || undefined,
      active: filter.active === '' ? undefined : filter.active === 'active',
      limit: PAGE_SIZE,
      offset: (filter.page - 1) * PAGE_SIZE,
    });
    const thumbnails = await firstImageIds(knex, catalog.organisationId, products.map((p) => p.id));
    res.render('catalog/list', {
      title: req.t('catalog.title'),
      products,
      thumbnails: new Map([...thumbnails].map(([productId, imageId]) => [productId, imageUrl(imageId)])),
      total,
      filter,
      categories: await catalog.categories(),
      pages: Math.max(1, Math.ceil(total / PAGE_SIZE)),
      formatPrice,
    });
  };
}

/** GET /admin/catalog/new */
export const newProductPage: RequestHandler = showPage(newProductForm.page);

/** POST /admin/catalog/new */
export function createProduct(knex: Knex): RequestHandler {
  return formAction(newProductForm, async (req, res) => {
    const product = await service(knex, req).create({ ...submitted(req), active: true });
    flash(req, 'success', 'catalog.created');
    res.redirect(303, `${LIST}/${product.id}`);
  });
}

/** GET /admin/catalog/:id: the product's edit form. */
export function showProduct(knex: Knex): RequestHandler {
  return showPage(productPage(knex));
}

/** POST /admin/catalog/:id */
export function updateProduct(knex: Knex): RequestHandler {
  return formAction({ page: productPage(knex), fields: productFields }, async (req, res) => {
    const catalog = service(knex, req);
    const product = await catalog.get(id(req));
    await catalog.update(product.id, submitted(req, product));
    flash(req, 'success', 'catalog.saved');
    res.redirect(303, `${LIST}/${product.id}`);
  });
}

/** POST /admin/catalog/:id/toggle: deactivates an active product, activates an inactive one. */
export function toggleProduct(knex: Knex): RequestHandler {
  return async (req, res) => {
    const catalog = service(knex, req);
    const product = await catalog.get(id(req));
    await catalog.setActive(product.id, !product.active);
    flash(req, 'success', product.active ? 'catalog.deactivated' : 'catalog.activated');
    res.redirect(303, `${LIST}/${product.id}`);
  };
}

/** /admin/catalog/import: the upload form; a refused file names the missing columns, if any (the handler knows them). */
const importForm: FormPage<{ missingColumns: string[] } | undefined> = {
  view: 'catalog/import',
  load: async (req, refused) => ({ title: req.t('catalog.import_title'), columns: catalogColumns.join(','), missingColumns: refused?.missingColumns ?? [] }),
};

/** GET /admin/catalog/import */
export const importPage: RequestHandler = (req, res) => renderPage(importForm, req, res, undefined);

function renderPreview(req: Request, res: Response, status: number, preview: ImportPreview, payload: string | null): void {
  res.status(status).render('catalog/preview', {
    title: req.t('catalog.preview_title'),
    preview,
    shownErrors: preview.errors.slice(0, 500),
    payload: preview.errors.length === 0 ? payload : null,
    fieldErrorKey,
  });
}

/**
 * A file-level problem (missing columns, bad JSON, too many rows) on the
 * upload form: one message at the file field. Its problems name columns,
 * not the form's fields, so the page is rendered here rather than by
 * `submitForm`.
 */
async function fileProblem(req: Request, res: Response, err: ValidationError): Promise<void> {
  const missingColumns = err.fields.filter((f) => f.code === 'missing_column').map((f) => f.field);
  res.status(400);
  await renderPage(importForm, req, res, { missingColumns }, { values: {}, errors: { file: fieldErrorKey('file', err.fields[0]?.code ?? 'invalid') } });
}

/** POST /admin/catalog/import/preview: checks every row, writes nothing. */
export function previewImport(knex: Knex): RequestHandler {
  return async (req, res) => {
    await receive(upload, req, res);
    const file = req.file;
    if (!file || file.size === 0) return fileProblem(req, res, new ValidationError([{ field: 'file', code: 'file_required' }]));
    let summary: ImportSummary;
    try {
      summary = await summariseImport(file.buffer);
    } catch (err) {
      if (err instanceof ValidationError) return fileProblem(req, res, err);
      throw err;
    }
    const catalog = service(knex, req);
    const preview = await new CatalogImport(knex, catalog).preview(summary);
    renderPreview(req, res, preview.errors.length > 0 ? 422 : 200, preview, file.buffer.toString('base64'));
  };
}

/** POST /admin/catalog/import/apply: the previewed file again; all rows or none. */
export function applyImport(knex: Knex): RequestHandler {
  return async (req, res) => {
    await receive(payloadForm, req, res);
    const payload = z.string().regex(/^[A-Za-z0-9+/]+=*$/).safeParse((req.body as Record<string, unknown> | undefined)?.payload);
    if (!payload.success) throw new BadRequestError('invalid_body');
    const data = Buffer.from(payload.data, 'base64');
    let checked: CheckedImport;
    try {
      checked = await checkImportInThread(data);
    } catch (err) {
      if (err instanceof ValidationError) return fileProblem(req, res, err);
      throw err;
    }
    const importer = new CatalogImport(knex, service(knex, req));
    try {
      const done = await importer.apply(checked);
      flash(req, 'success', 'catalog.imported', { created: done.created, updated: done.updated });
      res.redirect(303, LIST);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      renderPreview(req, res, 422, await importer.preview(summarise(checked)), null);
    }
  };
}

/** GET /admin/catalog/export.csv */
export function exportCatalog(knex: Knex): RequestHandler {
  return async (req, res) => {
    const csv = await new CatalogImport(knex, service(knex, req)).exportCsv();
    const day = new Date().toISOString().slice(0, 10);
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="catalog-${day}.csv"`);
    res.setHeader('Cache-Control', 'no-store');
    res.send(`\ufeff${csv}`);
  };
}

/** GET /catalog/search?q=&category=: active products for the in-call panel, as JSON. */
export function searchCatalog(knex: Knex): RequestHandler {
  return async (req, res) => {
    const filter = parseQuery(searchSchema, req);
    const catalog = service(knex, req);
    const { products } = await catalog.search(filter.q, { category: filter.category || undefined, active: true, limit: 20, withTotal: false });
    const images = await firstImageIds(knex, catalog.organisationId, products.map((p) => p.id));
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      products: products.map((p) => {
        const image = images.get(p.id);
        return {
          id: p.id, sku: p.sku, name: p.name, price: formatPrice(p.priceCents), currency: p.currency, category: p.category, tags: p.tags, url: p.url,
          image: image ? imageUrl(image) : null,
        };
      }),
    });
  };
}
