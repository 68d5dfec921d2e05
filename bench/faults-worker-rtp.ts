/**
 * bench/faults.ts, `--only worker-rtp`: kill -9 of the media worker under
 * N calls without browsers. Each call is two participants replaying the load
 * bench's clip (VP8 about 1 Mbit/s at 30 fps, and Opus) as RTP from the load
 * generator (bench/load/generator.ts) into the appliance's own WorkerPool,
 * RoomRegistry and Rooms, wired as bench/load/vclerk-target.ts does (ingest
 * transport + room.produce per participant, room.createPlainConsumer to the
 * other participant's receivers). On the room's `reset` (the pool replaced the
 * worker, the registry moved the room to a new router) each simulated client
 * does what the browser client does on `mediaReset` (client/call/session.ts:
 * rejoin, retried with a growing delay): room.join again, a new ingest
 * transport and producers, new plain consumers to the same receivers with a
 * key frame request; then the generator sends to the new ingest ports,
 * starting from the clip's first (key) frame as a browser's new encoder does.
 *
 * Per call, media again = both participants' audio and video arriving at the
 * receivers from the new consumers (a new SSRC), timed from the kill.
 * Everything runs on 127.0.0.1 and stops by itself at the bound.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startMedia } from '../app/calls/media-setup';
import { CallService } from '../app/calls/service';
import { resolveFfmpeg, type Room } from '../media';
import { seedOrganisation, seedUser } from '../test/support/accounts';
import { silentLogger, testConfig } from '../test/support/context';
import { createTestDatabase } from '../test/support/database';
import { freePortBlock } from '../test/support/process';
import { DEFAULT_CLIP, loadClip, type ClipParameters } from './load/clip';
import type { Arrival, GeneratorStats } from './load/generator';
import { Generators } from './load/generators';
import type { ParticipantReceivers, ParticipantSend } from './load/target';
import { connectCall, peerIds } from './load/vclerk-call';


export interface WorkerRtpOptions {
  calls: number;
  /** After the kill, how long calls may take to get media again. */
  boundMs: number;
  /** Seconds of media measured before the kill and after the recovery (loss, jitter). */
  holdSeconds: number;
  /** Generator processes; default one per 50 calls. */
  generators?: number;
  /** The replayed clip (default: the load bench's, 10 s; a shorter one encodes faster where it is not cached yet). */
  clip?: ClipParameters;
  log: (message: string) => void;
}

export interface WorkerRtpResult {
  calls: number;
  killedPid: number;
  routersOnKilled: number;
  replacedPid: number | undefined;
  routersOnReplaced: number;
  /** Per call, ms from the kill until all four streams arrived again (null: not within the bound); the same per kind. */
  mediaAgainMs: (number | null)[];
  audioAgainMs: (number | null)[];
  videoAgainMs: (number | null)[];
  /** Server side, ms from the kill: the new worker up (workerReplaced), every room reset, every simulated client joined again. */
  workerReplacedMs: number | undefined;
  roomsResetMs: number | undefined;
  roomsReset: number;
  rejoinedMs: number | undefined;
  rejoinAttempts: number;
  rejoinErrors: string[];
  before: Loss;
  after: Loss | undefined;
  loadAtKill: string;
}

