import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { io } from 'socket.io-client';
import { AuditService } from '../../app/audit/service';
import { CallService } from '../../app/calls/service';
import { RecordingPolicyStore } from '../../app/recordings/policy';
import { recordingDir } from '../../app/recordings/storage';
import { PASSWORD, seedOrganisation, seedUser, type SeededOrganisation } from '../support/accounts';
import { probe, startRecording } from '../support/appliance-kill';
import { startNodes, type NodeCluster } from '../support/appliance-nodes';
import { clerkStartsCall, signInThroughForm } from '../support/browser';
import { useTestDatabase } from '../support/database';
import { framesNow, launchFaultBrowser, measureRecovery, smallFakeVideo, waitAllFlowing, type FaultCall } from '../support/fault-calls';

/**
 * Issue 19, done when: three appliance nodes (dist/, child processes) on
 * one database, each on its own loopback address with its own HTTP and
 * media ports, HAProxy in front (test/support/appliance-nodes.ts), and two
 * headless Chromium per call. Calls are placed on different nodes; a
 * customer whose socket reaches another node still joins; the clerk's live
 * queue on one node shows a customer who queued through another; kill -9
 * of the node holding a call brings media back on another node (the time
 * is printed; the issue asks for 10 s, bench/nodes.ts and the docs give the
 * figure) with the chat and cards still there, the recording running on the
 * dead node kept as partial (frames in its final file, made from the tracks
 * in the shared data directory) and, the policy being "always", going on as
 * a new recording on the new node, and the audit chain verifying;
 * a drained node takes no new call. VCLERK_TEST_LOG=1 prints the steps.
 */

const say = process.env.VCLERK_TEST_LOG ? (line: string) => console.log(`      ${line}`) : () => undefined;
/** How long the test waits for media again after the kill (a bound, not the figure: that is printed, and bench/nodes.ts measures it). */
const MEDIA_AGAIN_WAIT_MS = 60_000;

type Doc = { document: { querySelectorAll(s: string): { length: number } } };

