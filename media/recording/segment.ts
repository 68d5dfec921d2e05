import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import type { types } from 'mediasoup';
import { MediaError } from '../errors';
import type { MediaLogger } from '../log';
import type { PeerRole, ProducerSummary, Room } from '../room';
import { FfmpegProcess, type FfmpegExit } from './ffmpeg';
import { waitUntilBound, type PortAllocator } from './ports';
import { buildSdp, canRecord } from './sdp';

/** One file of a participant's recording: what it holds and how it ended. */
export interface RecordingTrack {
  role: PeerRole;
  /** The Matroska file, `<dir>/<role>-<n>.mkv`. */
  file: string;
  /** Epoch ms when media started flowing into ffmpeg: the file's time 0 on the call's clock. */
  startedAt: number;
  endedAt: number | null;
  kinds: ('audio' | 'video')[];
  exitCode: number | null;
  /** The file lacks a proper end (ffmpeg was killed or crashed); it still plays up to where it stopped. */
  partial: boolean;
}

interface Stream {
  kind: types.MediaKind;
  producerId: string;
  port: number;
  transport: types.PlainTransport;
  consumer: types.Consumer;
}

export interface SegmentOptions {
  room: Room;
  role: PeerRole;
  file: string;
  sdpFile: string;
  ffmpegPath: string;
  ports: PortAllocator;
  logger: MediaLogger;
  /** Called when a consumer of this segment closes without the segment asking (its producer or router went away). */
  onConsumerClosed: () => void;
}

/** How ffmpeg reads the SDP: plain RTP on loopback, enough probing for the first key frame, a reorder buffer. */
function ffmpegArgs(sdpFile: string, file: string): string[] {
  return [
    '-hide_banner', '-loglevel', 'warning', '-nostats', '-progress', 'pipe:1',
    '-protocol_whitelist', 'file,udp,rtp', '-fflags', '+genpts',
    '-analyzeduration', '5M', '-probesize', '5M', '-fpsprobesize', '0', '-reorder_queue_size', '500',
    // Listen on loopback only; with no packet at all for 10 s the input ends and the file is closed properly.
    '-localaddr', '127.0.0.1', '-listen_timeout', '10',
    '-i', sdpFile,
    '-map', '0', '-c', 'copy',
    // Clusters of at most 1 s, flushed as written: a killed ffmpeg loses at most about a second.
    '-cluster_time_limit', '1000', '-flush_packets', '1',
    // -y: the file exists already, made empty and 0600 by Segment.start (ffmpeg would create it by the umask).
    '-f', 'matroska', '-y', file,
  ];
}

/**
 * One ffmpeg recording one participant's current producers (audio and
 * video together, so they stay in sync) into one Matroska file, stream
 * copy. Started in the order that keeps the first key frame: consumers
 * paused, ffmpeg started, its ports bound, consumers resumed, a key
 * frame requested at once and again a second later.
 */
export class Segment {
  readonly track: RecordingTrack;
  /** Whether ffmpeg has written the file's header and is writing media. */
  writing = false;
  /** Set once the recorder asked it to end (a clean stop, not a failure). */
  stopRequested = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private released = false;

  private constructor(
    private readonly options: SegmentOptions,
    readonly streams: Stream[],
    readonly ffmpeg: FfmpegProcess,
    startedAt: number,
  ) {
    this.track = { role: options.role, file: options.file, startedAt, endedAt: null, kinds: streams.map((s) => s.kind), exitCode: null, partial: false };
  }

