import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { types } from 'mediasoup';
import {
  buildSdp,
  CallRecorder,
  composeRecording,
  MediaError,
  PortAllocator,
  probeTrack,
  resolveFfmpeg,
  withinSpan,
  resolveWorkerBinary,
  RoomRegistry,
  WorkerPool,
  type RecordingTrack,
  type Room,
} from '../media';
import { silentLogger } from './support/context';
import { startTestPool } from './support/media-pool';
import { startRtpSource, type RtpSource } from './support/rtp-source';

const run = promisify(execFile);
const FFMPEG = resolveFfmpeg(process.env.FFMPEG_PATH);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ffprobe(file: string, entries: string, extra: string[] = []): Promise<Record<string, string>[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', ...extra, '-show_entries', entries, '-of', 'json', file]);
  const json = JSON.parse(stdout) as { streams?: Record<string, string>[]; format?: Record<string, string> };
  return json.streams ?? [json.format ?? {}];
}

/** Video frames and audio packets ffprobe counts in a file. */
async function contents(file: string): Promise<{ video: number; audio: number; codecs: string[] }> {
  const streams = await ffprobe(file, 'stream=codec_type,codec_name,nb_read_frames,nb_read_packets', ['-count_frames', '-count_packets']);
  const count = (type: string, key: string) => streams.filter((s) => s.codec_type === type).reduce((n, s) => n + Number(s[key] ?? 0), 0);
  return { video: count('video', 'nb_read_frames'), audio: count('audio', 'nb_read_packets'), codecs: streams.map((s) => s.codec_name!) };
}

/** Average luma (0-255) of a region of the frame at `at` seconds: black video is 16. */
async function luma(file: string, at: number, crop: string): Promise<number> {
  const { stdout } = await run(FFMPEG, ['-v', 'error', '-ss', String(at), '-i', file, '-frames:v', '1', '-vf', `crop=${crop},scale=1:1:flags=area,format=gray`, '-f', 'rawvideo', '-'], { encoding: 'buffer' });
  return stdout[0]!;
}

async function meanVolume(file: string): Promise<number> {
  const { stderr } = await run(FFMPEG, ['-hide_banner', '-nostats', '-i', file, '-af', 'volumedetect', '-f', 'null', '-']);
  return Number(/mean_volume: (-?[\d.]+) dB/.exec(stderr)?.[1] ?? -Infinity);
}

/** The local UDP ports a process holds (its socket inodes matched against /proc/net/udp). */
function udpPortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (match) inodes.add(match[1]!);
  }
  const ports = new Set<number>();
  for (const line of fs.readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length > 9 && inodes.has(cols[9]!)) ports.add(parseInt(cols[1]!.split(':')[1]!, 16));
  }
  return ports;
}

