import { Device } from 'mediasoup-client';
import type { types } from 'mediasoup-client';
import type { IceServer, ProducerInfo } from '../../app/calls/protocol';
import { HEARTBEAT_INTERVAL_MS } from '../../app/calls/shared';
import { LocalMedia } from './local';
import { RemoteMedia, type ReceiveStats, type RemoteListener, type Source } from './remote';
import { errorCode, RequestError, type Signalling } from './signalling';
import { MediaStallWatch } from './stall';

export type { Source } from './remote';

/** How long an ICE restart may take before the session joins again from scratch. */
export const ICE_RECOVERY_MS = 10_000;

export type CallState = 'idle' | 'joining' | 'connected' | 'reconnecting' | 'left' | 'ended' | 'error';

/** connect_error messages that retrying cannot fix. */
const REFUSALS = new Set(['token_invalid', 'call_ended', 'call_not_found', 'unauthenticated', 'forbidden']);

type Json = Record<string, unknown>;

/** What the session tells the page. */
export interface SessionListener extends RemoteListener {
  state(state: CallState): void;
  /** Whether the other participant is in the call. */
  remotePresent(present: boolean, reason: 'joined' | 'left' | 'sync'): void;
  /** A connection problem (code) appeared, or went away (null). */
  problem(code: string | null): void;
  /** Our screen share stopped (the user ended it in the browser, or it failed). */
  screenShareEnded(): void;
  /** The session is over (left, ended, refused); local devices may be released. */
  finished(state: CallState): void;
  /** Runs before each join of the media room (e.g. to give the recording consent a policy requires first). */
  beforeJoin?(): Promise<void>;
}

/** A newer join started while this one was still running. */
class Superseded extends Error {}

const asJson = (value: object): Json => value as unknown as Json;

/**
 * One participant's media session: the mediasoup-client Device, a send and
 * a receive transport, our producers and the consumers of the other side.
 *
 * Joining runs getRouterRtpCapabilities → join → createTransport (recv,
 * send) → consume what is there → produce ours. Any loss of the media
 * state (socket reconnect, `mediaReset`, a transport that does not recover
 * after an ICE restart) joins again from scratch; a counter (`generation`)
 * makes the steps of an outdated join stop.
 */
export class CallSession {
  private current: CallState = 'idle';
  private ownPeerId: string | null = null;
  private sendTransport: types.Transport | null = null;
  private recvTransport: types.Transport | null = null;
  private readonly local: LocalMedia;
  private readonly remote: RemoteMedia;
  /** The other participants by peer id; `away` while their connection is lost (they may come back). */
  private readonly remotePeers = new Map<string, { role: string; away: boolean }>();
  /** Their media stopped arriving while it should (a crashed tab, a lost network). */
  private readonly stall: MediaStallWatch;
  /** Producers announced while a join is running; consumed when it is done. */
  private pendingProducers: ProducerInfo[] | null = null;
  private generation = 0;
  private joinedGeneration = -1;
  private everJoined = false;
  private wanted = false;
  private done = false;
  private heartbeatTimer: number | undefined;
  private retryTimer: number | undefined;
  private reconnectTimer: number | undefined;
  private readonly iceTimers = new Map<string, number>();
  private joinFailures = 0;
  private manualReconnects = 0;
  private connectFailures = 0;
  /** `wrong_node` refusals in a row (reset by a connection). */
  private nodeMoves = 0;
  private connectedAt = 0;

  constructor(private readonly signalling: Signalling, private readonly listener: SessionListener) {
    this.local = new LocalMedia(signalling, () => listener.screenShareEnded());
    this.remote = new RemoteMedia(signalling, listener);
    this.stall = new MediaStallWatch(() => this.remote.activity(), () => this.refreshState());
    this.wireSocket();
    this.wireServerEvents();
  }

  get state(): CallState {
    return this.current;
  }

  get peerId(): string | null {
    return this.ownPeerId;
  }

  /** The transports, for connection-quality statistics. */
  transports(): types.Transport[] {
    return [this.sendTransport, this.recvTransport].filter((t): t is types.Transport => t !== null && !t.closed);
  }

  /** Joins the call, sending the given tracks (either may be missing: the user then only watches or listens). */
  start(tracks: { audio: MediaStreamTrack | null; video: MediaStreamTrack | null }): void {
    if (this.wanted || this.done) return;
    this.wanted = true;
    this.local.setTracks(tracks);
    this.setState('joining');
    this.stall.start();
    if (this.signalling.connected) void this.rejoin();
    else this.signalling.connect();
  }

  /** Leaves the call for good (tells the server, then disconnects). */
  async leave(): Promise<void> {
    if (this.done) return;
    if (this.signalling.connected && this.joinedGeneration === this.generation) {
      await this.signalling.request('leave', {}, 2000).catch(() => undefined);
    }
    this.finish('left');
  }

