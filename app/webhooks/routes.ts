import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../auth/caller';
import { ValidationError } from '../errors';
import { flash } from '../http/flash';
import { parseBody } from '../http/forms';
import { secretResponse } from '../http/security';
import { createEndpointSchema, WebhookService, webhookEvents } from './service';

/** Field codes with their own text under `webhooks.errors`; the others are the shared `forms.*` ones. */
const OWN_CODES = new Set(['invalid_url', 'url_scheme', 'url_credentials', 'events_required', 'invalid_event']);

function service(knex: Knex, req: Request): WebhookService {
  return new WebhookService(knex, callerOf(req));
}

/** `call.link_revoked` -> `webhooks.events.call_link_revoked` */
export function eventKey(event: string): string {
  return `webhooks.events.${event.replace(/\./g, '_')}`;
}

async function renderList(knex: Knex, req: Request, res: Response, form: { values?: Record<string, unknown>; errors?: Record<string, string> } = {}): Promise<void> {
  const webhooks = service(knex, req);
  const [endpoints, deliveries] = await Promise.all([webhooks.list(), webhooks.deliveries()]);
  res.render('admin/webhooks', {
    title: req.t('webhooks.title'),
    endpoints,
    deliveries,
    events: webhookEvents,
    eventKey,
    values: form.values ?? { url: '', events: [...webhookEvents] },
    errors: form.errors ?? {},
  });
}

/** GET /admin/webhooks: the endpoints and the log of the latest deliveries. */
export function listWebhooks(knex: Knex): RequestHandler {
  return async (req, res) => {
    await renderList(knex, req, res);
  };
}

/** POST /admin/webhooks: creates an endpoint and shows its signing secret, once. */
export function createWebhook(knex: Knex): RequestHandler {
  return async (req, res) => {
    try {
      const input = parseBody(createEndpointSchema, req.body);
      const { endpoint, secret } = await service(knex, req).create(input);
      secretResponse(res);
      res.status(201).render('admin/webhook-created', { title: req.t('webhooks.created_title'), endpoint, secret, eventKey, rotated: false });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const body = (req.body ?? {}) as Record<string, unknown>;
      const chosen = body.events === undefined ? [] : ([] as unknown[]).concat(body.events).filter((e): e is string => typeof e === 'string');
      const errors = Object.fromEntries(err.fields.map((f) => [f.field, OWN_CODES.has(f.code) ? `webhooks.errors.${f.code}` : `forms.${f.code}`]));
      res.status(400);
      await renderList(knex, req, res, { values: { url: typeof body.url === 'string' ? body.url : '', events: chosen }, errors });
    }
  };
}

/** POST /admin/webhooks/:id/toggle: enables a disabled endpoint, disables an enabled one. */
export function toggleWebhook(knex: Knex): RequestHandler {
  return async (req, res) => {
    const endpoint = await service(knex, req).toggle(String(req.params.id));
    flash(req, 'success', endpoint.enabled ? 'webhooks.enabled_done' : 'webhooks.disabled_done');
    res.redirect(303, '/admin/webhooks');
  };
}

/** POST /admin/webhooks/:id/rotate: a new signing secret, shown once. */
export function rotateWebhookSecret(knex: Knex): RequestHandler {
  return async (req, res) => {
    const { endpoint, secret } = await service(knex, req).rotateSecret(String(req.params.id));
    secretResponse(res);
    res.render('admin/webhook-created', { title: req.t('webhooks.rotated_title'), endpoint, secret, eventKey, rotated: true });
  };
}

/** POST /admin/webhooks/:id/delete */
export function deleteWebhook(knex: Knex): RequestHandler {
  return async (req, res) => {
    await service(knex, req).remove(String(req.params.id));
    flash(req, 'success', 'webhooks.deleted');
    res.redirect(303, '/admin/webhooks');
  };
}
