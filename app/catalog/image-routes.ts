import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import multer from 'multer';
import { callerOf } from '../access/caller';
import { ValidationError } from '../core/errors';
import { receiveMultipart } from '../http/multipart';
import { flash } from '../http/flash';
import { IMAGE_FIELD, MAX_IMAGE_BYTES, ProductImages, sendProductImage } from './images';
import { productPage as productForm } from './routes';
import { submitForm, type Form } from '../http/form-page';
import { CatalogService, type Product } from './service';

/**
 * The upload: in memory, one file, a few fields. One byte more than the
 * largest image is let through so that the service decides (and says) what
 * is too large; anything larger stops the upload early.
 */
const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: MAX_IMAGE_BYTES + 1, files: 1, fields: 5 } }).single(IMAGE_FIELD);

/** Reads the multipart body; a too-large file becomes a field problem, other limits typed errors. */
function receiveImage(req: Request, res: Response): Promise<void> {
  return receiveMultipart(upload, req, res, (err) =>
    err.code === 'LIMIT_FILE_SIZE' ? new ValidationError([{ field: IMAGE_FIELD, code: 'image_too_large' }]) : undefined,
  );
}

function images(knex: Knex, req: Request): ProductImages {
  return new ProductImages(knex, callerOf(req));
}

function productPage(product: Product): string {
  return `/admin/catalog/${product.id}#images`;
}

/**
 * POST /admin/catalog/:id/images (multipart, field `image`; the CSRF token
 * is in the action URL because the CSRF check runs before the upload is read).
 */
export function uploadImage(knex: Knex): RequestHandler {
  const form = { page: productForm(knex), fields: { [IMAGE_FIELD]: 'file' } } satisfies Form;
  return async (req, res) => {
    // The body is read first, whatever follows: answering before the upload ends would cut the browser off.
    let refused: ValidationError | undefined;
    try {
      await receiveImage(req, res);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      refused = err;
    }
    const product = await new CatalogService(knex, callerOf(req)).get(String(req.params.id));
    await submitForm(form, req, res, undefined, async () => {
      if (refused) throw refused;
      const file = req.file;
      if (!file || file.size === 0) throw new ValidationError([{ field: IMAGE_FIELD, code: 'image_required' }]);
      await images(knex, req).add(product.id, file.buffer, file.mimetype);
      flash(req, 'success', 'catalog.image_added');
      res.redirect(303, productPage(product));
    });
  };
}

/** POST /admin/catalog/:id/images/:imageId/delete */
export function removeImage(knex: Knex): RequestHandler {
  return async (req, res) => {
    const product = await new CatalogService(knex, callerOf(req)).get(String(req.params.id));
    await images(knex, req).remove(product.id, String(req.params.imageId));
    flash(req, 'success', 'catalog.image_removed');
    res.redirect(303, productPage(product));
  };
}

/** POST /admin/catalog/:id/images/:imageId/first: the image shown first (in search results and to customers). */
export function makeImageFirst(knex: Knex): RequestHandler {
  return async (req, res) => {
    const product = await new CatalogService(knex, callerOf(req)).get(String(req.params.id));
    await images(knex, req).makeFirst(product.id, String(req.params.imageId));
    flash(req, 'success', 'catalog.image_made_first');
    res.redirect(303, productPage(product));
  };
}

/** GET /catalog/images/:imageId: a product image of the caller's organisation, for staff. */
export function productImage(knex: Knex): RequestHandler {
  return async (req, res) => {
    const image = await images(knex, req).read(String(req.params.imageId));
    sendProductImage(res, image, req);
  };
}
