import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { PASSWORD, seedOrganisation, seedUser, type SeededUser } from '../support/accounts';
import { assertFlowing, clerkStartsCall, launchBrowser, stats, waitForStats } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';

/**
 * A real 1:1 call: two headless Chromium instances with fake camera and
 * microphone, the appliance's own signalling and a real mediasoup worker.
 */
describe('a video call between a clerk and a customer (two real browsers)', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  let clerkPage: Page;
  let customerPage: Page;
  let clerk: SeededUser;
  let callId: string;

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 3000, workers: 2 });
    const org = await seedOrganisation(db.current.knex, 'Call Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk', { name: 'Clara Clerk' });
    [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await server?.close();
  });

  it('the clerk signs in, starts a call and gets a customer link', async () => {
    clerkPage = await clerkBrowser.newPage();
    const link = await clerkStartsCall(clerkPage, server.url, clerk, PASSWORD);
    callId = await clerkPage.getAttribute('[data-call-id]', 'data-call-id') as string;
    assert.match(callId, /^[0-9a-f-]{36}$/);
    assert.match(link, /\/join\/[A-Za-z0-9_-]{43}$/);
    await clerkPage.click('#join');

    customerPage = await customerBrowser.newPage();
    await customerPage.goto(link);
    await customerPage.waitForSelector('#join');
    // The device check: camera preview and a moving microphone level (the fake microphone beeps).
    // Self-contained functions, not strings: the page's CSP forbids eval.
    await customerPage.waitForFunction(() => {
      const doc = (globalThis as unknown as { document: { getElementById(id: string): { videoWidth: number } | null } }).document;
      return (doc.getElementById('local-preview')?.videoWidth ?? 0) > 0;
    }, undefined, { timeout: 10000 });
    await customerPage.waitForFunction(() => {
      const doc = (globalThis as unknown as { document: { getElementById(id: string): { value: number } | null } }).document;
      return Number(doc.getElementById('mic-level')?.value ?? 0) > 0.01;
    }, undefined, { timeout: 10000 });
    await customerPage.click('#join');
  });

  it('each side decodes the other\'s video and receives audio', async () => {
    await assertFlowing(customerPage);
    await assertFlowing(clerkPage);
    const call = await db.current.knex('calls').where({ id: callId }).first();
    assert.equal(call!.status, 'active');
    assert.ok(call!.started_at);
    const state = await server.hub.describeCall(callId);
    assert.deepEqual(state!.peers.map((p) => p.role).sort(), ['clerk', 'customer']);
  });

  it('muting the microphone stops the other side\'s audio packets', async () => {
    await clerkPage.click('#toggle-microphone');
    assert.equal(await clerkPage.getAttribute('#toggle-microphone', 'aria-pressed'), 'true');
    await customerPage.waitForTimeout(1000);
    const before = await stats(customerPage);
    await customerPage.waitForTimeout(2000);
    const after = await stats(customerPage);
    assert.ok(after.audio.packetsReceived - before.audio.packetsReceived <= 2, `audio kept flowing: ${before.audio.packetsReceived} -> ${after.audio.packetsReceived}`);
    assert.ok(after.video.framesDecoded > before.video.framesDecoded, 'video still flows');
    await clerkPage.click('#toggle-microphone');
    await waitForStats(customerPage, (s) => s.audio.packetsReceived > after.audio.packetsReceived + 10);
  });

  it('after the media worker is killed mid-call, both sides decode media again on a new worker', async () => {
    const before = (await server.hub.describeCall(callId))!.routerId;
    const worker = server.pool.describe().find((w) => w.routers > 0)!;
    process.kill(worker.pid, 'SIGKILL');
    await waitForStats(clerkPage, () => true);
    // New consumers start counting from zero: wait for fresh frames on both sides.
    await new Promise((r) => setTimeout(r, 1500));
    await assertFlowing(customerPage);
    await assertFlowing(clerkPage);
    const after = (await server.hub.describeCall(callId))!.routerId;
    assert.notEqual(after, before, 'the call moved to a new router');
    assert.ok(server.pool.describe().every((w) => w.alive), 'the dead worker was replaced');
  });

  it('the customer leaving frees their transports on the server', async () => {
    await customerPage.click('#leave');
    const deadline = Date.now() + 5000;
    let state = await server.hub.describeCall(callId);
    // The clerk's consumers close when the worker reports their producers gone: a moment later.
    while ((state?.peers.some((p) => p.role === 'customer') || state?.peers.some((p) => p.consumers > 0)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      state = await server.hub.describeCall(callId);
    }
    assert.deepEqual(state!.peers.map((p) => p.role), ['clerk']);
    assert.equal(state!.peers[0]!.consumers, 0, 'the clerk no longer consumes the customer');
    let events: string[] = [];
    for (let i = 0; i < 50 && !events.includes('call.left'); i++) {
      events = await db.current.knex('audit_events').where({ target_id: callId }).orderBy('seq').pluck('action');
      if (!events.includes('call.left')) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(events[0], 'call.started');
    assert.ok(events.filter((a: string) => a === 'call.joined').length >= 2, 'both joins are audited');
    assert.ok(events.includes('call.left'));
  });

  it('the clerk ends the call', async () => {
    await clerkPage.click('button#end-call, form[action$="/end"] button');
    // End call asks first (issue 16), in a dialog.
    await clerkPage.click('#end-call-confirm');
    await clerkPage.waitForURL('**/dashboard');
    const call = await db.current.knex('calls').where({ id: callId }).first();
    assert.equal(call!.status, 'ended');
    assert.equal(call!.end_reason, 'ended_by_clerk');
    assert.equal(await server.hub.describeCall(callId), undefined);
  });
});
