/**
 * The media every simulated participant sends: a short clip encoded once
 * by ffmpeg (VP8 and Opus), captured as the RTP packets ffmpeg's RTP muxer
 * sends to a local UDP socket, and cached in a file under os.tmpdir()
 * keyed by the encoding parameters. Each packet keeps its RTP timestamp,
 * from which the sender paces the replay.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StreamKind } from './target';

export interface ClipParameters {
  seconds: number;
  width: number;
  height: number;
  fps: number;
  videoKbps: number;
  audioKbps: number;
  /** Key frame interval in seconds. */
  keySeconds: number;
}

export const DEFAULT_CLIP: ClipParameters = { seconds: 10, width: 640, height: 480, fps: 30, videoKbps: 1000, audioKbps: 48, keySeconds: 2 };

export interface ClipStream {
  kind: StreamKind;
  clockRate: number;
  /** RTP packets, header included, in sending order. */
  packets: Buffer[];
  /** Each packet's RTP timestamp minus the first one's (clock units). */
  offsets: Uint32Array;
  /** One pass of the stream in clock units: a loop adds this to the timestamps. */
  period: number;
  /** The largest packet, for preallocating send buffers. */
  maxLength: number;
  bytes: number;
}

export interface Clip {
  parameters: ClipParameters;
  audio: ClipStream;
  video: ClipStream;
}

const MAGIC = 'VCLERK-LOAD-CLIP-1';

function cacheFile(p: ClipParameters): string {
  const key = crypto.createHash('sha256').update(JSON.stringify({ MAGIC, ...p })).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `vclerk-load-clip-${key}.bin`);
}

function serialise(clip: Clip): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.from(JSON.stringify({ magic: MAGIC, parameters: clip.parameters, streams: [clip.audio, clip.video].map((s) => ({ kind: s.kind, clockRate: s.clockRate, period: s.period, count: s.packets.length })) }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.length);
  parts.push(len, header);
  for (const s of [clip.audio, clip.video]) {
    s.packets.forEach((p, i) => {
      const h = Buffer.alloc(6);
      h.writeUInt32BE(s.offsets[i]!, 0);
      h.writeUInt16BE(p.length, 4);
      parts.push(h, p);
    });
  }
  return Buffer.concat(parts);
}

function stream(kind: StreamKind, clockRate: number, period: number, packets: Buffer[], offsets: number[]): ClipStream {
  return { kind, clockRate, period, packets, offsets: Uint32Array.from(offsets), maxLength: Math.max(...packets.map((p) => p.length)), bytes: packets.reduce((n, p) => n + p.length, 0) };
}

function deserialise(data: Buffer): Clip {
  const headerLength = data.readUInt32BE(0);
  const header = JSON.parse(data.subarray(4, 4 + headerLength).toString()) as { magic: string; parameters: ClipParameters; streams: { kind: StreamKind; clockRate: number; period: number; count: number }[] };
  if (header.magic !== MAGIC) throw new Error('not a load clip');
  let at = 4 + headerLength;
  const streams = header.streams.map((s) => {
    const packets: Buffer[] = [];
    const offsets: number[] = [];
    for (let i = 0; i < s.count; i++) {
      offsets.push(data.readUInt32BE(at));
      const len = data.readUInt16BE(at + 4);
      packets.push(Buffer.from(data.subarray(at + 6, at + 6 + len)));
      at += 6 + len;
    }
    return stream(s.kind, s.clockRate, s.period, packets, offsets);
  });
  return { parameters: header.parameters, audio: streams[0]!, video: streams[1]! };
}

async function bind(): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(0, '127.0.0.1', () => resolve()));
  return socket;
}