describe('three appliance nodes behind HAProxy (real browsers, dist/)', function () {
  this.timeout(300_000);
  const db = useTestDatabase();
  let cluster: NodeCluster;
  let org: SeededOrganisation;
  let home: string;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  const contexts: BrowserContext[] = [];
  const calls: FaultCall[] = [];
  const holders: string[] = [];

  const nodeNameOfCall = async (callId: string): Promise<string | undefined> => {
    const row = await db.current.knex('calls').leftJoin('nodes', 'nodes.id', 'calls.node_id').where('calls.id', callId).first('nodes.name as name');
    return row?.name ?? undefined;
  };
  const until = async <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${cluster.logs(15)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  /** With VCLERK_TEST_LOG: the recovery's steps as they happen (the call's row, each page's state), in ms after the kill. */
  const traceRecovery = (call: FaultCall, since: number): { stop(): Promise<void> } => {
    if (!process.env.VCLERK_TEST_LOG) return { stop: async () => undefined };
    let running = true;
    const seen = new Map<string, string>();
    const note = (what: string, value: string) => {
      if (seen.get(what) === value) return;
      seen.set(what, value);
      say(`+${Date.now() - since} ms ${what}: ${value}`);
    };
    const loop = (async () => {
      while (running) {
        const row = await db.current.knex('calls').leftJoin('nodes', 'nodes.id', 'calls.node_id').where('calls.id', call.callId).first('calls.status', 'nodes.name');
        note('call', `${row?.status} on ${row?.name ?? '(none)'}`);
        for (const [side, page] of [['clerk', call.clerk], ['customer', call.customer]] as const) {
          note(side, await page.getAttribute('#call-status', 'data-state').catch(() => 'unknown') ?? 'none');
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    return { stop: async () => { running = false; await loop; } };
  };
  const newPage = async (browser: Browser): Promise<Page> => {
    const context = await browser.newContext();
    contexts.push(context);
    return context.newPage();
  };

  before(async () => {
    const knex = db.current.knex;
    // The default heartbeat: a node is gone 6 s after its last renewal (1 s declares busy living nodes gone on a loaded 2-core machine).
    cluster = await startNodes(db.current, { count: 3, heartbeatSeconds: 2, log: say });
    org = await seedOrganisation(knex, 'Three Nodes Bank');
    // Recording on demand: the clerk's button is there (the kill test records, then switches to "always").
    await knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', allowUnrecorded: false, adminAccess: false, clerkAccess: false } } });
    await knex('products').insert({ organisation_id: org.id, sku: 'ACC-1', name: 'Student account', description: 'A current account', price_cents: 0, currency: 'EUR', category: 'Accounts' });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-nodes-three-'));
    const video = smallFakeVideo(home);
    [clerkBrowser, customerBrowser] = await Promise.all([launchFaultBrowser(video), launchFaultBrowser(video)]);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await cluster?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && cluster) console.log(cluster.logs(25));
  });

  it('the three nodes are registered and up, each with its own media address', async () => {
    const rows = await db.current.knex('nodes').orderBy('name').select('name', 'url', 'media_address');
    assert.deepEqual(
      rows.map((r) => [r.name, r.url, r.media_address]),
      cluster.nodes.map((n) => [n.name, n.url, n.address]),
    );
  });

  it("the clerk's live queue on node-a shows a customer who queued through node-b", async () => {
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const clerkPage = await newPage(clerkBrowser);
    await signInThroughForm(clerkPage, cluster.node('node-a').url, clerk.email, PASSWORD);
    await clerkPage.selectOption('#f-availability', 'available');
    await clerkPage.click('.availability-form button[type=submit]');
    await clerkPage.waitForURL('**/dashboard');
    assert.equal(await clerkPage.evaluate(() => (globalThis as unknown as Doc).document.querySelectorAll('#queue-list li').length), 0);
    const customerPage = await newPage(customerBrowser);
    await customerPage.goto(`${cluster.node('node-b').url}/q/${org.slug}`);
    await customerPage.click('#enter-queue');
    await customerPage.waitForURL(/\/wait#ticket=/);
    await clerkPage.waitForFunction(() => (globalThis as unknown as Doc).document.querySelectorAll('#queue-list li').length === 1, undefined, { timeout: 20_000 });
    assert.match((await clerkPage.textContent('#queue-count')) ?? '', /1 customer waiting/);
    // The customer leaves the queue page; the clerk goes on with calls.
    await Promise.all([clerkPage.context().close(), customerPage.context().close()]);
  });

  it('three calls through the proxy are placed on three different nodes; a customer whose page and socket reach another node joins too', async () => {
    const knex = db.current.knex;
    for (let index = 0; index < 3; index++) {
      const user = await seedUser(knex, org, 'clerk');
      const clerk = await newPage(clerkBrowser);
      const link = await clerkStartsCall(clerk, cluster.url, user, PASSWORD);
      assert.ok(link.startsWith(`${cluster.url}/join/`), `the link is the proxy's: ${link}`);
      const callId = (await clerk.getAttribute('[data-call-id]', 'data-call-id'))!;
      await clerk.click('#join');
      const holder = await until(`call ${index} placed`, 30_000, () => nodeNameOfCall(callId));
      holders.push(holder);
      // Call 1's customer opens the link on another node than the holder, directly (not the one the kill
      // test stops later: a page loaded from a node, not through the proxy, reconnects only to that node).
      const customerUrl = index === 1 ? link.replace(cluster.url, cluster.nodes.find((n) => n.name !== holder && n.name !== holders[0])!.url) : link;
      const customer = await newPage(customerBrowser);
      await customer.goto(customerUrl);
      await customer.click('#join');
      calls.push({ index, callId, clerk, customer, contexts: [clerk.context(), customer.context()] });
      say(`call ${index} (${callId}) on ${holder}; customer through ${new URL(customerUrl).host}`);
    }
    await waitAllFlowing(calls, 60_000);
    assert.deepEqual([...holders].sort(), ['node-a', 'node-b', 'node-c'], 'one call per node (least loaded first)');
    for (const call of calls) assert.equal(await nodeNameOfCall(call.callId), holders[call.index], 'still on its node');
  });

  it('a socket reaching a node that does not hold the call is refused wrong_node naming the holder', async () => {
    const token = calls[0]!.customer.url().match(/\/join\/([^/?#]+)/)![1]!;
    const other = cluster.nodes.find((n) => n.name !== holders[0])!;
    const refusal = await new Promise<{ message: string; data?: { node?: string } }>((resolve, reject) => {
      const socket = io(other.url, { path: '/signal', auth: { token }, transports: ['websocket'], reconnection: false });
      const timer = setTimeout(() => reject(new Error('no answer')), 10_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.close();
        reject(new Error(`${other.name} took call 0, held by ${holders[0]}`));
      });
      socket.once('connect_error', (err: Error & { data?: { node?: string } }) => {
        clearTimeout(timer);
        socket.close();
        resolve(err);
      });
    });
    assert.equal(refusal.message, 'wrong_node');
    assert.equal(refusal.data?.node, holders[0]);
  });

  it('kill -9 of the node holding a call: media again on both sides on another node (the time printed), chat and cards still there, its recording kept as partial and going on as a new one, the audit chain verifies', async function () {
    // Recording (up to 3 tries on a busy machine) and composing its final file (low priority) take their time.
    this.timeout(600_000);
    const knex = db.current.knex;
    const call = calls[0]!;
    const victim = holders[0]!;
    // A card shown and a chat message, both seen by the other side.
    await call.clerk.fill('#catalog-search', 'student');
    await call.clerk.click('#catalog-results .catalog-result:has-text("Student account") button.catalog-show');
    await call.customer.locator('#cards li.card .card-name', { hasText: 'Student account' }).waitFor({ timeout: 15_000 });
    const text = `before the kill ${Date.now()}`;
    if (!(await call.clerk.isVisible('#chat-input'))) await call.clerk.click('#toggle-chat');
    await call.clerk.fill('#chat-input', text);
    await call.clerk.click('#chat-send');
    await call.customer.locator('#chat-log .chat-body', { hasText: text }).waitFor({ timeout: 15_000 });
    // A recording on the holder, with the customer's consent; then the organisation records every
    // call ("always"): after the kill the recording must go on as a new one on the new node.
    await startRecording(knex, call, say);
    const first = (await knex('recordings').where({ call_id: call.callId, status: 'recording' }).first('id'))!.id as string;
    // Some seconds of it in the tracks (in the shared data directory) before the kill.
    const tracks = path.join(recordingDir(cluster.dataDir, org.id, first), 'tracks');
    const trackBytes = () => (fs.existsSync(tracks) ? fs.readdirSync(tracks).filter((f) => f.endsWith('.mkv')).reduce((n, f) => n + fs.statSync(path.join(tracks, f)).size, 0) : 0);
    await until('the recording\'s tracks to grow past 200 kB', 60_000, async () => (trackBytes() > 200_000 ? true : undefined));
    const admin = await seedUser(knex, org, 'admin');
    const policies = new RecordingPolicyStore(knex);
    const asAdmin = { user: { id: admin.id, organisationId: org.id, role: 'admin', email: admin.email, name: admin.name }, ip: '127.0.0.1', userAgent: 'test', sessionId: 'test' } as never;
    await policies.save(asAdmin, { mode: 'always' });

    const baseline = await framesNow(calls);
    const killedAt = await cluster.kill(victim);
    say(`kill -9 of ${victim} (holding call 0)`);
    const trace = traceRecovery(call, killedAt);
    const recovery = await measureRecovery([call], baseline.slice(0, 2), killedAt, MEDIA_AGAIN_WAIT_MS);
    await trace.stop();
    const ms = recovery.perCall[0];
    const newHolder = await nodeNameOfCall(call.callId);
    console.log(`      media again on both sides after kill -9 of ${victim}: ${ms === null ? `not within ${MEDIA_AGAIN_WAIT_MS / 1000} s` : `${ms} ms`} (call now on ${newHolder})`);
    assert.ok(ms !== null && ms !== undefined, `media again on both sides: ${ms}\n${cluster.logs(20)}`);
    assert.ok(newHolder && newHolder !== victim, `placed on a living node: ${newHolder}`);
    // The other calls went on where they were.
    const others = calls.slice(1);
    await waitAllFlowing(others, 20_000);

    for (const page of [call.clerk, call.customer]) {
      await page.locator('#chat-log .chat-body', { hasText: text }).waitFor({ timeout: 10_000 });
      await page.locator('#cards li.card .card-name', { hasText: 'Student account' }).waitFor({ timeout: 10_000 });
    }
    const row = await knex('calls').where({ id: call.callId }).first('status');
    assert.equal(row?.status, 'active');
    const interrupted = await knex('audit_events').where({ action: 'call.interrupted', target_id: call.callId }).select('details');
    assert.deepEqual(interrupted.map((e) => (e.details as { reason: string }).reason), ['node_lost'], 'the interruption is audited once');

    // The recording on the dead node: kept as partial, its final file made from the tracks in the shared data directory.
    const finished = await until('the first recording finished', 240_000, async () => {
      const r = await knex('recordings').where({ id: first }).first();
      return r && ['ready', 'partial', 'failed'].includes(r.status) ? r : undefined;
    });
    assert.deepEqual([finished.status, finished.stop_reason], ['partial', 'partial:node_lost'], `the first recording: ${finished.error}`);
    const media = probe(path.join(recordingDir(cluster.dataDir, org.id, first), finished.file_name as string));
    console.log(`      the recording cut by the kill: partial, ${media.videoFrames} video frames, ${media.duration.toFixed(1)} s`);
    assert.ok(media.videoFrames > 10, `the partial recording plays up to the loss: ${media.videoFrames} frames`);
    // It goes on as a new recording on the call's new node.
    const next = await until('a new recording of the call', 60_000, async () => (await knex('recordings').where({ call_id: call.callId }).whereNot({ id: first }).where({ status: 'recording' }).first('id'))?.id as string | undefined);
    say(`recording ${first} partial; ${next} records on ${newHolder}`);
    await policies.save(asAdmin, { mode: 'on_demand' });

    const audit = new AuditService(knex);
    assert.equal((await audit.verify(org.id)).ok, true, "the organisation's audit chain verifies");
    assert.equal((await audit.verify(null)).ok, true, 'the appliance chain verifies');
  });

  it('a drained node takes no new call', async () => {
    const knex = db.current.knex;
    const living = cluster.nodes.filter((n) => !n.killedAt).map((n) => n.name);
    const drained = living[living.length - 1]!;
    const drain = await cluster.cli(['node', 'drain', drained]);
    assert.equal(drain.code, 0, drain.output);
    const clerk = await seedUser(knex, org, 'clerk');
    const caller = { user: { id: clerk.id, organisationId: org.id } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' };
    const placed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { call, token } = await new CallService(knex).start(caller, 1);
      // The customer's signalling through the proxy places the call, wherever it lands (connected or
      // wrong_node); tried again while a busy machine lets a try fail otherwise.
      const node = await until(`call ${call.id} placed`, 30_000, async () => {
        await new Promise<void>((resolve) => {
          const socket = io(cluster.url, { path: '/signal', auth: { token }, transports: ['websocket'], reconnection: false, timeout: 10_000 });
          const done = () => {
            socket.close();
            resolve();
          };
          socket.once('connect', done);
          socket.once('connect_error', done);
        });
        return nodeNameOfCall(call.id);
      });
      placed.push(node);
    }
    say(`new calls with ${drained} drained: ${placed.join(', ')}`);
    assert.equal(placed.length, 3);
    assert.ok(placed.every((n) => n && n !== drained && living.includes(n)), `placed on ${placed.join(', ')}, not on ${drained}`);
    // Its own call stays where it is.
    const own = calls.find((c) => holders[c.index] === drained);
    if (own) assert.equal(await nodeNameOfCall(own.callId), drained);
  });
});