  /** The page is going away: disconnect at once so the server need not wait for a timeout. */
  close(): void {
    if (!this.done) this.finish('left');
  }

  isMuted(source: 'microphone' | 'camera'): boolean {
    return this.local.isMuted(source);
  }

  /** Mutes or unmutes: paused here and on the server, so nothing is forwarded. */
  setMuted(source: 'microphone' | 'camera', muted: boolean): Promise<void> {
    return this.local.setMuted(source, muted);
  }

  /** Uses another camera or microphone (or starts sending one that was missing). */
  replaceTrack(source: 'microphone' | 'camera', track: MediaStreamTrack): Promise<void> {
    return this.local.replaceTrack(source, track);
  }

  startScreenShare(track: MediaStreamTrack): Promise<void> {
    return this.local.startScreenShare(track);
  }

  stopScreenShare(notify = true): Promise<void> {
    return this.local.stopScreenShare(notify);
  }

  isSharingScreen(): boolean {
    return this.local.isSharingScreen();
  }

  /** Receive statistics of the current consumers (the test hook). */
  stats(): Promise<ReceiveStats> {
    return this.remote.stats();
  }

  // ---- state ---------------------------------------------------------------

  private setState(state: CallState): void {
    if (this.current === state) return;
    this.current = state;
    this.listener.state(state);
  }

  /**
   * connected when joined, the socket is up, no transport is recovering and
   * the other side is not lost (its connection dropped, or its media stopped
   * arriving); else reconnecting.
   */
  private refreshState(): void {
    if (this.done || !this.wanted) return;
    const healthy = this.signalling.connected && this.joinedGeneration === this.generation && this.iceTimers.size === 0;
    const otherSideLost = this.stall.isStalled || [...this.remotePeers.values()].some((p) => p.away);
    if (healthy) this.setState(otherSideLost ? 'reconnecting' : 'connected');
    else if (this.everJoined) this.setState('reconnecting');
    else this.setState('joining');
  }

  private finish(state: 'left' | 'ended' | 'error', code?: string): void {
    if (this.done) return;
    this.done = true;
    this.wanted = false;
    this.generation++;
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    this.stall.stop();
    this.teardownMedia();
    void this.local.stopScreenShare(false);
    this.signalling.close();
    if (code) this.listener.problem(code);
    this.setState(state);
    this.listener.finished(state);
  }

  // ---- socket --------------------------------------------------------------

