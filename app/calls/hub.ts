import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { Server, type Socket } from 'socket.io';
import type { Room, RoomRegistry } from '../../media';
import { SYSTEM } from '../audit/actions';
import { refusalsFor } from '../audit/refusals';
import type { Logger } from '../core/logger';
import type { TrustProxy } from '../net/addresses';
import type { TurnIssuer } from './turn';
import { listenForRequests, requestTable, type FloodRefusal, type RequestTable } from './dispatch';
import { callEvents } from './events';
import { mediaModule } from './media-requests';
import type { CallModule, EmitToCall } from './module';
import { originGate } from './origin';
import type { ServerEvents } from './protocol';
import { refusalCodeOf } from './refusal';
import { gateSizeFor, RequestGate } from './request-gate';
import { guarded } from './safe-handler';
import { CallService } from './service';
import { closedCallsAmong } from './store';
import { HEARTBEAT_INTERVAL_MS } from './shared';
import { identify, type SocketIdentity } from './signalling-auth';

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
  /** The in-call features besides media (curation, chat, notes, recording: app/call-modules.ts); without them, only media requests. */
  modules?: readonly CallModule[];
  /** Which proxies' X-Forwarded-For names the client (VCLERK_TRUST_PROXY); without it, the socket's own address. */
  trustProxy?: TrustProxy;
  /** TURN credentials for participants; without it, no TURN servers are offered. */
  turn?: TurnIssuer | null;
  /** The appliance's public base URL (VCLERK_PUBLIC_URL): a browser connection from its origin is the appliance's own. */
  publicUrl?: string;
  /**
   * Several nodes on one database (app/nodes/placement.ts): which node holds
   * a call's media room. A connection to another node's call is refused with
   * `wrong_node` and that node's name, to connect again naming it
   * (`request`: the connection's first HTTP request). Without it, every
   * call's room is here.
   */
  placement?: { place(callId: string, request?: IncomingMessage): Promise<{ here: boolean; node: { name: string } }> };
}

interface PeerEntry {
  peerId: string;
  socket: Socket;
  grace?: NodeJS.Timeout;
}

