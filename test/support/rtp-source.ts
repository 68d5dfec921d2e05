import { spawn, type ChildProcess } from 'node:child_process';
import type { types } from 'mediasoup';
import type { PeerRole, Room } from '../../media';

export interface RtpSource {
  peerId: string;
  audio?: types.Producer;
  video?: types.Producer;
  process: ChildProcess;
  /** Stops the ffmpeg sending (the producers stay, receiving nothing). */
  stop(): Promise<void>;
}

let ssrc = 1_000_000;

/**
 * A participant without a browser: an ffmpeg encoding a test pattern
 * (VP8 or H264) and a sine tone (Opus) in real time and sending them as
 * RTP to comedia PlainTransports of `room`, where they become the peer's
 * camera and microphone producers, just as a browser's would.
 */
export async function startRtpSource(
  room: Room,
  options: { peerId: string; role: PeerRole; video?: 'vp8' | 'h264' | false; audio?: boolean; size?: string; fps?: number; frequency?: number; ffmpegPath?: string },
): Promise<RtpSource> {
  const { peerId, role } = options;
  const video = options.video ?? 'vp8';
  const audio = options.audio ?? true;
  const fps = options.fps ?? 15;
  room.addPeer(peerId, role, `${role} (test pattern)`);
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', `testsrc=size=${options.size ?? '320x240'}:rate=${fps}`, '-re', '-f', 'lavfi', '-i', `sine=frequency=${options.frequency ?? 440}:sample_rate=48000`];
  const source: Partial<RtpSource> = { peerId };

  if (audio) {
    const transport = await room.createIngestTransport(peerId);
    const audioSsrc = ssrc++;
    source.audio = await room.produce(peerId, transport.id, 'audio', { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2, rtcpFeedback: [] }], encodings: [{ ssrc: audioSsrc }] }, 'microphone');
    args.push('-map', '1:a', '-c:a', 'libopus', '-b:a', '48k', '-ac', '2', '-ar', '48000', '-f', 'rtp', '-ssrc', String(audioSsrc), '-payload_type', '100', '-pkt_size', '1200', rtpUrl(transport));
  }
  if (video) {
    const transport = await room.createIngestTransport(peerId);
    const videoSsrc = ssrc++;
    const codec: types.RtpCodecParameters =
      video === 'vp8'
        ? { mimeType: 'video/VP8', payloadType: 101, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }
        : { mimeType: 'video/H264', payloadType: 102, clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 }, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] };
    source.video = await room.produce(peerId, transport.id, 'video', { codecs: [codec], encodings: [{ ssrc: videoSsrc }] }, 'camera');
    // A key frame every second: ffmpeg does not answer the key frame requests a browser would.
    const encoder =
      video === 'vp8'
        ? ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k']
        : ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-level', '3.1', '-b:v', '400k', '-bf', '0'];
    args.push('-map', '0:v', ...encoder, '-g', String(fps), '-pix_fmt', 'yuv420p', '-f', 'rtp', '-ssrc', String(videoSsrc), '-payload_type', String(codec.payloadType), '-pkt_size', '1200', rtpUrl(transport));
  }

  const child = spawn(options.ffmpegPath ?? 'ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  source.process = child;
  source.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGKILL') console.error(`rtp source ${peerId} ended (${code ?? signal}): ${log}`);
  });
  return source as RtpSource;
}

function rtpUrl(transport: types.PlainTransport): string {
  return `rtp://127.0.0.1:${transport.tuple.localPort}?rtcpport=${transport.rtcpTuple!.localPort}&pkt_size=1200`;
}
