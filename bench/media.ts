/**
 * Media benchmark: what a call costs and how fast it starts.
 *
 *   npx tsx bench/media.ts [joins]
 *
 * With a real mediasoup worker, the appliance's signalling and two headless
 * Chromium instances (fake camera and microphone), it measures:
 * - join to first decoded frame: the customer presses Join, how long until
 *   its first remote video frame is decoded; over repeated joins (default
 *   10), median and p95, the first join in a fresh browser shown apart;
 * - worker CPU per call: the worker's user+system CPU over 10 s of a running
 *   1:1 call, side by side with the same worker idle (the baseline), as % of
 *   one core, and the worker's resident memory.
 * Everything runs on loopback; it stops by itself.
 */
import type { Page } from 'playwright-core';
import { PASSWORD, seedOrganisation, seedUser } from '../test/support/accounts';
import { clerkStartsCall, launchBrowser, stats } from '../test/support/browser';
import { startCallServer } from '../test/support/call-server';
import { createTestDatabase, startTestServer, stopTestServer } from '../test/support/database';

const JOINS = Number(process.argv[2] ?? 10);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function firstFrameAfterJoin(page: Page, url: string): Promise<number> {
  await page.goto(url);
  await page.waitForSelector('#join');
  const started = Date.now();
  await page.click('#join');
  for (;;) {
    const s = await stats(page).catch(() => undefined);
    if (s && s.video.framesDecoded > 0) return Date.now() - started;
    if (Date.now() - started > 30000) throw new Error('no frame decoded within 30 s');
    await page.waitForTimeout(20);
  }
}

async function workerCpu(server: Awaited<ReturnType<typeof startCallServer>>, ms: number): Promise<{ cpuPercent: number; rssMb: number }> {
  const usage = async () => (await server.pool.resourceUsage())[0]!.usage;
  const a = await usage();
  await new Promise((r) => setTimeout(r, ms));
  const b = await usage();
  const cpuMs = b.ru_utime + b.ru_stime - (a.ru_utime + a.ru_stime);
  return { cpuPercent: (cpuMs / ms) * 100, rssMb: b.ru_maxrss / 1024 };
}

async function main(): Promise<void> {
  await startTestServer();
  const db = await createTestDatabase();
  const server = await startCallServer(db, { workers: 1 });
  const [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  try {
    const idle = await workerCpu(server, 10_000);

    const org = await seedOrganisation(db.knex, 'Bench Bank');
    const clerk = await seedUser(db.knex, org, 'clerk');
    const clerkPage = await clerkBrowser.newPage();
    const link = await clerkStartsCall(clerkPage, server.url, clerk, PASSWORD);
    await clerkPage.click('#join');

    const customerPage = await customerBrowser.newPage();
    const times: number[] = [];
    for (let i = 0; i < JOINS + 1; i++) {
      times.push(await firstFrameAfterJoin(customerPage, link));
      if (i === JOINS) break;
      await customerPage.click('#leave');
      await customerPage.waitForTimeout(300);
    }
    const busy = await workerCpu(server, 10_000);
    const [first, ...repeated] = times;

    console.log(`VClerk media benchmark: Node ${process.version}, mediasoup 3.12.16, 1 worker, Chromium headless with fake devices, loopback`);
    console.log('');
    console.log('join to first decoded remote video frame (customer presses Join)');
    console.log(`  first join, fresh browser    ${first} ms`);
    console.log(`  repeated joins (n=${repeated.length})      median ${percentile(repeated, 50)} ms   p95 ${percentile(repeated, 95)} ms   min ${Math.min(...repeated)} ms   max ${Math.max(...repeated)} ms`);
    console.log('');
    console.log('mediasoup worker over 10 s      idle (baseline)   one 1:1 call   difference');
    console.log(`  CPU, % of one core          ${idle.cpuPercent.toFixed(2).padStart(15)}   ${busy.cpuPercent.toFixed(2).padStart(12)}   ${(busy.cpuPercent - idle.cpuPercent).toFixed(2).padStart(10)}`);
    console.log(`  max RSS, MB                 ${idle.rssMb.toFixed(1).padStart(15)}   ${busy.rssMb.toFixed(1).padStart(12)}   ${(busy.rssMb - idle.rssMb).toFixed(1).padStart(10)}`);
    const perCore = busy.cpuPercent - idle.cpuPercent;
    if (perCore > 0) console.log(`  => about ${Math.floor(100 / perCore)} such calls per core before the worker saturates (media forwarding only)`);
  } finally {
    await Promise.allSettled([clerkBrowser.close(), customerBrowser.close()]);
    await server.close();
    await db.drop();
    await stopTestServer();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
