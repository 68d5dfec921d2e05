import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * A real headless Chromium (Debian's), with a fake camera and microphone
 * granted without a prompt, as the notes in shared/notes/webrtc-testing.md
 * describe (playwright gives each launch a fresh, empty profile). Each call participant gets their own browser instance.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (media/scripts/install-deps.sh --test)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

export interface MediaStats {
  video: { framesDecoded: number; bytesReceived: number };
  audio: { packetsReceived: number };
}

export function stats(page: Page): Promise<MediaStats> {
  return page.evaluate(() => (globalThis as unknown as { vclerkCall: { stats(): Promise<MediaStats> } }).vclerkCall.stats());
}

/** Polls until `check` passes on fresh stats (or fails after timeoutMs with the last stats). */
export async function waitForStats(page: Page, check: (s: MediaStats) => boolean, timeoutMs = 20000): Promise<MediaStats> {
  const deadline = Date.now() + timeoutMs;
  let last: MediaStats | undefined;
  while (Date.now() < deadline) {
    last = await stats(page).catch(() => undefined);
    if (last && check(last)) return last;
    await page.waitForTimeout(250);
  }
  throw new Error(`media stats never passed the check; last: ${JSON.stringify(last)}`);
}

/** Media flows now: video frames decoded and audio packets received both grow over `ms`. */
export async function assertFlowing(page: Page, ms = 1500): Promise<void> {
  const before = await waitForStats(page, (s) => s.video.framesDecoded > 0 && s.audio.packetsReceived > 0);
  await page.waitForTimeout(ms);
  const after = await stats(page);
  if (!(after.video.framesDecoded > before.video.framesDecoded)) throw new Error(`video frames are not decoded: ${JSON.stringify({ before, after })}`);
  if (!(after.audio.packetsReceived > before.audio.packetsReceived)) throw new Error(`audio packets do not arrive: ${JSON.stringify({ before, after })}`);
}

/** In the browser: signs in through the sign-in form and waits for the dashboard. */
export async function signInThroughForm(page: Page, baseUrl: string, email: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/login`);
  await page.fill('#f-email', email);
  await page.fill('#f-password', password);
  await page.click('button[type=submit]');
  await page.waitForURL('**/dashboard');
}

/**
 * In the browser: a clerk signs in through the form, starts a call from the
 * dashboard and waits for the call page; returns the customer link shown there.
 */
export async function clerkStartsCall(page: Page, baseUrl: string, clerk: { email: string }, password: string): Promise<string> {
  await signInThroughForm(page, baseUrl, clerk.email, password);
  await page.click('#start-call');
  await page.waitForSelector('#join');
  const field = await page.waitForSelector('input[readonly][value*="/join/"]');
  return field.inputValue();
}
