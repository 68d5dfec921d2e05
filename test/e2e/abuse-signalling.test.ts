import { REQUEST_LIMITS } from '../../app/calls/dispatch';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Browser, Page } from 'playwright-core';
import { REFUSAL_COUNT_SQL, refusalsFor } from '../../app/audit/refusals';
import { CallService } from '../../app/calls/service';
import { PASSWORD, seedOrganisation, seedUser, type SeededUser } from '../support/accounts';
import { assertFlowing, clerkStartsCall, launchBrowser, stats, type MediaStats } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';
import { sessionCookie } from '../support/signal-client';
import { floodSignalling, type FlooderSpec } from '../support/signalling-flood';

/**
 * Issue 17, abuse: 200 sockets flood signalling with malformed, oversized
 * and valid messages while a real call (two headless Chromium pages, fake
 * camera and microphone) runs in the same appliance.
 *
 * - 60 authenticated flooders: the clerk and the customer of 30 other calls
 *   (15 of the real call's organisation, 15 of another), half of them joined
 *   to their media room; each sends FLOOD_MESSAGES requests in bursts of
 *   100 (over the connection's burst allowance), FLOOD_RATE a second on
 *   average: valid chat, produce and consume requests,
 *   heartbeats, malformed payloads, unknown names, payloads over the 32 kB
 *   limit, some without an ack; every tenth also one frame over the 64 kB
 *   transport limit.
 * - 140 unauthenticated raw connections (engine.io without a socket.io
 *   session): a wrong token, no credentials, the real call's id without a
 *   session; then event packets, undecodable packets, oversized frames.
 *
 * Asserted: the real call is unharmed (frames decoded grow on both sides
 * during and after the flood; its chat works both ways), the process's RSS
 * grows by less than RSS_BOUND_MB, every flooder is cut off (disconnected)
 * or refused with a stable code, and the refusals are audited in aggregate
 * (a few rows whose counts add up) in each flooder's organisation.
 */

const AUTH_CALLS = 30;
const RAW = 140;
const FLOOD_MESSAGES = 300;
const FLOOD_RATE = 200;
/**
 * The bound on the appliance's RSS growth (this process; the flooders run
 * in a child): each connection may hold a frame of up to the 64 kB limit
 * being read (200 × 64 kB ≈ 13 MB), the 30 other calls' rooms, sockets and
 * sessions a few MB, and the garbage of ~30k decoded messages (about 12 MB
 * of them 40 kB payloads) until V8 collects it (its young generation and
 * old-space garbage grow to tens of MB first). 100 MB is that with room to
 * spare; a per-message leak (kept payloads, a listener or timer per
 * request) over ~30k messages would pass it by far.
 */
