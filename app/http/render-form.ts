import type { Response } from 'express';
import { ValidationError } from '../errors';
import { fieldErrors } from './forms';

/**
 * Runs a form action; when it fails validation, renders the form again with
 * status 400, the submitted values (never passwords) and an error per field.
 */
export async function withFormErrors(
  res: Response,
  view: string,
  locals: Record<string, unknown>,
  action: () => Promise<void>,
): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const values = Object.fromEntries(
      Object.entries((res.req.body ?? {}) as Record<string, unknown>).filter(([k, v]) => !/password|_csrf/.test(k) && typeof v === 'string'),
    );
    res.status(400).render(view, { values, ...locals, errors: fieldErrors(err) });
  }
}
