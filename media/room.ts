import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { plainRtpCapabilities } from './codecs';
import { MediaError } from './errors';
import { PEER_LIMITS, WindowLimit } from './limits';
import type { MediaLogger } from './log';
import { consumesProducer, holdsSource, nothingPending, summary, type Peer, type Pending, type PeerRole, type ProducerSummary, type Source } from './peer';
import type { WorkerPool } from './worker-pool';

export type { PeerRole, ProducerSummary, Source } from './peer';

export interface RoomEvents {
  newProducer: [ProducerSummary];
  producerClosed: [{ producerId: string; peerId: string }];
  producerPaused: [{ producerId: string; peerId: string }];
  producerResumed: [{ producerId: string; peerId: string }];
  /** The router was lost (its worker died) and replaced: every peer must join again. */
  reset: [];
  closed: [];
}

/**
 * The media of one call: a router on one worker and the participants'
 * transports, producers and consumers. Every operation names the peer
 * that asks, and only touches that peer's own objects (consuming is
 * limited to producers in this room). A peer holds at most what a browser
 * needs (PEER_LIMITS: a few transports, one producer per source, one
 * consumer per producer), and joining again starts it over. Closing a peer
 * closes everything beneath it; closing the room closes the router.
 */
export class Room extends EventEmitter<RoomEvents> {
  private readonly peers = new Map<string, Peer>();
  /** Transports sending media out of the router as plain RTP (the recorder's). */
  private readonly plain = new Set<types.PlainTransport>();
  private router!: types.Router;
  private webRtcServer!: types.WebRtcServer;
  private closed = false;
  private resetting: Promise<void> | undefined;
  /** Transports created per role (one clerk, one customer per call), across reconnects. */
  private readonly creations = new Map<PeerRole, WindowLimit>();

  private constructor(readonly callId: string, private readonly pool: WorkerPool, private readonly logger: MediaLogger) {
    super();
  }

  static async create(callId: string, pool: WorkerPool, logger: MediaLogger): Promise<Room> {
    const room = new Room(callId, pool, logger.child({ callId }));
    await room.attachRouter();
    return room;
  }

  private async attachRouter(): Promise<void> {
    const { router, webRtcServer } = await this.pool.createRouter({ callId: this.callId });
    this.router = router;
    this.webRtcServer = webRtcServer;
  }

  get routerId(): string {
    return this.router.id;
  }

  /** True when the router is gone (its worker died) and the room awaits a reset. */
  get routerClosed(): boolean {
    return this.router.closed && !this.closed;
  }

  /** Moves the call to a new router after its worker died; peers stay, their media objects are gone. */
  async reset(): Promise<void> {
    this.resetting ??= (async () => {
      for (const peer of this.peers.values()) this.clearMedia(peer);
      await this.attachRouter();
      // The call ended while the new router was being made: close it too, and tell nobody to join again.
      if (this.closed) {
        this.router.close();
        return;
      }
      this.logger.warn({ routerId: this.router.id }, 'call moved to a new media router');
      this.emit('reset');
    })().finally(() => {
      this.resetting = undefined;
    });
    return this.resetting;
  }

  private async ready(): Promise<void> {
    if (this.closed) throw new MediaError('media_unavailable');
    if (this.resetting) await this.resetting;
    if (this.router.closed) throw new MediaError('media_unavailable');
  }

  /** The router's RTP capabilities (after a reset in progress, the new router's). */
  async capabilities(): Promise<types.RtpCapabilities> {
    await this.ready();
    return this.router.rtpCapabilities;
  }

  hasRole(role: PeerRole): boolean {
    return [...this.peers.values()].some((p) => p.role === role && p.rtpCapabilities !== undefined);
  }

  addPeer(id: string, role: PeerRole, label: string): void {
    this.removePeer(id);
    this.peers.set(id, { id, role, label, transports: new Map(), ingest: new Map(), producers: new Map(), consumers: new Map(), pending: nothingPending() });
  }

  hasPeer(id: string): boolean {
    return this.peers.has(id);
  }

  peerList(): { peerId: string; role: PeerRole; label: string }[] {
    return [...this.peers.values()].map((p) => ({ peerId: p.id, role: p.role, label: p.label }));
  }

