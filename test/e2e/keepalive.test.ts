import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { PASSWORD, seedOrganisation, seedUser, type SeededUser } from '../support/accounts';
import { clerkStartsCall, launchBrowser } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';

/**
 * Issue 16: the clerk's open call page renews the staff session (POST
 * /session/keepalive) at the interval the page gives it, and stops once
 * the call has ended. The interval in the served page is shortened here
 * (the real one is half the idle timeout, at least 2.5 minutes).
 */
describe('the clerk\'s call page keeps the session alive (real browser)', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let server: CallServer;
  let browser: Browser;
  let page: Page;
  let clerk: SeededUser;
  const renewals: number[] = [];

  before(async () => {
    server = await startCallServer(db.current);
    const org = await seedOrganisation(db.current.knex, 'Keepalive Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.close();
  });

  it('renews at the page\'s interval while the call is open, and stops when it ends', async () => {
    page = await browser.newPage();
    await clerkStartsCall(page, server.url, clerk, PASSWORD);
    const callId = await page.getAttribute('[data-call-id]', 'data-call-id') as string;
    assert.match(callId, /^[0-9a-f-]{36}$/);
    assert.equal(await page.getAttribute('#session-keepalive', 'data-keepalive-ms'), String(15 * 60_000), 'half the default idle time');

    // The same page again, served with a 1.5 s interval.
    await page.route(`${server.url}/calls/${callId}`, async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace(/data-keepalive-ms="\d+"/, 'data-keepalive-ms="1500"');
      await route.fulfill({ response, body });
    });
    page.on('response', (response) => {
      if (new URL(response.url()).pathname === '/session/keepalive' && response.request().method() === 'POST') renewals.push(response.status());
    });
    await page.goto(`${server.url}/calls/${callId}`);
    await page.waitForSelector('#join:not([disabled])');
    await page.click('#join');
    await page.waitForTimeout(4000);
    assert.ok(renewals.length >= 2, `renewed ${renewals.length} times in 4 s`);
    assert.ok(renewals.every((status) => status === 204), `answers: ${renewals.join(', ')}`);

    await server.hub.endCall(callId, 'ended_by_clerk');
    await page.waitForSelector('#call-status[data-state="ended"]');
    const atEnd = renewals.length;
    await page.waitForTimeout(3500);
    assert.equal(renewals.length, atEnd, 'no renewal after the call ended');
    assert.equal(await page.isHidden('#session-keepalive'), true, 'no signed-out notice');
  });
});
