import type { Request, RequestHandler } from 'express';
import { BadRequestError } from '../core/errors';

/** The longest value a query string parameter may have (a return path counts up to 2,000; encoded, it may be longer). */
export const MAX_QUERY_VALUE = 4096;
/** How deep a JSON body may nest; no form or API body of the appliance needs more than 3. */
export const MAX_BODY_DEPTH = 16;

/**
 * Why a value is refused, or null: a NUL character (PostgreSQL text cannot
 * hold one, so it would end as a 500 deep in a query), too long a query
 * value, or too deep a nesting. Walks iteratively, keys and values alike.
 */
export function inputProblem(value: unknown, maxString = Infinity): string | null {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (typeof current === 'string') {
      if (current.includes('\u0000')) return 'nul';
      if (current.length > maxString) return 'too_long';
    } else if (current !== null && typeof current === 'object') {
      if (depth >= MAX_BODY_DEPTH) return 'too_deep';
      for (const [key, inner] of Object.entries(current)) {
        if (key.includes('\u0000')) return 'nul';
        stack.push({ value: inner, depth: depth + 1 });
      }
    }
  }
  return null;
}

/** Throws 400 `invalid_input` when a value (query, form fields, multipart fields) is refused. */
export function assertCleanInput(value: unknown, where: 'path' | 'query' | 'body', maxString = Infinity): void {
  const problem = inputProblem(value, maxString);
  if (problem) throw new BadRequestError('invalid_input', { details: { in: where, problem } });
}

function rawPath(req: Request): string {
  const url = req.originalUrl ?? req.url;
  const end = url.indexOf('?');
  return end === -1 ? url : url.slice(0, end);
}

/**
 * One gate for every request, after the body parsers and before any
 * handler: no NUL in the path (route parameters are decoded from it), in a
 * query parameter's name or value, or anywhere in a urlencoded or JSON
 * body; no query value longer than MAX_QUERY_VALUE; no body nested deeper
 * than MAX_BODY_DEPTH. Refused with 400 `invalid_input` before any
 * database work. Multipart bodies are read by their own routes, which call
 * `assertCleanInput` on their fields. Handlers still read the query only
 * through `parseQuery` (./query.ts), which checks shapes per route.
 */
export function inputGuard(): RequestHandler {
  return (req, _res, next) => {
    if (/%00/.test(rawPath(req))) return next(new BadRequestError('invalid_input', { details: { in: 'path', problem: 'nul' } }));
    try {
      assertCleanInput(req.query, 'query', MAX_QUERY_VALUE);
      assertCleanInput(req.body, 'body');
    } catch (err) {
      return next(err);
    }
    next();
  };
}
