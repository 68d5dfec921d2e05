/**
 * Fault benchmark: what users see when parts of the appliance die.
 *
 *   npm run bench:faults -- [--calls 20] [--bound 60] [--only worker|worker-rtp|appliance]
 *
 * worker-rtp: the worker kill without browsers, N calls of replayed RTP
 *   through the same pool and rooms (bench/faults-worker-rtp.ts; --bound
 *   defaults to 30 s there, --hold seconds of loss measured before and after).
 * worker: N real calls (two headless Chromium processes, one browser
 *   context per participant, a 160x120 fake camera) on one mediasoup worker
 *   of the appliance's own pool, rooms and signalling; then kill -9 of that
 *   worker. Prints the calls with media again (framesDecoded growing on both
 *   sides again) within the bound, and the time to media again (median,
 *   max). The pool replaces the worker, each room moves to a new router, the
 *   browsers join again by themselves.
 * appliance: the compiled appliance (dist/) as a child process, recorded
 *   calls with chat, SIGKILL, start again on the same data directory and
 *   database (see bench/faults-appliance.ts).
 *
 * Everything runs on 127.0.0.1; each part stops by itself at its bound.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { seedOrganisation } from '../test/support/accounts';
import { startCallServer } from '../test/support/call-server';
import { createTestDatabase, startTestServer, stopTestServer } from '../test/support/database';
import { framesNow, launchFaultBrowser, measureRecovery, median, smallFakeVideo, startCalls, waitAllFlowing } from '../test/support/fault-calls';
import { runApplianceKill } from './faults-appliance';
import { reportWorkerRtp, workerRtpKill } from './faults-worker-rtp';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '20' },
    bound: { type: 'string' },
    only: { type: 'string' },
    hold: { type: 'string', default: '5' },
    generators: { type: 'string' },
    'recorded-calls': { type: 'string', default: '2' },
  },
});
const CALLS = Number(values.calls);
const BOUND_MS = Number(values.bound ?? 60) * 1000;
const PARTS = ['worker', 'worker-rtp', 'appliance'];
if (values.only !== undefined && !PARTS.includes(values.only)) throw new Error(`--only must be one of ${PARTS.join(', ')}`);

function log(message: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
}

function load(): string {
  const [one, five] = os.loadavg();
  return `load average ${one!.toFixed(1)} (1 min), ${five!.toFixed(1)} (5 min) on ${os.availableParallelism()} cores`;
}

async function workerKill(): Promise<void> {
  const db = await createTestDatabase();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-bench-faults-'));
  const server = await startCallServer(db, { workers: 1, graceMs: 10_000 });
  const video = smallFakeVideo(tmp);
  const [clerks, customers] = await Promise.all([launchFaultBrowser(video), launchFaultBrowser(video)]);
  try {
    const org = await seedOrganisation(db.knex, 'Fault Bench Bank');
    log(`starting ${CALLS} calls`);
    const started = Date.now();
    const calls = await startCalls({ baseUrl: server.url, knex: db.knex, org, clerkBrowser: clerks, customerBrowser: customers, count: CALLS });
    await waitAllFlowing(calls, 120_000);
    log(`${CALLS} calls flowing after ${((Date.now() - started) / 1000).toFixed(1)} s; ${load()}`);
    const [worker] = server.pool.describe();
    const baseline = await framesNow(calls);
    const loadAtKill = load();
    const killedAt = Date.now();
    // Where the time goes on the server side: the new worker up, every room on a new router of it.
    const milestones: { replaced?: number; rooms?: number } = {};
    server.pool.once('workerReplaced', () => (milestones.replaced = Date.now() - killedAt));
    const roomsWatch = setInterval(() => {
      const [w] = server.pool.describe();
      if (milestones.rooms === undefined && w && w.pid !== worker!.pid && w.routers >= CALLS) milestones.rooms = Date.now() - killedAt;
    }, 50);
    process.kill(worker!.pid, 'SIGKILL');
    log(`killed worker pid ${worker!.pid} carrying ${worker!.routers} routers`);
    const recovery = await measureRecovery(calls, baseline, killedAt, BOUND_MS);
    clearInterval(roomsWatch);
    const times = recovery.perCall.filter((t): t is number => t !== null);
    const [replaced] = server.pool.describe();

    console.log('');
    console.log(`kill -9 of a media worker during ${CALLS} calls (Chromium headless, fake 160x120 camera, 1 worker, loopback; ${loadAtKill} at the kill)`);
    console.log(`  calls with media again      ${times.length} / ${CALLS}   (framesDecoded growing again on both sides; bound ${BOUND_MS / 1000} s after the kill)`);
    console.log(`  time to media again         median ${median(times).toFixed(0)} ms   max ${times.length ? Math.max(...times) : NaN} ms   min ${times.length ? Math.min(...times) : NaN} ms`);
    console.log(`  worker replaced             ${replaced!.alive && replaced!.pid !== worker!.pid ? `yes (pid ${worker!.pid} -> ${replaced!.pid}), ${replaced!.routers} routers on it` : 'NO'}`);
    console.log(`  server side                 new worker up after ${milestones.replaced ?? '-'} ms, every room on a new router after ${milestones.rooms ?? '-'} ms`);
    if (times.length < CALLS) console.log(`  without media at the bound  calls ${recovery.perCall.map((t, i) => (t === null ? i : -1)).filter((i) => i >= 0).join(', ')}`);
  } finally {
    await Promise.allSettled([clerks.close(), customers.close()]);
    await server.close();
    await db.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await startTestServer();
  try {
    if (values.only === undefined || values.only === 'worker-rtp') {
      const boundMs = Number(values.bound ?? 30) * 1000;
      const r = await workerRtpKill({ calls: CALLS, boundMs, holdSeconds: Number(values.hold), generators: values.generators ? Number(values.generators) : undefined, log });
      for (const line of reportWorkerRtp(r, boundMs)) console.log(line);
    }
    if (values.only === undefined || values.only === 'worker') await workerKill();
    if (values.only === undefined || values.only === 'appliance') await runApplianceKill({ calls: Number(values['recorded-calls']), boundMs: BOUND_MS, log, load });
  } finally {
    await stopTestServer();
  }
}

// The bound is on every part; this is the last resort if something hangs.
const watchdog = setTimeout(() => {
  console.error('bench/faults.ts: gave up after 15 minutes');
  process.exit(2);
}, 15 * 60_000);
watchdog.unref();

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
