import { randomUUID } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { Server, type Socket } from 'socket.io';
import type { ZodType } from 'zod';
import { MediaError, type Room, type RoomRegistry } from '../../media';
import { SYSTEM } from '../audit/actions';
import { curationHandlers, type CurationRequest } from '../curation/live';
import type { RecordingRequest } from '../recordings/live';
import { CurationError, CurationService } from '../curation/service';
import { RecordingRefusal, type RecordingLive } from '../recordings/live';
import type { Logger } from '../logger';
import type { TrustProxy } from '../ops/addresses';
import type { TurnIssuer } from '../ops/turn';
import { HEARTBEAT_INTERVAL_MS, MAX_PAYLOAD_BYTES, requests, type RequestType, type ResponseData, type ServerEvents } from './protocol';
import { TokenBucket } from './rate-limit';
import { CallService } from './service';
import { identify, SignallingRefusal, type SocketIdentity } from './signalling-auth';

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
}

interface PeerEntry {
  peerId: string;
  socket: Socket;
  grace?: NodeJS.Timeout;
}

type Handler = (who: SocketIdentity, peerId: string, room: Room, payload: never) => Promise<unknown>;

/**
 * The signalling server (socket.io at /signal): authenticates each
 * connection, validates every request against the protocol schema (size,
 * types), rate-limits each connection, and drives the call's media room.
 * A participant can only touch its own transports, producers and
 * consumers. Lost connections get a grace period to come back before their
 * media is closed; silent ones (no heartbeat) are disconnected.
 */
