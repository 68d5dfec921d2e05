import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { CallService } from '../app/calls/service';
import type { JobQueue } from '../app/jobs/queue';
import { FailoverSweep, startScope } from '../app/nodes/failover';
import { upsertNode } from '../app/nodes/store';
import { reconcileRecordings } from '../app/recordings/finalise';
import { FINALISE_QUEUE } from '../app/recordings/live';
import { RecordingStore } from '../app/recordings/service';
import { seedOrganisation, seedUser } from './support/accounts';
import { silentLogger, testConfig } from './support/context';
import { useTestDatabase } from './support/database';
import { startTestJobs } from './support/jobs';

/**
 * Issue 19: with several nodes on one database, a starting node reconciles
 * only its own calls and recordings (and those of nodes that are gone), never
 * a living node's; and every node's sweep takes back a gone node's active
 * calls (to waiting, for placing again) and running recordings (partial,
 * queued for their final file), each once however many nodes sweep.
 */
describe('nodes: a restart and a lost node reconcile only what is theirs', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let jobs: JobQueue;
  let knex: Knex;
  let org: { id: string };
  let clerkId: string;
  const nodeIds: Record<string, string> = {};

  before(async () => {
    knex = db.current.knex;
    jobs = await startTestJobs(knex);
    org = await seedOrganisation(knex, 'Many Nodes Bank');
    clerkId = (await seedUser(knex, org, 'clerk')).id;
    for (const name of ['node-live', 'node-dead']) {
      const row = await upsertNode(knex, { name, url: `http://${name}:8080`, mediaAddress: null, capacity: 10, calls: 0, workers: 1, version: 'test', heartbeatSeconds: 2, runId: crypto.randomUUID() });
      nodeIds[name] = row.id;
    }
    // node-dead stopped renewing an hour ago (kill -9, power off).
    await knex('nodes').where({ name: 'node-dead' }).update({ renewed_at: knex.raw(`now() - interval '1 hour'`) });
  });
  after(async () => jobs?.stop());

  /** An active call on `node` (or none) with a running recording. */
  async function activeCall(node: string | null): Promise<{ callId: string; recordingId: string }> {
    const [call] = await knex('calls').insert({ organisation_id: org.id, clerk_id: clerkId, status: 'active', node_id: node ? nodeIds[node] : null, guest_token_hash: crypto.randomBytes(32).toString('hex') }).returning('id');
    const recording = await new RecordingStore(knex).create({ id: call!.id, organisationId: org.id }, { type: 'system' }, clerkId, { ip: null, userAgent: null });
    return { callId: call!.id, recordingId: recording.id };
  }
  const statusOf = async (callId: string) => (await knex('calls').where({ id: callId }).first('status'))!.status as string;
  const recordingOf = async (id: string) => (await knex('recordings').where({ id }).first('status', 'stop_reason'))!;

  it('a starting node ends the media of its own, unplaced and lost calls, not of a living node\'s', async () => {
    const onLive = await activeCall('node-live');
    const onDead = await activeCall('node-dead');
    const unplaced = await activeCall(null);
    const scope = await startScope(knex, testConfig({ VCLERK_NODE_NAME: 'node-new' }));
    assert.deepEqual(scope, { nodeIds: [nodeIds['node-dead']], unplaced: true });

    await new CallService(knex).reconcileOnStart(scope);
    await reconcileRecordings(knex, jobs, scope);
    assert.equal(await statusOf(onLive.callId), 'active', 'the living node\'s call goes on');
    assert.equal((await recordingOf(onLive.recordingId)).status, 'recording', 'and so does its recording');
    for (const mine of [onDead, unplaced]) {
      assert.equal(await statusOf(mine.callId), 'waiting');
      assert.deepEqual(await recordingOf(mine.recordingId), { status: 'processing', stop_reason: 'partial:restart' });
    }
    // Clean up for the next case: the living node's call ends.
    await knex('calls').where({ id: onLive.callId }).update({ status: 'ended', ended_at: knex.fn.now(), end_reason: 'ended_by_clerk' });
    await knex('recordings').where({ id: onLive.recordingId }).update({ status: 'failed' });
  });

  it('the sweep takes a lost node\'s calls and recordings back once, however many nodes sweep at once', async () => {
    const onDead = await activeCall('node-dead');
    const onLive = await activeCall('node-live');
    const sweeps = [1, 2, 3].map(() => new FailoverSweep({ knex, jobs, logger: silentLogger, heartbeatSeconds: 2 }));
    const results = await Promise.all(sweeps.map((s) => s.sweep()));
    assert.deepEqual(results.reduce((sum, r) => ({ calls: sum.calls + r.calls, recordings: sum.recordings + r.recordings }), { calls: 0, recordings: 0 }), { calls: 1, recordings: 1 });

    assert.equal(await statusOf(onDead.callId), 'waiting', 'to be placed again when its participants reconnect');
    assert.deepEqual(await recordingOf(onDead.recordingId), { status: 'processing', stop_reason: 'partial:node_lost' });
    assert.equal(await statusOf(onLive.callId), 'active');
    assert.equal((await recordingOf(onLive.recordingId)).status, 'recording');

    const interrupted = await knex('audit_events').where({ action: 'call.interrupted', target_id: onDead.callId }).pluck('details');
    assert.deepEqual(interrupted.map((d) => (d as { reason: string }).reason), ['node_lost'], 'audited once');
    const stopped = await knex('audit_events').where({ action: 'recording.stopped', target_id: onDead.recordingId }).count<{ n: string }[]>({ n: '*' });
    assert.equal(Number(stopped[0]!.n), 1);
    const queued = await knex.raw<{ rows: { n: string }[] }>(`SELECT count(*) AS n FROM pgboss.job WHERE name = ? AND data->>'recordingId' = ?`, [FINALISE_QUEUE, onDead.recordingId]);
    assert.equal(Number(queued.rows[0]!.n), 1, 'its final file is queued once');
  });
});