  /** Closes a peer's transports (and so its producers and consumers) and forgets it. */
  removePeer(id: string): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.clearMedia(peer);
    this.peers.delete(id);
  }

  private clearMedia(peer: Peer): void {
    // The producers first, while they are listed: closing a transport closes its producers and unlists them unannounced.
    for (const producer of [...peer.producers.values()]) {
      producer.close();
      this.emit('producerClosed', { producerId: producer.id, peerId: peer.id });
    }
    peer.producers.clear();
    for (const transport of peer.transports.values()) transport.close();
    peer.transports.clear();
    for (const transport of peer.ingest.values()) transport.close();
    peer.ingest.clear();
    peer.consumers.clear();
    peer.pending = nothingPending();
    peer.rtpCapabilities = undefined;
  }

  /** Whether what was started under `pending` may still be handed to the peer (not removed, media not cleared, room open). */
  private current(peer: Peer, pending: Pending): boolean {
    return !this.closed && this.peers.get(peer.id) === peer && peer.pending === pending;
  }

  private peer(id: string): Peer {
    const peer = this.peers.get(id);
    if (!peer) throw new MediaError('not_joined');
    return peer;
  }

  /**
   * The peer's device capabilities; answers the other peers' producers. A
   * peer that joined before starts over (a client joins again only after
   * dropping its transports): whatever it had is closed first.
   */
  async join(peerId: string, rtpCapabilities: types.RtpCapabilities): Promise<ProducerSummary[]> {
    await this.ready();
    const peer = this.peer(peerId);
    if (peer.rtpCapabilities !== undefined || peer.transports.size > 0) this.clearMedia(peer);
    peer.rtpCapabilities = rtpCapabilities;
    return this.producersExcept(peerId);
  }

  private producersExcept(peerId: string): ProducerSummary[] {
    return this.listProducers().filter((p) => p.peerId !== peerId);
  }

  /** Every open producer in the room, peer by peer in the order they joined, each peer's in the order produced. */
  listProducers(): ProducerSummary[] {
    const list: ProducerSummary[] = [];
    for (const peer of this.peers.values()) {
      for (const producer of peer.producers.values()) if (!producer.closed) list.push(summary(peer, producer));
    }
    return list;
  }

  async createTransport(peerId: string, direction: 'send' | 'recv'): Promise<types.WebRtcTransport> {
    await this.ready();
    const peer = this.peer(peerId);
    const pending = peer.pending;
    if (peer.transports.size + pending.transports >= PEER_LIMITS.transports) throw new MediaError('limit_reached');
    let limit = this.creations.get(peer.role);
    if (!limit) this.creations.set(peer.role, (limit = new WindowLimit(PEER_LIMITS.transportsPerMinute, 60_000)));
    if (!limit.take()) throw new MediaError('rate_limited');
    pending.transports++;
    let transport: types.WebRtcTransport;
    try {
      transport = await this.router.createWebRtcTransport({
        webRtcServer: this.webRtcServer,
        enableUdp: true,
        enableTcp: true,
        preferUdp: true,
        initialAvailableOutgoingBitrate: 1_000_000,
        appData: { peerId, direction },
      });
    } finally {
      pending.transports--;
    }
    if (!this.current(peer, pending)) {
      transport.close();
      throw new MediaError('not_joined');
    }
    peer.transports.set(transport.id, transport);
    // mediasoup 3.12 has no ICE consent timeout: a DTLS close or failure ends the transport here.
    transport.on('dtlsstatechange', (state) => {
      if (state === 'closed' || state === 'failed') {
        this.logger.info({ peerId, transportId: transport.id, state }, 'DTLS ended: closing the transport');
        this.closeTransport(peer, transport.id);
      }
    });
    transport.observer.once('close', () => peer.transports.delete(transport.id));
    return transport;
  }

  /**
   * A transport on which a local process (not a browser) sends this peer's
   * RTP, from whichever port it uses (comedia; RTCP on its own port). Its
   * producers are made with `produce` like a browser's. For tests and
   * benchmarks: an ffmpeg test pattern standing in for a camera.
   */
  async createIngestTransport(peerId: string): Promise<types.PlainTransport> {
    await this.ready();
    const peer = this.peer(peerId);
    const transport = await this.router.createPlainTransport({ listenIp: { ip: '127.0.0.1' }, rtcpMux: false, comedia: true, appData: { peerId, direction: 'send' } });
    peer.ingest.set(transport.id, transport);
    transport.observer.once('close', () => peer.ingest.delete(transport.id));
    return transport;
  }

  /**
   * Sends one producer of this room out of the router as plain RTP to a
   * local receiver (the recorder's ffmpeg): a PlainTransport connected to
   * `target` (RTP on `port`, RTCP on `rtcpPort`) and a consumer on it,
   * created paused. The consumer offers only what a plain RTP receiver
   * understands: no RTX, no bandwidth probing (transport-cc, REMB), no
   * header extensions. Closing the transport closes the consumer; both
   * close with the room or its router.
   */
  async createPlainConsumer(producerId: string, target: { ip: string; port: number; rtcpPort: number }): Promise<{ transport: types.PlainTransport; consumer: types.Consumer }> {
    await this.ready();
    if (!this.listProducers().some((p) => p.producerId === producerId)) throw new MediaError('not_found');
    const rtpCapabilities = plainRtpCapabilities(this.router.rtpCapabilities);
    if (!this.router.canConsume({ producerId, rtpCapabilities })) throw new MediaError('cannot_consume');
    const transport = await this.router.createPlainTransport({ listenIp: { ip: '127.0.0.1' }, rtcpMux: false, comedia: false, appData: { producerId, purpose: 'plain' } });
    this.plain.add(transport);
    transport.observer.once('close', () => this.plain.delete(transport));
    try {
      await transport.connect({ ip: target.ip, port: target.port, rtcpPort: target.rtcpPort });
      const consumer = await transport.consume({ producerId, rtpCapabilities, paused: true, appData: { purpose: 'plain' } });
      return { transport, consumer };
    } catch (err) {
      transport.close();
      throw err;
    }
  }

  private closeTransport(peer: Peer, transportId: string): void {
    const transport = peer.transports.get(transportId);
    if (!transport) return;
    for (const [id, producer] of peer.producers) {
      if ((producer.appData as { transportId?: string }).transportId === transportId) {
        peer.producers.delete(id);
        this.emit('producerClosed', { producerId: id, peerId: peer.id });
      }
    }
    transport.close();
  }

  /** One of the peer's own transports (of the given direction, when named). */
  private transport(peer: Peer, transportId: string, direction?: 'send' | 'recv'): types.WebRtcTransport {
    const transport = peer.transports.get(transportId);
    if (!transport) throw new MediaError('not_found');
    if (direction && (transport.appData as { direction?: string }).direction !== direction) throw new MediaError('forbidden');
    return transport;
  }

  async connectTransport(peerId: string, transportId: string, dtlsParameters: types.DtlsParameters): Promise<void> {
    await this.ready();
    const transport = this.transport(this.peer(peerId), transportId);
    await clientParameters(() => transport.connect({ dtlsParameters }));
  }

  async restartIce(peerId: string, transportId: string): Promise<types.IceParameters> {
    await this.ready();
    return this.transport(this.peer(peerId), transportId).restartIce();
  }

  async produce(peerId: string, transportId: string, kind: types.MediaKind, rtpParameters: types.RtpParameters, source: Source): Promise<types.Producer> {
    await this.ready();
    const peer = this.peer(peerId);
    if ((source === 'microphone') !== (kind === 'audio')) throw new MediaError('forbidden');
    const transport = peer.ingest.get(transportId) ?? this.transport(peer, transportId, 'send');
    const pending = peer.pending;
    if (holdsSource(peer, source) || pending.sources.has(source)) throw new MediaError('limit_reached');
    pending.sources.add(source);
    let producer: types.Producer;
    try {
      producer = await clientParameters(() => transport.produce({ kind, rtpParameters, appData: { peerId, source, transportId } }));
    } finally {
      pending.sources.delete(source);
    }
    if (!this.current(peer, pending) || transport.closed) {
      producer.close();
      throw new MediaError('not_joined');
    }
    peer.producers.set(producer.id, producer);
    producer.observer.once('close', () => peer.producers.delete(producer.id));
    this.emit('newProducer', summary(peer, producer));
    return producer;
  }

  private producer(peer: Peer, producerId: string): types.Producer {
    const producer = peer.producers.get(producerId);
    if (!producer) throw new MediaError('not_found');
    return producer;
  }

  async pauseProducer(peerId: string, producerId: string): Promise<void> {
    await this.ready();
    const peer = this.peer(peerId);
    await this.producer(peer, producerId).pause();
    this.emit('producerPaused', { producerId, peerId });
  }

  async resumeProducer(peerId: string, producerId: string): Promise<void> {
    await this.ready();
    const peer = this.peer(peerId);
    await this.producer(peer, producerId).resume();
    this.emit('producerResumed', { producerId, peerId });
  }

  async closeProducer(peerId: string, producerId: string): Promise<void> {
    await this.ready();
    const peer = this.peer(peerId);
    this.producer(peer, producerId).close();
    peer.producers.delete(producerId);
    this.emit('producerClosed', { producerId, peerId });
  }

  /** Consumes another participant's producer in this room, paused until resumeConsumer. */
  async consume(peerId: string, transportId: string, producerId: string): Promise<types.Consumer> {
    await this.ready();
    const peer = this.peer(peerId);
    if (!peer.rtpCapabilities) throw new MediaError('not_joined');
    const transport = this.transport(peer, transportId, 'recv');
    const owner = [...this.peers.values()].find((p) => p.producers.has(producerId));
    if (!owner || owner.id === peerId) throw new MediaError('not_found');
    const pending = peer.pending;
    if (consumesProducer(peer, producerId) || pending.consumes.has(producerId)) throw new MediaError('limit_reached');
    if (!this.canConsume(producerId, peer.rtpCapabilities)) throw new MediaError('cannot_consume');
    pending.consumes.add(producerId);
    let consumer: types.Consumer;
    try {
      consumer = await transport.consume({ producerId, rtpCapabilities: peer.rtpCapabilities, paused: true, appData: { peerId } });
    } finally {
      pending.consumes.delete(producerId);
    }
    if (!this.current(peer, pending) || transport.closed) {
      consumer.close();
      throw new MediaError('not_joined');
    }
    peer.consumers.set(consumer.id, consumer);
    consumer.observer.once('close', () => peer.consumers.delete(consumer.id));
    return consumer;
  }

  /** mediasoup's check, where capabilities it cannot read (a client's nonsense) mean no. */
  private canConsume(producerId: string, rtpCapabilities: types.RtpCapabilities): boolean {
    try {
      return this.router.canConsume({ producerId, rtpCapabilities });
    } catch {
      return false;
    }
  }

  async resumeConsumer(peerId: string, consumerId: string): Promise<void> {
    await this.ready();
    const consumer = this.peer(peerId).consumers.get(consumerId);
    if (!consumer) throw new MediaError('not_found');
    await consumer.resume();
    await consumer.requestKeyFrame().catch(() => undefined);
  }

  /** Counts of live media objects, per peer (tests and status pages). */
  describe(): { routerId: string; plainTransports: number; peers: { peerId: string; role: PeerRole; transports: number; producers: number; consumers: number }[] } {
    return {
      routerId: this.router.id,
      plainTransports: [...this.plain].filter((t) => !t.closed).length,
      peers: [...this.peers.values()].map((p) => ({
        peerId: p.id,
        role: p.role,
        transports: [...p.transports.values(), ...p.ingest.values()].filter((t) => !t.closed).length,
        producers: [...p.producers.values()].filter((x) => !x.closed).length,
        consumers: [...p.consumers.values()].filter((x) => !x.closed).length,
      })),
    };
  }

  /** How many transports the router itself holds, as mediasoup's worker reports them (the recorder's and leaked ones included). */
  async routerTransportCount(): Promise<number> {
    return (await this.router.dump()).transportIds.length;
  }

  get isEmpty(): boolean {
    return this.peers.size === 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    this.router.close();
    this.emit('closed');
  }
}

/**
 * Runs a mediasoup call on parameters a participant sent. mediasoup checks
 * them (in Node and in the worker) and throws a TypeError for what it cannot
 * read: that is the participant's mistake, answered `invalid_parameters`,
 * not a failure of the appliance.
 */
async function clientParameters<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof TypeError) throw new MediaError('invalid_parameters', { cause: err });
    throw err;
  }
}
