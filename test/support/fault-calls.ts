import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Knex } from 'knex';
import { PASSWORD, seedUser, type SeededOrganisation } from './accounts';
import { CHROMIUM, clerkStartsCall, stats } from './browser';

/**
 * Many real calls for the fault tests and bench/faults.ts: one Chromium for
 * the clerks and one for the customers, each call in its own pair of browser
 * contexts (own cookies), with a small fake camera (a looped Y4M file) so
 * that dozens of pages fit on a small machine.
 */

/** A small Y4M clip Chromium loops as its fake camera (160x120 at 15 fps). */
export function smallFakeVideo(dir: string): string {
  const file = path.join(dir, 'fake-camera-160x120.y4m');
  if (!fs.existsSync(file)) {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=15', '-t', '2', '-pix_fmt', 'yuv420p', file]);
  }
  return file;
}

/** Headless Chromium with fake devices granted, as test/support/browser.ts launches it, with `video` as the camera. */
export async function launchFaultBrowser(video?: string): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (media/scripts/install-deps.sh --test)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      ...(video ? [`--use-file-for-fake-video-capture=${video}`] : []),
    ],
  });
}

export interface FaultCall {
  index: number;
  callId: string;
  clerk: Page;
  customer: Page;
  contexts: BrowserContext[];
}

/** Starts one call: a new clerk signs in, starts it and joins; the customer opens the link and joins. */
export async function startCall(options: { baseUrl: string; knex: Knex; org: SeededOrganisation; clerkBrowser: Browser; customerBrowser: Browser; index: number }): Promise<FaultCall> {
  const user = await seedUser(options.knex, options.org, 'clerk');
  const clerkContext = await options.clerkBrowser.newContext();
  const customerContext = await options.customerBrowser.newContext();
  const clerk = await clerkContext.newPage();
  const link = await clerkStartsCall(clerk, options.baseUrl, user, PASSWORD);
  const callId = (await clerk.getAttribute('[data-call-id]', 'data-call-id'))!;
  await clerk.click('#join');
  const customer = await customerContext.newPage();
  await customer.goto(link);
  await customer.click('#join');
  return { index: options.index, callId, clerk, customer, contexts: [clerkContext, customerContext] };
}

/** `count` calls, `parallel` started at a time. */
export async function startCalls(options: Omit<Parameters<typeof startCall>[0], 'index'> & { count: number; parallel?: number }): Promise<FaultCall[]> {
  const calls: FaultCall[] = [];
  const parallel = options.parallel ?? 3;
  for (let first = 0; first < options.count; first += parallel) {
    const batch = Array.from({ length: Math.min(parallel, options.count - first) }, (_, i) => startCall({ ...options, index: first + i }));
    calls.push(...(await Promise.all(batch)));
  }
  return calls;
}

async function framesDecoded(page: Page): Promise<number | undefined> {
  return stats(page).then((s) => s.video.framesDecoded, () => undefined);
}

/** Polls until both sides of every call decode video (framesDecoded grows); throws after `timeoutMs`. */
export async function waitAllFlowing(calls: FaultCall[], timeoutMs = 60_000): Promise<void> {
  const pages = calls.flatMap((c) => [c.clerk, c.customer]);
  const first = await Promise.all(pages.map(framesDecoded));
  const deadline = Date.now() + timeoutMs;
  const flowing = pages.map(() => false);
  let last = first;
  while (flowing.some((f) => !f)) {
    if (Date.now() > deadline) {
      const which = pages.map((_, i) => `${calls[i >> 1]!.index}/${i % 2 ? 'customer' : 'clerk'}: ${first[i]} → ${last[i]}${flowing[i] ? '' : ' (stalled)'}`);
      throw new Error(`${flowing.filter((f) => !f).length} of ${pages.length} pages decode no video after ${timeoutMs} ms (frames decoded, call/side: ${which.join('; ')})`);
    }
    await new Promise((r) => setTimeout(r, 500));
    const now = await Promise.all(pages.map(framesDecoded));
    now.forEach((n, i) => {
      if (n !== undefined && n > 0 && n > (last[i] ?? 0)) flowing[i] = true;
    });
    last = now;
  }
}

export interface Recovery {
  /** Per call: ms from the fault until both sides decode video again, or null if not by the bound. */
  perCall: (number | null)[];
  boundMs: number;
}

/**
 * After a fault at `faultAt` (Date.now()), how long until each call decodes
 * video again on both sides. A side has media again once its video first
 * stalled or was reset (the consumers of a new router count from zero:
 * framesDecoded below its value at the fault) and then framesDecoded grows,
 * or a fresh consumer shows decoded frames. Sampled every `intervalMs`;
 * gives up at `boundMs` after the fault.
 */
export async function measureRecovery(calls: FaultCall[], baseline: (number | undefined)[], faultAt: number, boundMs: number, intervalMs = 250): Promise<Recovery> {
  const pages = calls.flatMap((c) => [c.clerk, c.customer]);
  const stalled = pages.map(() => false);
  const again: (number | null)[] = pages.map(() => null);
  let last = baseline;
  while (again.some((a) => a === null) && Date.now() - faultAt < boundMs) {
    await new Promise((r) => setTimeout(r, intervalMs));
    const at = Date.now();
    const now = await Promise.all(pages.map((p, i) => (again[i] === null ? framesDecoded(p) : Promise.resolve(undefined))));
    now.forEach((n, i) => {
      if (again[i] !== null || n === undefined) return;
      const atFault = baseline[i] ?? 0;
      const previous = last[i];
      if (n < atFault || (previous !== undefined && n === previous)) stalled[i] = true;
      const freshConsumer = n > 0 && n < atFault;
      const grewAfterStall = stalled[i] && previous !== undefined && n > previous;
      if (freshConsumer || grewAfterStall) again[i] = at - faultAt;
    });
    last = now.map((n, i) => n ?? last[i]);
  }
  const perCall = calls.map((_, c) => {
    const a = again[2 * c];
    const b = again[2 * c + 1];
    return a === null || b === null || a === undefined || b === undefined ? null : Math.max(a, b);
  });
  return { perCall, boundMs };
}

/** framesDecoded on every page (clerk, customer, per call), for measureRecovery's baseline. */
export function framesNow(calls: FaultCall[]): Promise<(number | undefined)[]> {
  return Promise.all(calls.flatMap((c) => [c.clerk, c.customer]).map(framesDecoded));
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
