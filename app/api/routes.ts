import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Config } from '../../config';
import { apiKeyActor } from '../api-keys/middleware';
import { requestMeta } from '../access/caller';
import { auditForeignProbe, type Prober } from '../access/scoped-service';
import { CallService, callReferenceSchema } from '../calls/service';
import type { CallLinkTokens } from '../calls/link-token';
import { NotFoundError } from '../core/errors';
import { parseBody } from '../http/forms';
import { publicBase } from '../http/links';
import { parseQuery } from '../http/query';
import { openApiDocument } from './openapi';
import { QueueService } from '../queue/service';
import { activeClerks } from '../staff/service';
import { callResource, clerkResource } from './serialize';

export interface ApiDeps {
  knex: Knex;
  config: Config;
  /** Derives customer tokens the clerk can be shown again (calls/link-token.ts). */
  links?: CallLinkTokens;
}

const createLinkSchema = z
  .object({
    clerkId: z.uuid('invalid'),
    reference: callReferenceSchema.optional(),
    validHours: z.number().int('invalid').min(1, 'invalid').max(720, 'invalid').optional(),
    scheduledAt: z.iso.datetime({ offset: true, message: 'invalid_date' }).optional(),
  })
  .strict();

const listSchema = z
  .object({
    status: z.enum(['waiting', 'active', 'ended'], 'invalid').optional(),
    limit: z.coerce.number().int('invalid').min(1, 'invalid').max(100, 'invalid').optional(),
    cursor: z.string().max(200).optional(),
  })
  .strict();

function organisationId(req: Request): string {
  return req.apiKey!.organisationId;
}

/** The key asking, for the audit of another organisation's ids (auth/scoped-service.ts). */
function prober(req: Request): Prober {
  const key = req.apiKey!;
  return { organisationId: key.organisationId, actor: { type: 'api_key', id: key.id, label: key.prefix, organisationId: key.organisationId }, ...requestMeta(req) };
}

function encodeCursor(call: { createdAt: Date; id: string }): string {
  return Buffer.from(`${call.createdAt.toISOString()}|${call.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } | undefined {
  const [time, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(time ?? '');
  if (Number.isNaN(createdAt.getTime()) || !z.uuid().safeParse(id).success) return undefined;
  return { createdAt, id: id! };
}

/** POST /api/v1/call-links: a call for one of the organisation's clerks; the link is in this answer only. */
export function createCallLink(deps: ApiDeps): RequestHandler {
  return async (req, res) => {
    const input = parseBody(createLinkSchema, req.body);
    const { call, token } = await new CallService(deps.knex, deps.links).startForClerk(
      { organisationId: organisationId(req), clerkId: input.clerkId, actor: apiKeyActor(req.apiKey!), ...requestMeta(req) },
      deps.config.callLinkHours,
      { reference: input.reference, valid_hours: input.validHours, scheduled_at: input.scheduledAt },
    ).catch(async (err: unknown) => {
      // Another organisation's clerk is "unknown" here, and audited in both organisations.
      await auditForeignProbe(deps.knex, prober(req), 'users', 'user', input.clerkId);
      throw err;
    });
    res.status(201).set('Cache-Control', 'no-store').json({ call: callResource(call), url: `${publicBase(req, deps.config)}/join/${token}` });
  };
}

/** GET /api/v1/calls?status=&limit=&cursor= */
export function listCalls(deps: ApiDeps): RequestHandler {
  return async (req, res) => {
    const query = parseQuery(listSchema, req);
    const before = query.cursor ? decodeCursor(query.cursor) : undefined;
    if (query.cursor && !before) parseBody(z.object({ cursor: z.never('invalid') }), { cursor: query.cursor });
    const limit = query.limit ?? 50;
    const calls = await new CallService(deps.knex).listForOrganisation(organisationId(req), { status: query.status, limit: limit + 1, before });
    const page = calls.slice(0, limit);
    res.json({ data: page.map(callResource), nextCursor: calls.length > limit ? encodeCursor(page[page.length - 1]!) : null });
  };
}

/** GET /api/v1/calls/:id */
export function getCall(deps: ApiDeps): RequestHandler {
  return async (req, res) => {
    const call = await new CallService(deps.knex).getForOrganisation(organisationId(req), String(req.params.id));
    if (!call) {
      await auditForeignProbe(deps.knex, prober(req), 'calls', 'call', String(req.params.id));
      throw new NotFoundError('call_not_found');
    }
    res.json({ call: callResource(call) });
  };
}

/** POST /api/v1/calls/:id/revoke-link */
export function revokeLink(deps: ApiDeps): RequestHandler {
  return async (req, res) => {
    const call = await new CallService(deps.knex).revokeLinkForOrganisation(organisationId(req), String(req.params.id), apiKeyActor(req.apiKey!), requestMeta(req));
    if (!call) {
      await auditForeignProbe(deps.knex, prober(req), 'calls', 'call', String(req.params.id));
      throw new NotFoundError('call_not_found');
    }
    res.json({ call: callResource(call) });
  };
}

/** GET /api/v1/queue: how many customers wait and how many clerks are available. */
export function queueState(deps: ApiDeps): RequestHandler {
  return async (req, res) => {
    const queue = new QueueService(deps.knex);
    const id = organisationId(req);
    const waiting = await queue.waiting(id);
    res.set('Cache-Control', 'no-store').json({ waiting, availableClerks: await queue.availableClerks(id) });
  };
}

/** GET /api/v1/clerks: the organisation's active clerks, whose ids `clerkId` takes. */
export function listClerks(deps: ApiDeps): RequestHandler {
  return async (req, res) => {
    parseQuery(z.object({}).strict(), req);
    const clerks = await activeClerks(deps.knex, organisationId(req));
    res.set('Cache-Control', 'no-store').json({ data: clerks.map(clerkResource) });
  };
}

/** GET /api/v1/openapi.json: the API's description, served by the appliance itself. */
export const openApi: RequestHandler = (_req, res) => {
  res.json(openApiDocument());
};
