import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { createKnex } from '../app/db/connection';
import { tryHoldLock } from '../app/db/session-lock';
import { resolveFfmpeg } from '../media';
import { finaliseRecording } from '../app/recordings/finalise';
import { JobQueue } from '../app/jobs/queue';
import { FINALISE_QUEUE } from '../app/recordings/live';
import { RecordingStore } from '../app/recordings/service';
import { startRecordings } from '../app/recordings/setup';
import { recordingDir } from '../app/recordings/storage';
import { startRetention, RETENTION_QUEUE } from '../app/retention/scheduler';
import { seedOrganisation, seedUser } from './support/accounts';
import { silentLogger, testConfig } from './support/context';
import { useTestDatabase } from './support/database';
import { seedCall } from './retention-seed';

/**
 * Issue 19: with three nodes up (three pools, each its own job queue with
 * the cron scheduler, the retention job and the recording finisher), the
 * scheduled retention run happens once per tick, and a recording's
 * finishing job runs once, though every node asks for it.
 */
describe('nodes: jobs run once with three nodes up', function () {
  // The cron schedule has a minute's resolution: the test waits for one tick.
  this.timeout(150_000);
  const db = useTestDatabase();
  const pools: Knex[] = [];
  const queues: JobQueue[] = [];
  let dataDir: string;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-jobs-once-'));
    for (let i = 0; i < 3; i++) {
      const knex = createKnex(db.current.url, 4);
      const jobs = new JobQueue(knex, silentLogger, { schedule: true, pollingIntervalSeconds: 0.5 });
      await jobs.start();
      pools.push(knex);
      queues.push(jobs);
    }
  });
  /** The nodes stop before the test database is dropped (its `after` runs first). */
  const stopNodes = async () => {
    for (const jobs of queues.splice(0)) await jobs.stop();
    for (const knex of pools.splice(0)) await knex.destroy();
  };
  after(async () => {
    await stopNodes();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('the retention run of a tick and a recording\'s final file happen once, on one of the nodes', async () => {
    try {
      await runOnce();
    } finally {
      await stopNodes();
    }
  });

  async function runOnce(): Promise<void> {
    const knex = db.current.knex;
    const org = await seedOrganisation(knex, 'Three Nodes Bank');
    const clerk = await seedUser(knex, org, 'clerk');
    // Chat of a call ended 120 days ago: past the default 90 days.
    const old = await seedCall(knex, org.id, { endedDaysAgo: 120, clerkId: clerk.id });

    // A stopped recording with a real track, waiting for its final file.
    const [call] = await knex('calls').insert({ organisation_id: org.id, clerk_id: clerk.id, status: 'ended', ended_at: knex.fn.now(), end_reason: 'all_left', guest_token_hash: 'x'.repeat(64) }).returning('id');
    const store = new RecordingStore(knex);
    const recording = await store.create({ id: call!.id, organisationId: org.id }, { type: 'system' }, clerk.id, { ip: null, userAgent: null });
    const dir = recordingDir(dataDir, org.id, recording.id);
    fs.mkdirSync(path.join(dir, 'tracks'), { recursive: true });
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=blue:s=320x240:r=15:d=3', '-f', 'lavfi', '-i', 'sine=d=3', '-c:v', 'libvpx', '-b:v', '300k', '-c:a', 'libopus', path.join(dir, 'tracks', 'clerk-1.mkv')]);
    await store.addTrack(recording.id, { role: 'clerk', fileName: 'tracks/clerk-1.mkv', kinds: ['audio', 'video'], startedAtMs: Date.now() - 3000, endedAtMs: Date.now(), exitCode: 0, partial: false });
    await store.stopped(recording.id, 'stopped', false);

    // While another node makes the final file (it holds the recording's lock), a finishing job leaves it alone.
    const other = await tryHoldLock(pools[2]!, `vclerk.recording-finalise:${recording.id}`);
    assert.ok(other);
    await finaliseRecording({ knex, logger: silentLogger, dataDir, ffmpegPath: resolveFfmpeg(undefined), key: null })({ id: 'x', name: FINALISE_QUEUE, data: { recordingId: recording.id } } as never);
    assert.equal((await knex('recordings').where({ id: recording.id }).first('status'))!.status, 'processing');
    assert.equal(fs.existsSync(path.join(dir, 'composed.tmp.mp4')), false, 'nothing composed meanwhile');
    await other();

    // Every node: the retention job every minute, and the finisher; every node asks for the final file.
    for (const [i, jobs] of queues.entries()) {
      await startRetention({ jobs, knex: pools[i]!, logger: silentLogger, dataDir, cron: '* * * * *' });
      await startRecordings(testConfig({ VCLERK_DATA_DIR: dataDir }), pools[i]!, silentLogger, jobs);
    }
    await Promise.all(queues.map((jobs) => jobs.send(FINALISE_QUEUE, { recordingId: recording.id }, { singletonKey: recording.id })));

    // Until the first tick's run and the final file are done (bounded).
    const deadline = Date.now() + 130_000;
    const done = async () => {
      const runs = await knex.raw<{ rows: { n: string }[] }>(`SELECT count(*) AS n FROM pgboss.job WHERE name = ? AND state = 'completed'`, [RETENTION_QUEUE]);
      const row = await knex('recordings').where({ id: recording.id }).first('status');
      return Number(runs.rows[0]!.n) >= 1 && (row!.status === 'ready' || row!.status === 'failed' || row!.status === 'partial');
    };
    while (!(await done())) {
      assert.ok(Date.now() < deadline, 'the tick\'s retention run and the final file are done within 130 s');
      await new Promise((r) => setTimeout(r, 1000));
    }
    // A little longer: a second run of the same tick or a second finishing would show by now.
    await new Promise((r) => setTimeout(r, 3000));

    // One job (and run) per tick: pg-boss's scheduler sends each tick once, whichever node's scheduler runs it.
    const ticks = (await knex.raw<{ rows: { tick: Date; n: string; states: string }[] }>(`SELECT date_trunc('minute', created_on) AS tick, count(*) AS n, string_agg(state::text, ',') AS states FROM pgboss.job WHERE name = ? GROUP BY 1`, [RETENTION_QUEUE])).rows;
    assert.ok(ticks.length >= 1 && ticks.every((t) => t.n === '1'), `one retention job per tick: ${JSON.stringify(ticks)}`);
    const deleted = await knex('audit_events').where({ organisation_id: org.id, action: 'retention.deleted' }).pluck('details');
    const chat = deleted.filter((d) => (d as { kind: string }).kind === 'chat');
    assert.equal(chat.length, 1, `the chat of the old call is deleted once, with one receipt: ${JSON.stringify(deleted)}`);
    assert.equal(Number((await knex('call_messages').where({ call_id: old.callId }).count<{ n: string }[]>({ n: '*' }))[0]!.n), 0);

    // Every node asked (and each start re-queues what waits for its file): several jobs, one final file.
    const sent = (await knex.raw<{ rows: { n: string }[] }>(`SELECT count(*) AS n FROM pgboss.job WHERE name = ? AND data->>'recordingId' = ?`, [FINALISE_QUEUE, recording.id])).rows[0]!.n;
    assert.ok(Number(sent) >= 1, `${sent} finishing jobs`);
    const finalised = await knex('audit_events').where({ action: 'recording.finalised', target_id: recording.id }).count<{ n: string }[]>({ n: '*' });
    assert.equal(Number(finalised[0]!.n), 1, 'finalised once');
    const row = (await knex('recordings').where({ id: recording.id }).first('status', 'file_name', 'sha256'))!;
    assert.equal(row.status, 'ready');
    const file = path.join(dir, row.file_name!);
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), row.sha256, 'the final file is the one its hash was taken of');
    const frames = Number(execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file], { encoding: 'utf8' }).trim());
    assert.ok(frames > 20, `${frames} video frames`);
  }
});
