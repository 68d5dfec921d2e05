import type { RequestHandler } from 'express';
import { NotFoundError } from '../core/errors';

/** Reached when no route matched: a typed 404, answered by the error handler. */
export function notFound(): RequestHandler {
  return (_req, _res, next) => next(new NotFoundError());
}