const RSS_BOUND_MB = 100;
const STABLE_CODES = new Set(['invalid_message', 'invalid_parameters', 'too_large', 'rate_limited', 'not_joined', 'not_found', 'forbidden', 'call_ended', 'media_unavailable', 'limit_reached', 'cannot_consume', 'internal_error']);
const CONNECT_CODES = new Set(['token_invalid', 'unauthenticated', 'rate_limited', 'call_not_found']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tally = (xs: string[]) => xs.reduce<Record<string, number>>((acc, x) => ({ ...acc, [x]: (acc[x] ?? 0) + 1 }), {});
const sum = (records: Record<string, number>[]) => records.reduce<Record<string, number>>((acc, r) => {
  for (const [k, n] of Object.entries(r)) acc[k] = (acc[k] ?? 0) + n;
  return acc;
}, {});

describe('abuse: 200 sockets flood signalling while a real call runs (two browsers)', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  let clerkPage: Page;
  let customerPage: Page;
  let clerk: SeededUser;
  let org: { id: string };

  before(async () => {
    // Set-up of 200 connections takes long on a loaded machine: no one is dropped as silent meanwhile.
    server = await startCallServer(db.current, { graceMs: 3000, silenceMs: 120_000 });
    org = await seedOrganisation(db.current.knex, 'Flooded Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk', { name: 'Clara Clerk' });
    [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await server?.close();
  });

  it('leaves the real call unharmed, memory bounded, cuts the flooders off and audits the refusals in aggregate', async () => {
    const knex = db.current.knex;
    // The real call, through the pages.
    clerkPage = await clerkBrowser.newPage();
    const link = await clerkStartsCall(clerkPage, server.url, clerk, PASSWORD);
    const callId = (await clerkPage.getAttribute('[data-call-id]', 'data-call-id'))!;
    await clerkPage.click('#join');
    customerPage = await customerBrowser.newPage();
    await customerPage.goto(link);
    await customerPage.waitForFunction(() => {
      const doc = (globalThis as unknown as { document: { getElementById(id: string): { videoWidth: number } | null } }).document;
      return (doc.getElementById('local-preview')?.videoWidth ?? 0) > 0;
    }, undefined, { timeout: 20_000 });
    await customerPage.click('#join');
    await assertFlowing(customerPage);
    await assertFlowing(clerkPage);

    // The flooders' accounts and calls: 15 calls of the real call's organisation, 15 of another.
    const other = await seedOrganisation(knex, 'Flooding Bank');
    const clerks = await Promise.all([org, org, other, other].map((o, i) => seedUser(knex, o, 'clerk', { name: `Flood Clerk ${i}` })));
    const cookies = await Promise.all(clerks.map((c) => sessionCookie(server.url, c)));
    const specs: FlooderSpec[] = [];
    const orgOf: string[] = [];
    for (let i = 0; i < AUTH_CALLS; i++) {
      const c = clerks[i % 4]!;
      const { call, token } = await new CallService(knex).start({ user: { id: c.id, organisationId: c.organisationId } as never, ip: '127.0.0.1', userAgent: 'flood', sessionId: 'x' }, 1);
      // Half join their room (a send transport), so valid produce and consume requests reach the media layer; every tenth sends a frame over 64 kB.
      specs.push({ auth: { callId: call.id }, cookie: cookies[i % 4], join: i % 2 === 0, oversizedFrame: i % 5 === 0 });
      specs.push({ auth: { token }, join: i % 2 === 1, oversizedFrame: false });
      orgOf.push(c.organisationId, c.organisationId);
    }
    const lastId = Number((await knex('audit_events').max({ id: 'id' }))[0]?.id ?? 0);

    const rss = () => process.memoryUsage().rss / 1024 / 1024;
    const rssBefore = rss();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rss())), 100);
    const lag = monitorEventLoopDelay({ resolution: 20 });

    // The flood runs in a child process; once it starts: frames during it, and the real call's chat through it.
    let before: MediaStats[] = [];
    let during: MediaStats[] = [];
    let chatDuring = -1;
    let observed: Promise<void> = Promise.resolve();
    const result = await floodSignalling({ url: server.url, flooders: specs, raw: RAW, realCallId: callId, messages: FLOOD_MESSAGES, rate: FLOOD_RATE }, () => {
      lag.enable();
      observed = (async () => {
        before = await Promise.all([stats(clerkPage), stats(customerPage)]);
        const sentAt = Date.now();
        await clerkPage.fill('#chat-input', 'Can you hear me?');
        await clerkPage.press('#chat-input', 'Enter');
        await customerPage.locator('#chat-log .chat-body', { hasText: 'Can you hear me?' }).waitFor({ timeout: 60_000 });
        chatDuring = Date.now() - sentAt;
        await sleep(1500);
        during = await Promise.all([stats(clerkPage), stats(customerPage)]);
      })();
    });
    await observed;
    lag.disable();
    await sleep(1500);
    const after = await Promise.all([stats(clerkPage), stats(customerPage)]);
    clearInterval(sampler);
    const rssAfter = rss();
    console.log(`      flood ${(result.ms / 1000).toFixed(1)} s; appliance event loop delay p50 ${(lag.percentile(50) / 1e6).toFixed(0)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms; the real call's chat crossed in ${chatDuring} ms during it`);
    const frames = (s: MediaStats[]) => s.map((x) => x.video.framesDecoded);
    console.log(`      frames decoded (clerk, customer) before ${frames(before)} during ${frames(during)} after ${frames(after)}`);
    for (const side of [0, 1]) {
      assert.ok(during[side]!.video.framesDecoded > before[side]!.video.framesDecoded, `side ${side} decodes frames during the flood`);
      assert.ok(after[side]!.video.framesDecoded > during[side]!.video.framesDecoded, `side ${side} decodes frames after the flood`);
      assert.ok(after[side]!.audio.packetsReceived > before[side]!.audio.packetsReceived, `side ${side} receives audio`);
    }
    await assertFlowing(customerPage);
    await assertFlowing(clerkPage);

    // The real call's chat, both ways, through the pages.
    await clerkPage.fill('#chat-input', 'Still with you?');
    await clerkPage.press('#chat-input', 'Enter');
    await customerPage.locator('#chat-log .chat-body', { hasText: 'Still with you?' }).waitFor({ timeout: 10_000 });
    await customerPage.fill('#chat-input', 'Yes, all fine');
    await customerPage.press('#chat-input', 'Enter');
    await clerkPage.locator('#chat-log .chat-body', { hasText: 'Yes, all fine' }).waitFor({ timeout: 10_000 });
    const state = await server.hub.describeCall(callId);
    assert.deepEqual(state!.peers.map((p) => p.role).sort(), ['clerk', 'customer'], 'both participants are still in the call');

    // Memory.
    console.log(`      RSS before ${rssBefore.toFixed(0)} MB, peak ${rssPeak.toFixed(0)} MB, after ${rssAfter.toFixed(0)} MB`);
    assert.ok(rssPeak - rssBefore < RSS_BOUND_MB, `RSS grew by ${(rssPeak - rssBefore).toFixed(0)} MB`);

    // The flooders: cut off or refused with stable codes.
    const flooders = result.flooders;
    const codes = sum(flooders.map((f) => f.codes));
    // Cut off by the server: disconnected for flooding, or its connection closed for a frame over 64 kB (not the flooder closing it at the end).
    const cutOff = flooders.filter((f) => f.cutOff === 'io server disconnect' || f.cutOff === 'transport close');
    const cutTimes = cutOff.map((f) => f.cutAfterMs!).sort((x, y) => x - y);
    console.log(`      authenticated: ${cutOff.length}/${flooders.length} cut off ${JSON.stringify(tally(cutOff.map((f) => f.cutOff!)))} after ${cutTimes[0]}-${cutTimes[cutTimes.length - 1]} ms (median ${cutTimes[cutTimes.length >> 1]}), having sent ${flooders.reduce((n, f) => n + f.sent, 0)}; ${flooders.reduce((n, f) => n + f.accepted, 0)} accepted, refusals ${JSON.stringify(codes)}, unanswered ${flooders.reduce((n, f) => n + f.unanswered, 0)}`);
    console.log(`      raw: ${JSON.stringify(tally(result.raw.map((r) => `${r.kind}: ${r.outcome}`)))}, connect refused ${JSON.stringify(tally(result.raw.map((r) => r.refused ?? 'none')))}`);
    assert.ok(Object.keys(codes).every((c) => STABLE_CODES.has(c)), `stable codes only: ${JSON.stringify(codes)}`);
    const answered = Object.values(codes).reduce((n, c) => n + c, 0) + flooders.reduce((n, f) => n + f.accepted, 0);
    assert.ok((codes.internal_error ?? 0) <= answered / 100, `at most 1 % internal_error (a database pool queued up too long): ${codes.internal_error ?? 0} of ${answered}`);
    assert.ok((codes.rate_limited ?? 0) > 0 && (codes.too_large ?? 0) > 0);
    // Every flooder is cut off or throttled: each sends its requests in bursts over the connection's burst
    // allowance, so even a flooder starved of CPU (its process runs at low priority) floods. How many are cut
    // off depends on how fast their messages arrive (over about 25 a second each).
    const unchecked = flooders.filter((f, i) => !cutOff.includes(f) && !((f.codes.rate_limited ?? 0) > 0) && !(specs[i]!.oversizedFrame && f.cutOff !== null));
    assert.deepEqual(unchecked, [], 'every authenticated flooder is cut off or throttled');
    // A flooder is disconnected once its refusals outrun the strikes' refill (REQUEST_LIMITS): every
    // one that sent at more than twice the connection's rate for the whole flood must be. On a busy
    // 2-core machine the flooders may not reach that rate; they are then throttled (asserted above).
    const seconds = result.ms / 1000;
    const fast = flooders.filter((f) => f.cutOff === null && f.sent / seconds > 2 * REQUEST_LIMITS.rate);
    console.log(`      flooders above twice the rate: ${fast.length} not cut off; cut off by the server: ${cutOff.filter((f) => f.cutOff === 'io server disconnect').length}`);
    assert.deepEqual(fast.length, 0, 'every flooder above twice the rate is cut off');
    assert.ok(result.raw.every((r) => !r.outcome.startsWith('not opened')), 'every raw connection opened');
    assert.ok(result.raw.every((r) => r.refused === null || CONNECT_CODES.has(r.refused)), 'raw connections refused with stable codes');
    assert.ok(result.raw.filter((r) => r.kind !== 'unjoined events').every((r) => r.outcome === 'cut off'), 'undecodable and oversized raw traffic closes the connection');

    // Audited in aggregate, in each flooder's organisation: few rows, counts adding up.
    await refusalsFor(knex).flush();
    const rows = await knex('audit_events').where('id', '>', lastId).where({ action: 'security.signalling_refused' }).select('organisation_id', 'details');
    const counted = Number((await knex('audit_events').where('id', '>', lastId).where({ action: 'security.signalling_refused' }).whereNotNull('organisation_id').sum({ n: knex.raw(REFUSAL_COUNT_SQL) }))[0]!.n);
    const byOrg = tally(rows.filter((r) => r.organisation_id).map((r) => r.organisation_id as string));
    assert.ok(orgOf.length === flooders.length);
    console.log(`      audit: ${rows.length} security.signalling_refused rows standing for ${counted} refusals; per organisation ${JSON.stringify(Object.values(byOrg))}`);
    const limited = (codes.rate_limited ?? 0) + (codes.too_large ?? 0);
    const serverCut = cutOff.filter((f) => f.cutOff === 'io server disconnect').length;
    assert.ok(counted >= limited + serverCut, `the audited counts (${counted}) cover every rate_limited/too_large answer and cut-off (${limited + serverCut})`);
    assert.ok(rows.length <= 4 * flooders.length, `${rows.length} rows for ${counted} refusals`);
    assert.ok(byOrg[org.id] && byOrg[other.id], 'both organisations see their flooders');
  });
});
