import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../access/caller';
import { formAction, showPage, type FormPage } from '../http/form-page';
import { flash } from '../http/flash';
import { parseBody } from '../http/forms';
import { secretResponse } from '../http/security';
import { createEndpointSchema, WebhookService, webhookEvents } from './service';

function service(knex: Knex, req: Request): WebhookService {
  return new WebhookService(knex, callerOf(req));
}

/** `call.link_revoked` -> `webhooks.events.call_link_revoked` */
export function eventKey(event: string): string {
  return `webhooks.events.${event.replace(/\./g, '_')}`;
}

/** /admin/webhooks: the endpoints, the log of the latest deliveries and the form for a new endpoint. */
function webhooksPage(knex: Knex): FormPage {
  return {
    view: 'admin/webhooks',
    async load(req) {
      const webhooks = service(knex, req);
      const [endpoints, deliveries] = await Promise.all([webhooks.list(), webhooks.deliveries()]);
      return { title: req.t('webhooks.title'), endpoints, deliveries, events: webhookEvents, eventKey, values: { url: '', events: [...webhookEvents] } };
    },
  };
}

/** GET /admin/webhooks */
export function listWebhooks(knex: Knex): RequestHandler {
  return showPage(webhooksPage(knex));
}

/** POST /admin/webhooks: creates an endpoint and shows its signing secret, once. */
export function createWebhook(knex: Knex): RequestHandler {
  return formAction({ page: webhooksPage(knex), fields: { url: 'text', events: 'list' } }, async (req, res) => {
    const input = parseBody(createEndpointSchema, req.body);
    const { endpoint, secret } = await service(knex, req).create(input);
    secretResponse(res);
    res.status(201).render('admin/webhook-created', { title: req.t('webhooks.created_title'), endpoint, secret, eventKey, rotated: false });
  });
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
