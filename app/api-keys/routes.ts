import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../access/caller';
import { UnauthorizedError } from '../core/errors';
import { formAction, showPage, type FormPage } from '../http/form-page';
import { flash } from '../http/flash';
import { parseBody } from '../http/forms';
import { secretResponse } from '../http/security';
import { ApiKeyService, apiScopes, createKeySchema } from './service';

function service(knex: Knex, req: Request): ApiKeyService {
  return new ApiKeyService(knex, callerOf(req));
}

/** /admin/api-keys: the organisation's keys and the form for a new one. */
function keysPage(knex: Knex): FormPage {
  return {
    view: 'admin/api-keys',
    load: async (req) => ({ title: req.t('apikeys.title'), keys: await service(knex, req).list(), scopes: apiScopes, values: { scopes: [] } }),
  };
}

/** GET /admin/api-keys */
export function listApiKeys(knex: Knex): RequestHandler {
  return showPage(keysPage(knex));
}

/**
 * POST /admin/api-keys: creates a key and shows it, once. A refused form is
 * shown again with the name and scopes as typed, never the own key.
 */
export function createApiKey(knex: Knex): RequestHandler {
  return formAction({ page: keysPage(knex), fields: { name: 'text', scopes: 'list', own_key: 'secret' } }, async (req, res) => {
    const input = parseBody(createKeySchema, req.body);
    const { apiKey, key } = await service(knex, req).create(input);
    secretResponse(res);
    res.status(201).render('admin/api-key-created', { title: req.t('apikeys.created_title'), apiKey, key });
  });
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
