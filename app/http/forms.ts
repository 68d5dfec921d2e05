import type { z } from 'zod';
import { ValidationError, type FieldProblem } from '../errors';

/**
 * Parses a submitted form or JSON body with a zod schema. Each issue
 * becomes a field problem whose code is the schema's message (an i18n key
 * under `forms.`), so forms can show it next to the field.
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

/** Field problems as a map for views: { email: 'forms.taken' }. */
export function fieldErrors(err: ValidationError): Record<string, string> {
  return Object.fromEntries(err.fields.map((f) => [f.field, `forms.${f.code}`]));
}
