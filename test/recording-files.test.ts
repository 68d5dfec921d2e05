import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CallRecorder, PortAllocator, RoomRegistry, WorkerPool, type RecordingTrack } from '../media';
import { finaliseRecording } from '../app/recordings/finalise';
import { RecordingStore } from '../app/recordings/service';
import { recordingDir } from '../app/recordings/storage';
import { seedOrganisation, seedUser } from './support/accounts';
import { silentLogger } from './support/context';
import { startTestPool } from './support/media-pool';
import { createTestDatabase, useTestDatabase, type TestDatabase } from './support/database';
import { assertBuilt, cleanEnv, compiledServer, freePort, mediaEnv, run } from './support/process';
import { startRtpSource, type RtpSource } from './support/rtp-source';

/**
 * Recording files are the appliance's alone: the raw tracks (plaintext
 * while the call runs) are 0600 in 0700 directories and gone once the
 * final file is made, whether the recording succeeded or held nothing
 * usable. This process keeps its usual umask (022), so the modes checked
 * here come from the code that writes the files, not from the umask the
 * appliance sets for itself (checked last, with the real process).
 */

const mode = (file: string) => fs.statSync(file).mode & 0o777;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every directory and file under `dir` (not following links) with group/other bits, as "mode path". */
function exposed(dir: string, skip: string[] = []): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (skip.includes(full) || entry.isSymbolicLink()) continue;
      if ((mode(full) & 0o077) !== 0) found.push(`${mode(full).toString(8)} ${path.relative(dir, full)}`);
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return found;
}

