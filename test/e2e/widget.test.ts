import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import { PASSWORD, seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from '../support/accounts';
import { assertFlowing, launchBrowser } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';

/** The organisation's own website: another origin, serving a page that embeds the widget. */
async function hostSite(appUrl: string, slug: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.setHeader('Content-Type', 'text/html');
    res.end(`<!doctype html><html lang="en"><body><h1>Example Insurance</h1><script src="${appUrl}/widget.js" data-org="${slug}" async></script></body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  // localhost and 127.0.0.1 are different origins: the site is cross-origin to the appliance.
  return { url: `http://localhost:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('a customer comes through the website widget, waits, and a clerk takes the call (real browsers)', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let server: CallServer;
  let site: { url: string; close(): Promise<void> };
  let org: SeededOrganisation;
  let clerk: SeededUser;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  let clerkPage: Page;
  let customerPage: Page;

  before(async () => {
    server = await startCallServer(db.current, { workers: 1 });
    org = await seedOrganisation(db.current.knex, 'Widget Insurance');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    site = await hostSite(server.url, org.slug);
    await db.current.knex('organisations').where({ id: org.id }).update({ settings: JSON.stringify({ widgetOrigins: [site.url] }) });
    [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await site?.close();
    await server?.close();
  });

  it('widget data is shared only with the allowed origin (CORS), and the script may be loaded cross-origin', async () => {
    const allowed = await request(server.url).get(`/q/${org.slug}/widget.json`).set('Origin', site.url).expect(200);
    assert.equal(allowed.headers['access-control-allow-origin'], site.url);
    const other = await request(server.url).get(`/q/${org.slug}/widget.json`).set('Origin', 'http://evil.example').expect(200);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const script = await request(server.url).get('/widget.js').expect(200);
    assert.equal(script.headers['cross-origin-resource-policy'], 'cross-origin');
    assert.ok(Number(script.headers['content-length'] ?? script.text.length) < 4096, 'the widget stays small');
    const queuePage = await request(server.url).get(`/q/${org.slug}`).expect(200);
    assert.match(String(queuePage.headers['content-security-policy']), new RegExp(`frame-ancestors 'self' ${site.url}`));
  });

  it('the customer clicks the widget, waits in the queue, the clerk accepts, and both decode each other\'s video', async () => {
    clerkPage = await clerkBrowser.newPage();
    await clerkPage.goto(`${server.url}/login`);
    await clerkPage.fill('#f-email', clerk.email);
    await clerkPage.fill('#f-password', PASSWORD);
    await clerkPage.click('button[type=submit]');
    await clerkPage.waitForURL('**/dashboard');
    await clerkPage.selectOption('#f-availability', 'available');
    await clerkPage.click('.availability-form button[type=submit]');
    await clerkPage.waitForURL('**/dashboard');

    const hostPage = await customerBrowser.newPage();
    await hostPage.goto(site.url);
    const button = await hostPage.waitForSelector('button.vclerk-widget-button:not([disabled])');
    assert.equal(await button.textContent(), 'Talk to a clerk');
    const [queuePage] = await Promise.all([hostPage.context().waitForEvent('page'), button.click()]);
    customerPage = queuePage;
    await customerPage.waitForSelector('#enter-queue');
    await customerPage.click('#enter-queue');
    await customerPage.waitForURL(/\/wait#ticket=/);
    await customerPage.waitForFunction(() => /1/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string } | null } }).document.getElementById('queue-status')?.textContent ?? ''));

    await clerkPage.reload();
    await clerkPage.click('#accept-next');
    await clerkPage.waitForURL(/\/calls\/[0-9a-f-]{36}/);
    // Accepting joins both sides at once: no Join button to press (test/e2e/queue.test.ts).
    await customerPage.waitForURL(/\/join\//, { timeout: 15000 });
    await assertFlowing(customerPage);
    await assertFlowing(clerkPage);
  });
});
