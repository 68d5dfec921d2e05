import type { Response } from 'express';
import { ValidationError } from '../errors';

/**
 * Runs a form action; when it fails validation, renders the page again with
 * status 400, the submitted values, and per field an i18n key under
 * `retention.errors.` (put into the local named `errorsLocal`).
 */
export async function withRetentionFormErrors(
  res: Response,
  view: string,
  locals: Record<string, unknown>,
  action: () => Promise<void>,
  errorsLocal = 'errors',
): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const body = (res.req.body ?? {}) as Record<string, unknown>;
    const submitted = Object.fromEntries(Object.entries(body).filter(([k, v]) => k !== '_csrf' && typeof v === 'string'));
    const errors = Object.fromEntries(err.fields.map((f) => [f.field, `retention.errors.${f.code}`]));
    res.status(400).render(view, { values: submitted, ...locals, [errorsLocal]: errors });
  }
}
