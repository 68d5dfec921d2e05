import { randomUUID } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { Server, type Socket } from 'socket.io';
import type { ZodType } from 'zod';
import type { Room, RoomRegistry } from '../../media';
import { SYSTEM } from '../audit/actions';
import { curationHandlers, type CurationRequest } from '../curation/live';
import type { RecordingRequest } from '../recordings/live';
import { CurationService } from '../curation/service';
import { RecordingRefusal, type RecordingLive } from '../recordings/live';
import type { Logger } from '../logger';
import type { TrustProxy } from '../ops/addresses';
import type { TurnIssuer } from '../ops/turn';
import { callEvents } from './events';
import { originGate } from './origin';
import { HEARTBEAT_INTERVAL_MS, isRequestType, MAX_PAYLOAD_BYTES, requests, type RequestType, type ServerEvents } from './protocol';
import { TokenBucket } from './rate-limit';
import { guarded, INTERNAL_ERROR, loggableName, refusalCode } from './safe-handler';
import { CallService } from './service';
import { identify, SignallingRefusal, type SocketIdentity } from './signalling-auth';
import { mediaHandlers, type MediaHandlers } from './media-requests';

export interface HubOptions {
  knex: Knex;
  logger: Logger;
  rooms: RoomRegistry;
  /** The app's express-session middleware, so clerks are known by their session cookie. */
  session: RequestHandler;
  graceMs: number;
  absoluteHours: number;
  /** A connection silent this long (no heartbeat, no request) is dropped; default 3 heartbeat intervals. */
  silenceMs?: number;
  /** Recording in calls (consent, recorder); without it, recording requests answer `recording_unavailable`. */
  recordings?: RecordingLive;
  /** Which proxies' X-Forwarded-For names the client (VCLERK_TRUST_PROXY); without it, the socket's own address. */
  trustProxy?: TrustProxy;
  /** TURN credentials for participants; without it, no TURN servers are offered. */
  turn?: TurnIssuer | null;
  /** The appliance's public base URL (VCLERK_PUBLIC_URL): a browser connection from its origin is the appliance's own. */
  publicUrl?: string;
}

interface PeerEntry {
  peerId: string;
  socket: Socket;
  grace?: NodeJS.Timeout;
}

type Handler = (who: SocketIdentity, peerId: string, room: Room, payload: never) => Promise<unknown>;
type Reply = (response: unknown) => void;

/**
 * The signalling server (socket.io at /signal): authenticates each
 * connection, validates every request against the protocol schema (size,
 * types), rate-limits each connection, and drives the call's media room.
 * A participant can only touch its own transports, producers and
 * consumers. Lost connections get a grace period to come back before their
 * media is closed; silent ones (no heartbeat) are disconnected; a customer
 * whose link is revoked or whose call ended is disconnected at once. Every
 * listener it installs is `guarded`: no request, however malformed, and no
 * failing database call can throw out of it and end the process.
 */
export class CallHub {
  private io: Server | undefined;
  readonly calls: CallService;
  private readonly peers = new Map<string, PeerEntry>();
  private readonly sockets = new Map<string, Set<Socket>>();
  private readonly wired = new WeakSet<Room>();
  private heartbeat: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly onLinkRevoked = (callId: string) => {
    this.removeCustomers(callId, 'link_revoked').catch((err) => this.options.logger.error({ err, callId }, 'could not remove the customer of a revoked link'));
  };

  constructor(private readonly options: HubOptions) {
    this.calls = new CallService(options.knex);
    this.curation = curationHandlers(new CurationService(options.knex), (callId, event, data) => this.emitToCall(callId, event, data));
    options.recordings?.attach((callId, event, data) => this.emitToCall(callId, event, data));
    this.handlers = mediaHandlers({
      calls: this.calls,
      logger: this.options.logger,
      recordings: this.options.recordings,
      turn: this.options.turn,
      emitToCall: (callId, event, data, exceptPeerId) => this.emitToCall(callId, event, data, exceptPeerId),
      leave: async (who, room) => {
        const key = `${who.callId}:${who.identity}`;
        const entry = this.peers.get(key);
        if (entry) entry.socket.data.left = true;
        await this.removeParticipant(who, key, room, 'left');
        setImmediate(() => entry?.socket.disconnect(true));
      },
    });
  }

  get rooms(): RoomRegistry {
    return this.options.rooms;
  }

