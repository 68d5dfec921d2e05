import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { types } from 'mediasoup';
import { MediaError } from '../errors';
import type { MediaLogger } from '../log';
import type { PeerRole, ProducerSummary, Room } from '../room';
import type { PortAllocator } from './ports';
import { describeExit, Segment, type RecordingTrack } from './segment';

export interface CallRecorderOptions {
  /** Where the tracks are written (`<role>-<n>.mkv`); created if missing (0700, as are missing parents). */
  dir: string;
  ffmpegPath: string;
  ports: PortAllocator;
  logger: MediaLogger;
  /**
   * How long to let a participant's changes settle before their segment is
   * restarted (ms, default 400): a browser produces its microphone and camera
   * one after the other, and a device switch closes one producer and makes
   * another; each burst then makes one new file, not several.
   */
  settleMs?: number;
}

export interface RecorderEvents {
  trackStarted: [RecordingTrack];
  /** ffmpeg has written the file's header and is copying media (about a second after trackStarted: it waits for a key frame). */
  trackWriting: [RecordingTrack];
  trackEnded: [RecordingTrack];
  /** An ffmpeg ended unexpectedly (killed, crashed) or could not be started: its track is partial and the recorder stops. */
  failed: [{ role: PeerRole; file: string; reason: string }];
}

const ROLES: PeerRole[] = ['clerk', 'customer'];
const KINDS: types.MediaKind[] = ['audio', 'video'];
/** Segments in a row that end by themselves without writing anything before the recorder gives up on a participant. */
const MAX_EMPTY_SEGMENTS = 3;

interface RoleState {
  segment: Segment | undefined;
  /** The reconciliation running for this role, and whether another pass is due. */
  running: Promise<void> | undefined;
  again: boolean;
  settle: NodeJS.Timeout | undefined;
  count: number;
  emptyInARow: number;
}

function copy(track: RecordingTrack): RecordingTrack {
  return { ...track, kinds: [...track.kinds] };
}

/**
 * Records a call: for each participant (clerk, customer) one ffmpeg
 * writing their microphone and camera (never the screen) as they arrive
 * from mediasoup, without re-encoding. When a participant's producers
 * change (one closes, a new one appears, a paused one comes back, the
 * participant joins later, the room moves to a new router), their current
 * segment ends cleanly and a new file starts with what there is now; a
 * participant sending nothing has no ffmpeg.
 */
export class CallRecorder extends EventEmitter<RecorderEvents> {
  private readonly roles = new Map<PeerRole, RoleState>(ROLES.map((r) => [r, { segment: undefined, running: undefined, again: false, settle: undefined, count: 0, emptyInARow: 0 }]));
  private readonly all: Segment[] = [];
  private stopping: Promise<RecordingTrack[]> | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly log: MediaLogger;

  private constructor(private readonly room: Room, private readonly options: CallRecorderOptions) {
    super();
    this.log = options.logger.child({ component: 'recorder', callId: room.callId });
  }

