import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import { OrganisationScopedService } from '../access/scoped-service';
import { NotFoundError } from '../core/errors';
import type { WebhookDeliveryRow } from '../db/tables';
import { deleteEndpoint, insertEndpoint, listEndpoints, organisationDeliveries, organisationEndpoint, setEndpointEnabled, setEndpointSecret, type EndpointListing } from './store';

/** The audit actions a webhook can carry, in the order a call goes through them. */
export const webhookEvents = ['call.started', 'call.joined', 'call.left', 'call.ended', 'call.link_revoked'] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export const MAX_URL_LENGTH = 2000;
export const DELIVERY_LOG_SIZE = 50;

export interface WebhookEndpoint {
  id: string;
  url: string;
  events: WebhookEvent[];
  enabled: boolean;
  createdAt: Date;
}

export interface WebhookDelivery {
  id: string;
  endpointId: string;
  url: string;
  auditEventId: string;
  event: string;
  attempt: number;
  status: DeliveryStatus;
  responseStatus: number | null;
  error: string | null;
  nextAttemptAt: Date;
  createdAt: Date;
  deliveredAt: Date | null;
}

/** Why a URL is refused: the field code (an i18n key under `webhooks.errors`). */
export function urlProblem(value: string): 'invalid_url' | 'url_scheme' | 'url_credentials' | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'invalid_url';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'url_scheme';
  if (url.username || url.password) return 'url_credentials';
  if (!url.hostname) return 'invalid_url';
  return null;
}

const eventList = z.preprocess(
  (value) => (value === undefined || value === '' ? [] : Array.isArray(value) ? value : [value]),
  z.array(z.enum(webhookEvents, 'invalid_event')).min(1, 'events_required'),
);

/** The create form: a target URL (http or https, no user or password in it) and the events it wants. */
export const createEndpointSchema = z.object({
  url: z
    .string('required')
    .trim()
    .min(1, 'required')
    .max(MAX_URL_LENGTH, 'too_long')
    .superRefine((value, ctx) => {
      const problem = urlProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .transform((value) => new URL(value).toString()),
  events: eventList.transform((events) => webhookEvents.filter((e) => events.includes(e))),
});

export type CreateEndpointInput = z.infer<typeof createEndpointSchema>;

/** A signing secret: 256 random bits, base64url. */
export function generateSecret(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * An organisation's webhook endpoints and their delivery log, for its
 * admins. Built per request with the caller; every query is scoped to the
 * caller's organisation, and an id of another organisation answers like an
 * unknown one (the attempt is audited). The secret leaves this service only
 * in the answer to `create` and `rotateSecret`.
 */
export class WebhookService extends OrganisationScopedService {

  /** Every change to an endpoint is audited (never the secret). */
  private async audited(action: 'webhook.created' | 'webhook.enabled' | 'webhook.disabled' | 'webhook.secret_rotated' | 'webhook.deleted', endpoint: { id: string; url?: string }): Promise<void> {
    await this.audit.record({
      ...this.base(),
      action,
      target: { type: 'webhook', id: endpoint.id },
      ip: this.caller.ip,
      userAgent: this.caller.userAgent,
      details: endpoint.url ? { url: endpoint.url } : {},
    });
  }

  async list(): Promise<WebhookEndpoint[]> {
    const rows = await listEndpoints(this.knex, this.organisationId);
    return rows.map(toEndpoint);
  }

  /**
   * A new endpoint and its secret, shown once. Its cursor starts at the
   * organisation's latest audit event: it gets what happens from now on,
   * not the history.
   */
  async create(input: CreateEndpointInput): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const secret = generateSecret();
    const row = await insertEndpoint(this.knex, { organisation_id: this.organisationId, url: input.url, secret, events: input.events, enabled: true });
    await this.audited('webhook.created', row);
    return { endpoint: toEndpoint(row), secret };
  }

  /**
   * Turns an endpoint on or off. A disabled endpoint gets nothing; when it
   * is enabled again it starts from the organisation's latest event (what
   * happened while it was off is not sent).
   */
  async setEnabled(id: string, enabled: boolean): Promise<WebhookEndpoint> {
    await this.mustOwn(id);
    const row = await setEndpointEnabled(this.knex, this.organisationId, id, enabled);
    await this.audited(enabled ? 'webhook.enabled' : 'webhook.disabled', row);
    return toEndpoint(row);
  }

  async toggle(id: string): Promise<WebhookEndpoint> {
    const row = await this.mustOwn(id);
    return this.setEnabled(id, !row.enabled);
  }

  /** A new secret for an endpoint (the old one stops working at once); shown once. */
  async rotateSecret(id: string): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    await this.mustOwn(id);
    const secret = generateSecret();
    const row = await setEndpointSecret(this.knex, this.organisationId, id, secret);
    await this.audited('webhook.secret_rotated', row);
    return { endpoint: toEndpoint(row), secret };
  }

  /** Deletes an endpoint and its delivery log. */
  async remove(id: string): Promise<void> {
    const row = await this.mustOwn(id);
    await deleteEndpoint(this.knex, this.organisationId, id);
    await this.audited('webhook.deleted', row);
  }

  /** The latest deliveries of all the organisation's endpoints, newest first. */
  async deliveries(limit = DELIVERY_LOG_SIZE): Promise<WebhookDelivery[]> {
    const rows = await organisationDeliveries(this.knex, this.organisationId, limit);
    return rows.map(toDelivery);
  }

  private async mustOwn(id: string): Promise<{ id: string; url: string; enabled: boolean }> {
    if (!z.uuid().safeParse(id).success) throw new NotFoundError();
    const row = await organisationEndpoint(this.knex, this.organisationId, id);
    if (row) return row;
    return this.refuseForeign('webhook_endpoints', 'webhook_endpoint', id);
  }
}

function toEndpoint(row: EndpointListing): WebhookEndpoint {
  return {
    id: row.id,
    url: row.url,
    events: row.events as WebhookEvent[],
    enabled: row.enabled,
    createdAt: row.created_at,
  };
}

function toDelivery(row: WebhookDeliveryRow & { url: string }): WebhookDelivery {
  return {
    id: String(row.id),
    endpointId: row.endpoint_id,
    url: row.url,
    auditEventId: String(row.audit_event_id),
    event: row.event,
    attempt: Number(row.attempt),
    status: row.status as DeliveryStatus,
    responseStatus: row.response_status ?? null,
    error: row.error ?? null,
    nextAttemptAt: row.next_attempt_at,
    createdAt: row.created_at,
    deliveredAt: row.delivered_at ?? null,
  };
}
