import type { Socket } from 'socket.io';
import type { ZodType } from 'zod';
import type { Room } from '../../media';
import type { Logger } from '../core/logger';
import type { CallModule, CallRequest, EmitToCall } from './module';
import { CallRefusal, errorReply, refusalReply } from './refusal';
import { TokenBucket } from './rate-limit';
import { FLOODING_MS, type RequestGate } from './request-gate';
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

/** Why a connection's request was refused for its volume (audited in aggregate by the hub), or why it was cut off. */
export type FloodRefusal = 'rate_limited' | 'too_large' | 'cut_off';

/**
 * A connection's volume limits: `rate` requests a second, bursts of `burst`
 * (messages without an ack count too); of these, the valid requests of the
 * feature modules (chat, curation, notes, recording: each a database
 * transaction) `moduleRate` a second, bursts of `moduleBurst`, at most
 * `moduleInFlight` at once (further ones wait their turn), and then through
 * the hub's RequestGate, so that valid chat from many connections cannot
 * queue up the database pool for everyone else. Refusals for volume beyond `strikeRate` a second (bursts
 * of `strikes`) cut the connection off.
 */
export const REQUEST_LIMITS = { rate: 20, burst: 60, moduleRate: 5, moduleBurst: 30, moduleInFlight: 1, strikeRate: 5, strikes: 120 } as const;

export interface RequestListenerOptions {
  table: RequestTable;
  log: Logger;
  who: SocketIdentity;
  peerId: string;
  /** The participant's room, once it is set up (requests wait for it). */
  setup: Promise<Room>;
  emitToCall: EmitToCall;
  /** The hub's gate for the feature modules' requests (shared by all its connections). */
  gate: RequestGate;
  /** Hears each refusal for volume and the cut-off (the hub audits them in aggregate). */
  onFlood?: (reason: FloodRefusal) => void;
}

/**
 * Listens for one connection's requests: every request must carry an ack
 * and is answered once. In order: the connection's volume limits
 * (REQUEST_LIMITS: a flood is answered `rate_limited`, and a connection that
 * keeps flooding is disconnected), a known name (a string the table holds;
 * `__proto__` or a number is none), not after leaving, 32 kB, the request's
 * schema, the roles that may send it, then its handler. A CallRefusal
 * answers its code; anything else is logged and answered `internal_error`.
 */
export function listenForRequests(socket: Socket, options: RequestListenerOptions): void {
  const { table, log, who, peerId, setup } = options;
  const bucket = new TokenBucket(REQUEST_LIMITS.rate, REQUEST_LIMITS.burst);
  const moduleBucket = new TokenBucket(REQUEST_LIMITS.moduleRate, REQUEST_LIMITS.moduleBurst);
  const strikes = new TokenBucket(REQUEST_LIMITS.strikeRate, REQUEST_LIMITS.strikes);
  const moduleSlots = new Slots(REQUEST_LIMITS.moduleInFlight);
  let cutOff = false;
  let refusedAt = -Infinity;
  const refuse = (reason: FloodRefusal, reply: Reply | undefined, message: string) => {
    refusedAt = Date.now();
    options.onFlood?.(reason);
    reply?.(refusalReply(reason, message));
    if (reason === 'too_large' || cutOff || strikes.take()) return;
    cutOff = true;
    options.onFlood?.('cut_off');
    log.warn({ peerId, ip: who.ip }, 'signalling flood: connection cut off');
    socket.disconnect(true);
  };
  // socket.io names an event by a string or a number, and calls this on a later tick: whatever it throws is caught by `guarded`.
  socket.onAny(guarded(log, (event: unknown) => `request ${loggableName(event)}`, (event: unknown, ...args: unknown[]) => {
    if (cutOff) return;
    socket.data.lastSeen = Date.now();
    const ack = args[args.length - 1];
    const reply = typeof ack === 'function' ? (ack as Reply) : undefined;
    // Messages without an ack are ignored, but count against the rate.
    if (!bucket.take()) return refuse('rate_limited', reply, 'too many requests');
    if (!reply) return;
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
    if (size > MAX_PAYLOAD_BYTES) return refuse('too_large', reply, `payload over ${MAX_PAYLOAD_BYTES} bytes`);
    const { request } = route;
    const parsed = (request.schema as ZodType).safeParse(payload);
    if (!parsed.success) {
      return reply(refusalReply('invalid_message', parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.code}`).join('; ').slice(0, 300)));
    }
    const isModule = route.module !== 'media';
    if (isModule && !moduleBucket.take()) return refuse('rate_limited', reply, 'too many requests');
    const data = parsed.data as never;
    const releases: (() => void)[] = [];
    return setup
      .then(async (room) => {
        if (isModule) {
          releases.push(await moduleSlots.acquire());
          releases.push(await options.gate.enter(who.callId, Date.now() - refusedAt < FLOODING_MS));
        }
        const roles = typeof request.roles === 'function' ? request.roles(data) : request.roles;
        if (!roles.includes(who.participant.role)) throw new CallRefusal('forbidden');
        return request.handle({ who, peerId, room, payload: data, emit: (e, d, except) => options.emitToCall(who.callId, e, d, except) });
      })
      .then((result) => reply({ ok: true, data: result ?? {} }))
      .catch((err: unknown) => {
        const { reply: answer, expected } = errorReply(err);
        if (!expected) log.error({ err, event }, 'signalling request failed');
        reply(answer);
      })
      .finally(() => {
        for (const release of releases.reverse()) release();
      });
  }));
}

/** At most `size` holders at once; the others wait in order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