export interface Loss {
  seconds: number;
  lossMean: number;
  lossWorst: number;
  silent: number;
  jitterWorstMs: number;
  rxPps: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

function load(): string {
  const [one, five] = os.loadavg();
  return `load average ${one!.toFixed(1)} (1 min), ${five!.toFixed(1)} (5 min) on ${os.availableParallelism()} cores`;
}

function loss(stats: GeneratorStats[], seconds: number): Loss {
  const sum = (f: (s: GeneratorStats) => number) => stats.reduce((n, s) => n + f(s), 0);
  const expected = sum((s) => s.expected);
  const received = sum((s) => s.received);
  return {
    seconds,
    lossMean: expected > 0 ? (Math.max(0, expected - received) / expected) * 100 : 0,
    lossWorst: Math.max(0, ...stats.map((s) => s.lossWorst)),
    silent: sum((s) => s.silent),
    jitterWorstMs: Math.max(0, ...stats.map((s) => s.jitterWorstMs)),
    rxPps: received / seconds,
  };
}

async function measureLoss(generators: Generators, holdSeconds: number): Promise<Loss> {
  await generators.stats();
  const t0 = performance.now();
  await sleep(holdSeconds * 1000);
  const stats = await generators.stats();
  return loss(stats, (performance.now() - t0) / 1000);
}


/** When a call's streams all arrive from SSRCs other than those before the kill (epoch ms of the last to start), else undefined. */
function againAt(arrivals: Arrival[], before: Arrival[], killedAt: number, kind?: 'audio' | 'video'): number | undefined {
  let latest = 0;
  for (let i = 0; i < arrivals.length; i++) {
    const a = arrivals[i]!;
    if (kind && a.kind !== kind) continue;
    if (a.ssrc === 0 || a.ssrc === before[i]!.ssrc || a.since < killedAt) return undefined;
    latest = Math.max(latest, a.since);
  }
  return latest;
}

export async function workerRtpKill(o: WorkerRtpOptions): Promise<WorkerRtpResult> {
  const whole = (n: number | undefined, min: number, max: number) => n === undefined || (Number.isInteger(n) && n >= min && n <= max);
  if (!whole(o.calls, 1, 1000) || !whole(o.generators, 1, 16) || !(o.boundMs > 0 && o.boundMs <= 600_000) || !(o.holdSeconds > 0 && o.holdSeconds <= 120)) {
    throw new Error('worker-rtp: --calls 1 to 1000, --generators 1 to 16, --bound up to 600 s, --hold up to 120 s');
  }
  const db = await createTestDatabase();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-faults-rtp-'));
  let media: Awaited<ReturnType<typeof startMedia>> | undefined;
  let generators: Generators | undefined;
  try {
    // The appliance's configuration on loopback, one worker; port ranges widened as the load bench does (6 plain transports per call).
    const config = testConfig({
      VCLERK_DATA_DIR: dataDir,
      VCLERK_MEDIA_WORKERS: '1',
      VCLERK_MEDIA_LISTEN_IP: '127.0.0.1',
      VCLERK_MEDIA_PORT: String(await freePortBlock(1)),
      VCLERK_MEDIA_RTC_PORT_MIN: '20000',
      VCLERK_MEDIA_RTC_PORT_MAX: '29999',
    });
    media = await startMedia(config, silentLogger);
    const { pool, rooms } = media;
    const org = await seedOrganisation(db.knex, 'Fault Bench RTP');
    const clerk = await seedUser(db.knex, org, 'clerk');
    const calls = new CallService(db.knex);
    const caller = { user: { id: clerk.id, organisationId: org.id, name: 'Fault clerk' } as never, ip: '127.0.0.1', userAgent: 'fault bench', sessionId: 'faults' };
    const { file } = await loadClip(o.clip ?? DEFAULT_CLIP, resolveFfmpeg(config.ffmpegPath));
    generators = await Generators.start(o.generators ?? Math.ceil(o.calls / 50), file, 4);
    const gen = generators;

    // Set by the kill; the reset handlers run only after it.
    let killedAt = 0;
    const rejoined: number[] = [];
    const resets: number[] = [];
    const rejoinErrors: string[] = [];
    let rejoinAttempts = 0;

    /** What client/call/session.ts does on mediaReset: join again, retried with a growing delay until the bound. */
    const rejoin = async (room: Room, index: number, receivers: [ParticipantReceivers, ParticipantReceivers]): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        rejoinAttempts++;
        try {
          const { sends } = await connectCall(room, index, receivers);
          await gen.retarget(index, sends);
          rejoined.push(now() - killedAt);
          return;
        } catch (err) {
          if (rejoinErrors.length < 5) rejoinErrors.push(`call ${index}: ${(err as Error).message}`);
          if (now() - killedAt > o.boundMs) return;
          await sleep(Math.min(250 * 2 ** attempt, 4000));
        }
      }
    };

    o.log(`starting ${o.calls} calls (RTP, no browsers), ${gen.pids().length} generator process(es)`);
    const started = performance.now();
    for (let index = 0; index < o.calls; index++) {
      const { call } = await calls.start(caller, config.callLinkHours, { reference: `fault-rtp-${index}` });
      const room = await rooms.get(call.id);
      const [clerkId, customerId] = peerIds(index);
      room.addPeer(clerkId, 'clerk', 'Fault clerk');
      room.addPeer(customerId, 'customer', `Customer ${index}`);
      const receivers = await gen.receivers(index);
      await gen.send(index, (await connectCall(room, index, receivers)).sends);
      room.on('reset', () => {
        resets.push(now() - killedAt);
        void rejoin(room, index, receivers);
      });
    }
    // Every stream flowing (video from the clip's first key frame), bounded.
    const flowingBy = performance.now() + 30_000;
    for (;;) {
      const a = await gen.arrivals();
      if ([...a.values()].every((streams) => streams.every((s) => s.ssrc !== 0 && now() - s.last < 500))) break;
      if (performance.now() > flowingBy) throw new Error('the calls did not all get media within 30 s of starting');
      await sleep(200);
    }
    o.log(`${o.calls} calls flowing after ${((performance.now() - started) / 1000).toFixed(1)} s; ${load()}`);
    await sleep(1000);
    const before = await measureLoss(gen, o.holdSeconds);

