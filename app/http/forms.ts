import type { z } from 'zod';
import { ValidationError, type FieldProblem } from '../core/errors';
import { catalogKeys } from '../i18n';

/**
 * Parses a submitted form or JSON body with a zod schema. Each issue
 * becomes a field problem whose code is the schema's message (a stable
 * code with its text under `forms.errors.`), so forms can show it next to
 * the field.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const fields: FieldProblem[] = [];
  for (const issue of result.error.issues) {
    const field = String(issue.path[0] ?? '_');
    if (fields.some((f) => f.field === field)) continue;
    fields.push({ field, code: /^[a-z_]+$/.test(issue.message) ? issue.message : 'invalid' });
  }
  throw new ValidationError(fields);
}

let known: Set<string> | undefined;

/**
 * The i18n key of a field problem's message. Every field error lives in one
 * namespace, `forms.errors.<code>`; a field whose code needs other words
 * has them under `forms.errors.by_field.<field>.<code>`. A code without a
 * text shows as `forms.errors.invalid`.
 */
export function fieldErrorKey(field: string, code: string): string {
  known ??= new Set(catalogKeys('en'));
  const own = `forms.errors.by_field.${field}.${code}`;
  if (known.has(own)) return own;
  const shared = `forms.errors.${code}`;
  return known.has(shared) ? shared : 'forms.errors.invalid';
}

/** Field problems as a map for views: { email: 'forms.errors.email_taken' }. */
export function fieldErrors(err: ValidationError): Record<string, string> {
  return Object.fromEntries(err.fields.map((f) => [f.field, fieldErrorKey(f.field, f.code)]));
}
