import type { types } from 'mediasoup-client';
import type { ProducerInfo } from '../../app/calls/protocol';
import type { Signalling } from './signalling';
import type { ConsumerActivity } from './stall';

export type Source = ProducerInfo['source'];

export interface RemoteListener {
  /** The other side's media for a source appeared (a track) or went away (null). */
  remoteTrack(source: Source, track: MediaStreamTrack | null): void;
  remotePaused(source: Source, paused: boolean): void;
}

export interface ReceiveStats {
  video: { framesDecoded: number; bytesReceived: number };
  audio: { packetsReceived: number };
  screen?: { framesDecoded: number };
}

interface RemoteConsumer {
  consumer: types.Consumer;
  source: Source;
  peerId: string;
  paused: boolean;
}

/**
 * What we receive: one consumer per producer of the other side, keyed by
 * producer id. A source shows the newest consumer of that source (after
 * the other side rejoined, its new producer may arrive before the old one
 * is closed).
 */
export class RemoteMedia {
  private readonly consumers = new Map<string, RemoteConsumer>();
  /** Producers closed while their consumer was still being set up. */
  private readonly closedProducers = new Set<string>();

  constructor(private readonly signalling: Signalling, private readonly listener: RemoteListener) {}

  wasClosed(producerId: string): boolean {
    return this.closedProducers.has(producerId);
  }

  /**
   * Consumes a producer over the receive transport. The server creates the
   * consumer paused, so no packet is lost before this side is ready; it is
   * resumed once set up. `current()` turns false when a newer join began:
   * the consumer is then dropped.
   */
  async consume(transport: types.Transport, info: ProducerInfo, current: () => boolean): Promise<void> {
    if (transport.closed || this.consumers.has(info.producerId) || this.closedProducers.has(info.producerId)) return;
    const data = await this.signalling.request('consume', { transportId: transport.id, producerId: info.producerId });
    if (!current()) return;
    const consumer = await transport.consume({
      id: data.consumerId,
      producerId: data.producerId,
      kind: data.kind,
      rtpParameters: data.rtpParameters as types.RtpParameters,
      appData: { peerId: info.peerId, source: info.source },
    });
    if (!current() || this.closedProducers.has(info.producerId)) {
      consumer.close();
      return;
    }
    this.consumers.set(info.producerId, { consumer, source: info.source, peerId: info.peerId, paused: info.paused });
    consumer.on('trackended', () => this.drop(info.producerId));
    this.listener.remoteTrack(info.source, consumer.track);
    this.listener.remotePaused(info.source, info.paused);
    await this.signalling.request('resumeConsumer', { consumerId: consumer.id });
  }

  producerClosed(producerId: string): void {
    if (this.consumers.has(producerId)) this.drop(producerId);
    else this.closedProducers.add(producerId);
  }

  markPaused(producerId: string, paused: boolean): void {
    const entry = this.consumers.get(producerId);
    if (!entry) return;
    entry.paused = paused;
    this.listener.remotePaused(entry.source, paused);
  }

  dropPeer(peerId: string): void {
    for (const [producerId, entry] of [...this.consumers]) if (entry.peerId === peerId) this.drop(producerId);
  }

  /** Closes one consumer; if another of the same source remains, shows that one. */
  private drop(producerId: string): void {
    const entry = this.consumers.get(producerId);
    if (!entry) return;
    this.consumers.delete(producerId);
    if (!entry.consumer.closed) entry.consumer.close();
    const other = [...this.consumers.values()].reverse().find((c) => c.source === entry.source);
    this.listener.remoteTrack(entry.source, other ? other.consumer.track : null);
    if (other) this.listener.remotePaused(other.source, other.paused);
  }

  /** Closes every consumer (their transport is going away). */
  closeAll(): void {
    const sources = new Set<Source>();
    for (const entry of this.consumers.values()) {
      sources.add(entry.source);
      if (!entry.consumer.closed) entry.consumer.close();
    }
    this.consumers.clear();
    this.closedProducers.clear();
    for (const source of sources) this.listener.remoteTrack(source, null);
  }

  /** Packets received so far by each open consumer, and whether its producer is paused (for MediaStallWatch). */
  async activity(): Promise<ConsumerActivity[]> {
    const entries = [...this.consumers.values()].filter((c) => !c.consumer.closed);
    const counts = await Promise.all(
      entries.map((c) =>
        c.consumer.getStats().then(
          (report) => {
            let packets = 0;
            report.forEach((stat: Record<string, unknown>) => {
              if (stat.type === 'inbound-rtp' && typeof stat.packetsReceived === 'number') packets += stat.packetsReceived;
            });
            return packets;
          },
          () => 0,
        ),
      ),
    );
    return entries.map((c, i) => ({ id: c.consumer.id, active: !c.paused, packets: counts[i]! }));
  }

  /**
   * Receive statistics summed over the current consumers (inbound-rtp):
   * camera video, microphone audio, and the shared screen when there is one.
   */
  async stats(): Promise<ReceiveStats> {
    const result: ReceiveStats = { video: { framesDecoded: 0, bytesReceived: 0 }, audio: { packetsReceived: 0 } };
    const entries = [...this.consumers.values()].filter((c) => !c.consumer.closed);
    const reports = await Promise.all(entries.map((c) => c.consumer.getStats().then((report) => ({ source: c.source, report }), () => null)));
    for (const item of reports) {
      item?.report.forEach((stat: Record<string, unknown>) => {
        if (stat.type !== 'inbound-rtp') return;
        const n = (key: string) => (typeof stat[key] === 'number' ? (stat[key] as number) : 0);
        if (item.source === 'camera') {
          result.video.framesDecoded += n('framesDecoded');
          result.video.bytesReceived += n('bytesReceived');
        } else if (item.source === 'microphone') {
          result.audio.packetsReceived += n('packetsReceived');
        } else {
          result.screen ??= { framesDecoded: 0 };
          result.screen.framesDecoded += n('framesDecoded');
        }
      });
    }
    return result;
  }
}