    const [worker] = pool.describe();
    const beforeKill = await gen.arrivals();
    const loadAtKill = load();
    let workerReplacedMs: number | undefined;
    pool.once('workerReplaced', () => (workerReplacedMs = now() - killedAt));
    killedAt = now();
    process.kill(worker!.pid, 'SIGKILL');
    o.log(`killed worker pid ${worker!.pid} carrying ${worker!.routers} routers`);

    const mediaAt = new Map<number, number>();
    while (mediaAt.size < o.calls && now() - killedAt < o.boundMs) {
      await sleep(50);
      for (const [index, arrivals] of await gen.arrivals()) {
        if (mediaAt.has(index)) continue;
        const at = againAt(arrivals, beforeKill.get(index)!, killedAt);
        if (at !== undefined) mediaAt.set(index, at);
      }
    }
    const final = await gen.arrivals();
    const per = (kind?: 'audio' | 'video') =>
      Array.from({ length: o.calls }, (_, i) => {
        const at = kind ? againAt(final.get(i)!, beforeKill.get(i)!, killedAt, kind) : mediaAt.get(i);
        return at === undefined ? null : Math.round(at - killedAt);
      });
    o.log(`${mediaAt.size} / ${o.calls} calls with media again ${((now() - killedAt) / 1000).toFixed(1)} s after the kill`);
    const after = mediaAt.size > 0 ? await (sleep(1000).then(() => measureLoss(gen, o.holdSeconds))) : undefined;
    const [replaced] = pool.describe();
    return {
      calls: o.calls,
      killedPid: worker!.pid,
      routersOnKilled: worker!.routers,
      replacedPid: replaced?.alive ? replaced.pid : undefined,
      routersOnReplaced: replaced?.routers ?? 0,
      mediaAgainMs: per(),
      audioAgainMs: per('audio'),
      videoAgainMs: per('video'),
      workerReplacedMs,
      roomsResetMs: resets.length === o.calls ? Math.max(...resets) : undefined,
      roomsReset: resets.length,
      rejoinedMs: rejoined.length === o.calls ? Math.max(...rejoined) : undefined,
      rejoinAttempts,
      rejoinErrors,
      before,
      after,
      loadAtKill,
    };
  } finally {
    await generators?.stop();
    if (media) {
      await media.rooms.closeAll();
      await media.pool.close();
    }
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function spread(times: (number | null)[]): string {
  const t = times.filter((x): x is number => x !== null);
  return `median ${percentile(t, 50)} ms   p90 ${percentile(t, 90)} ms   max ${t.length ? Math.max(...t) : NaN} ms   min ${t.length ? Math.min(...t) : NaN} ms`;
}

function lossLine(l: Loss | undefined): string {
  if (!l) return '-';
  return `loss ${l.lossMean.toFixed(2)} % mean, ${l.lossWorst.toFixed(2)} % worst stream; ${l.silent} silent stream(s); jitter worst ${l.jitterWorstMs.toFixed(1)} ms; ${l.rxPps.toFixed(0)} pkt/s received (over ${l.seconds.toFixed(1)} s)`;
}

/** The printed report. */
export function reportWorkerRtp(r: WorkerRtpResult, boundMs: number): string[] {
  const ok = r.mediaAgainMs.filter((t) => t !== null).length;
  const lines = [
    '',
    `kill -9 of a media worker during ${r.calls} calls without browsers (RTP replay: VP8 about 1 Mbit/s 30 fps + Opus per participant, 1 worker, loopback; ${r.loadAtKill} at the kill)`,
    `  calls with media again      ${ok} / ${r.calls}   (audio and video of both participants arriving from the new consumers; bound ${boundMs / 1000} s after the kill)`,
    `  time to media again         ${spread(r.mediaAgainMs)}`,
    `    audio only                ${spread(r.audioAgainMs)}`,
    `    video only                ${spread(r.videoAgainMs)}`,
    `  worker replaced             ${r.replacedPid ? `yes (pid ${r.killedPid} -> ${r.replacedPid}), ${r.routersOnReplaced} routers on it (${r.routersOnKilled} before)` : 'NO'}`,
    `  server side                 new worker up after ${r.workerReplacedMs?.toFixed(0) ?? '-'} ms, every room reset after ${r.roomsResetMs?.toFixed(0) ?? `- (${r.roomsReset} of ${r.calls})`} ms`,
    `  clients joined again        all after ${r.rejoinedMs?.toFixed(0) ?? '-'} ms (${r.rejoinAttempts} attempts for ${r.calls} calls)`,
    `  before the kill             ${lossLine(r.before)}`,
    `  after the recovery          ${lossLine(r.after)}`,
  ];
  if (ok < r.calls) lines.push(`  without media at the bound  calls ${r.mediaAgainMs.map((t, i) => (t === null ? i : -1)).filter((i) => i >= 0).join(', ')}`);
  if (r.rejoinErrors.length) lines.push(`  rejoin errors (first ${r.rejoinErrors.length})  ${r.rejoinErrors.join('; ')}`);
  return lines;
}
