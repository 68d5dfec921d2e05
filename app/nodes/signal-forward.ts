import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from '../core/logger';
import { clientAddress, type TrustProxy } from '../net/addresses';
import { acceptForwarded, FORWARDED_BY, forwardingHeaders } from '../net/forwarded-client';

export interface SignalForwardOptions {
  /** The signalling path (socket.io's, with a trailing slash). */
  path: string;
  /** This node's name. */
  self: string;
  /** A living node's URL by name (NodeDirectory). */
  urlOf(name: string): string | undefined;
  /** The secret every node shares (the session secret): signs the client's address. */
  secret: string;
  trustProxy?: TrustProxy;
  logger: Logger;
}

/**
 * Signalling reaches the node that holds the call's media room (issue 19).
 * A participant connects to `/signal/?node=<name>` once it knows the node
 * (the hub refuses a connection to another node's call with `wrong_node` and
 * that node's name). Whichever node the load balancer picks, a request of
 * that path naming another living node is passed on to that node's URL as
 * it is, WebSocket upgrade and long-polling alike, with the client's address
 * signed (app/net/forwarded-client.ts); a forwarded request is never passed
 * on again. Anything else goes to the listeners the server had (the app,
 * socket.io). So any load balancer works without sticky sessions, and one
 * that routes by the `node` parameter saves the hop.
 *
 * Call after socket.io is attached: it wraps the server's `request` and
 * `upgrade` listeners.
 */
export function forwardSignalling(server: Server, options: SignalForwardOptions): void {
  const requestListeners = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  const upgradeListeners = server.listeners('upgrade') as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[];
  server.removeAllListeners('request');
  server.removeAllListeners('upgrade');

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const target = targetOf(req, options);
    if (target) return passRequest(req, res, target, options);
    if (req.url?.startsWith(options.path)) acceptForwarded(req, options.secret);
    for (const listener of requestListeners) listener.call(server, req, res);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const target = targetOf(req, options);
    if (target) return passUpgrade(req, socket, head, target, options);
    if (req.url?.startsWith(options.path)) acceptForwarded(req, options.secret);
    for (const listener of upgradeListeners) listener.call(server, req, socket, head);
  });
}

/** The URL to pass a signalling request on to, or null to serve it here. */
function targetOf(req: IncomingMessage, options: SignalForwardOptions): URL | null {
  // A request that came forwarded is served here, whatever its `node` says (no loops).
  if (!req.url?.startsWith(options.path) || req.headers[FORWARDED_BY] !== undefined) return null;
  let node: string | null;
  try {
    node = new URL(req.url, 'http://node').searchParams.get('node');
  } catch {
    return null;
  }
  if (!node || node === options.self) return null;
  const base = options.urlOf(node);
  return base ? new URL(req.url, base) : null;
}

function headersFor(req: IncomingMessage, options: SignalForwardOptions): http.OutgoingHttpHeaders {
  const peer = req.socket.remoteAddress;
  const client = (options.trustProxy ? clientAddress(peer, req.headers['x-forwarded-for'], options.trustProxy) : peer) ?? '';
  return { ...req.headers, ...forwardingHeaders(options.secret, options.self, client) };
}

function requestTo(target: URL, method: string, headers: http.OutgoingHttpHeaders): http.ClientRequest {
  return (target.protocol === 'https:' ? https : http).request(target, { method, headers });
}

function passRequest(req: IncomingMessage, res: ServerResponse, target: URL, options: SignalForwardOptions): void {
  const upstream = requestTo(target, req.method ?? 'GET', headersFor(req, options));
  upstream.on('response', (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', (err) => {
    options.logger.warn({ err, node: target.host }, 'could not forward signalling to its node');
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'node_unreachable' } }));
    else res.destroy();
  });
  req.pipe(upstream);
}

function passUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: URL, options: SignalForwardOptions): void {
  const upstream = requestTo(target, req.method ?? 'GET', headersFor(req, options));
  const fail = (err?: Error) => {
    if (err) options.logger.warn({ err, node: target.host }, 'could not forward signalling to its node');
    socket.destroy();
  };
  socket.on('error', () => upstream.destroy());
  upstream.on('upgrade', (answer, upstreamSocket, upstreamHead) => {
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 101} ${answer.statusMessage ?? 'Switching Protocols'}`];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (upstreamHead.length > 0) socket.write(upstreamHead);
    if (head.length > 0) upstreamSocket.write(head);
    upstreamSocket.on('error', () => socket.destroy());
    socket.on('error', () => upstreamSocket.destroy());
    upstreamSocket.on('close', () => socket.destroy());
    socket.on('close', () => upstreamSocket.destroy());
    upstreamSocket.pipe(socket);
    socket.pipe(upstreamSocket);
  });
  upstream.on('response', (answer) => {
    // Not upgraded (refused): the answer as it is, then the end.
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    answer.pipe(socket);
  });
  upstream.on('error', fail);
  upstream.end();
}
