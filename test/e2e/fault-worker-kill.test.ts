import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { seedOrganisation } from '../support/accounts';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';
import { framesNow, launchFaultBrowser, measureRecovery, smallFakeVideo, startCalls, waitAllFlowing, type FaultCall } from '../support/fault-calls';

const CALLS = 3;
/** Every call must decode video on both sides again within this long after the kill. */
const BOUND_MS = 30_000;

/**
 * Fault: kill -9 the media worker while several calls run. The pool
 * replaces the worker, each room moves to a new router, and the browsers
 * join again by themselves (bench/faults.ts runs the same with 20 calls).
 */
describe('kill -9 of the media worker during several calls (real browsers)', function () {
  this.timeout(150_000);
  const db = useTestDatabase();
  let server: CallServer;
  let tmp: string;
  let clerks: Browser;
  let customers: Browser;
  let calls: FaultCall[];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-fault-worker-'));
    const video = smallFakeVideo(tmp);
    server = await startCallServer(db.current, { workers: 1, graceMs: 5000 });
    [clerks, customers] = await Promise.all([launchFaultBrowser(video), launchFaultBrowser(video)]);
    const org = await seedOrganisation(db.current.knex, 'Worker Fault Bank');
    calls = await startCalls({ baseUrl: server.url, knex: db.current.knex, org, clerkBrowser: clerks, customerBrowser: customers, count: CALLS });
    await waitAllFlowing(calls);
  });

  after(async () => {
    await Promise.allSettled([clerks?.close(), customers?.close()]);
    await server?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(`every call decodes video on both sides again within ${BOUND_MS / 1000} s, on a new router of a new worker`, async () => {
    const routersBefore = await Promise.all(calls.map(async (c) => (await server.hub.describeCall(c.callId))!.routerId));
    const [worker] = server.pool.describe();
    assert.equal(worker!.routers, CALLS, 'all calls run on the one worker');
    const baseline = await framesNow(calls);
    const killedAt = Date.now();
    process.kill(worker!.pid, 'SIGKILL');
    const recovery = await measureRecovery(calls, baseline, killedAt, BOUND_MS);
    assert.deepEqual(recovery.perCall.map((ms) => ms !== null), calls.map(() => true), `time to media again per call (ms): ${JSON.stringify(recovery.perCall)}`);

    const [replaced] = server.pool.describe();
    assert.ok(replaced!.alive && replaced!.pid !== worker!.pid, 'the dead worker was replaced by a new process');
    assert.equal(replaced!.routers, CALLS, 'every call has a router on the new worker');
    const routersAfter = await Promise.all(calls.map(async (c) => (await server.hub.describeCall(c.callId))!.routerId));
    routersAfter.forEach((id, i) => assert.notEqual(id, routersBefore[i], `call ${i} moved to a new router`));
    // Not just a first frame: media keeps flowing on every page.
    await waitAllFlowing(calls, 10_000);
    const statuses = await db.current.knex('calls').whereIn('id', calls.map((c) => c.callId)).pluck('status');
    assert.deepEqual(statuses, calls.map(() => 'active'), 'no call was ended by the fault');
  });
});