  /** Starts recording whatever the participants send now, and follows their changes. Throws when the first ffmpeg cannot start. */
  static async start(room: Room, options: CallRecorderOptions): Promise<CallRecorder> {
    // The tracks are plaintext while the call runs: only the appliance may read them (0700 directories, 0600 files).
    await fs.promises.mkdir(options.dir, { recursive: true, mode: 0o700 });
    await fs.promises.chmod(options.dir, 0o700);
    const recorder = new CallRecorder(room, options);
    recorder.subscribe();
    try {
      await Promise.all(ROLES.map((role) => recorder.reconcile(role)));
    } catch (err) {
      await recorder.stop();
      throw err;
    }
    recorder.log.info({ dir: options.dir, tracks: recorder.all.length }, 'recording started');
    return recorder;
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /** Every track started so far (running ones with `endedAt` null), in the order they started. */
  get tracks(): RecordingTrack[] {
    return this.all.map((s) => copy(s.track));
  }

  /** The running ffmpegs' process ids (tests kill one to see the recorder fail). */
  processIds(): number[] {
    return this.processes().map((p) => p.pid);
  }

  /** The running ffmpegs: whose, which process, which file, which local ports (RTP; RTCP is the next one), whether media is being written. */
  processes(): { role: PeerRole; pid: number; file: string; ports: number[]; writing: boolean }[] {
    return [...this.roles.entries()].flatMap(([role, state]) => {
      const segment = state.segment;
      return segment?.ffmpeg.pid !== undefined ? [{ role, pid: segment.ffmpeg.pid, file: segment.track.file, ports: segment.streams.map((s) => s.port), writing: segment.writing }] : [];
    });
  }

  private subscribe(): void {
    const roleOf = (peerId: string) => this.room.peerList().find((p) => p.peerId === peerId)?.role;
    const onProducer = ({ peerId }: { peerId: string }) => this.follow(roleOf(peerId));
    const onResumed = ({ producerId, peerId }: { producerId: string; peerId: string }) => {
      const role = roleOf(peerId);
      for (const r of role ? [role] : ROLES) {
        const segment = this.roles.get(r)!.segment;
        // Back from a pause: the file needs a key frame to show the picture again.
        if (segment?.producerIds.has(producerId)) segment.requestKeyFrames();
      }
      this.follow(role);
    };
    const onAny = () => this.follow(undefined);
    const onClosed = () => void this.stop();
    this.room.on('newProducer', onProducer);
    this.room.on('producerClosed', onProducer);
    this.room.on('producerPaused', onProducer);
    this.room.on('producerResumed', onResumed);
    this.room.on('reset', onAny);
    this.room.on('closed', onClosed);
    this.unsubscribe.push(() => {
      this.room.off('newProducer', onProducer);
      this.room.off('producerClosed', onProducer);
      this.room.off('producerPaused', onProducer);
      this.room.off('producerResumed', onResumed);
      this.room.off('reset', onAny);
      this.room.off('closed', onClosed);
    });
  }

  /** Reconciles one role (or both when it is unknown) once its changes settled; an error fails the recording. */
  private follow(role: PeerRole | undefined): void {
    for (const r of role ? [role] : ROLES) {
      const state = this.roles.get(r)!;
      clearTimeout(state.settle);
      state.settle = setTimeout(() => {
        state.settle = undefined;
        this.reconcile(r).catch((err: unknown) => this.fail(r, state.segment?.track.file ?? '', err instanceof MediaError ? `${err.code}: ${String((err.cause as Error | undefined)?.message ?? '')}` : String(err)));
      }, this.options.settleMs ?? 400);
    }
  }

  /** Runs reconciliation passes for a role one after the other until nothing changed meanwhile. */
  private reconcile(role: PeerRole): Promise<void> {
    const state = this.roles.get(role)!;
    state.again = true;
    state.running ??= (async () => {
      try {
        while (state.again && !this.stopping) {
          state.again = false;
          await this.reconcileOnce(role, state);
        }
      } finally {
        state.running = undefined;
      }
    })();
    return state.running;
  }

  /**
   * What to record of a role now, per kind: the segment's current producer
   * while it is still there (paused or not: a paused stream just pauses in
   * the file) and no newer one has come; else the newest producer that is
   * not paused (a video paused from the start would leave ffmpeg without a
   * key frame and without the picture size).
   */
  private wanted(role: PeerRole, segment: Segment | undefined): ProducerSummary[] {
    const producers = this.room.listProducers().filter((p) => p.role === role && (p.source === 'microphone' || p.source === 'camera'));
    const chosen: ProducerSummary[] = [];
    for (const kind of KINDS) {
      const ofKind = producers.filter((p) => p.kind === kind);
      let newest = -1;
      ofKind.forEach((p, i) => (newest = p.paused ? newest : i));
      const currentId = segment?.producerOf(kind);
      const current = currentId ? ofKind.findIndex((p) => p.producerId === currentId) : -1;
      // Paused before anything was written: start again without it.
      const keep = current >= 0 && (segment!.writing || !ofKind[current]!.paused) && newest <= current;
      if (keep) chosen.push(ofKind[current]!);
      else if (newest >= 0) chosen.push(ofKind[newest]!);
    }
    return chosen;
  }

  private async reconcileOnce(role: PeerRole, state: RoleState): Promise<void> {
    const current = state.segment;
    const wanted = this.wanted(role, current);
    if (current) {
      const same = wanted.length === current.producerIds.size && wanted.every((p) => current.producerIds.has(p.producerId));
      if (same) return;
      await this.endSegment(role, current);
    }
    if (wanted.length === 0 || this.stopping) return;
    if (state.emptyInARow >= MAX_EMPTY_SEGMENTS) throw new MediaError('ffmpeg_failed', { cause: new Error(`${MAX_EMPTY_SEGMENTS} segments in a row wrote nothing`) });
    let segment: Segment | undefined;
    try {
      segment = await Segment.start(
        {
          room: this.room,
          role,
          ...this.nextFile(role, state),
          ffmpegPath: this.options.ffmpegPath,
          ports: this.options.ports,
          logger: this.log.child({ role }),
          onConsumerClosed: () => this.follow(role),
        },
        wanted,
        () => {
          state.emptyInARow = 0;
          this.log.debug({ role, file: segment?.track.file }, 'recording track is being written');
          // Before start() returned, trackStarted has not been sent yet: the check below sends this then.
          if (segment) this.emit('trackWriting', copy(segment.track));
        },
      );
    } catch (err) {
      // The router is gone (its worker died): the room's reset brings the participants back.
      if (err instanceof MediaError && err.code === 'media_unavailable') return;
      throw err;
    }
    if (!segment) return;
    state.segment = segment;
    this.all.push(segment);
    void segment.ffmpeg.exited.then((exit) => this.onExit(role, segment, exit));
    this.log.info({ role, file: segment.track.file, kinds: segment.track.kinds, pid: segment.ffmpeg.pid }, 'recording track started');
    this.emit('trackStarted', copy(segment.track));
    if (segment.writing) this.emit('trackWriting', copy(segment.track));
  }

  private nextFile(role: PeerRole, state: RoleState): { file: string; sdpFile: string } {
    for (;;) {
      const n = ++state.count;
      const file = path.join(this.options.dir, `${role}-${n}.mkv`);
      if (!fs.existsSync(file)) return { file, sdpFile: path.join(this.options.dir, `${role}-${n}.sdp`) };
    }
  }

  private async endSegment(role: PeerRole, segment: Segment): Promise<void> {
    const state = this.roles.get(role)!;
    if (state.segment === segment) state.segment = undefined;
    if (segment.stopRequested) return;
    const track = await segment.stop();
    this.log.info({ role, file: track.file, exitCode: track.exitCode, partial: track.partial, ms: track.endedAt! - track.startedAt, ffmpeg: segment.ffmpeg.logTail() }, 'recording track ended');
    this.emit('trackEnded', copy(track));
  }

  /** ffmpeg ended without being asked: silence (its input timed out, a clean end) or a crash or kill (a failure). */
  private onExit(role: PeerRole, segment: Segment, exit: { code: number | null; signal: NodeJS.Signals | null }): void {
    if (segment.stopRequested) return;
    const state = this.roles.get(role)!;
    if (state.segment === segment) state.segment = undefined;
    const clean = exit.code === 0 && exit.signal === null;
    segment.stopRequested = true;
    segment.finish(exit, !clean);
    this.emit('trackEnded', copy(segment.track));
    if (clean) {
      // Nothing arrived for 10 s (everything paused): a new segment starts when media comes back.
      this.log.info({ role, file: segment.track.file }, 'recording track ended by itself: no media for 10 s');
      if (!segment.writing) state.emptyInARow++;
      this.follow(role);
      return;
    }
    this.fail(role, segment.track.file, `ffmpeg ended unexpectedly (${describeExit(exit)}): ${segment.ffmpeg.logTail()}`);
  }

  private fail(role: PeerRole, file: string, reason: string): void {
    if (this.stopping) return;
    this.log.error({ role, file, reason }, 'recording failed: stopping the other tracks');
    this.emit('failed', { role, file, reason });
    this.stop().catch((err: unknown) => this.log.error({ err }, 'could not stop the other tracks'));
  }

  /** Ends every track cleanly (`q`; signals after a timeout), frees consumers and ports. Idempotent. */
  stop(): Promise<RecordingTrack[]> {
    this.stopping ??= (async () => {
      for (const off of this.unsubscribe.splice(0)) off();
      for (const state of this.roles.values()) clearTimeout(state.settle);
      await Promise.allSettled(ROLES.map((r) => this.roles.get(r)!.running));
      await Promise.all(ROLES.map((r) => this.roles.get(r)!.segment).map((s, i) => (s ? this.endSegment(ROLES[i]!, s) : undefined)));
      this.log.info({ tracks: this.all.length }, 'recording stopped');
      return this.tracks;
    })();
    return this.stopping;
  }
}
