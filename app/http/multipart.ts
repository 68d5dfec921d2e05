import type { Request, RequestHandler, Response } from 'express';
import multer from 'multer';
import { BadRequestError, PayloadTooLargeError } from '../core/errors';
import { assertCleanInput } from './input-guard';

/**
 * Runs a multer handler on a multipart form and turns what goes wrong into
 * typed errors: `onLimit` may name the error for a multer limit (a file too
 * large as a field problem, say); other limits answer 413
 * `payload_too_large`, a broken body (or a file where none belongs) 400 `invalid_body`. The parsed fields
 * then pass the same input gate as urlencoded and JSON bodies (no NUL
 * bytes), which multipart forms reach only after multer has run.
 */
export function receiveMultipart(
  handler: RequestHandler,
  req: Request,
  res: Response,
  onLimit: (err: multer.MulterError) => Error | undefined = () => undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    handler(req, res, (err?: unknown) => {
      if (err instanceof multer.MulterError) {
        const mapped = onLimit(err);
        if (mapped) return reject(mapped);
        // A limit was passed (413); a file in a field that takes none is a broken form (400).
        if (err.code.startsWith('LIMIT_') && err.code !== 'LIMIT_UNEXPECTED_FILE') return reject(new PayloadTooLargeError('payload_too_large', { cause: err }));
      }
      if (err) return reject(new BadRequestError('invalid_body', { cause: err }));
      try {
        assertCleanInput(req.body, 'body');
        resolve();
      } catch (refused) {
        reject(refused);
      }
    });
  });
}