describe('recording files: modes and the raw tracks\' lifetime', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let dataDir: string;
  let pool: WorkerPool;
  let rooms: RoomRegistry;
  let sources: RtpSource[] = [];
  const ports = new PortAllocator(48200, 48299);
  let tracks: RecordingTrack[] = [];
  let liveDir = '';

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-recfiles-'));
    ({ pool, rooms } = await startTestPool({ rtcMinPort: 48300, rtcMaxPort: 48399 }));
  });

  after(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    await rooms?.closeAll();
    await pool?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function seedRecording(): Promise<{ id: string; organisationId: string; store: RecordingStore }> {
    const knex = db.current.knex;
    const org = await seedOrganisation(knex);
    const clerk = await seedUser(knex, org, 'clerk');
    const [call] = await knex('calls').insert({ organisation_id: org.id, clerk_id: clerk.id, status: 'active', guest_token_hash: crypto.randomBytes(32).toString('hex') }).returning('id');
    const store = new RecordingStore(knex);
    const recording = await store.create({ id: call!.id, organisationId: org.id }, { type: 'system' }, clerk.id, { ip: null, userAgent: null });
    return { id: recording.id, organisationId: org.id, store };
  }

  function finalise(key: Buffer | null) {
    return finaliseRecording({ knex: db.current.knex, logger: silentLogger, dataDir, ffmpegPath: 'ffmpeg', key });
  }

  it('while a call is recorded, its tracks are 0600 in 0700 directories; after finalising, none remain and the final file is 0600', async () => {
    const { id, organisationId, store } = await seedRecording();
    const dir = recordingDir(dataDir, organisationId, id);
    liveDir = path.join(dir, 'tracks');
    const room = await rooms.get(`call-${id}`);
    for (const role of ['clerk', 'customer'] as const) sources.push(await startRtpSource(room, { peerId: `${role}-1`, role, video: 'vp8', frequency: role === 'clerk' ? 440 : 660 }));
    const recorder = await CallRecorder.start(room, { dir: liveDir, ffmpegPath: 'ffmpeg', ports, logger: silentLogger });
    // From the recorder's state, not only its events: on a loaded machine a track may start
    // writing before start() returns, that is before a listener could be attached.
    const writing = () => new Set(recorder.processes().filter((p) => p.writing).map((p) => p.role));
    for (let i = 0; i < 400 && writing().size < 2; i++) await sleep(100); // ffmpeg may be slow to start on a loaded 2-core machine
    assert.equal(writing().size, 2, 'both participants are being written');
    await sleep(1500);

    // Running: every file and directory from the recordings root down is private.
    const files = fs.readdirSync(liveDir).filter((f) => f.endsWith('.mkv'));
    assert.deepEqual(files.sort(), ['clerk-1.mkv', 'customer-1.mkv']);
    for (const f of files) assert.equal(mode(path.join(liveDir, f)), 0o600, `${f} while written`);
    assert.ok(fs.statSync(path.join(liveDir, 'clerk-1.mkv')).size > 0, 'media is being written');
    for (let d = liveDir; d !== dataDir; d = path.dirname(d)) assert.equal(mode(d), 0o700, `${path.relative(dataDir, d)} directory`);

    tracks = await recorder.stop();
    await Promise.all(sources.map((s) => s.stop()));
    sources = [];
    for (const t of tracks) {
      await store.addTrack(id, { role: t.role, fileName: path.relative(dir, t.file), kinds: t.kinds, startedAtMs: t.startedAt, endedAtMs: t.endedAt, exitCode: t.exitCode, partial: t.partial });
    }
    await store.stopped(id, 'clerk', false);

    await finalise(crypto.randomBytes(32))({ id: 'job-1', data: { recordingId: id } });
    const row = await db.current.knex('recordings').where({ id }).first();
    assert.equal(row!.status, 'ready', String(row!.error));
    assert.equal(row!.encrypted, true);
    assert.equal(fs.existsSync(liveDir), false, 'the raw tracks are gone');
    assert.deepEqual(fs.readdirSync(dir), ['recording.mp4.enc']);
    assert.equal(mode(path.join(dir, 'recording.mp4.enc')), 0o600);
    assert.deepEqual(exposed(path.join(dataDir, 'recordings')), []);
  });

  it('a recording whose tracks hold nothing usable is marked failed, and its tracks are removed too', async () => {
    const { id, organisationId, store } = await seedRecording();
    const dir = recordingDir(dataDir, organisationId, id);
    // As an earlier version left them: readable by all, and not media (the ffmpeg was killed before writing a header).
    fs.mkdirSync(path.join(dir, 'tracks'), { recursive: true, mode: 0o755 });
    for (const role of ['clerk', 'customer'] as const) {
      fs.writeFileSync(path.join(dir, 'tracks', `${role}-1.mkv`), crypto.randomBytes(2048), { mode: 0o644 });
      await store.addTrack(id, { role, fileName: `tracks/${role}-1.mkv`, kinds: ['audio', 'video'], startedAtMs: Date.now() - 5000, endedAtMs: Date.now(), exitCode: null, partial: true });
    }
    await store.stopped(id, 'failed', true);

    await finalise(null)({ id: 'job-2', data: { recordingId: id } });
    const row = await db.current.knex('recordings').where({ id }).first();
    assert.equal(row!.status, 'failed');
    assert.equal(fs.existsSync(path.join(dir, 'tracks')), false, 'no plaintext tracks wait for retention');
  });

  describe('the appliance process', () => {
    let appDb: TestDatabase;
    before(async () => {
      assertBuilt();
      appDb = await createTestDatabase();
    });
    after(async () => appDb?.drop());

    it('runs with umask 077 (a file it writes with mode 0644 becomes 0600) and makes files left readable by earlier versions private at start', async () => {
      const appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-umask-'));
      try {
        // What an earlier version left: a recording readable by all.
        const old = path.join(appDir, 'recordings', crypto.randomUUID(), crypto.randomUUID());
        fs.mkdirSync(old, { recursive: true, mode: 0o755 });
        for (let d = old; d !== appDir; d = path.dirname(d)) fs.chmodSync(d, 0o755);
        fs.writeFileSync(path.join(old, 'recording.mp4'), 'old', { mode: 0o644 });
        fs.chmodSync(path.join(old, 'recording.mp4'), 0o644);

        const port = await freePort();
        // The self-signed certificate is written with mode 0644: under the umask it is 0600.
        const app = run(compiledServer, [], cleanEnv({ ...(await mediaEnv()), VCLERK_HOST: '127.0.0.1', VCLERK_PORT: String(port), VCLERK_DATA_DIR: appDir, DATABASE_URL: appDb.url, VCLERK_TLS: 'self-signed' }));
        try {
          await app.waitFor(/VClerk is listening/, 120_000);
          assert.match(app.output(), /group and other permissions removed/);
          assert.equal(mode(path.join(appDir, 'tls', 'self-signed.crt')), 0o600, 'written under umask 077');
          assert.equal(mode(path.join(old, 'recording.mp4')), 0o600);
          assert.deepEqual(exposed(appDir), [], 'nothing under the data directory is readable by others');
        } finally {
          await app.stop();
        }
      } finally {
        fs.rmSync(appDir, { recursive: true, force: true });
      }
    });
  });
});
