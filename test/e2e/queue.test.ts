import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { PASSWORD, seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from '../support/accounts';
import { assertFlowing, launchBrowser, signInThroughForm } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';

type Doc = { document: { title: string; querySelectorAll(s: string): { length: number } } };
type Hook = { vclerkCall?: { state: string } };

const listed = (page: Page) => page.evaluate(() => (globalThis as unknown as Doc).document.querySelectorAll('#queue-list li').length);
const title = (page: Page) => page.evaluate(() => (globalThis as unknown as Doc).document.title);
const callState = (page: Page) => page.evaluate(() => (globalThis as unknown as Hook).vclerkCall?.state ?? '');

/**
 * The queue from both sides in real browsers: the clerk's dashboard lists
 * a new customer without a reload and says so in the tab title; Accept
 * takes both into the call, with no further click by the customer.
 */
describe('the waiting queue, live (two real browsers)', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  let clerkPage: Page;
  let customerPage: Page;
  let org: SeededOrganisation;
  let clerk: SeededUser;
  let plainTitle: string;

  before(async () => {
    server = await startCallServer(db.current);
    org = await seedOrganisation(db.current.knex, 'Queue Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await server?.close();
  });

  it('the clerk is available; the sound alert is off until switched on, and stays on', async () => {
    clerkPage = await clerkBrowser.newPage();
    await signInThroughForm(clerkPage, server.url, clerk.email, PASSWORD);
    await clerkPage.selectOption('#f-availability', 'available');
    await clerkPage.click('.availability-form button[type=submit]');
    await clerkPage.waitForURL('**/dashboard');
    assert.equal(await listed(clerkPage), 0);
    const sound = await clerkPage.waitForSelector('#queue-sound:not([hidden])');
    assert.equal(await sound.getAttribute('aria-pressed'), 'false');
    await sound.click();
    assert.equal(await sound.getAttribute('aria-pressed'), 'true');
    await clerkPage.reload();
    assert.equal(await clerkPage.getAttribute('#queue-sound', 'aria-pressed'), 'true', 'remembered');
    plainTitle = await title(clerkPage);
    assert.doesNotMatch(plainTitle, /^\(\d+\)/);
  });

  it('a customer joins the queue: the dashboard lists them without a reload, and the title counts them', async () => {
    await clerkPage.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
    customerPage = await customerBrowser.newPage();
    await customerPage.goto(`${server.url}/q/${org.slug}`);
    await customerPage.click('#enter-queue');
    await customerPage.waitForURL(/\/wait#ticket=/);
    await clerkPage.waitForFunction(() => (globalThis as unknown as Doc).document.querySelectorAll('#queue-list li').length === 1, undefined, { timeout: 15_000 });
    assert.equal(await clerkPage.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded), true, 'the page was not reloaded');
    assert.equal(await title(clerkPage), `(1) ${plainTitle}`);
    assert.match(await clerkPage.textContent('#queue-list li') ?? '', /Customer [0-9A-F]{4}/);
    assert.match(await clerkPage.textContent('#queue-count') ?? '', /1 customer waiting/);
    assert.equal(await clerkPage.getAttribute('#queue-panel', 'data-alerts'), '1', 'one alert (sound) for the new customer');
  });

  it('Accept: both sides are in the call and media flows, without a click by the customer', async () => {
    await clerkPage.click('#queue-list li button[type=submit]');
    await clerkPage.waitForURL(/\/calls\/[0-9a-f-]{36}/);
    await customerPage.waitForURL(/\/join\//, { timeout: 15_000 });
    await assertFlowing(clerkPage);
    await assertFlowing(customerPage);
    assert.equal(await callState(clerkPage), 'connected');
    assert.equal(await callState(customerPage), 'connected');
    assert.doesNotMatch(clerkPage.url(), /#autojoin/, 'a reload shows the device check again');
  });

  it('where the browser blocks sound without a click, a button turns it on', async () => {
    // Headless Chromium plays sound anyway: the page gets the browsers' rule (no sound before a click on it) by a stub.
    const context = await customerBrowser.newContext();
    await context.addInitScript(() => {
      const g = globalThis as unknown as { HTMLMediaElement: { prototype: { play(): Promise<void>; muted: boolean } }; DOMException: new (m: string, n: string) => Error };
      // `autoplay` would start the sound past the stub: taken off as the page is parsed.
      type Observer = new (f: () => void) => { observe(node: unknown, options: object): void };
      const w = globalThis as unknown as { MutationObserver: Observer; document: { querySelectorAll(s: string): { removeAttribute(n: string): void }[] } };
      new w.MutationObserver(() => w.document.querySelectorAll('audio[autoplay]').forEach((a) => a.removeAttribute('autoplay'))).observe(w.document, { childList: true, subtree: true });
      let clicked = false;
      (globalThis as unknown as { addEventListener(t: string, f: (e: { isTrusted: boolean }) => void, c: boolean): void }).addEventListener('click', (e) => (clicked ||= e.isTrusted), true);
      const play = g.HTMLMediaElement.prototype.play;
      g.HTMLMediaElement.prototype.play = function (this: { muted: boolean }) {
        if (!this.muted && !clicked) return Promise.reject(new g.DOMException('needs a click', 'NotAllowedError'));
        return play.call(this);
      };
    });
    // The customer's link opened afresh (no click on the page) after closing the first tab.
    const link = customerPage.url().replace(/#.*$/, '');
    await customerPage.close();
    const page = await context.newPage();
    await page.goto(`${link}#autojoin`);
    const button = await page.waitForSelector('#enable-sound:not([hidden])', { timeout: 20_000 });
    assert.equal(await button.textContent(), 'Turn on the sound');
    const paused = () => page.evaluate(() => (globalThis as unknown as { document: { getElementById(id: string): { paused: boolean } } }).document.getElementById('remote-audio').paused);
    assert.equal(await paused(), true);
    await button.click();
    await page.waitForSelector('#enable-sound', { state: 'hidden' });
    assert.equal(await paused(), false, 'the other side\'s sound plays');
    await context.close();
  });
});