  attach(server: HttpServer): void {
    const io = new Server(server, {
      path: '/signal',
      serveClient: false,
      maxHttpBufferSize: 64 * 1024,
      pingInterval: 10_000,
      pingTimeout: 10_000,
      cors: { origin: false },
    });
    const gate = originGate({ knex: this.options.knex, logger: this.options.logger, session: this.options.session, trustProxy: this.options.trustProxy, publicUrl: this.options.publicUrl });
    io.engine.use(gate.session);
    io.use(gate.check);
    io.use((socket, next) => {
      identify(socket, { knex: this.options.knex, calls: this.calls, absoluteHours: this.options.absoluteHours, trustProxy: this.options.trustProxy })
        .then((who) => {
          socket.data.who = who;
          next();
        })
        .catch((err) => {
          if (!(err instanceof SignallingRefusal)) this.options.logger.error({ err }, 'signalling authentication failed');
          next(new Error(err instanceof SignallingRefusal ? err.code : 'internal_error'));
        });
    });
    io.on(
      'connection',
      guarded(this.options.logger, 'connection', (socket: Socket) =>
        this.onConnection(socket).catch((err) => {
          this.options.logger.error({ err }, 'signalling connection failed');
          socket.disconnect(true);
        }),
      ),
    );
    const silenceMs = this.options.silenceMs ?? 3 * HEARTBEAT_INTERVAL_MS;
    this.heartbeat = setInterval(
      guarded(this.options.logger, 'heartbeat sweep', () => {
        this.sweepSilent(silenceMs);
        return this.sweepClosedCalls();
      }),
      Math.min(HEARTBEAT_INTERVAL_MS, silenceMs / 2),
    );
    this.heartbeat.unref();
    callEvents.on('linkRevoked', this.onLinkRevoked);
    this.io = io;
  }