/**
 * The signalling server (socket.io at /signal): authenticates each
 * connection, keeps one peer per participant in the call's media room, and
 * hands each request to the call module that serves it (dispatch.ts checks
 * size, schema, rate and the module's declared roles first). It knows no
 * feature: media is its built-in module, the others are handed to it.
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
  /** Stops listening for call events (callEvents: the node's notify bus, or this process). */
  private stopEvents: (() => void) | undefined;
  private readonly onLinkRevoked = (callId: string) => {
    this.removeCustomers(callId, 'link_revoked').catch((err) => this.options.logger.error({ err, callId }, 'could not remove the customer of a revoked link'));
  };

  /** Media (built in) and the modules handed over; every request's server in `table`. */
  private readonly modules: readonly CallModule[];
  private readonly table: RequestTable;
  /** The feature modules' requests of every connection: a fair share of the database pool (request-gate.ts). */
  readonly gate: RequestGate;
  private readonly emit: EmitToCall = (callId, event, data, exceptPeerId) => this.emitToCall(callId, event, data, exceptPeerId);

  constructor(private readonly options: HubOptions) {
    this.calls = new CallService(options.knex);
    const media = mediaModule({
      calls: this.calls,
      logger: options.logger,
      turn: options.turn,
      beforeJoin: async (who) => {
        for (const module of this.modules) await module.beforeJoin?.(who);
      },
      afterJoin: (who, room) => {
        for (const module of this.modules) {
          module.afterJoin?.(who, room).catch((err) => options.logger.error({ err, callId: who.callId, module: module.name }, 'a call module failed after a join'));
        }
      },
      leave: async (who, room) => {
        const key = `${who.callId}:${who.identity}`;
        const entry = this.peers.get(key);
        if (entry) entry.socket.data.left = true;
        await this.removeParticipant(who, key, room, 'left');
        setImmediate(() => entry?.socket.disconnect(true));
      },
    });
    this.modules = [media, ...(options.modules ?? [])];
    this.table = requestTable(this.modules);
    this.gate = new RequestGate(gateSizeFor(options.knex));
    for (const module of this.modules) module.start?.(this.emit);
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
        .then(async (who) => {
          const place = await this.options.placement?.place(who.callId, socket.request);
          if (place && !place.here) return next(Object.assign(new Error('wrong_node'), { data: { node: place.node.name } }));
          socket.data.who = who;
          next();
        })
        .catch((err) => {
          const code = refusalCodeOf(err);
          if (code === null) this.options.logger.error({ err }, 'signalling authentication failed');
          next(new Error(code ?? 'internal_error'));
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
    this.stopEvents = callEvents.on(this.options.knex, 'linkRevoked', this.onLinkRevoked);
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

    listenForRequests(socket, { table: this.table, log, who, peerId, setup, emitToCall: this.emit, gate: this.gate, onFlood: (reason) => this.auditFlood(who, reason) });

    socket.on('disconnect', guarded(log, 'disconnect', (reason: string) => {
      members!.delete(socket);
      if (members!.size === 0 && this.sockets.get(who.callId) === members) this.sockets.delete(who.callId);
      return setup.then((room) => {
        const entry = this.peers.get(key);
        if (!entry || entry.socket !== socket || socket.data.left) return;
        // The other side hears at once: a page that closed its own connection (Leave, the tab closed)
        // has left; any other loss (a crashed tab, a lost network, silence) may come back in the grace period.
        this.emitToCall(who.callId, reason === 'client namespace disconnect' ? 'peerLeft' : 'peerAway', { peerId }, peerId);
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

  /**
   * A participant's request refused for its volume, or their connection cut
   * off for flooding: a security signal of the call's organisation, counted
   * and written in aggregate (audit/refusals.ts: one row per participant and
   * reason a window), so a flood costs no database write of its own while
   * it lasts (the audit chain's lock would queue up the pool).
   */
  private auditFlood(who: SocketIdentity, reason: FloodRefusal): void {
    const { participant } = who;
    const actor = participant.role === 'clerk' ? { type: 'user' as const, id: participant.userId, label: participant.label, organisationId: participant.organisationId } : { type: 'guest' as const, label: participant.label };
    void refusalsFor(this.options.knex).note({
      organisationId: who.organisationId,
      actor,
      action: 'security.signalling_refused',
      target: { type: 'call', id: who.callId },
      ip: who.ip,
      userAgent: who.userAgent,
      ...(participant.role === 'customer' ? { customer: { callId: who.callId } } : {}),
      details: { kind: 'request', reason },
    }, { aggregateOnly: true });
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
      await this.callEnded(who.callId);
      room.close();
      const call = await this.calls.byId(who.callId);
      if (call?.status === 'active') await this.calls.end(who.callId, 'all_left', SYSTEM);
    }
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
      const closed = await closedCallsAmong(this.options.knex, callIds);
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
    await this.callEnded(callId);
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

  /** The call's media room closes: each module hears of it (a recording stops). */
  private async callEnded(callId: string): Promise<void> {
    for (const module of this.modules) {
      await module.callEnded?.(callId).catch((err) => this.options.logger.error({ err, callId, module: module.name }, 'a call module failed at the end of a call'));
    }
  }

  /** Live media objects of a call (tests, status page). */
  async describeCall(callId: string): Promise<ReturnType<Room['describe']> | undefined> {
    const room = await this.options.rooms.find(callId);
    return room?.describe();
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.stopEvents?.();
    for (const entry of this.peers.values()) clearTimeout(entry.grace);
    // Not io.close(): that would also close the HTTP server, whose drain the shutdown handles.
    this.io?.disconnectSockets(true);
    this.io?.engine.close();
    for (const module of this.modules) await module.close?.().catch((err) => this.options.logger.error({ err, module: module.name }, 'a call module failed to close'));
    await this.options.rooms.closeAll();
  }
}