export class CallHub {
  private io: Server | undefined;
  readonly calls: CallService;
  private readonly peers = new Map<string, PeerEntry>();
  private readonly sockets = new Map<string, Set<Socket>>();
  private readonly wired = new WeakSet<Room>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly options: HubOptions) {
    this.calls = new CallService(options.knex);
    this.curation = curationHandlers(new CurationService(options.knex), (callId, event, data) => this.emitToCall(callId, event, data));
    options.recordings?.attach((callId, event, data) => this.emitToCall(callId, event, data));
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
    io.engine.use(this.options.session);
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
    io.on('connection', (socket) => {
      this.onConnection(socket).catch((err) => {
        this.options.logger.error({ err }, 'signalling connection failed');
        socket.disconnect(true);
      });
    });
    const silenceMs = this.options.silenceMs ?? 3 * HEARTBEAT_INTERVAL_MS;
    this.heartbeat = setInterval(() => this.sweepSilent(silenceMs), Math.min(HEARTBEAT_INTERVAL_MS, silenceMs / 2));
    this.heartbeat.unref();
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
    socket.onAny((event: string, ...args: unknown[]) => {
      socket.data.lastSeen = Date.now();
      const ack = args[args.length - 1];
      if (typeof ack !== 'function') return; // requests without an ack are ignored
      const reply = ack as (response: unknown) => void;
      if (!bucket.take()) {
        reply({ ok: false, error: { code: 'rate_limited', message: 'too many requests' } });
        if (++refusedInARow > 200) socket.disconnect(true);
        return;
      }
      refusedInARow = 0;
      if (!(event in requests)) {
        reply({ ok: false, error: { code: 'invalid_message', message: `unknown request ${event.slice(0, 40)}` } });
        return;
      }
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
      const parsed = (requests[event as RequestType] as ZodType).safeParse(payload);
      if (!parsed.success) {
        reply({ ok: false, error: { code: 'invalid_message', message: parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.code}`).join('; ').slice(0, 300) } });
        return;
      }
      const handler = (
        event.startsWith('recording.') ? this.recordingHandler(event as RecordingRequest)
        : event.includes('.') ? this.curationHandler(event as CurationRequest)
        : this.handlers[event as Exclude<RequestType, CurationRequest | RecordingRequest>]
      ) as Handler;
      setup
        .then((room) => handler(who, peerId, room, parsed.data as never))
        .then((data) => reply({ ok: true, data: data ?? {} }))
        .catch((err) => {
          if (err instanceof MediaError || err instanceof CurationError || err instanceof RecordingRefusal) return reply({ ok: false, error: { code: err.code, message: err.code } });
          log.error({ err, event }, 'signalling request failed');
          reply({ ok: false, error: { code: 'internal_error', message: 'internal error' } });
        });
    });

    socket.on('disconnect', (reason) => {
      members!.delete(socket);
      void setup.then((room) => {
        const entry = this.peers.get(key);
        if (!entry || entry.socket !== socket || socket.data.left) return;
        log.info({ peerId, reason }, 'participant disconnected; waiting for a reconnect');
        entry.grace = setTimeout(() => {
          if (this.peers.get(key) !== entry) return;
          void this.removeParticipant(who, key, room, 'connection_lost');
        }, this.options.graceMs);
        entry.grace.unref();
      }, () => undefined);
    });
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

  private readonly handlers: { [T in Exclude<RequestType, CurationRequest | RecordingRequest>]: (who: SocketIdentity, peerId: string, room: Room, payload: never) => Promise<ResponseData[T] | Record<string, never>> } = {
    getRouterRtpCapabilities: async (_who, _peerId, room) => ({ rtpCapabilities: await room.capabilities() }),
    join: async (who, peerId, room, payload: { rtpCapabilities: Record<string, unknown> }) => {
      if (!room.hasPeer(peerId)) throw new MediaError('not_joined');
      await this.options.recordings?.beforeJoin(who);
      const producers = await room.join(peerId, payload.rtpCapabilities as never);
      this.emitToCall(who.callId, 'peerJoined', { peerId, role: who.participant.role, label: who.participant.label }, peerId);
      const bothPresent = room.hasRole('clerk') && room.hasRole('customer');
      await this.calls.joined(who.callId, who.participant, bothPresent, who);
      this.options.recordings?.afterJoin(who, room).catch((err) => this.options.logger.error({ err, callId: who.callId }, 'recording after a join failed'));
      return {
        peerId,
        role: who.participant.role,
        producers,
        peers: room.peerList().filter((p) => p.peerId !== peerId),
        iceServers: this.options.turn?.iceServers() ?? [],
      };
    },
    getIceServers: async () => ({ iceServers: this.options.turn?.iceServers() ?? [] }),
    createTransport: async (_who, peerId, room, payload: { direction: 'send' | 'recv' }) => {
      const t = await room.createTransport(peerId, payload.direction);
      return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters };
    },
    connectTransport: async (_who, peerId, room, payload: { transportId: string; dtlsParameters: Record<string, unknown> }) => {
      await room.connectTransport(peerId, payload.transportId, payload.dtlsParameters as never);
      return {};
    },
    restartIce: async (_who, peerId, room, payload: { transportId: string }) => ({ iceParameters: await room.restartIce(peerId, payload.transportId) }),
    produce: async (_who, peerId, room, payload: { transportId: string; kind: 'audio' | 'video'; rtpParameters: Record<string, unknown>; source: 'microphone' | 'camera' | 'screen' }) => {
      const producer = await room.produce(peerId, payload.transportId, payload.kind, payload.rtpParameters as never, payload.source);
      return { producerId: producer.id };
    },
    pauseProducer: async (_who, peerId, room, payload: { producerId: string }) => {
      await room.pauseProducer(peerId, payload.producerId);
      return {};
    },
    resumeProducer: async (_who, peerId, room, payload: { producerId: string }) => {
      await room.resumeProducer(peerId, payload.producerId);
      return {};
    },
    closeProducer: async (_who, peerId, room, payload: { producerId: string }) => {
      await room.closeProducer(peerId, payload.producerId);
      return {};
    },
    consume: async (_who, peerId, room, payload: { transportId: string; producerId: string }) => {
      const consumer = await room.consume(peerId, payload.transportId, payload.producerId);
      return { consumerId: consumer.id, producerId: consumer.producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters };
    },
    resumeConsumer: async (_who, peerId, room, payload: { consumerId: string }) => {
      await room.resumeConsumer(peerId, payload.consumerId);
      return {};
    },
    heartbeat: async () => ({ serverTime: Date.now() }),
    leave: async (who, _peerId, room) => {
      const key = `${who.callId}:${who.identity}`;
      const entry = this.peers.get(key);
      if (entry) entry.socket.data.left = true;
      await this.removeParticipant(who, key, room, 'left');
      setImmediate(() => entry?.socket.disconnect(true));
      return {};
    },
  };

  private recordingHandler(event: RecordingRequest) {
    const recordings = this.options.recordings;
    return (who: SocketIdentity, _peerId: string, room: Room, payload: never) => {
      if (!recordings) throw new RecordingRefusal('recording_unavailable');
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
    room.on('newProducer', (p) => this.emitToCall(callId, 'newProducer', p, p.peerId));
    room.on('producerClosed', ({ producerId, peerId }) => this.emitToCall(callId, 'producerClosed', { producerId }, peerId));
    room.on('producerPaused', ({ producerId, peerId }) => this.emitToCall(callId, 'producerPaused', { producerId }, peerId));
    room.on('producerResumed', ({ producerId, peerId }) => this.emitToCall(callId, 'producerResumed', { producerId }, peerId));
    room.on('reset', () => this.emitToCall(callId, 'mediaReset', { reason: 'worker_died' }));
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
    for (const entry of this.peers.values()) clearTimeout(entry.grace);
    // Not io.close(): that would also close the HTTP server, whose drain the shutdown handles.
    this.io?.disconnectSockets(true);
    this.io?.engine.close();
    await this.options.recordings?.close();
    await this.options.rooms.closeAll();
  }
}