  private async onConnection(socket: Socket): Promise<void> {
    const who = socket.data.who as SocketIdentity;
    const log = this.options.logger.child({ callId: who.callId, role: who.participant.role });
    const key = `${who.callId}:${who.identity}`;
    const peerId = randomUUID();
    socket.data.peerId = peerId;
    socket.data.lastSeen = Date.now();
    let members = this.sockets.get(who.callId);
    if (!members) this.sockets.set(who.callId, (members = new Set()));
    members.add(socket);

    // Listen at once: a client may send its first request before the room is ready.
    const setup = (async () => {
      const room = await this.options.rooms.get(who.callId);
      this.wire(room);
      // The same person connecting again (reload, reconnect, second tab) replaces their earlier peer.
      const earlier = this.peers.get(key);
      if (earlier) {
        clearTimeout(earlier.grace);
        room.removePeer(earlier.peerId);
        if (earlier.socket.connected) {
          earlier.socket.data.left = true;
          earlier.socket.disconnect(true);
        }
      }
      room.addPeer(peerId, who.participant.role, who.participant.label);
      this.peers.set(key, { peerId, socket });
      log.info({ peerId, ip: who.ip }, 'participant connected');
      return room;
    })();
    setup.catch((err) => {
      log.error({ err }, 'could not set up the participant');
      socket.disconnect(true);
    });

    const bucket = new TokenBucket(20, 60);
    let refusedInARow = 0;
    const refuse = (reply: Reply, code: string, message = code) => reply({ ok: false, error: { code, message } });
    // socket.io names an event by a string or a number, and calls this on a later tick: whatever it throws is caught by `guarded`.
    socket.onAny(guarded(log, (event: unknown) => `request ${loggableName(event)}`, (event: unknown, ...args: unknown[]) => {
      socket.data.lastSeen = Date.now();
      const ack = args[args.length - 1];
      if (typeof ack !== 'function') return; // requests without an ack are ignored
      const reply = ack as Reply;
      if (!bucket.take()) {
        refuse(reply, 'rate_limited', 'too many requests');
        if (++refusedInARow > 200) socket.disconnect(true);
        return;
      }
      refusedInARow = 0;
      if (!isRequestType(event)) return refuse(reply, 'invalid_message', `unknown request ${loggableName(event)}`);
      if (socket.data.left) return refuse(reply, 'call_ended');
      const payload = args.length > 1 ? args[0] : undefined;
      let size = 0;
      try {
        size = Buffer.byteLength(JSON.stringify(payload ?? null));
      } catch {
        size = Infinity;
      }
      if (size > MAX_PAYLOAD_BYTES) {
        reply({ ok: false, error: { code: 'too_large', message: `payload over ${MAX_PAYLOAD_BYTES} bytes` } });
        return;
      }
      const parsed = (requests[event] as ZodType).safeParse(payload);
      if (!parsed.success) {
        return refuse(reply, 'invalid_message', parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.code}`).join('; ').slice(0, 300));
      }
      const handler = this.handlerFor(event);
      if (!handler) return refuse(reply, 'invalid_message', `unknown request ${loggableName(event)}`);
      return setup
        .then((room) => handler(who, peerId, room, parsed.data as never))
        .then((data) => reply({ ok: true, data: data ?? {} }))
        .catch((err) => {
          const code = refusalCode(err);
          if (code) return refuse(reply, code);
          log.error({ err, event }, 'signalling request failed');
          reply(INTERNAL_ERROR);
        });
    }));

    socket.on('disconnect', guarded(log, 'disconnect', (reason: string) => {
      members!.delete(socket);
      if (members!.size === 0 && this.sockets.get(who.callId) === members) this.sockets.delete(who.callId);
      return setup.then((room) => {
        const entry = this.peers.get(key);
        if (!entry || entry.socket !== socket || socket.data.left) return;
        log.info({ peerId, reason }, 'participant disconnected; waiting for a reconnect');
        entry.grace = setTimeout(
          guarded(log, 'grace period', () => {
            if (this.peers.get(key) !== entry) return;
            return this.removeParticipant(who, key, room, 'connection_lost');
          }),
          this.options.graceMs,
        );
        entry.grace.unref();
      }, () => undefined);
    }));
  }

  /** The handler of a request type: an own property of the hub's, the recording or the curation table, never an inherited one. */
  private handlerFor(event: RequestType): Handler | undefined {
    if (event.startsWith('recording.')) return this.recordingHandler(event as RecordingRequest) as Handler;
    if (event.includes('.')) return Object.hasOwn(this.curation, event) ? (this.curationHandler(event as CurationRequest) as Handler) : undefined;
    return Object.hasOwn(this.handlers, event) ? (this.handlers[event as keyof typeof this.handlers] as Handler) : undefined;
  }

  private async removeParticipant(who: SocketIdentity, key: string, room: Room, reason: string): Promise<void> {
    const entry = this.peers.get(key);
    if (!entry) return;
    this.peers.delete(key);
    clearTimeout(entry.grace);
    room.removePeer(entry.peerId);
    this.emitToCall(who.callId, 'peerLeft', { peerId: entry.peerId }, entry.peerId);
    await this.calls.left(who.callId, who.participant, reason, who).catch((err) => this.options.logger.error({ err }, 'could not record leaving'));
    if (room.isEmpty) {
      await this.options.recordings?.callEnded(who.callId).catch((err) => this.options.logger.error({ err }, 'could not stop the recording'));
      room.close();
      const call = await this.calls.byId(who.callId);
      if (call?.status === 'active') await this.calls.end(who.callId, 'all_left', SYSTEM);
    }
  }

  /** Curation and chat: their own module; the hub only relays. */
  private readonly curation: ReturnType<typeof curationHandlers>;

  private readonly handlers: MediaHandlers;

  private recordingHandler(event: RecordingRequest) {
    const recordings = this.options.recordings;
    return async (who: SocketIdentity, _peerId: string, room: Room, payload: never) => {
      if (!recordings || !Object.hasOwn(recordings.handlers, event)) throw new RecordingRefusal('recording_unavailable');
      return (recordings.handlers[event] as (who: SocketIdentity, room: Room, payload: never) => Promise<unknown>)(who, room, payload);
    };
  }

  private curationHandler(event: CurationRequest) {
    const handle = this.curation[event] as (who: SocketIdentity, payload: never) => Promise<unknown>;
    return (who: SocketIdentity, _peerId: string, _room: Room, payload: never) => handle(who, payload);
  }

  /** Forwards room events to the call's other participants. */
  private wire(room: Room): void {
    if (this.wired.has(room)) return;
    this.wired.add(room);
    const callId = room.callId;
    const log = this.options.logger.child({ callId });
    room.on('newProducer', guarded(log, 'newProducer', (p) => this.emitToCall(callId, 'newProducer', p, p.peerId)));
    room.on('producerClosed', guarded(log, 'producerClosed', ({ producerId, peerId }) => this.emitToCall(callId, 'producerClosed', { producerId }, peerId)));
    room.on('producerPaused', guarded(log, 'producerPaused', ({ producerId, peerId }) => this.emitToCall(callId, 'producerPaused', { producerId }, peerId)));
    room.on('producerResumed', guarded(log, 'producerResumed', ({ producerId, peerId }) => this.emitToCall(callId, 'producerResumed', { producerId }, peerId)));
    room.on('reset', guarded(log, 'reset', () => this.emitToCall(callId, 'mediaReset', { reason: 'worker_died' })));
  }

  private emitToCall<E extends keyof ServerEvents>(callId: string, event: E, data: ServerEvents[E], exceptPeerId?: string): void {
    for (const socket of this.sockets.get(callId) ?? []) {
      if (socket.data.peerId !== exceptPeerId) socket.emit(event, data);
    }
  }

  private sweepSilent(silenceMs: number): void {
    const limit = Date.now() - silenceMs;
    for (const members of this.sockets.values()) {
      for (const socket of members) {
        if ((socket.data.lastSeen as number) < limit) {
          this.options.logger.info({ peerId: socket.data.peerId }, 'no heartbeat: disconnecting');
          socket.disconnect(true);
        }
      }
    }
  }

  /**
   * Checks, with one query, that the calls with connections are still open:
   * a call ended by anything that did not tell the hub (the expiry of a
   * waiting call, another process) ends for everyone in it, a link revoked
   * so ends its customer's session, within one sweep.
   */
  private async sweepClosedCalls(): Promise<void> {
    // One sweep at a time: on a slow database the next tick skips instead of stacking up.
    if (this.sweeping) return;
    const callIds = [...this.sockets].filter(([, members]) => members.size > 0).map(([id]) => id);
    if (callIds.length === 0) return;
    this.sweeping = true;
    try {
      const closed = await this.options.knex('calls').whereIn('id', callIds).where((q) => q.where({ status: 'ended' }).orWhereNotNull('link_revoked_at')).select('id', 'status', 'end_reason');
      for (const call of closed) {
        if (call.status === 'ended') await this.endCall(call.id, call.end_reason ?? 'ended');
        else await this.removeCustomers(call.id, 'link_revoked');
      }
    } finally {
      this.sweeping = false;
    }
  }

  /**
   * The call's customer goes at once (their link was revoked, or the call
   * ended): told with `callEnded`, disconnected, their media closed and
   * their leaving audited. The clerk stays; a revoked link lets no one in again.
   */
  async removeCustomers(callId: string, reason: 'link_revoked'): Promise<void> {
    for (const socket of [...(this.sockets.get(callId) ?? [])]) {
      if ((socket.data.who as SocketIdentity).participant.role !== 'customer') continue;
      socket.data.left = true;
      socket.emit('callEnded', { reason });
      socket.disconnect(true);
    }
    const key = `${callId}:customer`;
    const entry = this.peers.get(key);
    if (!entry) return;
    const who = entry.socket.data.who as SocketIdentity;
    const room = await this.options.rooms.find(callId);
    if (room) await this.removeParticipant(who, key, room, reason);
    else this.peers.delete(key);
  }

  /** Ends a call for everyone in it: they are told, disconnected, and the media room closes. */
  async endCall(callId: string, reason: string): Promise<void> {
    await this.options.recordings?.callEnded(callId).catch((err) => this.options.logger.error({ err, callId }, 'could not stop the recording'));
    for (const socket of [...(this.sockets.get(callId) ?? [])]) {
      socket.data.left = true;
      socket.emit('callEnded', { reason });
      socket.disconnect(true);
    }
    this.sockets.delete(callId);
    for (const [key, entry] of this.peers) {
      if (key.startsWith(`${callId}:`)) {
        clearTimeout(entry.grace);
        this.peers.delete(key);
      }
    }
    await this.options.rooms.close(callId);
  }

  /** Live media objects of a call (tests, status page). */
  async describeCall(callId: string): Promise<ReturnType<Room['describe']> | undefined> {
    const room = await this.options.rooms.find(callId);
    return room?.describe();
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    callEvents.off('linkRevoked', this.onLinkRevoked);
    for (const entry of this.peers.values()) clearTimeout(entry.grace);
    // Not io.close(): that would also close the HTTP server, whose drain the shutdown handles.
    this.io?.disconnectSockets(true);
    this.io?.engine.close();
    await this.options.recordings?.close();
    await this.options.rooms.closeAll();
  }
}
