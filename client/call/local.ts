import type { Device, types } from 'mediasoup-client';
import type { Signalling } from './signalling';
import type { Source } from './remote';

type Mutable = 'microphone' | 'camera';

/**
 * What we send: a producer per source (microphone, camera, screen) on the
 * send transport of the current join. The tracks belong to the page and
 * outlive producers (`stopTracks: false`), so a rejoin sends them again,
 * with the same muted state.
 */
export class LocalMedia {
  private readonly producers = new Map<Source, types.Producer>();
  private readonly tracks: Partial<Record<Source, MediaStreamTrack>> = {};
  private readonly muted: Record<Mutable, boolean> = { microphone: false, camera: false };
  private device: Device | null = null;
  private transport: types.Transport | null = null;
  private current: () => boolean = () => false;

  constructor(private readonly signalling: Signalling, private readonly onScreenShareEnded: () => void) {}

  setTracks(tracks: { audio: MediaStreamTrack | null; video: MediaStreamTrack | null }): void {
    if (tracks.audio) this.tracks.microphone = tracks.audio;
    if (tracks.video) this.tracks.camera = tracks.video;
  }

  /** The send transport of a join; `current()` turns false when a newer join began. */
  attach(device: Device, transport: types.Transport, current: () => boolean): void {
    this.device = device;
    this.transport = transport;
    this.current = current;
  }

  /** Closes the producers (not the tracks); their transport is going away. */
  detach(): void {
    for (const producer of this.producers.values()) if (!producer.closed) producer.close();
    this.producers.clear();
    this.device = null;
    this.transport = null;
    this.current = () => false;
  }

  /** Sends every source there is a track for; one failing source does not stop the others. */
  async produceAll(): Promise<void> {
    for (const source of ['microphone', 'camera', 'screen'] as const) {
      if (!this.current()) return;
      try {
        await this.produce(source);
      } catch (error) {
        if (!this.current()) return;
        console.warn(`vclerk: sending ${source} failed`, error);
        if (source === 'screen') await this.stopScreenShare();
      }
    }
  }

  private async produce(source: Source): Promise<void> {
    const track = this.tracks[source];
    const { transport, device } = this;
    if (!track || track.readyState === 'ended' || !transport || transport.closed || !device) return;
    if (this.producers.get(source)?.closed === false) return;
    if (!device.canProduce(source === 'microphone' ? 'audio' : 'video')) return;
    const producer = await transport.produce({
      track,
      stopTracks: false,
      appData: { source },
      ...(source === 'microphone' ? { codecOptions: { opusDtx: true, opusFec: true } } : {}),
      ...(source === 'camera' ? { codecOptions: { videoGoogleStartBitrate: 1000 } } : {}),
    });
    if (!this.current() || transport !== this.transport) {
      producer.close();
      return;
    }
    if (this.tracks[source] !== track) {
      // The track changed meanwhile (another device chosen, or the share stopped): send the current one.
      producer.close();
      await this.signalling.request('closeProducer', { producerId: producer.id }).catch(() => undefined);
      return this.produce(source);
    }
    this.producers.set(source, producer);
    producer.on('trackended', () => {
      if (source === 'screen') void this.stopScreenShare();
    });
    if (source !== 'screen' && this.muted[source]) {
      producer.pause();
      await this.signalling.request('pauseProducer', { producerId: producer.id }).catch(() => undefined);
    }
  }

  isMuted(source: Mutable): boolean {
    return this.muted[source];
  }

  /** Mutes or unmutes: the producer is paused here and on the server, so nothing is forwarded. */
  async setMuted(source: Mutable, muted: boolean): Promise<void> {
    this.muted[source] = muted;
    const producer = this.producers.get(source);
    if (!producer || producer.closed) {
      const track = this.tracks[source];
      if (track) track.enabled = !muted;
      return;
    }
    if (muted) producer.pause();
    else producer.resume();
    try {
      await this.signalling.request(muted ? 'pauseProducer' : 'resumeProducer', { producerId: producer.id });
    } catch (error) {
      // Paused here, the track is disabled anyway; a rejoin applies the state again.
      console.warn(`vclerk: ${muted ? 'pausing' : 'resuming'} the ${source} failed`, error);
    }
  }

  /** Another camera or microphone: replaces the producer's track, or starts sending if there was none. */
  async replaceTrack(source: Mutable, track: MediaStreamTrack): Promise<void> {
    this.tracks[source] = track;
    track.enabled = !this.muted[source];
    const producer = this.producers.get(source);
    if (producer && !producer.closed) await producer.replaceTrack({ track });
    else if (this.current()) await this.produce(source);
  }

  /** Shares a screen (clerks only; the server refuses others). */
  async startScreenShare(track: MediaStreamTrack): Promise<void> {
    await this.stopScreenShare(false);
    this.tracks.screen = track;
    track.addEventListener('ended', () => {
      if (this.tracks.screen === track) void this.stopScreenShare();
    });
    if (!this.current()) return; // sent when the join completes
    try {
      await this.produce('screen');
    } catch (error) {
      await this.stopScreenShare();
      throw error;
    }
  }

  async stopScreenShare(notify = true): Promise<void> {
    const track = this.tracks.screen;
    const producer = this.producers.get('screen');
    delete this.tracks.screen;
    this.producers.delete('screen');
    track?.stop();
    if (producer && !producer.closed) {
      producer.close();
      await this.signalling.request('closeProducer', { producerId: producer.id }).catch(() => undefined);
    }
    if (notify && (track || producer)) this.onScreenShareEnded();
  }

  isSharingScreen(): boolean {
    return this.tracks.screen !== undefined;
  }
}
