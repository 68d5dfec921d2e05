import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../core/logger';

const INCOMING_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Query parameters whose values are masked in logged URLs. */
const SECRET_PARAMS = /^(token|key|api_?key|secret|password|code|signature|sig|_csrf)$/i;

/** Paths whose next segment is a secret token (one-time links, call links). */
const TOKEN_PATHS = /^(\/(?:setup|invite|password-reset|join)\/)[^/?]+/;

/** The URL as logged: path kept, values of secret-looking query parameters and tokens in paths masked. */
export function loggableUrl(url: string | undefined): string {
  if (!url) return '';
  url = url.replace(TOKEN_PATHS, '$1[redacted]');
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const [name, value] of [...params.entries()]) {
    if (SECRET_PARAMS.test(name)) params.set(name, '[redacted]');
    // A page address handed along (`return=/join/<token>`) carries the token too.
    else if (TOKEN_PATHS.test(value)) params.set(name, value.replace(TOKEN_PATHS, '$1[redacted]'));
  }
  return `${url.slice(0, q)}?${params.toString()}`;
}

/**
 * Gives every request an id (the caller's X-Request-Id when it is well
 * formed, else a new UUID), echoes it in the response, and logs one line per
 * request with pino. `req.log` is the request's child logger.
 */
export function requestContext(logger: Logger, logRequests: boolean): RequestHandler {
  return pinoHttp({
    logger,
    autoLogging: logRequests,
    quietReqLogger: true,
    genReqId(req: IncomingMessage, res: ServerResponse) {
      const incoming = req.headers['x-request-id'];
      const id = typeof incoming === 'string' && INCOMING_ID.test(incoming) ? incoming : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel(_req, res, err) {
      if (err || res.statusCode >= 500) return 'error';
      if (res.statusCode >= 400) return 'info';
      return 'info';
    },
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: loggableUrl(req.url),
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  }) as unknown as RequestHandler;
}