  private wireSocket(): void {
    const socket = this.signalling.socket;
    socket.on('connect', () => {
      this.connectFailures = 0;
      this.nodeMoves = 0;
      this.connectedAt = Date.now();
      this.listener.problem(null);
      this.startHeartbeat();
      if (this.wanted && !this.done) void this.rejoin();
    });

    socket.on('disconnect', (reason: string) => {
      this.stopHeartbeat();
      if (this.done || !this.wanted) return;
      this.refreshState();
      // socket.io reconnects by itself except when the server closed the connection.
      if (reason === 'io server disconnect') this.scheduleReconnect();
    });

    socket.on('connect_error', (error: Error & { data?: { node?: unknown } }) => {
      if (this.done) return;
      const code = error?.message ?? '';
      // Another node holds the call: connect again naming it, at once. Named already, it could not be
      // reached from the node that answered (it died and is not yet known gone): again in a second.
      if (code === 'wrong_node' && typeof error.data?.node === 'string' && this.nodeMoves < 60) {
        this.nodeMoves++;
        const again = error.data.node === this.signalling.node;
        this.signalling.useNode(error.data.node);
        if (again) window.setTimeout(() => !this.done && !this.signalling.connected && this.signalling.connect(), 1000);
        else this.signalling.connect();
        return;
      }
      if (REFUSALS.has(code)) {
        this.finish(code === 'call_ended' ? 'ended' : 'error', code);
        return;
      }
      this.connectFailures++;
      // A refusal by the server's middleware (internal_error, rate limit) is not retried by socket.io.
      if (!socket.active) this.scheduleReconnect();
      if (this.connectFailures >= 3) this.listener.problem('connection_refused');
      this.refreshState();
    });
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== undefined || this.done) return;
    // Counted until a connection lasts a minute: two tabs of the same person
    // would otherwise take the call from each other forever.
    if (this.connectedAt && Date.now() - this.connectedAt > 60_000) this.manualReconnects = 0;
    this.manualReconnects++;
    if (this.manualReconnects > 8) {
      this.finish('error', 'connection_refused');
      return;
    }
    const delay = Math.min(1000 * 2 ** (this.manualReconnects - 1), 15_000);
    this.reconnectTimer = window.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.done && !this.signalling.connected) this.signalling.connect();
    }, delay);
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeatTimer = window.setInterval(() => {
      if (!this.signalling.connected) return;
      this.signalling.request('heartbeat', {}, HEARTBEAT_INTERVAL_MS).catch((error: unknown) => {
        if (errorCode(error) === 'not_joined' && this.joinedGeneration === this.generation) void this.rejoin();
      });
    }, HEARTBEAT_INTERVAL_MS);
  }

  private stopHeartbeat(): void {
    window.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private wireServerEvents(): void {
    const s = this.signalling;
    s.on('newProducer', (info) => {
      if (this.done || info.peerId === this.ownPeerId) return;
      // Until the join has its receive transport, collect; from then on, consume at once.
      if (this.pendingProducers) this.pendingProducers.push(info);
      else if (this.recvTransport) void this.consumeSafely(info, this.generation);
    });
    s.on('producerClosed', ({ producerId }) => {
      this.remote.producerClosed(producerId);
      if (this.pendingProducers) this.pendingProducers = this.pendingProducers.filter((p) => p.producerId !== producerId);
    });
    s.on('producerPaused', ({ producerId }) => this.remote.markPaused(producerId, true));
    s.on('producerResumed', ({ producerId }) => this.remote.markPaused(producerId, false));
    s.on('peerJoined', ({ peerId, role }) => {
      if (peerId === this.ownPeerId) return;
      // One peer per participant: a new one of the same role replaces the one that was away.
      for (const [id, peer] of [...this.remotePeers]) {
        if (peer.role !== role || id === peerId) continue;
        this.remotePeers.delete(id);
        this.remote.dropPeer(id);
      }
      this.remotePeers.set(peerId, { role, away: false });
      this.listener.remotePresent(true, 'joined');
      this.refreshState();
    });
    s.on('peerLeft', ({ peerId }) => {
      this.remotePeers.delete(peerId);
      this.remote.dropPeer(peerId);
      this.listener.remotePresent(this.remotePeers.size > 0, 'left');
      this.refreshState();
    });
    s.on('peerAway', ({ peerId }) => {
      const peer = this.remotePeers.get(peerId);
      if (!peer) return;
      peer.away = true;
      this.refreshState();
    });
    s.on('mediaReset', () => {
      if (this.wanted && !this.done) void this.rejoin();
    });
    s.on('callEnded', () => this.finish('ended'));
  }

  // ---- joining -------------------------------------------------------------

  /** Drops all media state and joins again; retries with a growing delay while the socket is up. */
  private async rejoin(): Promise<void> {
    if (!this.wanted || this.done) return;
    const gen = ++this.generation;
    window.clearTimeout(this.retryTimer);
    this.teardownMedia();
    this.refreshState();
    try {
      await this.join(gen);
      if (gen !== this.generation) return;
      this.joinedGeneration = gen;
      this.everJoined = true;
      this.joinFailures = 0;
      this.listener.problem(null);
      this.refreshState();
    } catch (error) {
      if (error instanceof Superseded || gen !== this.generation || this.done) return;
      const code = errorCode(error);
      console.warn('vclerk: joining the call failed', error);
      if (code === 'call_ended') return this.finish('ended', 'call_ended');
      if (code === 'consent_required') return this.finish('error', 'consent_required');
      if (error instanceof Error && error.name === 'UnsupportedError') return this.finish('error', 'unsupported_browser');
      this.joinFailures++;
      if (this.joinFailures >= 3) this.listener.problem('connection_refused');
      this.refreshState();
      // Without a connection the next 'connect' joins again. With one, try
      // again here; every third failure with a fresh connection, which the
      // server answers with a fresh peer.
      if (this.signalling.connected) {
        const fresh = this.joinFailures % 3 === 0;
        const delay = Math.min(1000 * 2 ** (this.joinFailures - 1), 15_000);
        this.retryTimer = window.setTimeout(() => {
          if (this.done || !this.signalling.connected) return;
          if (!fresh) return void this.rejoin();
          this.signalling.socket.disconnect();
          this.signalling.connect(); // 'connect' joins again
        }, delay);
      }
    }
  }

  private async join(gen: number): Promise<void> {
    const check = () => {
      if (gen !== this.generation || this.done) throw new Superseded();
    };
    const s = this.signalling;
    this.pendingProducers = [];

    const { rtpCapabilities } = await s.request('getRouterRtpCapabilities', {});
    check();
    const device = await Device.factory();
    await device.load({ routerRtpCapabilities: rtpCapabilities as types.RtpCapabilities });
    check();

    await this.listener.beforeJoin?.();
    check();
    const joined = await s.request('join', { rtpCapabilities: asJson(device.rtpCapabilities) });
    check();
    this.ownPeerId = joined.peerId;
    this.remotePeers.clear();
    for (const peer of joined.peers) if (peer.peerId !== joined.peerId) this.remotePeers.set(peer.peerId, { role: peer.role, away: false });
    this.listener.remotePresent(this.remotePeers.size > 0, 'sync');

    // TURN servers (time-limited credentials) for networks that cannot reach the media port directly.
    const iceServers = joined.iceServers ?? [];
    const recvInfo = await s.request('createTransport', { direction: 'recv' });
    check();
    this.recvTransport = this.setUpTransport(device.createRecvTransport(transportOptions(recvInfo, iceServers)), gen);
    const sendInfo = await s.request('createTransport', { direction: 'send' });
    check();
    this.sendTransport = this.setUpTransport(device.createSendTransport(transportOptions(sendInfo, iceServers)), gen);
    const current = () => gen === this.generation && !this.done;
    this.local.attach(device, this.sendTransport, current);

    // Whatever the other side sends already, and whatever it started meanwhile.
    const known = new Set<string>();
    const toConsume = [...joined.producers, ...this.pendingProducers].filter((p) => {
      if (known.has(p.producerId) || p.peerId === this.ownPeerId || this.remote.wasClosed(p.producerId)) return false;
      known.add(p.producerId);
      return true;
    });
    this.pendingProducers = null;
    for (const info of toConsume) await this.consumeSafely(info, gen);
    check();

    await this.local.produceAll();
    check();
  }

  private setUpTransport(transport: types.Transport, gen: number): types.Transport {
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.signalling
        .request('connectTransport', { transportId: transport.id, dtlsParameters: asJson(dtlsParameters) })
        .then(() => callback(), errback);
    });
    if (transport.direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        const source = appData.source as Source;
        this.signalling
          .request('produce', { transportId: transport.id, kind, rtpParameters: asJson(rtpParameters), source })
          .then(({ producerId }) => callback({ id: producerId }), errback);
      });
    }
    transport.on('connectionstatechange', (state) => {
      if (gen !== this.generation || this.done) return;
      if (state === 'connected') {
        window.clearTimeout(this.iceTimers.get(transport.id));
        this.iceTimers.delete(transport.id);
        this.refreshState();
      } else if (state === 'disconnected' || state === 'failed') {
        void this.recoverIce(transport, gen);
      }
    });
    return transport;
  }

  /** Asks the server for new ICE parameters and restarts ICE; joins again if that does not help in time. */
  private async recoverIce(transport: types.Transport, gen: number): Promise<void> {
    if (this.iceTimers.has(transport.id)) return;
    this.iceTimers.set(
      transport.id,
      window.setTimeout(() => {
        this.iceTimers.delete(transport.id);
        if (gen === this.generation && !this.done && transport.connectionState !== 'connected') void this.rejoin();
      }, ICE_RECOVERY_MS),
    );
    this.refreshState();
    if (!this.signalling.connected) return; // the reconnect joins again anyway
    try {
      // The TURN credentials from the join may have expired: take fresh ones first.
      const { iceServers } = await this.signalling.request('getIceServers', {});
      if (gen !== this.generation || transport.closed) return;
      if (iceServers.length > 0) await transport.updateIceServers({ iceServers: iceServers as RTCIceServer[] });
      const { iceParameters } = await this.signalling.request('restartIce', { transportId: transport.id });
      if (gen !== this.generation || transport.closed) return;
      await transport.restartIce({ iceParameters: iceParameters as types.IceParameters });
    } catch (error) {
      console.warn('vclerk: ICE restart failed', error);
    }
  }

  private async consumeSafely(info: ProducerInfo, gen: number): Promise<void> {
    const transport = this.recvTransport;
    if (!transport || info.peerId === this.ownPeerId) return;
    try {
      await this.remote.consume(transport, info, () => gen === this.generation && !this.done);
    } catch (error) {
      if (gen !== this.generation) return;
      // not_found: the producer closed meanwhile. Anything else: the next rejoin tries again.
      if (!(error instanceof RequestError && error.code === 'not_found')) console.warn(`vclerk: receiving ${info.source} failed`, error);
    }
  }

  /** Closes transports, producers and consumers (not the local tracks). */
  private teardownMedia(): void {
    for (const timer of this.iceTimers.values()) window.clearTimeout(timer);
    this.iceTimers.clear();
    this.remote.closeAll();
    this.local.detach();
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.sendTransport = null;
    this.recvTransport = null;
    this.pendingProducers = null;
    this.joinedGeneration = -1;
  }
}

function transportOptions(info: { id: string; iceParameters: unknown; iceCandidates: unknown[]; dtlsParameters: unknown }, iceServers: IceServer[]): types.TransportOptions {
  return {
    id: info.id,
    iceParameters: info.iceParameters as types.IceParameters,
    iceCandidates: info.iceCandidates as types.IceCandidate[],
    dtlsParameters: info.dtlsParameters as types.DtlsParameters,
    ...(iceServers.length > 0 ? { iceServers: iceServers as RTCIceServer[] } : {}),
  };
}
