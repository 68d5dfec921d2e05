import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RecordingStore } from '../app/recordings/service';
import type { JobQueue } from '../app/jobs/queue';
import { startRecordings } from '../app/recordings/setup';
import { recordingDir, sha256File } from '../app/recordings/storage';
import { seedOrganisation, seedUser } from './support/accounts';
import { silentLogger, testConfig } from './support/context';
import { useTestDatabase } from './support/database';
import { startTestJobs } from './support/jobs';

/** A participant's raw track as the recorder writes it: VP8 and Opus in Matroska. */
function makeTrack(file: string, seconds: number, colour: string): void {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `color=c=${colour}:s=320x240:r=15:d=${seconds}`, '-f', 'lavfi', '-i', `sine=d=${seconds}`, '-c:v', 'libvpx', '-b:v', '300k', '-c:a', 'libopus', file]);
}

/** What a crash leaves, and what the next start makes of it. */
describe('recordings after a crash or restart', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let dataDir: string;
  let jobs: JobQueue | undefined;

  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-restart-'));
  });

  after(async () => {
    await jobs?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('a recording left running is marked partial and its final file is made from the tracks written so far', async () => {
    const knex = db.current.knex;
    const org = await seedOrganisation(knex, 'Crash Bank');
    const clerk = await seedUser(knex, org, 'clerk');
    const [call] = await knex('calls').insert({ organisation_id: org.id, clerk_id: clerk.id, status: 'active', guest_token_hash: crypto.randomBytes(32).toString('hex') }).returning('id');
    const store = new RecordingStore(knex);
    const recording = await store.create({ id: call!.id, organisationId: org.id }, { type: 'system' }, clerk.id, { ip: null, userAgent: null });
    const dir = recordingDir(dataDir, org.id, recording.id);
    fs.mkdirSync(path.join(dir, 'tracks'), { recursive: true });
    const now = Date.now();
    makeTrack(path.join(dir, 'tracks', 'clerk-1.mkv'), 4, 'blue');
    makeTrack(path.join(dir, 'tracks', 'customer-1.mkv'), 3, 'red');
    await store.addTrack(recording.id, { role: 'clerk', fileName: 'tracks/clerk-1.mkv', kinds: ['audio', 'video'], startedAtMs: now - 4000, endedAtMs: null, exitCode: null, partial: false });
    await store.addTrack(recording.id, { role: 'customer', fileName: 'tracks/customer-1.mkv', kinds: ['audio', 'video'], startedAtMs: now - 3000, endedAtMs: null, exitCode: null, partial: false });

    // The next start: reconciliation, then the job queue finishes it.
    jobs = await startTestJobs(knex);
    await startRecordings(testConfig({ VCLERK_DATA_DIR: dataDir }), knex, silentLogger, jobs);
    let row: import('../app/db/tables').RecordingRow | undefined;
    for (let i = 0; i < 120; i++) {
      row = await knex('recordings').where({ id: recording.id }).first();
      if (row!.status === 'partial' || row!.status === 'failed' || row!.status === 'ready') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(row!.status, 'partial', String(row!.error));
    assert.equal(row!.stop_reason, 'partial:restart');
    const file = path.join(dir, row!.file_name as string);
    assert.equal(await sha256File(file), row!.sha256);
    const duration = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], { encoding: 'utf8' }));
    assert.ok(duration > 3 && duration < 6, `duration ${duration}`);
    assert.equal(fs.existsSync(path.join(dir, 'tracks')), false, 'the raw tracks are removed once the final file exists');
    const actions = await knex('audit_events').where({ target_id: recording.id }).orderBy('seq').pluck('action');
    assert.deepEqual(actions, ['recording.started', 'recording.stopped', 'recording.finalised']);
  });
});
