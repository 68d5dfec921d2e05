import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { assertNoFindings, axeFindings } from '../support/axe';
import { PASSWORD, seedOrganisation, seedUser, type SeededUser } from '../support/accounts';
import { clerkStartsCall, launchBrowser } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';

/* eslint-disable @typescript-eslint/no-explicit-any -- in-page code: the tests' TypeScript has no DOM types */
/** The page's window, as seen by the functions handed to page.evaluate (self-contained: the CSP forbids eval). */
type InPage = { document: any; innerWidth: number; innerHeight: number };

/** No axe violation of serious or critical impact in the page as it is now (the call's states a crawl of the routes cannot reach: in the call, a sheet, the dialogs). */
async function assertAccessible(page: Page, label: string): Promise<void> {
  assertNoFindings(await axeFindings(page, label));
}

const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const TABLET = { width: 768, height: 1024 };

interface Fit {
  bar: { top: number; bottom: number; left: number; right: number } | null;
  viewport: { width: number; height: number };
  scrollHeight: number;
  scrollWidth: number;
  /** Controls of the bar that are shown but lie (partly) outside the viewport, e.g. scrolled away. */
  outside: string[];
}

/** Where the control bar is, and how tall and wide the document is, against the viewport. */
function measure(page: Page): Promise<Fit> {
  return page.evaluate(() => {
    const w = globalThis as unknown as InPage;
    const bar = w.document.querySelector('#stage:not([hidden]) .call-controls');
    const box = bar ? bar.getBoundingClientRect() : null;
    return {
      bar: box ? { top: box.top, bottom: box.bottom, left: box.left, right: box.right } : null,
      viewport: { width: w.innerWidth, height: w.innerHeight },
      scrollHeight: w.document.documentElement.scrollHeight,
      scrollWidth: w.document.documentElement.scrollWidth,
      outside: bar
        ? [...bar.querySelectorAll('.control')]
            .filter((control: any) => control.getClientRects().length > 0)
            .filter((control: any) => {
              const r = control.getBoundingClientRect();
              return r.left < 0 || r.top < 0 || r.right > w.innerWidth + 0.5 || r.bottom > w.innerHeight + 0.5;
            })
            .map((control: any) => control.id || control.textContent.trim())
        : [],
    };
  });
}

/** The call fits: no page scrolling, and (in the call) the whole control bar inside the viewport. */
async function assertFits(page: Page, who: string, inCall = true): Promise<void> {
  const fit = await measure(page);
  const where = `${who} at ${fit.viewport.width}×${fit.viewport.height}`;
  assert.ok(fit.scrollHeight <= fit.viewport.height, `${where}: the page scrolls (${fit.scrollHeight} px high)`);
  assert.ok(fit.scrollWidth <= fit.viewport.width, `${where}: the page scrolls sideways (${fit.scrollWidth} px wide)`);
  if (!inCall) return;
  assert.ok(fit.bar, `${where}: the control bar is shown`);
  assert.ok(fit.bar.top >= 0 && fit.bar.left >= 0 && fit.bar.bottom <= fit.viewport.height && fit.bar.right <= fit.viewport.width, `${where}: the control bar ${JSON.stringify(fit.bar)} is not inside the viewport`);
  assert.deepEqual(fit.outside, [], `${where}: every control of the bar is in view`);
}

function activeInside(page: Page, selector: string): Promise<boolean> {
  return page.evaluate((sel) => {
    const doc = (globalThis as unknown as InPage).document;
    const container = doc.querySelector(sel);
    return Boolean(container && doc.activeElement && container.contains(doc.activeElement));
  }, selector);
}

/**
 * The call page laid out like the common video products (issue 16): it fits
 * a laptop and a phone screen without scrolling, with one control bar
 * always in view; side panels with unread badges; the recording consent as
 * a modal dialog that takes focus; End call asks first and survives a
 * refused request. Two real browsers, the real signalling and media.
 */
