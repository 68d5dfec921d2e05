/**
 * Recording benchmark: what recording a call costs, and how long its final
 * file takes to make.
 *
 *   npm run bench:recording        (about 2 minutes)
 *
 * With a real mediasoup worker and real ffmpeg, no browser: each of the two
 * participants is an ffmpeg sending a 640x480 20 fps VP8 test pattern and an
 * Opus tone as RTP into the call's router (standing in for a browser; its
 * own CPU is not counted), and each receives the other's media (consumers on
 * plain transports sending to a socket here that discards it; WebRTC would
 * add SRTP encryption on top). It measures:
 * - CPU of the call with and without recording: the mediasoup worker's
 *   user+system time, plus the recorder's ffmpegs' when recording, over
 *   10 s, read from /proc/<pid>/stat; two rounds each, alternating, side by
 *   side with the ratio; and the ffmpegs' resident memory;
 * - composing: a 30 s recording of the two composed into the final MP4
 *   (libx264 veryfast, 1280x480): how long it takes, per minute of call, and
 *   the sizes of the raw tracks and the final file per minute.
 * Everything runs on loopback; it stops by itself.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { CallRecorder, composeRecording, PortAllocator, resolveFfmpeg, resolveWorkerBinary, RoomRegistry, WorkerPool, type Room } from '../media';
import { freePort } from '../test/support/process';
import { startRtpSource, type RtpSource } from '../test/support/rtp-source';

const MEASURE_MS = 10_000;
const COMPOSE_CALL_MS = 30_000;
const logger = pino({ level: 'silent' });
const ffmpegPath = resolveFfmpeg(process.env.FFMPEG_PATH);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** user + system CPU seconds of a process so far. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

/** CPU of the given processes over `ms`, as % of one core. */
async function cpuPercent(pids: number[], ms: number): Promise<number> {
  const before = pids.map(cpuSeconds);
  const started = process.hrtime.bigint();
  await sleep(ms);
  const after = pids.map(cpuSeconds);
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  return (after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)) / elapsed * 100;
}

/** A UDP sink on 127.0.0.1 (RTP port and the next one for RTCP) that discards what it gets. */
async function sink(): Promise<{ port: number; close(): void }> {
  for (;;) {
    const port = 40000 + 2 * Math.floor(Math.random() * 2000);
    const sockets = [dgram.createSocket('udp4'), dgram.createSocket('udp4')];
    const bound = await Promise.all(sockets.map((s, i) => new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.bind(port + i, '127.0.0.1', () => resolve(true));
    })));
    if (bound.every(Boolean)) return { port, close: () => sockets.forEach((s) => s.close()) };
    sockets.forEach((s) => { try { s.close(); } catch { /* not bound */ } });
  }
}

/** Each participant receives the other's media, as in a call. */
async function forwardEachOther(room: Room): Promise<() => void> {
  const closers: (() => void)[] = [];
  for (const producer of room.listProducers()) {
    const target = await sink();
    const { transport, consumer } = await room.createPlainConsumer(producer.producerId, { ip: '127.0.0.1', port: target.port, rtcpPort: target.port + 1 });
    await consumer.resume();
    closers.push(() => { transport.close(); target.close(); });
  }
  return () => closers.forEach((c) => c());
}

