import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { PASSWORD, seedOrganisation, seedUser, type SeededUser } from '../support/accounts';
import { assertFlowing, clerkStartsCall, launchBrowser } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';

type Hook = { vclerkCall: { state: string } };
type Doc = { document: { getElementById(id: string): { dataset: Record<string, string | undefined>; textContent: string | null } | null } };

const callState = (page: Page) => page.evaluate(() => (globalThis as unknown as Hook).vclerkCall.state);
/** What the status line says about the other participant (`data-remote`) and its text. */
const remoteStatus = (page: Page) =>
  page.evaluate(() => {
    const el = (globalThis as unknown as Doc).document.getElementById('call-status');
    return { remote: el?.dataset.remote ?? '', text: el?.textContent ?? '' };
  });

/** Polls `probe` until `check` passes; fails at the deadline (an absolute time) with the last value. */
async function until<T>(probe: () => Promise<T>, check: (value: T) => boolean, deadline: number, what: string): Promise<T> {
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (check(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not reached by the deadline; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The status tells the truth about the other side: "reconnecting" within
 * 3 s of their media stopping (a crashed tab: no goodbye, RTP stops), and
 * that they left as soon as they leave or close the page normally, long
 * before the server's grace period for reconnects (15 s here) is over.
 */
describe('the other side crashes, comes back, leaves (two real browsers)', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  let clerkPage: Page;
  let customerPage: Page;
  let clerk: SeededUser;
  let callUrl: string;
  let leftText: string;

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 15_000 });
    const org = await seedOrganisation(db.current.knex, 'Presence Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await server?.close();
  });

  it('both sides are in the call', async () => {
    clerkPage = await (await clerkBrowser.newContext()).newPage();
    const link = await clerkStartsCall(clerkPage, server.url, clerk, PASSWORD);
    callUrl = clerkPage.url().replace(/#.*$/, '');
    await clerkPage.click('#join');
    customerPage = await customerBrowser.newPage();
    await customerPage.goto(link);
    await customerPage.waitForSelector('#join:not([disabled])');
    await customerPage.click('#join');
    await assertFlowing(customerPage);
    await assertFlowing(clerkPage);
    assert.equal(await callState(customerPage), 'connected');
    assert.equal((await remoteStatus(customerPage)).remote, 'present');
    leftText = await customerPage.evaluate(() => JSON.parse((globalThis as unknown as Doc).document.getElementById('call-i18n')!.textContent ?? '{}').remote_left as string);
  });

  it('the clerk\'s tab crashes: the customer sees "reconnecting" within 3 s', async () => {
    const cdp = await clerkPage.context().newCDPSession(clerkPage);
    const crashedAt = Date.now();
    // The crash takes the CDP session with it: its answer may never come.
    void cdp.send('Page.crash').catch(() => undefined);
    await until(() => callState(customerPage), (s) => s === 'reconnecting', crashedAt + 3000, 'reconnecting after the crash');
    assert.notEqual((await remoteStatus(customerPage)).remote, 'left', 'a crash is not leaving');
  });

  it('the clerk opens the call again: connected, media flows', async () => {
    // A new tab of the same browser profile (signed in).
    clerkPage = await clerkPage.context().newPage();
    await clerkPage.goto(callUrl);
    await clerkPage.waitForSelector('#join:not([disabled])');
    await clerkPage.click('#join');
    await until(() => callState(customerPage), (s) => s === 'connected', Date.now() + 15_000, 'connected again');
    await assertFlowing(customerPage);
    assert.equal((await remoteStatus(customerPage)).remote, 'present');
  });

  it('the clerk presses Leave: the customer\'s status says they left', async () => {
    await clerkPage.click('#leave');
    const status = await until(() => remoteStatus(customerPage), (s) => s.remote === 'left', Date.now() + 3000, 'left after Leave');
    assert.equal(status.text, leftText);
    // Longer than the media watch's limit: no media from someone who left is no reason to say "reconnecting".
    await customerPage.waitForTimeout(2500);
    assert.equal(await callState(customerPage), 'connected', 'the customer is still in the call');
    assert.equal((await remoteStatus(customerPage)).text, leftText);
  });

  it('the clerk joins again and closes the tab: the customer sees "left" at once, not "Connected"', async () => {
    await clerkPage.click('#rejoin');
    await clerkPage.waitForSelector('#join:not([disabled])');
    await clerkPage.click('#join');
    await until(() => remoteStatus(customerPage), (s) => s.remote === 'present', Date.now() + 15_000, 'present again');
    await assertFlowing(customerPage);
    const closedAt = Date.now();
    await clerkPage.close();
    const status = await until(() => remoteStatus(customerPage), (s) => s.remote === 'left', closedAt + 3000, 'left after closing the tab');
    assert.equal(status.text, leftText);
  });
});
