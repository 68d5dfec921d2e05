import { io, type Socket } from 'socket.io-client';
import type { Ack, RequestPayload, RequestType, ResponseData, ServerEvents } from '../../app/calls/protocol';

/** How the page proves who it is: a clerk by the session cookie plus the call id, a customer by the link's token. */
export type SignalAuth = { callId: string } | { token: string };

/** A refused request: `code` is the protocol's stable code (or `timeout`, `disconnected`, `invalid_response`). */
export class RequestError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

export const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The socket.io connection to the appliance's signalling server at
 * `/signal`, with typed requests (`request(type, payload)` resolves with
 * the ack's `data` or rejects with a RequestError carrying the `code`) and
 * typed server events. Reconnecting is socket.io's own; the session decides
 * what to do after a reconnect.
 */
export class Signalling {
  readonly socket: Socket;

  /**
   * `node`: the node that served the page (issue 19), named from the first
   * connection on so that every request of it (long-polling too) reaches the
   * same node through any load balancer; a `wrong_node` refusal names the
   * call's holder instead (`useNode`).
   */
  constructor(auth: SignalAuth, node?: string) {
    this.socket = io({
      path: '/signal',
      auth,
      ...(node ? { query: { node } } : {}),
      autoConnect: false,
      // WebSocket first: one HTTP request, so it reaches one node whatever the load balancer
      // does with it (issue 19); long-polling is many requests, which a load balancer without
      // sticky sessions spreads over the nodes. Polling stays the fallback where WebSocket is blocked.
      transports: ['websocket', 'polling'],
      tryAllTransports: true,
      reconnectionDelay: 1000,
      // At most 2 s between tries: a node that died is known gone after 3 heartbeats, and the
      // participants of its calls should be back soon after (the media within 10 s).
      reconnectionDelayMax: 2000,
    });
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  connect(): void {
    if (!this.socket.connected) this.socket.connect();
  }

  close(): void {
    this.socket.disconnect();
  }

  /** The node the connection names now. */
  get node(): string | undefined {
    return (this.socket.io.opts as { query?: Record<string, string> }).query?.node;
  }

  /** Connects from now on naming the node that holds the call (after a `wrong_node` refusal): any node passes the connection on to it. */
  useNode(name: string): void {
    const opts = this.socket.io.opts as { query?: Record<string, string> };
    opts.query = { ...(opts.query ?? {}), node: name };
  }

  /**
   * Sends one request. Fails at once when the socket is not connected:
   * a request buffered until some later reconnect would name transports
   * that no longer exist.
   */
  request<T extends RequestType>(type: T, payload: RequestPayload<T>, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ResponseData[T]> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new RequestError('disconnected', `${type}: not connected`));
        return;
      }
      this.socket.timeout(timeoutMs).emit(type, payload, (err: Error | null, ack: Ack<T> | undefined) => {
        if (err) return reject(new RequestError('timeout', `${type}: no answer within ${timeoutMs} ms`));
        if (!ack || typeof ack !== 'object') return reject(new RequestError('invalid_response', `${type}: malformed answer`));
        if (ack.ok) return resolve(ack.data);
        const code = typeof ack.error?.code === 'string' ? ack.error.code : 'internal_error';
        reject(new RequestError(code, `${type}: ${code}`));
      });
    });
  }

  on<E extends keyof ServerEvents>(event: E, handler: (payload: ServerEvents[E]) => void): void {
    this.socket.on(event as string, (payload: ServerEvents[E]) => {
      try {
        handler(payload);
      } catch (error) {
        console.error(`vclerk: handling ${event} failed`, error);
      }
    });
  }
}

/** The code of a failed request, or `internal_error` for anything else. */
export function errorCode(error: unknown): string {
  return error instanceof RequestError ? error.code : 'internal_error';
}