  /**
   * Starts recording these producers; throws MediaError('no_ports' | 'ffmpeg_failed') or a room error. Producers that cannot be recorded are left out; none left: undefined.
   * The ports are checked free before ffmpeg binds them, but another process (any UDP client: the range lies inside Linux's
   * ephemeral ports) may take one in between: then ffmpeg fails to bind, and the segment is started again on other ports.
   */
  static async start(options: SegmentOptions, producers: ProducerSummary[], onWriting: () => void): Promise<Segment | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await Segment.attempt(options, producers, onWriting);
      } catch (err) {
        if (attempt >= BIND_ATTEMPTS || !(err instanceof MediaError && err.code === 'ffmpeg_failed' && isBindFailure(err))) throw err;
        options.logger.warn({ attempt }, 'a recorder port was taken before ffmpeg bound it: trying other ports');
      }
    }
  }

  private static async attempt(options: SegmentOptions, producers: ProducerSummary[], onWriting: () => void): Promise<Segment | undefined> {
    const { room, ports, logger } = options;
    const streams: Stream[] = [];
    let ffmpeg: FfmpegProcess | undefined;
    let madeFile = false;
    const cleanUp = async () => {
      if (ffmpeg && !ffmpeg.hasExited) {
        ffmpeg.child.kill('SIGKILL');
        await ffmpeg.exited;
      }
      for (const s of streams) {
        s.transport.close();
        ports.release(s.port);
      }
      await fs.rm(options.sdpFile, { force: true });
      // The segment never started: its file holds no media.
      if (madeFile) await fs.rm(options.file, { force: true });
    };
    try {
      for (const producer of producers) {
        const port = await ports.take();
        let created: { transport: types.PlainTransport; consumer: types.Consumer };
        try {
          created = await room.createPlainConsumer(producer.producerId, { ip: '127.0.0.1', port, rtcpPort: port + 1 });
        } catch (err) {
          ports.release(port);
          if (err instanceof MediaError && (err.code === 'cannot_consume' || err.code === 'not_found')) {
            logger.warn({ producerId: producer.producerId, code: err.code }, 'producer left out of the recording');
            continue;
          }
          throw err;
        }
        streams.push({ kind: producer.kind, producerId: producer.producerId, port, ...created });
        if (!canRecord(created.consumer.rtpParameters)) {
          logger.warn({ producerId: producer.producerId, codec: created.consumer.rtpParameters.codecs[0]?.mimeType }, 'codec cannot be recorded: producer left out');
          const dropped = streams.pop()!;
          dropped.transport.close();
          ports.release(dropped.port);
        }
      }
      if (streams.length === 0) return undefined;
      // The track is the participant's plaintext media until the final file is made: 0600 from the start,
      // whatever the umask; 'wx' keeps an existing file from being overwritten (what ffmpeg's -n did).
      await (await fs.open(options.file, 'wx', 0o600)).close();
      madeFile = true;
      await fs.writeFile(options.sdpFile, buildSdp(streams.map((s) => ({ kind: s.kind, port: s.port, rtpParameters: s.consumer.rtpParameters }))), { mode: 0o600 });
      let segment: Segment | undefined;
      let wrote = false;
      const markWriting = () => {
        if (!segment || segment.writing) return;
        segment.writing = true;
        onWriting();
      };
      // The first progress report comes once the header is written and media is being copied.
      const process = new FfmpegProcess(options.ffmpegPath, ffmpegArgs(options.sdpFile, options.file), {
        onProgress: () => {
          wrote = true;
          markWriting();
        },
      });
      ffmpeg = process;
      try {
        await waitUntilBound(streams.flatMap((s) => [s.port, s.port + 1]), { timeoutMs: BIND_TIMEOUT_MS, gone: process.exited });
      } catch (err) {
        const exit = process.hasExited ? await process.exited : undefined;
        throw new MediaError('ffmpeg_failed', { cause: new Error(`ffmpeg did not start (${describeExit(exit)}): ${exit?.error?.message ?? process.logTail()}`, { cause: err }) });
      }
      // ffmpeg has read the SDP: it is no longer needed.
      await fs.rm(options.sdpFile, { force: true });
      for (const s of streams) await s.consumer.resume();
      segment = new Segment(options, streams, process, Date.now());
      segment.watchConsumers();
      segment.requestKeyFrames();
      if (wrote) markWriting();
      return segment;
    } catch (err) {
      await cleanUp();
      throw err;
    }
  }

  get producerIds(): Set<string> {
    return new Set(this.streams.map((s) => s.producerId));
  }

  producerOf(kind: types.MediaKind): string | undefined {
    return this.streams.find((s) => s.kind === kind)?.producerId;
  }

  private watchConsumers(): void {
    for (const s of this.streams) {
      s.consumer.observer.once('close', () => {
        if (!this.stopRequested) this.options.onConsumerClosed();
      });
    }
  }

  /** A key frame now and a second later (the first may be lost while the browser's encoder starts); again at 3 s if nothing is written yet. */
  requestKeyFrames(): void {
    const ask = () => {
      for (const s of this.streams) if (s.kind === 'video' && !s.consumer.closed) void s.consumer.requestKeyFrame().catch(() => undefined);
    };
    ask();
    this.timers.push(setTimeout(ask, 1000), setTimeout(() => !this.writing && ask(), 3000));
    for (const t of this.timers) t.unref();
  }

  /** Stops ffmpeg cleanly (`q`, then signals) and frees the consumers and ports. */
  async stop(): Promise<RecordingTrack> {
    this.stopRequested = true;
    const method = await this.ffmpeg.stop({ nudge: () => this.sendBye() });
    const exit = await this.ffmpeg.exited;
    if (method === 'SIGKILL') this.options.logger.warn({ file: this.track.file }, 'ffmpeg did not stop: killed (the file is partial)');
    this.finish(exit, method === 'SIGKILL');
    return this.track;
  }

  /**
   * One RTCP BYE per stream, to ffmpeg's RTCP ports: once it has one per
   * stream its input ends and it finalises the file, even when no media
   * arrives to let it read its `q`. (ffmpeg ignores RTP/RTCP packets under
   * 12 bytes, so the BYE names two sources.)
   */
  private async sendBye(): Promise<void> {
    const socket = dgram.createSocket('udp4');
    const bye = Buffer.from([0x82, 203, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2]);
    try {
      for (const s of this.streams) await new Promise<void>((resolve, reject) => socket.send(bye, s.port + 1, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    } finally {
      socket.close();
    }
  }

  /** Records how it ended and frees everything; idempotent. */
  finish(exit: FfmpegExit, partial: boolean): void {
    if (this.track.endedAt === null) {
      this.track.endedAt = Date.now();
      this.track.exitCode = exit.code;
      this.track.partial = partial;
    }
    if (this.released) return;
    this.released = true;
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.streams) {
      s.transport.close();
      this.options.ports.release(s.port);
    }
    void fs.rm(this.options.sdpFile, { force: true });
  }
}

/** How often a segment is started on new ports when ffmpeg could not bind its ports. */
const BIND_ATTEMPTS = 3;

/**
 * How long ffmpeg may take to bind its ports. Alone it binds in well under a
 * second, but on a busy machine (two cores carrying calls, composing and a
 * test suite) 5 s ran out and the recording failed before it began.
 */
const BIND_TIMEOUT_MS = 15_000;

/** Whether ffmpeg failed because a port was in use (its log says so). */
export function isBindFailure(err: MediaError): boolean {
  return /bind failed|address already in use/i.test(String((err.cause as Error | undefined)?.message ?? ''));
}

export function describeExit(exit: FfmpegExit | undefined): string {
  if (!exit) return 'still running';
  if (exit.error) return exit.error.message;
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}
