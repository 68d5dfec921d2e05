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
 * Requests this node serves because the node they name could not be
 * reached (it died, most likely): the placement holds such a connection
 * until the call has a living node (app/nodes/placement.ts). Kept on the
 * request object, never in a header, so a client cannot ask to be held.
 */
const servedForUnreachable = new WeakSet<IncomingMessage>();

/** Whether this node serves `req` because the node it names could not be reached. */
export function namedNodeUnreachable(req: IncomingMessage): boolean {
  return servedForUnreachable.has(req);
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

  const serveRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith(options.path)) acceptForwarded(req, options.secret);
    for (const listener of requestListeners) listener.call(server, req, res);
  };
  const serveUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.url?.startsWith(options.path)) acceptForwarded(req, options.secret);
    for (const listener of upgradeListeners) listener.call(server, req, socket, head);
  };
  // The named node cannot be reached (it died, and is not yet known gone): this node answers; its
  // hub holds the connection until the call is placed anew (app/nodes/placement.ts). For a
  // while after a failure this node answers at once (a long-polling session's further requests
  // must find the session where its first one was served).
  const unreachableUntil = new Map<string, number>();
  /** The URL to pass `req` on to; null to serve it here (marked when its node is unreachable, or unknown: gone). */
  const reachable = (req: IncomingMessage): URL | null => {
    const { target, named } = targetOf(req, options);
    if (!target) {
      if (named) servedForUnreachable.add(req);
      return null;
    }
    const until = unreachableUntil.get(target.host);
    if (until !== undefined && until > Date.now()) {
      servedForUnreachable.add(req);
      return null;
    }
    unreachableUntil.delete(target.host);
    return target;
  };
  const lost = (req: IncomingMessage, target: URL) => {
    unreachableUntil.set(target.host, Date.now() + UNREACHABLE_MS);
    servedForUnreachable.add(req);
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const target = reachable(req);
    if (target) return passRequest(req, res, target, options, () => serveRequest(req, res), () => lost(req, target));
    serveRequest(req, res);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const target = reachable(req);
    if (target) return passUpgrade(req, socket, head, target, options, () => serveUpgrade(req, socket, head), () => lost(req, target));
    serveUpgrade(req, socket, head);
  });
}

/**
 * The URL to pass a signalling request on to, or null to serve it here;
 * `named`: it names another node (one the directory does not know, a gone
 * one, when the target is null).
 */
function targetOf(req: IncomingMessage, options: SignalForwardOptions): { target: URL | null; named: boolean } {
  const none = { target: null, named: false };
  // A request that came forwarded is served here, whatever its `node` says (no loops).
  if (!req.url?.startsWith(options.path) || req.headers[FORWARDED_BY] !== undefined) return none;
  let node: string | null;
  try {
    node = new URL(req.url, 'http://node').searchParams.get('node');
  } catch {
    return none;
  }
  if (!node || node === options.self) return none;
  const base = options.urlOf(node);
  return { target: base ? new URL(req.url, base) : null, named: true };
}

function headersFor(req: IncomingMessage, options: SignalForwardOptions): http.OutgoingHttpHeaders {
  const peer = req.socket.remoteAddress;
  const client = (options.trustProxy ? clientAddress(peer, req.headers['x-forwarded-for'], options.trustProxy) : peer) ?? '';
  return { ...req.headers, ...forwardingHeaders(options.secret, options.self, client) };
}

function requestTo(target: URL, method: string, headers: http.OutgoingHttpHeaders): http.ClientRequest {
  return (target.protocol === 'https:' ? https : http).request(target, { method, headers });
}

/** How long a forwarded request may wait for the node to accept the connection before this node answers instead. */
const CONNECT_TIMEOUT_MS = 3000;
/** How long a node that could not be reached is not tried again for signalling (by then it is known gone, or answers again). */
const UNREACHABLE_MS = 5000;

/** Gives up on a node that does not accept the TCP connection in time (a powered-off host drops packets). */
function connectGuard(upstream: http.ClientRequest): void {
  const timer = setTimeout(() => upstream.destroy(new Error('the node did not accept the connection in time')), CONNECT_TIMEOUT_MS);
  upstream.on('socket', (socket) => {
    if (!socket.connecting) clearTimeout(timer);
    else socket.once('connect', () => clearTimeout(timer));
  });
  upstream.on('close', () => clearTimeout(timer));
}

function passRequest(req: IncomingMessage, res: ServerResponse, target: URL, options: SignalForwardOptions, serveHere: () => void, onLost: () => void): void {
  const upstream = requestTo(target, req.method ?? 'GET', headersFor(req, options));
  connectGuard(upstream);
  upstream.on('response', (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', (err) => {
    options.logger.warn({ err, node: target.host }, 'could not forward signalling to its node');
    if (res.headersSent) return void res.destroy();
    onLost();
    // A long-polling GET carries no body: this node can answer it. A POST's body went to the lost node (502; the next ones are served here).
    if (req.method === 'GET') return serveHere();
    res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'node_unreachable' } }));
  });
  if (req.method === 'GET') upstream.end();
  else req.pipe(upstream);
}

function passUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: URL, options: SignalForwardOptions, serveHere: () => void, onLost: () => void): void {
  const upstream = requestTo(target, req.method ?? 'GET', headersFor(req, options));
  let upgraded = false;
  connectGuard(upstream);
  const fail = (err?: Error) => {
    if (err) options.logger.warn({ err, node: target.host }, 'could not forward signalling to its node');
    // Nothing was written to the client yet: this node takes the connection.
    if (!upgraded && !socket.destroyed && socket.writable) {
      onLost();
      return serveHere();
    }
    socket.destroy();
  };
  socket.on('error', () => upstream.destroy());
  upstream.on('upgrade', (answer, upstreamSocket, upstreamHead) => {
    upgraded = true;
    socket.write(statusAndHeaders(answer, 101, 'Switching Protocols'));
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
    upgraded = true;
    socket.write(statusAndHeaders(answer, 502, ''));
    answer.pipe(socket);
  });
  upstream.on('error', fail);
  upstream.end();
}

/** An answer's status line and headers as the node sent them, for writing to the client's raw socket. */
function statusAndHeaders(answer: IncomingMessage, status: number, message: string): string {
  const lines = [`HTTP/1.1 ${answer.statusCode ?? status} ${answer.statusMessage ?? message}`];
  for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