/** Orders one stream's captured packets by sequence number (with wrap) and derives offsets and the loop period. */
function assemble(kind: StreamKind, clockRate: number, frameTicks: number, captured: Buffer[]): ClipStream {
  if (captured.length === 0) throw new Error(`ffmpeg sent no ${kind} packets`);
  const first = captured[0]!.readUInt16BE(2);
  const ordered = captured.map((p) => ({ p, n: (p.readUInt16BE(2) - first + 65536) % 65536 })).sort((a, b) => a.n - b.n);
  const missing = ordered[ordered.length - 1]!.n + 1 - ordered.length;
  if (missing !== 0) throw new Error(`capturing the ${kind} clip lost ${missing} packets; run again`);
  const ts0 = ordered[0]!.p.readUInt32BE(4);
  const offsets = ordered.map(({ p }) => (p.readUInt32BE(4) - ts0 + 2 ** 32) % 2 ** 32);
  return stream(kind, clockRate, offsets[offsets.length - 1]! + frameTicks, ordered.map(({ p }) => p), offsets);
}

/** Encodes the clip with ffmpeg and captures its RTP packets (a few seconds, once per parameter set). */
async function encode(p: ClipParameters, ffmpeg: string): Promise<Clip> {
  const [videoRtp, videoRtcp, audioRtp, audioRtcp] = await Promise.all([bind(), bind(), bind(), bind()]);
  const captured = { video: [] as Buffer[], audio: [] as Buffer[] };
  videoRtp.on('message', (m) => captured.video.push(m));
  audioRtp.on('message', (m) => captured.audio.push(m));
  const port = (s: dgram.Socket) => s.address().port;
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    // A moving pattern with a little noise, so that VP8 spends about the bitrate asked for.
    '-f', 'lavfi', '-i', `testsrc2=size=${p.width}x${p.height}:rate=${p.fps}:duration=${p.seconds},noise=alls=12:allf=t`,
    '-f', 'lavfi', '-i', `sine=frequency=440:beep_factor=4:sample_rate=48000:duration=${p.seconds}`,
    '-map', '0:v', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '4', '-b:v', `${p.videoKbps}k`, '-minrate', `${p.videoKbps}k`, '-maxrate', `${p.videoKbps}k`, '-bufsize', `${p.videoKbps}k`,
    '-g', String(p.fps * p.keySeconds), '-keyint_min', String(p.fps * p.keySeconds), '-pix_fmt', 'yuv420p',
    '-f', 'rtp', '-ssrc', '1', '-payload_type', '101', `rtp://127.0.0.1:${port(videoRtp)}?rtcpport=${port(videoRtcp)}&pkt_size=1200`,
    '-map', '1:a', '-c:a', 'libopus', '-b:a', `${p.audioKbps}k`, '-ac', '2', '-ar', '48000', '-frame_duration', '20',
    '-f', 'rtp', '-ssrc', '2', '-payload_type', '100', `rtp://127.0.0.1:${port(audioRtp)}?rtcpport=${port(audioRtcp)}&pkt_size=1200`,
  ];
  const child = spawn(ffmpeg, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (log = (log + c).slice(-4000)));
  const code = await new Promise<number | null>((resolve, reject) => child.once('error', reject).once('exit', resolve));
  await new Promise((r) => setTimeout(r, 200));
  for (const s of [videoRtp, videoRtcp, audioRtp, audioRtcp]) s.close();
  if (code !== 0) throw new Error(`ffmpeg could not encode the load clip (exit ${code}): ${log}`);
  return {
    parameters: p,
    video: assemble('video', 90000, 90000 / p.fps, captured.video),
    audio: assemble('audio', 48000, 960, captured.audio),
  };
}

/** The clip for these parameters: from the cache file, else encoded now and cached. */
export async function loadClip(p: ClipParameters = DEFAULT_CLIP, ffmpeg = 'ffmpeg'): Promise<{ clip: Clip; file: string; cached: boolean }> {
  const file = cacheFile(p);
  if (fs.existsSync(file)) {
    try {
      return { clip: deserialise(fs.readFileSync(file)), file, cached: true };
    } catch {
      // A damaged cache is encoded again.
    }
  }
  const clip = await encode(p, ffmpeg);
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, serialise(clip));
  fs.renameSync(tmp, file);
  return { clip, file, cached: false };
}

/** Reads a cached clip (in the generator processes). */
export function readClip(file: string): Clip {
  return deserialise(fs.readFileSync(file));
}
