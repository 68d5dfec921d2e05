/**
 * The load generator's Janus target: the same calls as VClerk's target,
 * through Janus's videoroom plugin (Debian's `janus`, 1.1.x), in a Janus
 * this target starts with configuration files it writes (janus/config.ts).
 *
 * Per call: one videoroom room; each participant is a *remote publisher*
 * (`add_remote_publisher`): Janus binds an RTP port and an RTCP port on
 * 127.0.0.1 and takes plain RTP there, audio and video on the one port,
 * told apart by SSRC, so the SSRCs are fixed by Janus: 1000 + 10 × mindex,
 * i.e. 1000 for audio (mindex 0) and 1010 for video (mindex 1). Each
 * publisher's two streams are forwarded as plain RTP (`rtp_forward`) to
 * the other participant's receive ports, with an SSRC and payload type of
 * the forwarder's own and the receiver's RTCP port, so PLI/FIR from the
 * receiver go back (Janus then sends a PLI to the address the publisher's
 * RTCP came from). This mirrors VClerk's target: a comedia PlainTransport
 * per participant in, a plain consumer per stream out.
 *
 * Recording is not compared: `record: true` throws.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { JanusApiError } from './janus/api';
import { type JanusServer, startJanus } from './janus/server';
import type { LoadTarget, ParticipantReceivers, ParticipantSend, ReceiveEndpoint, SendStream, TargetOptions } from './target';

/** Janus's remote publisher demultiplexes by SSRC: REMOTE_PUBLISHER_BASE_SSRC + mindex × REMOTE_PUBLISHER_SSRC_STEP (janus_videoroom.c). */
export const REMOTE_PUBLISHER_SSRC = { audio: 1000, video: 1010 } as const;
/** Janus's payload types for Opus and VP8 (janus_audiocodec_pt / janus_videocodec_pt). */
export const PAYLOAD_TYPE = { audio: 111, video: 96 } as const;

/** The SSRC a forwarder writes on the packets it sends to a receiver: distinct per call, participant and kind. */
export function forwardedSsrc(callIndex: number, fromParticipant: 0 | 1, kind: 'audio' | 'video'): number {
  return 0x4a000000 + callIndex * 4 + fromParticipant * 2 + (kind === 'video' ? 1 : 0);
}

/** Per participant: RTP and RTCP sockets, a wake-up pipe (2), the forwarders' send socket and their 2 RTCP sockets. */
const FDS_PER_CALL = 2 * 7;

function openFilesLimit(): string {
  try {
    return /Max open files\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Janus's "no such feed": the videoroom error code for an unknown publisher id. */
const NO_SUCH_FEED = 428;
const LISTED_TIMEOUT_MS = 5_000;

/**
 * Runs `request` until the remote publisher it names is listed in its room.
 * `add_remote_publisher` answers before the publisher's thread has put it
 * in the room's participant list, so an `rtp_forward` right after it can
 * get "no such feed" (seen with a few calls on a busy machine).
 */
async function whenListed<T>(request: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LISTED_TIMEOUT_MS;
  for (;;) {
    try {
      return await request();
    } catch (err) {
      if (!(err instanceof JanusApiError) || err.code !== NO_SUCH_FEED || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

function openFiles(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

class JanusTarget implements LoadTarget {
  readonly name = 'janus';
  private server?: JanusServer;

  async start(options: TargetOptions): Promise<void> {
    if (options.record) throw new Error('janus target: recording is not part of the Janus comparison (record: true)');
    if (this.server) throw new Error('janus target: already started');
    this.server = await startJanus({ eventLoops: options.workers });
  }

  private get api() {
    if (!this.server) throw new Error('janus target: start() first');
    return this.server.api;
  }

  async addCall(index: number, receivers: [ParticipantReceivers, ParticipantReceivers]): Promise<[ParticipantSend, ParticipantSend]> {
    try {
      return await this.wireCall(index, receivers);
    } catch (err) {
      const limit = Number(openFilesLimit());
      const open = this.server ? openFiles(this.server.pid) : 0;
      if (Number.isFinite(limit) && open >= limit - 2 * FDS_PER_CALL) {
        throw new Error(`${(err as Error).message} at call ${index + 1}: Janus has ${open} files open of its limit ${limit} (inherited from this process; it needs about ${FDS_PER_CALL} per call); raise ulimit -n`, { cause: err });
      }
      throw err;
    }
  }

  private async wireCall(index: number, receivers: [ParticipantReceivers, ParticipantReceivers]): Promise<[ParticipantSend, ParticipantSend]> {
    const api = this.api;
    const room = index + 1;
    await api.videoroom({
      request: 'create',
      room,
      permanent: false,
      is_private: true,
      description: `load call ${index}`,
      publishers: 2,
      audiocodec: 'opus',
      videocodec: 'vp8',
      // No periodic keyframe requests, no bitrate cap, no RTP extensions to parse, no events: the per-packet work is the forwarding.
      fir_freq: 0,
      bitrate: 0,
      audiolevel_ext: false,
      audiolevel_event: false,
      videoorient_ext: false,
      playoutdelay_ext: false,
      transport_wide_cc_ext: false,
      notify_joining: false,
      record: false,
    });
    const sends: ParticipantSend[] = [];
    for (const p of [0, 1] as const) {
      const added = await api.videoroom({
        request: 'add_remote_publisher',
        room,
        id: p + 1,
        display: `call ${index} participant ${p}`,
        iface: '127.0.0.1',
        streams: [
          { type: 'audio', mindex: 0, mid: '0', codec: 'opus' },
          { type: 'video', mindex: 1, mid: '1', codec: 'vp8' },
        ],
      });
      const port = Number(added.port);
      const rtcpPort = Number(added.rtcp_port);
      if (!port || !rtcpPort) throw new JanusApiError('add_remote_publisher', undefined, `no ports in the reply ${JSON.stringify(added)}`);
      const streams: SendStream[] = (['audio', 'video'] as const).map((kind) => ({
        kind,
        ssrc: REMOTE_PUBLISHER_SSRC[kind],
        payloadType: PAYLOAD_TYPE[kind],
        port,
        rtcpPort,
      }));
      sends.push({ streams });
    }
    for (const p of [0, 1] as const) {
      const to = receivers[p === 0 ? 1 : 0];
      const stream = (mid: string, kind: 'audio' | 'video', endpoint: ReceiveEndpoint) => ({
        mid,
        port: endpoint.port,
        rtcp_port: endpoint.rtcpPort,
        ssrc: forwardedSsrc(index, p, kind),
        pt: PAYLOAD_TYPE[kind],
      });
      const forwarded = await whenListed(() =>
        api.videoroom({
          request: 'rtp_forward',
          room,
          publisher_id: p + 1,
          host: '127.0.0.1',
          host_family: 'ipv4',
          streams: [stream('0', 'audio', to.audio), stream('1', 'video', to.video)],
        }),
      );
      const forwarders = forwarded.forwarders;
      if (!Array.isArray(forwarders) || forwarders.length !== 2) {
        throw new JanusApiError('rtp_forward', undefined, `expected 2 forwarders, got ${JSON.stringify(forwarded)}`);
      }
    }
    return [sends[0]!, sends[1]!];
  }

  mediaPids(): number[] {
    return this.server ? [this.server.pid] : [];
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await server.api.close();
    await server.stop();
  }
}

export function createTarget(): LoadTarget {
  return new JanusTarget();
}