describe('the call page layout (two real browsers, laptop and phone)', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  let clerkPage: Page;
  let customerPage: Page;
  let clerk: SeededUser;
  let link: string;

  before(async () => {
    server = await startCallServer(db.current, { recordings: true, graceMs: 5000 });
    const org = await seedOrganisation(db.current.knex, 'Layout Bank');
    await db.current.knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', allowUnrecorded: false, adminAccess: false, clerkAccess: false } } });
    clerk = await seedUser(db.current.knex, org, 'clerk', { name: 'Clara Clerk' });
    [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await server?.close();
  });

  it('the pre-join check fits the laptop and the phone, and the tab names the call', async () => {
    clerkPage = await clerkBrowser.newPage({ viewport: LAPTOP });
    link = await clerkStartsCall(clerkPage, server.url, clerk, PASSWORD);
    // Wide screens start with every panel open beside the stage.
    for (const panel of ['catalog', 'cards', 'chat', 'notes']) assert.equal(await clerkPage.getAttribute(`#toggle-${panel}`, 'aria-expanded'), 'true', `${panel} open at first`);
    assert.match(await clerkPage.title(), /^Call [0-9A-F]{6} · /);
    customerPage = await customerBrowser.newPage({ viewport: PHONE });
    await customerPage.goto(link);
    await customerPage.waitForSelector('#join:not([disabled])');
    await assertAccessible(clerkPage, 'clerk before joining');
    await assertAccessible(customerPage, 'customer before joining');
    for (const size of [LAPTOP, PHONE]) {
      await clerkPage.setViewportSize(size);
      await customerPage.setViewportSize(size);
      await assertFits(clerkPage, 'clerk (pre-join)', false);
      await assertFits(customerPage, 'customer (pre-join)', false);
    }
    await clerkPage.setViewportSize(LAPTOP);
    await clerkPage.click('#join');
    await customerPage.click('#join');
    await clerkPage.waitForSelector('#call-status[data-state="connected"]');
    await customerPage.waitForSelector('#call-status[data-state="connected"]');
  });

  it('in the call, the control bar is inside the viewport and nothing scrolls, on the laptop and the phone (and a tablet)', async () => {
    for (const size of [LAPTOP, TABLET, PHONE]) {
      await clerkPage.setViewportSize(size);
      await customerPage.setViewportSize(size);
      await clerkPage.waitForTimeout(200);
      await assertFits(clerkPage, 'clerk');
      await assertFits(customerPage, 'customer');
      if (process.env.CALL_SCREENSHOTS) {
        await clerkPage.screenshot({ path: `${process.env.CALL_SCREENSHOTS}/clerk-${size.width}.png` });
        await customerPage.screenshot({ path: `${process.env.CALL_SCREENSHOTS}/customer-${size.width}.png` });
      }
    }
  });

  it('on the laptop the panels sit beside the stage; a chat message arriving while the chat is closed shows a badge', async () => {
    await clerkPage.setViewportSize(LAPTOP);
    // Beside the stage, several panels can be open at once (after the phone size above, only the last one is).
    for (const panel of ['cards', 'chat']) {
      if ((await clerkPage.getAttribute(`#toggle-${panel}`, 'aria-expanded')) !== 'true') await clerkPage.click(`#toggle-${panel}`);
    }
    assert.equal(await clerkPage.isVisible('#panel-cards'), true);
    assert.equal(await clerkPage.isVisible('#panel-chat'), true);
    await clerkPage.click('#toggle-chat');
    assert.equal(await clerkPage.getAttribute('#toggle-chat', 'aria-expanded'), 'false');
    assert.equal(await clerkPage.isVisible('#panel-chat'), false);

    // The customer (phone) opens the chat sheet and writes.
    assert.equal(await customerPage.isVisible('#panel-chat'), false, 'phones start with the sheets closed');
    await customerPage.click('#toggle-chat');
    await customerPage.locator('#panel-chat').waitFor({ state: 'visible' });
    await assertFits(customerPage, 'customer with the chat sheet open');
    await assertAccessible(customerPage, 'customer in the call, chat sheet open');
    await customerPage.fill('#chat-input', 'Hello from the phone');
    await customerPage.press('#chat-input', 'Enter');

    const badge = clerkPage.locator('#toggle-chat [data-unread]');
    await badge.waitFor({ state: 'visible' });
    assert.match((await badge.textContent())!, /1 new/, 'the badge has an accessible label');
    assert.match((await clerkPage.locator('#toggle-chat').textContent())!, /Chat.*1 new/);
    await clerkPage.click('#toggle-chat');
    await clerkPage.locator('#chat-log .chat-body', { hasText: 'Hello from the phone' }).waitFor();
    assert.equal(await badge.isVisible(), false, 'opening the panel clears the badge');
    await assertFits(clerkPage, 'clerk with panels open');
    await assertAccessible(clerkPage, 'clerk in the call, panels open');

    // Escape closes the customer's sheet (focus is not in a field then).
    await customerPage.locator('#toggle-chat').focus();
    await customerPage.keyboard.press('Escape');
    await customerPage.locator('#panel-chat').waitFor({ state: 'hidden' });
  });

  it('mute and camera say what they do, and the self-view keeps a placeholder; M and ? work, not while typing', async () => {
    await customerPage.locator('#toggle-camera').focus();
    await customerPage.keyboard.press('m');
    assert.equal(await customerPage.getAttribute('#toggle-microphone', 'aria-pressed'), 'true');
    assert.equal((await customerPage.locator('#toggle-microphone').textContent())!.trim(), 'Unmute');
    await customerPage.click('#toggle-camera');
    assert.equal(await customerPage.getAttribute('#toggle-camera', 'aria-pressed'), 'true');
    assert.equal((await customerPage.locator('#toggle-camera').textContent())!.trim(), 'Turn camera on');
    await customerPage.locator('#self-placeholder').waitFor({ state: 'visible' });
    assert.equal(await customerPage.isVisible('#self-view'), true, 'the self-view stays');
    await customerPage.click('#toggle-camera');
    await customerPage.click('#toggle-microphone');
    assert.equal((await customerPage.locator('#toggle-microphone').textContent())!.trim(), 'Mute');

    // Typing an "m" in the chat is just a letter.
    await customerPage.click('#toggle-chat');
    await customerPage.fill('#chat-input', '');
    await customerPage.press('#chat-input', 'm');
    assert.equal(await customerPage.getAttribute('#toggle-microphone', 'aria-pressed'), 'false');
    assert.equal(await customerPage.inputValue('#chat-input'), 'm');
    await customerPage.fill('#chat-input', '');
    await customerPage.click('#toggle-chat');

    await customerPage.locator('#toggle-camera').focus();
    await customerPage.keyboard.press('?');
    await customerPage.locator('#shortcuts-dialog').waitFor({ state: 'visible' });
    assert.ok(await activeInside(customerPage, '#shortcuts-dialog'));
    await customerPage.keyboard.press('Escape');
    await customerPage.locator('#shortcuts-dialog').waitFor({ state: 'hidden' });
  });

  it('asking for recording consent opens a modal dialog on the customer side that takes focus; the clerk sees that an answer is awaited', async () => {
    await clerkPage.click('#record-toggle');
    await customerPage.locator('#recording-consent').waitFor({ state: 'visible' });
    assert.equal(await customerPage.evaluate(() => (globalThis as unknown as InPage).document.getElementById('recording-consent').open), true);
    assert.ok(await activeInside(customerPage, '#recording-consent'), 'focus is in the consent dialog');
    assert.equal(await customerPage.getAttribute('#recording-consent', 'aria-labelledby'), 'recording-consent-heading');
    await clerkPage.locator('#recording-pending', { hasText: "Waiting for the customer's answer" }).waitFor({ state: 'visible' });
    // Escape does not dismiss the question.
    await customerPage.keyboard.press('Escape');
    assert.equal(await customerPage.isVisible('#recording-consent'), true);
    await assertFits(customerPage, 'customer with the consent dialog');
    await assertAccessible(customerPage, 'customer with the consent dialog');

    await customerPage.click('#consent-decline');
    await customerPage.locator('#recording-consent').waitFor({ state: 'hidden' });
    await clerkPage.locator('#recording-pending').waitFor({ state: 'hidden' });
    await clerkPage.locator('#recording-message', { hasText: 'did not agree' }).waitFor();
  });

  it('End call asks first in a dialog; a refused request (expired session) shows a message and the call goes on', async () => {
    await clerkPage.setViewportSize(PHONE);
    await clerkPage.click('#end-call');
    await clerkPage.locator('#end-call-dialog').waitFor({ state: 'visible' });
    assert.ok(await activeInside(clerkPage, '#end-call-dialog'));
    await assertAccessible(clerkPage, 'clerk with the End call dialog');
    await clerkPage.click('#end-call-cancel');
    await clerkPage.locator('#end-call-dialog').waitFor({ state: 'hidden' });

    await clerkPage.route('**/calls/*/end', (route) => route.fulfill({ status: 403, contentType: 'text/html', body: '<p>expired</p>' }));
    await clerkPage.click('#end-call');
    await clerkPage.click('#end-call-confirm');
    await clerkPage.locator('#end-call-error', { hasText: 'expired' }).waitFor({ state: 'visible' });
    assert.equal(await clerkPage.getAttribute('#call-status', 'data-state'), 'connected', 'the call goes on');
    await clerkPage.unroute('**/calls/*/end');

    await clerkPage.click('#end-call-confirm');
    await clerkPage.waitForURL('**/dashboard');
    await clerkPage.locator('text=The call has ended.').first().waitFor();
    await customerPage.waitForSelector('#call-status[data-state="ended"]');
  });
});
