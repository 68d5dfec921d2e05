import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../auth/caller';
import { UnauthorizedError, ValidationError } from '../errors';
import { flash } from '../http/flash';
import { parseBody } from '../http/forms';
import { secretResponse } from '../http/security';
import { ApiKeyService, apiScopes, createKeySchema } from './service';

/** Field codes with their own text under `apikeys.errors`; the others are the shared `forms.*` ones. */
const OWN_CODES = new Set(['scopes_required', 'invalid_scope', 'key_too_short', 'key_too_long', 'key_invalid_characters', 'key_too_weak', 'key_not_accepted']);

function service(knex: Knex, req: Request): ApiKeyService {
  return new ApiKeyService(knex, callerOf(req));
}

async function renderList(knex: Knex, req: Request, res: Response, form: { values?: Record<string, unknown>; errors?: Record<string, string> } = {}): Promise<void> {
  const keys = await service(knex, req).list();
  res.render('admin/api-keys', {
    title: req.t('apikeys.title'),
    keys,
    scopes: apiScopes,
    values: form.values ?? { scopes: [] },
    errors: form.errors ?? {},
  });
}

/** GET /admin/api-keys */
export function listApiKeys(knex: Knex): RequestHandler {
  return async (req, res) => {
    await renderList(knex, req, res);
  };
}

/**
 * POST /admin/api-keys: creates a key and shows it, once. A refused form is
 * shown again with the name and scopes as typed, never the own key.
 */
export function createApiKey(knex: Knex): RequestHandler {
  return async (req, res) => {
    try {
      const input = parseBody(createKeySchema, req.body);
      const { apiKey, key } = await service(knex, req).create(input);
      secretResponse(res);
      res.status(201).render('admin/api-key-created', { title: req.t('apikeys.created_title'), apiKey, key });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const body = (req.body ?? {}) as Record<string, unknown>;
      const chosen = body.scopes === undefined ? [] : ([] as unknown[]).concat(body.scopes).filter((s): s is string => typeof s === 'string');
      const errors = Object.fromEntries(err.fields.map((f) => [f.field, OWN_CODES.has(f.code) ? `apikeys.errors.${f.code}` : `forms.${f.code}`]));
      res.status(400);
      await renderList(knex, req, res, { values: { name: typeof body.name === 'string' ? body.name : '', scopes: chosen }, errors });
    }
  };
}

/** POST /admin/api-keys/:id/revoke */
export function revokeApiKey(knex: Knex): RequestHandler {
  return async (req, res) => {
    await service(knex, req).revoke(String(req.params.id));
    flash(req, 'success', 'apikeys.revoked');
    res.redirect(303, '/admin/api-keys');
  };
}

/** GET /api/v1/whoami (behind `apiKeyAuth`): which organisation and key the request speaks for. */
export const whoami: RequestHandler = (req, res) => {
  const key = req.apiKey;
  if (!key) throw new UnauthorizedError('api_key_missing', { messageKey: 'apikeys.errors.api_key_missing' });
  res.json({ organisation: { slug: key.organisationSlug }, key: { prefix: key.prefix, scopes: key.scopes } });
};
