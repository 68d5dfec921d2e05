import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import type { Actor } from '../audit/actions';
import { refusalsFor } from '../audit/refusals';
import { requestMeta } from '../access/caller';
import { ForbiddenError, UnauthorizedError } from '../core/errors';
import { limiterFor, rateLimited } from '../http/limiter';
import { ApiRequestLog } from '../retention/api-requests';
import { ApiKeyService, type ApiRefusal, type ApiScope, type AuthenticatedKey } from './service';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The API key the request authenticated with (JSON API routes only). */
      apiKey?: AuthenticatedKey;
    }
  }
}

/**
 * The key a request presents: `Authorization: Bearer <key>`, or the
 * `X-API-Key` header. Undefined when neither header is there; '' when one
 * is there but empty or not a Bearer credential (refused as malformed).
 */
export function presentedKey(req: Request): string | undefined {
  const authorization = req.get('authorization');
  if (authorization !== undefined) {
    const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(authorization);
    return match ? match[1]! : '';
  }
  const header = req.get('x-api-key');
  return header === undefined ? undefined : header.trim();
}

export function apiKeyActor(key: AuthenticatedKey): Actor {
  return { type: 'api_key', id: key.id, label: key.prefix, organisationId: key.organisationId };
}

/**
 * Authenticates a JSON API request by its API key and checks the key's
 * scope (`requiredScope` undefined: any valid key will do). Refusals answer
 * 401 `api_key_missing` / `api_key_invalid` (malformed, unknown or revoked)
 * or 403 `api_scope_missing`, and each is audited with the client's IP: in
 * the key's organisation when the key is known, else appliance-wide; the
 * first of a source at once, further ones aggregated per window
 * (audit/refusals.ts). Refusals are limited per client IP before any
 * database work (429 `rate_limited`, http/limiter.ts). An
 * accepted request is written to the API request log (`api_request_log`,
 * with key, status and client IP) once its response is done: not to the
 * append-only audit trail, so that the organisation's retention setting
 * can prune it. The key itself is never written anywhere.
 *
 * API requests carry no session, so the global CSRF check must let through
 * requests that come with an API key and no session cookie.
 */
export function apiKeyAuth(knex: Knex, requiredScope?: ApiScope): RequestHandler {
  const log = new ApiRequestLog(knex);
  return async (req, res, next) => {
    const refusals = refusalsFor(knex);
    // A JSON API: errors answer in JSON unless the client asks for something else.
    if (!req.get('accept')) req.headers.accept = 'application/json';
    // Per client IP, before any database work; given back once the key is accepted.
    const slot = limiterFor(knex).take('api_key', req.ip);
    if (!slot.ok) return next(rateLimited(knex, req, 'api_key', slot.retryAfterSeconds));
    const meta = requestMeta(req);
    const refuse = async (reason: ApiRefusal, key?: AuthenticatedKey) => {
      await refusals.note({
        organisationId: key?.organisationId ?? null,
        actor: key ? apiKeyActor(key) : { type: 'guest' },
        action: 'api.refused',
        ...meta,
        details: { reason, method: req.method, path: req.path, ...(reason === 'scope' ? { scope: requiredScope } : {}) },
      });
      if (reason === 'scope') return next(new ForbiddenError('api_scope_missing', { messageKey: 'apikeys.errors.api_scope_missing', params: { scope: requiredScope ?? '' } }));
      res.setHeader('WWW-Authenticate', `Bearer realm="VClerk"${reason === 'missing' ? '' : ', error="invalid_token"'}`);
      const code = reason === 'missing' ? 'api_key_missing' : 'api_key_invalid';
      next(new UnauthorizedError(code, { messageKey: `apikeys.errors.${code}` }));
    };

    const presented = presentedKey(req);
    if (presented === undefined) return refuse('missing');
    const found = await ApiKeyService.lookup(knex, presented, meta.ip);
    if (found.status !== 'ok') return refuse(found.status, 'key' in found ? found.key : undefined);
    if (requiredScope && !found.key.scopes.includes(requiredScope)) return refuse('scope', found.key);

    slot.refund();
    req.apiKey = found.key;
    logWhenDone(log, req, res, found.key, meta);
    next();
  };
}

/** Writes the request to the API request log once the response is sent (or the client went away first). */
function logWhenDone(log: ApiRequestLog, req: Request, res: Response, key: AuthenticatedKey, meta: { ip: string | null; userAgent: string | null }): void {
  const path = req.path;
  let done = false;
  const record = () => {
    if (done) return;
    done = true;
    log
      .record({ organisationId: key.organisationId, apiKeyId: key.id, keyPrefix: key.prefix, method: req.method, path, status: res.statusCode, aborted: !res.writableFinished, ...meta })
      .catch((err: unknown) => (req.log ?? console).error({ err }, 'an API request could not be logged'));
  };
  res.once('finish', record);
  res.once('close', record);
}