async function main(): Promise<void> {
  const pool = await WorkerPool.create({
    workerBin: resolveWorkerBinary(process.env.MEDIASOUP_WORKER_BIN, path.join(__dirname, '..')),
    workers: 1,
    listenIp: '127.0.0.1',
    basePort: await freePort(),
    rtcMinPort: 46000,
    rtcMaxPort: 46999,
    logLevel: 'warn',
    logger,
  });
  const rooms = new RoomRegistry(pool, logger);
  const ports = new PortAllocator(45000, 45999);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-bench-recording-'));
  const sources: RtpSource[] = [];
  try {
    const room = await rooms.get('bench-call');
    sources.push(await startRtpSource(room, { peerId: 'clerk', role: 'clerk', video: 'vp8', size: '640x480', fps: 20, ffmpegPath }));
    sources.push(await startRtpSource(room, { peerId: 'customer', role: 'customer', video: 'vp8', size: '640x480', fps: 20, frequency: 660, ffmpegPath }));
    const stopForwarding = await forwardEachOther(room);
    const workerPid = pool.describe()[0]!.pid;
    await sleep(2000);

    const without: number[] = [];
    const workerWith: number[] = [];
    const ffmpegs: number[] = [];
    let ffmpegRss: number[] = [];
    for (let round = 0; round < 2; round++) {
      without.push(await cpuPercent([workerPid], MEASURE_MS));
      const recorder = await CallRecorder.start(room, { dir: path.join(dir, `round-${round}`), ffmpegPath, ports, logger });
      await sleep(2000); // past the first key frame: the ffmpegs are writing
      const pids = recorder.processIds();
      const [worker, recorders] = await Promise.all([cpuPercent([workerPid], MEASURE_MS), cpuPercent(pids, MEASURE_MS)]);
      workerWith.push(worker);
      ffmpegs.push(recorders);
      ffmpegRss = pids.map(rssMb);
      await recorder.stop();
    }

    // A 30 s recording, then its final file.
    const composeDir = path.join(dir, 'compose');
    const recorder = await CallRecorder.start(room, { dir: composeDir, ffmpegPath, ports, logger });
    await sleep(COMPOSE_CALL_MS);
    const tracks = await recorder.stop();
    stopForwarding();
    const callMs = Math.max(...tracks.map((t) => t.endedAt!)) - Math.min(...tracks.map((t) => t.startedAt));
    const out = path.join(composeDir, 'call.mp4');
    const started = Date.now();
    const { durationMs } = await composeRecording(tracks, out, { ffmpegPath });
    const composeMs = Date.now() - started;
    const perMinute = (bytes: number) => (bytes / (callMs / 60000) / 1e6).toFixed(1);
    const rawBytes = tracks.reduce((n, t) => n + fs.statSync(t.file).size, 0);

    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const fmt = (v: number[]) => v.map((x) => x.toFixed(2)).join(' / ');
    const ffmpegVersion = execFileSync(ffmpegPath, ['-version']).toString().split('\n')[0];
    console.log(`VClerk recording benchmark: Node ${process.version}, mediasoup 3.12.16, 1 worker, ${os.cpus().length} cores, ${ffmpegVersion}`);
    console.log('two participants, each sending 640x480 20 fps VP8 + Opus and receiving the other\'s; loopback');
    console.log('');
    const total = workerWith.map((w, i) => w + ffmpegs[i]!);
    console.log(`CPU over ${MEASURE_MS / 1000} s, % of one core, 2 rounds   without recording   with recording   ratio`);
    console.log(`  mediasoup worker                     ${fmt(without).padStart(17)}   ${fmt(workerWith).padStart(14)}   ${(mean(workerWith) / mean(without)).toFixed(2)}x`);
    console.log(`  the 2 recorder ffmpegs               ${'-'.padStart(17)}   ${fmt(ffmpegs).padStart(14)}`);
    console.log(`  worker + recorder ffmpegs            ${fmt(without).padStart(17)}   ${fmt(total).padStart(14)}   ${(mean(total) / mean(without)).toFixed(2)}x`);
    console.log(`  recorder ffmpeg resident memory      ${ffmpegRss.map((r) => `${r.toFixed(0)} MB`).join(' + ')}`);
    console.log('');
    console.log(`composing a ${(callMs / 1000).toFixed(1)} s recording (${tracks.length} tracks) into one MP4 of ${(durationMs / 1000).toFixed(1)} s`);
    console.log(`  took ${(composeMs / 1000).toFixed(1)} s: ${((composeMs / 1000) / (callMs / 60000)).toFixed(1)} s per minute of call (${(callMs / composeMs).toFixed(1)}x real time)`);
    console.log(`  size per minute of call: raw tracks ${perMinute(rawBytes)} MB, final MP4 ${perMinute(fs.statSync(out).size)} MB`);
  } finally {
    await Promise.all(sources.map((s) => s.stop()));
    await rooms.closeAll();
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
