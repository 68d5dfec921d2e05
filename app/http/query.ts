import type { Request } from 'express';
import type { z } from 'zod';
import { parseBody } from './forms';

/**
 * The one way handlers read the query string. The query parser
 * (`query parser: simple`) gives a string per parameter, or an array when a
 * name repeats (`?q=a&q=b`), so no handler may take `req.query.x` as a
 * string: each route declares a zod schema for its parameters, and a value
 * of the wrong shape, a repeated name or one too long is a 400
 * `validation_failed` naming the field, never a 500 further down.
 */
export function parseQuery<S extends z.ZodType>(schema: S, req: Request): z.infer<S> {
  return parseBody(schema, req.query ?? {});
}

