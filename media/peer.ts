import type { types } from 'mediasoup';
import type { PeerRole, ProducerSummary, Source } from './summary';

export type { PeerRole, ProducerSummary, Source } from './summary';

/** One participant of a Room: its media objects, and what is being made for it (checked against PEER_LIMITS). */

export interface Peer {
  id: string;
  role: PeerRole;
  label: string;
  rtpCapabilities?: types.RtpCapabilities;
  transports: Map<string, types.WebRtcTransport>;
  /** Transports receiving RTP from a local process instead of a browser (tests, benchmarks). */
  ingest: Map<string, types.PlainTransport>;
  producers: Map<string, types.Producer>;
  consumers: Map<string, types.Consumer>;
  /**
   * What is being created for the peer right now (counted against its
   * limits). Replaced when the peer's media is cleared: an object created
   * for an earlier one is closed as soon as it arrives.
   */
  pending: Pending;
}

export interface Pending {
  transports: number;
  sources: Set<Source>;
  consumes: Set<string>;
}

export function nothingPending(): Pending {
  return { transports: 0, sources: new Set(), consumes: new Set() };
}

/** Whether the peer sends from this source already. */
export function holdsSource(peer: Peer, source: Source): boolean {
  return [...peer.producers.values()].some((p) => !p.closed && (p.appData as { source?: Source }).source === source);
}

/** Whether the peer receives this producer already. */
export function consumesProducer(peer: Peer, producerId: string): boolean {
  return [...peer.consumers.values()].some((c) => !c.closed && c.producerId === producerId);
}

export function summary(peer: Peer, producer: types.Producer): ProducerSummary {
  return {
    producerId: producer.id,
    peerId: peer.id,
    role: peer.role,
    kind: producer.kind,
    source: (producer.appData as { source: Source }).source,
    paused: producer.paused,
  };
}