function waitFor(emitter: CallRecorder, event: 'trackStarted' | 'trackWriting' | 'trackEnded', match: (track: RecordingTrack) => boolean, timeoutMs = 15000): Promise<RecordingTrack> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching ${event} within ${timeoutMs} ms`)), timeoutMs);
    const listener = (track: RecordingTrack) => {
      if (!match(track)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(track);
    };
    emitter.on(event, listener);
  });
}

async function until(condition: () => boolean, what: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('PortAllocator', () => {
  it('hands out even ports whose pair (RTP, RTCP) lies in the range, each once, and fails with no_ports when exhausted', async () => {
    const ports = new PortAllocator(47501, 47510); // even bases 47502..47508 fit with their +1
    const taken = await Promise.all([1, 2, 3, 4].map(() => ports.take()));
    assert.deepEqual([...taken].sort(), [47502, 47504, 47506, 47508]);
    await assert.rejects(ports.take(), (err: unknown) => err instanceof MediaError && err.code === 'no_ports');
    ports.release(47504);
    assert.equal(await ports.take(), 47504);
    assert.equal(ports.capacity, 4);
  });

  it('skips a pair another process holds (either port bound on 127.0.0.1)', async () => {
    const held = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => held.bind(47523, '127.0.0.1', resolve));
    try {
      const ports = new PortAllocator(47520, 47527);
      assert.deepEqual([await ports.take(), await ports.take(), await ports.take()], [47520, 47524, 47526]);
      await assert.rejects(ports.take(), /no_ports/);
    } finally {
      held.close();
    }
  });
});

describe('buildSdp', () => {
  it('describes each stream with its payload type, codec, RTCP port and format parameters, as plain RTP/AVP', () => {
    const opus: types.RtpParameters = { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2, parameters: { minptime: 10, useinbandfec: 1 } }], encodings: [{ ssrc: 1 }] };
    const h264: types.RtpParameters = { codecs: [{ mimeType: 'video/H264', payloadType: 125, clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' } }], encodings: [{ ssrc: 2 }] };
    const sdp = buildSdp([{ kind: 'audio', port: 45000, rtpParameters: opus }, { kind: 'video', port: 45002, rtpParameters: h264 }]);
    assert.match(sdp, /^v=0\r\n/);
    assert.match(sdp, /c=IN IP4 127\.0\.0\.1\r\n/);
    assert.match(sdp, /m=audio 45000 RTP\/AVP 100\r\na=rtcp:45001\r\na=rtpmap:100 opus\/48000\/2\r\na=fmtp:100 minptime=10;useinbandfec=1\r\na=recvonly\r\n/);
    assert.match(sdp, /m=video 45002 RTP\/AVP 125\r\na=rtcp:45003\r\na=rtpmap:125 H264\/90000\r\na=fmtp:125 packetization-mode=1;profile-level-id=42e01f\r\na=recvonly\r\n/);
    const vp8: types.RtpParameters = { codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }], encodings: [{ ssrc: 3 }] };
    assert.doesNotMatch(buildSdp([{ kind: 'video', port: 45004, rtpParameters: vp8 }]), /a=fmtp/);
  });
});

describe('withinSpan', () => {
  it('cuts a track to the time its segment ran: a spoofed far timestamp does not stretch the call', () => {
    const probed = { audio: [{ start: 0, end: 9.5 }, { start: 36_000, end: 36_000.02 }], video: [{ start: 0.1, end: 9.9 }], duration: 36_000.02 };
    assert.deepEqual(withinSpan(probed, 12), { audio: [{ start: 0, end: 9.5 }], video: [{ start: 0.1, end: 9.9 }], duration: 12 });
    assert.deepEqual(withinSpan({ audio: [{ start: 0, end: 14 }], video: [], duration: 14 }, 12), { audio: [{ start: 0, end: 12 }], video: [], duration: 12 });
    const inside = { audio: [{ start: 0, end: 5 }], video: [], duration: 5 };
    assert.equal(withinSpan(inside, 12), inside, 'unchanged within the span');
  });
});

describe('resolveFfmpeg', () => {
  it('prefers the configured path, else ffmpeg-static when installed, else ffmpeg from the PATH', () => {
    assert.equal(resolveFfmpeg('/opt/ffmpeg/bin/ffmpeg'), '/opt/ffmpeg/bin/ffmpeg');
    let staticBin: string | undefined;
    try {
      staticBin = require('ffmpeg-static') as string; // eslint-disable-line @typescript-eslint/no-require-imports
    } catch {
      staticBin = undefined;
    }
    assert.equal(resolveFfmpeg(undefined), staticBin && fs.existsSync(staticBin) ? staticBin : 'ffmpeg');
  });
});

describe('CallRecorder and composeRecording (real mediasoup worker, real ffmpeg)', function () {
  this.timeout(120000);
  let pool: WorkerPool;
  let rooms: RoomRegistry;
  let dir: string;
  const ports = new PortAllocator(47600, 47799);
  let calls = 0;
  let sources: RtpSource[] = [];

  before(async () => {
    ({ pool, rooms } = await startTestPool({ rtcMinPort: 47800, rtcMaxPort: 47999 }));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-recording-'));
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    sources = [];
    await rooms.closeAll();
  });

  after(async () => {
    await pool?.close();
    if (!process.env.KEEP_RECORDINGS) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A room with a test-pattern participant per role: the clerk sends VP8, the customer H264 (as Safari would). */
  async function call(who: ('clerk' | 'customer')[] = ['clerk', 'customer']): Promise<{ room: Room; tracksDir: string }> {
    const room = await rooms.get(`call-${++calls}`);
    for (const role of who) sources.push(await startRtpSource(room, { peerId: `${role}-${calls}`, role, video: role === 'clerk' ? 'vp8' : 'h264', frequency: role === 'clerk' ? 440 : 660 }));
    return { room, tracksDir: path.join(dir, `call-${calls}`) };
  }

  it('records each participant into their own Matroska file and composes a browser-playable MP4 with both side by side', async () => {
    const { room, tracksDir } = await call();
    const recorder = await CallRecorder.start(room, { dir: tracksDir, ffmpegPath: FFMPEG, ports, logger: silentLogger });
    assert.deepEqual(recorder.processes().map((p) => p.role).sort(), ['clerk', 'customer']);
    assert.equal(room.describe().plainTransports, 4, 'one per recorded producer');
    await sleep(6000);
    const tracks = await recorder.stop();
    assert.equal(room.describe().plainTransports, 0, 'closed with the recording');
    assert.equal(recorder.stopped, true);
    assert.deepEqual(await recorder.stop(), tracks, 'stop() is idempotent');
    assert.deepEqual(recorder.processes(), []);

    assert.deepEqual(tracks.map((t) => path.basename(t.file)).sort(), ['clerk-1.mkv', 'customer-1.mkv']);
    for (const track of tracks) {
      assert.deepEqual(track.kinds, ['audio', 'video']);
      assert.equal(track.exitCode, 0, `${track.file} ended with q`);
      assert.equal(track.partial, false);
      const c = await contents(track.file);
      assert.ok(c.video >= 40, `${track.file}: ${c.video} video frames`);
      assert.ok(c.audio >= 200, `${track.file}: ${c.audio} audio packets`);
      assert.deepEqual(c.codecs.sort(), track.role === 'clerk' ? ['opus', 'vp8'] : ['h264', 'opus'], 'stream copy, no re-encoding');
    }
    assert.deepEqual(fs.readdirSync(tracksDir).filter((f) => f.endsWith('.sdp')), [], 'no SDP left behind');

    const out = path.join(tracksDir, 'call.mp4');
    const progress: number[] = [];
    const { durationMs } = await composeRecording(tracks, out, { ffmpegPath: FFMPEG, onProgress: (f) => progress.push(f), log: silentLogger });
    const recordedMs = Math.max(...tracks.map((t) => t.endedAt!)) - Math.min(...tracks.map((t) => t.startedAt));
    const [format] = await ffprobe(out, 'format=duration,format_name');
    assert.ok(Math.abs(Number(format!.duration) * 1000 - recordedMs) < 2000, `MP4 ${format!.duration} s vs ${recordedMs} ms recorded`);
    assert.ok(Math.abs(durationMs - recordedMs) < 2000);
    const c = await contents(out);
    assert.deepEqual(c.codecs, ['h264', 'aac']);
    assert.ok(c.video >= 100, `${c.video} frames`);
    const [video] = await ffprobe(out, 'stream=width,height,pix_fmt', ['-select_streams', 'v']);
    assert.deepEqual([video!.width, video!.height, video!.pix_fmt], [1280, 480, 'yuv420p']);
    assert.equal(progress.at(-1), 1);
    assert.ok(progress.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= progress[i - 1]!)), 'progress only grows, within 0..1');
    // moov before mdat: plays while it downloads.
    const head = fs.readFileSync(out).subarray(0, 4096).toString('latin1');
    assert.ok(head.indexOf('moov') > 0 && (head.indexOf('mdat') === -1 || head.indexOf('moov') < head.indexOf('mdat')), 'faststart');
    // Both halves show their participant's test pattern (black is 16), both tones are audible.
    for (const at of [1.5, 4]) {
      assert.ok((await luma(out, at, '640:480:0:0')) > 40, `clerk half not black at ${at} s`);
      assert.ok((await luma(out, at, '640:480:640:0')) > 40, `customer half not black at ${at} s`);
    }
    assert.ok((await meanVolume(out)) > -35, 'audio is audible');
  });

  it('marks the track of an ffmpeg killed mid-call as partial, emits failed, stops the others cleanly, and still composes', async () => {
    const { room, tracksDir } = await call();
    const recorder = await CallRecorder.start(room, { dir: tracksDir, ffmpegPath: FFMPEG, ports, logger: silentLogger });
    await sleep(3000);
    const victim = recorder.processes().find((p) => p.role === 'customer')!;
    const failed = once(recorder, 'failed') as Promise<[{ role: string; file: string; reason: string }]>;
    process.kill(victim.pid, 'SIGKILL');
    const [failure] = await failed;
    assert.equal(failure.role, 'customer');
    assert.equal(failure.file, victim.file);
    assert.match(failure.reason, /SIGKILL/);
    assert.equal(recorder.stopped, true, 'the recorder stops itself');
    const tracks = await recorder.stop();
    const killed = tracks.find((t) => t.role === 'customer')!;
    const clerk = tracks.find((t) => t.role === 'clerk')!;
    assert.deepEqual([killed.partial, killed.exitCode], [true, null]);
    assert.deepEqual([clerk.partial, clerk.exitCode], [false, 0]);
    assert.ok((await contents(killed.file)).video > 10, 'the partial Matroska file still decodes');

    const out = path.join(tracksDir, 'call.mp4');
    await composeRecording(tracks, out, { ffmpegPath: FFMPEG });
    const c = await contents(out);
    assert.deepEqual(c.codecs, ['h264', 'aac']);
    assert.ok(c.video >= 50, `${c.video} frames`);
    // Sampled inside the killed participant's recorded video, placed as the composer places it
    // (its file's time 0 at its startedAt): on a loaded machine its first frame may come late.
    const t0 = Math.min(...tracks.map((t) => t.startedAt));
    const shown = (await probeTrack(FFMPEG, killed.file)).video[0]!;
    const at = (killed.startedAt - t0) / 1000 + (shown.start + shown.end) / 2;
    assert.ok((await luma(out, at, '640:480:640:0')) > 40, `the killed participant is visible up to the kill (at ${at.toFixed(2)} s)`);
  });

  it('follows the participants: a late joiner, a closed camera, a paused camera coming back, someone leaving', async () => {
    const { room, tracksDir } = await call(['clerk']);
    const recorder = await CallRecorder.start(room, { dir: tracksDir, ffmpegPath: FFMPEG, ports, logger: silentLogger, settleMs: 200 });
    recorder.on('failed', (f) => assert.fail(`unexpected failure: ${f.reason}`));
    assert.deepEqual(recorder.processes().map((p) => p.role), ['clerk'], 'nobody else sends: no other ffmpeg');

    // The customer joins with the camera paused: only their microphone can be recorded.
    const joined = waitFor(recorder, 'trackStarted', (t) => t.role === 'customer');
    const customer = await startRtpSource(room, { peerId: 'late-customer', role: 'customer', video: 'vp8', frequency: 660 });
    sources.push(customer);
    await room.pauseProducer('late-customer', customer.video!.id);
    assert.deepEqual((await joined).kinds, ['audio']);
    await sleep(1500);

    // The camera comes back: a new segment with both.
    const withVideo = waitFor(recorder, 'trackStarted', (t) => t.role === 'customer' && t.kinds.includes('video'));
    await room.resumeProducer('late-customer', customer.video!.id);
    assert.equal(path.basename((await withVideo).file), 'customer-2.mkv');
    await sleep(2500);

    // The camera is closed: a new segment with the microphone only.
    const audioOnly = waitFor(recorder, 'trackStarted', (t) => t.role === 'customer' && t.kinds.length === 1);
    await room.closeProducer('late-customer', customer.video!.id);
    assert.deepEqual((await audioOnly).kinds, ['audio']);
    await sleep(3000);

    // The customer leaves: their ffmpeg ends cleanly, none replaces it.
    const left = waitFor(recorder, 'trackEnded', (t) => path.basename(t.file) === 'customer-3.mkv');
    room.removePeer('late-customer');
    assert.equal((await left).partial, false);
    assert.deepEqual(recorder.processes().map((p) => p.role), ['clerk']);

    const tracks = await recorder.stop();
    assert.deepEqual(
      tracks.map((t) => [path.basename(t.file), t.kinds.join('+'), t.exitCode, t.partial]),
      [
        ['clerk-1.mkv', 'audio+video', 0, false],
        ['customer-1.mkv', 'audio', 0, false],
        ['customer-2.mkv', 'audio+video', 0, false],
        ['customer-3.mkv', 'audio', 0, false],
      ],
    );
    for (const t of tracks) assert.ok(t.endedAt! >= t.startedAt);
    assert.ok((await contents(path.join(tracksDir, 'customer-2.mkv'))).video > 10);

    // Composed: the customer's half shows their picture only while their camera was recorded.
    const out = path.join(tracksDir, 'call.mp4');
    if (process.env.KEEP_RECORDINGS) fs.writeFileSync(path.join(tracksDir, 'tracks.json'), JSON.stringify(tracks, null, 1));
    await composeRecording(tracks, out, { ffmpegPath: FFMPEG });
    // (Timed well inside each segment: a test source that fell behind sends its media in a burst, and the file keeps media time.)
    const at = (t: RecordingTrack, fraction: number) => (t.startedAt + fraction * (t.endedAt! - t.startedAt) - tracks[0]!.startedAt) / 1000;
    assert.ok((await luma(out, at(tracks[2]!, 0.5), '640:480:640:0')) > 40, 'customer visible while the camera was on');
    assert.ok((await luma(out, at(tracks[3]!, 0.85), '640:480:640:0')) < 20, 'customer half black after the camera closed');
    assert.ok((await luma(out, at(tracks[3]!, 0.85), '640:480:0:0')) > 40, 'clerk visible throughout');
  });

  it('refuses to start when ffmpeg cannot run, and leaves no port or consumer behind', async () => {
    const { room, tracksDir } = await call(['clerk']);
    const before = room.describe();
    assert.equal(before.plainTransports, 0);
    await assert.rejects(
      CallRecorder.start(room, { dir: tracksDir, ffmpegPath: path.join(tracksDir, 'no-such-ffmpeg'), ports, logger: silentLogger }),
      (err: unknown) => err instanceof MediaError && err.code === 'ffmpeg_failed' && /ENOENT/.test(String((err.cause as Error).message)),
    );
    assert.equal(ports.inUse, 0);
    assert.deepEqual(room.describe(), before);
  });

  it('starts on other ports when another process takes a checked port before ffmpeg binds it', async () => {
    const { room, tracksDir } = await call(['clerk']);
    // The race made certain: the first pair handed out is bound by someone else right after the check.
    const racy = new PortAllocator(47600, 47799);
    const take = racy.take.bind(racy);
    let intruder: dgram.Socket | undefined;
    racy.take = async () => {
      const port = await take();
      if (!intruder) {
        intruder = dgram.createSocket('udp4');
        await new Promise<void>((resolve) => intruder!.bind(port, '127.0.0.1', resolve));
      }
      return port;
    };
    try {
      const recorder = await CallRecorder.start(room, { dir: tracksDir, ffmpegPath: FFMPEG, ports: racy, logger: silentLogger });
      const [p] = recorder.processes();
      assert.ok(p, 'recording');
      assert.ok(!p.ports.includes(intruder!.address().port), 'not on the taken port');
      const held = udpPortsOf(p.pid);
      for (const port of p.ports) assert.ok(held.has(port) && held.has(port + 1), `ffmpeg holds ${port} and ${port + 1}`);
      await recorder.stop();
    } finally {
      intruder?.close();
    }
    assert.equal(racy.inUse, 0, 'every port released, the taken one too');
  });

  it('gives concurrent recordings separate ports, each held by its own ffmpeg', async () => {
    const a = await call();
    const b = await call();
    const [ra, rb] = await Promise.all([a, b].map(({ room, tracksDir }) => CallRecorder.start(room, { dir: tracksDir, ffmpegPath: FFMPEG, ports, logger: silentLogger })));
    try {
      const processes = [...ra!.processes(), ...rb!.processes()];
      assert.equal(processes.length, 4);
      const all = processes.flatMap((p) => p.ports.flatMap((port) => [port, port + 1]));
      assert.equal(new Set(all).size, all.length, 'no port used twice');
      assert.ok(all.every((p) => p >= 47600 && p <= 47799));
      for (const p of processes) {
        const held = udpPortsOf(p.pid);
        for (const port of p.ports) assert.ok(held.has(port) && held.has(port + 1), `ffmpeg ${p.pid} holds ${port} and ${port + 1}`);
      }
    } finally {
      await Promise.all([ra!.stop(), rb!.stop()]);
    }
    assert.equal(ports.inUse, 0, 'every port released');
  });

  it('ends the tracks cleanly when the worker dies, and refuses to compose nothing', async () => {
    const { room, tracksDir } = await call();
    const recorder = await CallRecorder.start(room, { dir: tracksDir, ffmpegPath: FFMPEG, ports, logger: silentLogger, settleMs: 100 });
    let failures = 0;
    recorder.on('failed', () => failures++);
    await until(() => recorder.processes().filter((p) => p.writing).length === 2, 'both ffmpegs writing');
    await sleep(1500);
    const ended = Promise.all(['clerk', 'customer'].map((role) => waitFor(recorder, 'trackEnded', (t) => t.role === role)));
    const replaced = once(pool, 'workerReplaced');
    process.kill(pool.describe()[0]!.pid, 'SIGKILL');
    const tracks = await ended;
    for (const t of tracks) assert.deepEqual([t.exitCode, t.partial], [0, false], `${t.file} ended cleanly`);
    assert.deepEqual(recorder.processes(), []);
    assert.equal(failures, 0);
    await recorder.stop();
    for (const t of tracks) assert.ok((await contents(t.file)).video > 10);
    // The pool brings a new worker: later calls work again.
    await replaced;

    await assert.rejects(
      composeRecording([{ role: 'clerk', file: path.join(tracksDir, 'missing.mkv'), startedAt: Date.now(), endedAt: Date.now(), kinds: ['audio'], exitCode: 0, partial: false }], path.join(tracksDir, 'x.mp4'), { ffmpegPath: FFMPEG }),
      (err: unknown) => err instanceof MediaError && err.code === 'nothing_to_compose',
    );
  });
});
