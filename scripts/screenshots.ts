/**
 * Screenshots of the call page for the documentation:
 *
 *   npm run docs:screenshots [-- <directory> [en|de]]
 *
 * Starts the appliance in this process (embedded PostgreSQL, a real
 * mediasoup worker, on loopback only), lets a clerk and a customer join a
 * call in two headless Chromium instances with fake camera and microphone,
 * and saves PNGs of both sides' call page at 1280×800 (laptop) and 390×844
 * (phone), and of the clerk's dashboard during the call, into
 * docs/screenshots/ (or the directory given). It stops by itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { csrfFrom, PASSWORD, seedOrganisation, seedUser, signIn } from '../test/support/accounts';
import { clerkStartsCall, launchBrowser, waitForStats } from '../test/support/browser';
import { startCallServer } from '../test/support/call-server';
import { createTestDatabase, startTestServer, stopTestServer } from '../test/support/database';

const OUT = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'docs', 'screenshots'));
const LANG = process.argv[3] === 'de' ? 'de' : 'en';
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const PRODUCTS = [
  { sku: 'GIRO-1', name: 'Current account', description: 'Free with a monthly income of 700 EUR or more.', price: '0', category: 'Accounts' },
  { sku: 'SAVE-1', name: 'Instant-access savings', description: '2.1 % a year, no notice period.', price: '0', category: 'Savings' },
  { sku: 'HOME-1', name: 'Home contents insurance', description: 'Covers your belongings against fire and theft.', price: '4.90', category: 'Insurance' },
];

async function shoot(page: Page, name: string, viewport: { width: number; height: number }): Promise<void> {
  await page.setViewportSize(viewport);
  // Let the layout settle (videos resize, panels reflow) before taking the picture.
  await page.waitForTimeout(800);
  const file = path.join(OUT, `${name}-${viewport.width}x${viewport.height}.png`);
  await page.screenshot({ path: file });
  console.log(`  ${path.relative(process.cwd(), file)}`);
}

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  await startTestServer();
  const db = await createTestDatabase();
  const server = await startCallServer(db, { workers: 1 });
  const [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  try {
    const org = await seedOrganisation(db.knex, 'Sparkasse Musterstadt');
    const admin = await signIn(server.url as never, await seedUser(db.knex, org, 'admin', { name: 'Ada Admin' }));
    for (const product of PRODUCTS) {
      const csrf = csrfFrom((await admin.agent.get('/account').expect(200)).text);
      await admin.agent.post('/admin/catalog/new').type('form').send({ _csrf: csrf, currency: 'EUR', ...product }).expect(303);
    }
    const clerk = await seedUser(db.knex, org, 'clerk', { name: 'Clara Clerk' });
    await db.knex('users').where({ id: clerk.id }).update({ language: LANG });
    const locale = LANG === 'de' ? 'de-DE' : 'en-GB';

    const clerkContext = await clerkBrowser.newContext({ viewport: LAPTOP, locale });
    const clerkPage = await clerkContext.newPage();
    const link = await clerkStartsCall(clerkPage, server.url, clerk, PASSWORD);
    await clerkPage.click('#join');

    const customerContext = await customerBrowser.newContext({ viewport: LAPTOP, locale });
    const customerPage = await customerContext.newPage();
    await customerPage.goto(link);
    await customerPage.waitForSelector('#join:not([disabled])');
    // The device check shows the camera first: join once it does.
    await customerPage.waitForFunction(() => {
      const doc = (globalThis as unknown as { document: { getElementById(id: string): { videoWidth: number } | null } }).document;
      return (doc.getElementById('local-preview')?.videoWidth ?? 0) > 0;
    }, undefined, { timeout: 15_000 });
    await customerPage.click('#join');

    // Both sides see each other's picture before anything is taken.
    await waitForStats(customerPage, (s) => s.video.framesDecoded > 10, 30_000);
    await waitForStats(clerkPage, (s) => s.video.framesDecoded > 10, 30_000);

    console.log(`Screenshots (${LANG}) in ${OUT}:`);
    for (const viewport of [LAPTOP, PHONE]) {
      await shoot(clerkPage, 'call-clerk', viewport);
      await shoot(customerPage, 'call-customer', viewport);
    }
    const dashboard = await clerkContext.newPage();
    await dashboard.goto(`${server.url}/dashboard`);
    for (const viewport of [LAPTOP, PHONE]) await shoot(dashboard, 'dashboard', viewport);
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
