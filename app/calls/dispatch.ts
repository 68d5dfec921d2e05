import type { Socket } from 'socket.io';
import type { ZodType } from 'zod';
import type { Room } from '../../media';
import type { Logger } from '../core/logger';
import type { CallModule, CallRequest, EmitToCall } from './module';
import { CallRefusal, errorReply, refusalReply } from './refusal';
import { TokenBucket } from './rate-limit';
import { guarded, loggableName } from './safe-handler';
import { MAX_PAYLOAD_BYTES } from './shared';
import type { SocketIdentity } from './signalling-auth';

/** Every request the hub serves, by name, from the modules it was given. */
export type RequestTable = ReadonlyMap<string, { module: string; request: CallRequest }>;

/** The modules' requests in one table; two modules serving one request is a programming error. */
export function requestTable(modules: readonly CallModule[]): RequestTable {
  const table = new Map<string, { module: string; request: CallRequest }>();
  for (const module of modules) {
    for (const [name, request] of Object.entries(module.requests)) {
      if (!request) continue;
      const earlier = table.get(name);
      if (earlier) throw new Error(`the call modules ${earlier.module} and ${module.name} both serve ${name}`);
      table.set(name, { module: module.name, request: request as CallRequest });
    }
  }
  return table;
}

type Reply = (response: unknown) => void;

export interface RequestListenerOptions {
  table: RequestTable;
  log: Logger;
  who: SocketIdentity;
  peerId: string;
  /** The participant's room, once it is set up (requests wait for it). */
  setup: Promise<Room>;
  emitToCall: EmitToCall;
}

/**
 * Listens for one connection's requests: every request must carry an ack
 * and is answered once. In order: 20 requests/s per connection, a known
 * name (a string the table holds; `__proto__` or a number is none), not
 * after leaving, 32 kB, the request's schema, the roles that may send it,
 * then its handler. A CallRefusal answers its code; anything else is
 * logged and answered `internal_error`.
 */
export function listenForRequests(socket: Socket, options: RequestListenerOptions): void {
  const { table, log, who, peerId, setup } = options;
  const bucket = new TokenBucket(20, 60);
  let refusedInARow = 0;
  // socket.io names an event by a string or a number, and calls this on a later tick: whatever it throws is caught by `guarded`.
  socket.onAny(guarded(log, (event: unknown) => `request ${loggableName(event)}`, (event: unknown, ...args: unknown[]) => {
    socket.data.lastSeen = Date.now();
    const ack = args[args.length - 1];
    if (typeof ack !== 'function') return; // requests without an ack are ignored
    const reply = ack as Reply;
    if (!bucket.take()) {
      reply(refusalReply('rate_limited', 'too many requests'));
      if (++refusedInARow > 200) socket.disconnect(true);
      return;
    }
    refusedInARow = 0;
    const route = typeof event === 'string' ? table.get(event) : undefined;
    if (!route) return reply(refusalReply('invalid_message', `unknown request ${loggableName(event)}`));
    if (socket.data.left) return reply(refusalReply('call_ended'));
    const payload = args.length > 1 ? args[0] : undefined;
    let size = 0;
    try {
      size = Buffer.byteLength(JSON.stringify(payload ?? null));
    } catch {
      size = Infinity;
    }
    if (size > MAX_PAYLOAD_BYTES) return reply(refusalReply('too_large', `payload over ${MAX_PAYLOAD_BYTES} bytes`));
    const { request } = route;
    const parsed = (request.schema as ZodType).safeParse(payload);
    if (!parsed.success) {
      return reply(refusalReply('invalid_message', parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.code}`).join('; ').slice(0, 300)));
    }
    const data = parsed.data as never;
    return setup
      .then((room) => {
        const roles = typeof request.roles === 'function' ? request.roles(data) : request.roles;
        if (!roles.includes(who.participant.role)) throw new CallRefusal('forbidden');
        return request.handle({ who, peerId, room, payload: data, emit: (e, d, except) => options.emitToCall(who.callId, e, d, except) });
      })
      .then((result) => reply({ ok: true, data: result ?? {} }))
      .catch((err: unknown) => {
        const { reply: answer, expected } = errorReply(err);
        if (!expected) log.error({ err, event }, 'signalling request failed');
        reply(answer);
      });
  }));
}
