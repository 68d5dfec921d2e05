import type { Request, RequestHandler, Response } from 'express';
import { ValidationError } from '../core/errors';
import { fieldErrors } from './forms';

/**
 * How a submitted field may be shown again after a refusal: `text` as typed,
 * `list` (checkboxes, a multiple select) as the chosen values, `secret` and
 * `file` never. A field whose name contains "password" is never shown
 * again, whatever it is declared as. A `hidden` field (which of a page's
 * repeated forms was sent) is given back as typed, but has no place for a
 * message: a problem with it is a tampered form.
 */
export type FieldKind = 'text' | 'list' | 'secret' | 'file' | 'hidden';
export type FormFields = Readonly<Record<string, FieldKind>>;

/** What a page's view gets besides `values`, `errors` and `failedAction`. */
export type PageData = Record<string, unknown> & { values?: Record<string, unknown> };

/**
 * A page with one or more forms. `load` builds everything the view shows
 * (lists, settings, the forms' current values under `values`); the GET and
 * a refused POST both render through it, so a refused form never shows a
 * page made up for the error. `context` is what the handler already looked
 * up (the product, the call, the link's user), so that `load` need not look
 * it up again.
 */
export interface FormPage<C = void> {
  view: string;
  load(req: Request, context: C): Promise<PageData>;
  /** Sends `Cache-Control: no-store` with the page. */
  noStore?: boolean;
}

/** One form on a page: the page it is shown on and the fields it submits. */
export interface Form<C = void> {
  page: FormPage<C>;
  fields: FormFields;
}

interface Refusal {
  values: Record<string, unknown>;
  errors: Record<string, string>;
}

/**
 * Renders the page: the page's data, the values (the page's own, with a
 * refused form's submitted values over them), the errors by field name (i18n
 * keys) and `failedAction`, the path the refused form was posted to (for
 * pages that repeat a form, such as one per list entry), or null.
 */
export async function renderPage<C>(page: FormPage<C>, req: Request, res: Response, context: C, refusal?: Refusal): Promise<void> {
  const data = await page.load(req, context);
  if (page.noStore) res.set('Cache-Control', 'no-store');
  res.render(page.view, {
    ...data,
    values: { ...(data.values ?? {}), ...(refusal?.values ?? {}) },
    errors: refusal?.errors ?? {},
    failedAction: refusal ? req.path : null,
  });
}

/** GET handler for a page without context. */
export function showPage(page: FormPage): RequestHandler {
  return (req, res) => renderPage(page, req, res, undefined);
}

/** The submitted values a refused form shows again: the declared fields only, never a secret or a password. */
export function submittedValues(body: unknown, fields: FormFields): Record<string, unknown> {
  const submitted = (body ?? {}) as Record<string, unknown>;
  const values: Record<string, unknown> = {};
  for (const [name, kind] of Object.entries(fields)) {
    if (kind === 'secret' || kind === 'file' || /password/i.test(name)) continue;
    const value = submitted[name];
    if (kind === 'list') values[name] = ([] as unknown[]).concat(value ?? []).filter((v): v is string => typeof v === 'string');
    else if (typeof value === 'string') values[name] = value;
  }
  return values;
}

/**
 * Runs a form's action (which answers itself: a redirect, a page). When it
 * throws a `ValidationError` whose problems all belong to the form's
 * fields, the form's page is rendered again with status 400, through the
 * same `load` as its GET, with the submitted values and a message per
 * field. Anything else goes to the error handler: other errors, clients
 * that prefer JSON (the field codes in `details`), and problems with fields
 * the form does not show (a tampered hidden input), which get the plain
 * 400 page.
 */
export async function submitForm<C>(form: Form<C>, req: Request, res: Response, context: C, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    const shown = err instanceof ValidationError && err.fields.length > 0
      && err.fields.every((f) => Object.hasOwn(form.fields, f.field) && form.fields[f.field] !== 'hidden');
    if (!shown || res.headersSent || req.accepts(['html', 'json']) !== 'html') throw err;
    res.status(400);
    await renderPage(form.page, req, res, context, { values: submittedValues(req.body, form.fields), errors: fieldErrors(err) });
  }
}

/** POST handler for a form on a page without context. */
export function formAction(form: Form, action: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return (req, res) => submitForm(form, req, res, undefined, () => action(req, res));
}
