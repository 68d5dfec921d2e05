import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { Socket } from 'socket.io';
import { refusalsFor } from '../audit/refusals';
import type { Logger } from '../core/logger';
import type { TrustProxy } from '../net/addresses';
import { clientIp } from './signalling-auth';

function first(value: string | string[] | undefined): string | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  return raw?.split(',')[0]?.trim() || undefined;
}

/** `host[:port]` as a URL of the given scheme would have it (default ports dropped, lower case), or undefined if malformed. */
function normalHost(scheme: string, host: string): string | undefined {
  try {
    return new URL(`${scheme}//${host}`).host;
  } catch {
    return undefined;
  }
}

/**
 * Whether a signalling connection's `Origin` (if the browser sent one) is
 * the appliance's own: the host of the configured public URL, or the host
 * the request was addressed to (the Host header, or X-Forwarded-Host when
 * the connecting peer is a trusted proxy). Compared by host and port, so
 * TLS ending at a proxy does not matter. No Origin (a client that is not
 * a browser, which carries no one's cookie) is allowed; a malformed one or
 * `null` is not. Stops cross-site WebSocket hijacking with a clerk's cookie.
 */
export function originAllowed(
  headers: IncomingHttpHeaders,
  peerAddress: string | undefined,
  options: { trustProxy?: TrustProxy; publicUrl?: string },
): boolean {
  const origin = headers.origin;
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (options.publicUrl && normalHost(url.protocol, new URL(options.publicUrl).host) === url.host) return true;
  const proxied = peerAddress !== undefined && options.trustProxy?.(peerAddress, 0) === true;
  const host = (proxied ? first(headers['x-forwarded-host']) : undefined) ?? first(headers.host);
  return host !== undefined && normalHost(url.protocol, host) === url.host;
}

/**
 * The origin check as the signalling server uses it: `session` reads the
 * session cookie only for requests from the appliance's own pages (so a
 * foreign-origin flood costs no session lookup), and `check` refuses a
 * foreign-origin connection with `forbidden`, counted with the other
 * signalling refusals (aggregated per source and window, never a row per
 * attempt).
 */
export function originGate(deps: { knex: Knex; logger: Logger; session: RequestHandler; trustProxy?: TrustProxy; publicUrl?: string }) {
  const own = (headers: IncomingHttpHeaders, address: string | undefined) => originAllowed(headers, address, { trustProxy: deps.trustProxy, publicUrl: deps.publicUrl });
  return {
    session(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
      if (own(req.headers, req.socket.remoteAddress)) deps.session(req as never, res as never, next);
      else next();
    },
    check(socket: Socket, next: (err?: Error) => void): void {
      const { headers, address } = socket.handshake;
      if (own(headers, address)) return next();
      const ip = clientIp(socket, deps.trustProxy);
      deps.logger.warn({ origin: String(headers.origin).slice(0, 200), ip }, 'signalling refused: foreign origin');
      refusalsFor(deps.knex)
        .note({ organisationId: null, actor: { type: 'guest' }, action: 'security.signalling_refused', ip, userAgent: headers['user-agent'] ?? null, details: { reason: 'foreign_origin' } }, { aggregateOnly: true })
        .catch((err: unknown) => deps.logger.error({ err }, 'could not count a signalling refusal'));
      next(new Error('forbidden'));
    },
  };
}
