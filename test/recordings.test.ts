import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import { RecordingStore } from '../app/recordings/service';
import { finaliseFile, recordingDir } from '../app/recordings/storage';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

const KEY = crypto.randomBytes(32);

/** A short real MP4 (H.264 and AAC), made by ffmpeg. */
function makeMp4(file: string): void {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=2:size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=duration=2', '-vf', 'noise=alls=30:allf=t', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', file]);
}

function sha256(data: Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

describe('recordings: policy, access, playback and download', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let dataDir: string;
  let app: Express;
  let org: SeededOrganisation;
  let admin: Browser;
  let compliance: Browser;
  let clerk: Browser;
  let clerkUser: SeededUser;
  let otherClerk: Browser;
  let foreignCompliance: Browser;
  let plain: { id: string; sha256: string; bytes: Buffer };
  let encrypted: { id: string; sha256: string };
  let otherClerksRecording: string;

  /** A finished recording of a call of `clerkId`, its file made by the real storage code. */
  async function finishedRecording(organisationId: string, clerkId: string, key: Buffer | null): Promise<{ id: string; sha256: string }> {
    const knex = db.current.knex;
    const [call] = await knex('calls').insert({ organisation_id: organisationId, clerk_id: clerkId, status: 'ended', guest_token_hash: crypto.randomBytes(32).toString('hex'), ended_at: new Date() }).returning('id');
    const store = new RecordingStore(knex);
    const recording = await store.create({ id: call!.id, organisationId }, { type: 'system' }, clerkId, { ip: null, userAgent: null });
    await store.stopped(recording.id, 'stopped', false);
    const dir = recordingDir(dataDir, organisationId, recording.id);
    fs.mkdirSync(dir, { recursive: true });
    const source = path.join(dir, 'composed.mp4');
    makeMp4(source);
    const file = await finaliseFile(source, dir, key);
    await store.finalised(recording.id, { fileName: path.basename(file.path), size: file.size, sha256: file.sha256, encrypted: file.encrypted, durationMs: 2000 });
    return { id: recording.id, sha256: file.sha256 };
  }

  before(async () => {
    const knex = db.current.knex;
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-rec-'));
    app = buildApp(db.current, { env: { VCLERK_DATA_DIR: dataDir, VCLERK_RECORDING_KEY: KEY.toString('base64') } });
    org = await seedOrganisation(knex, 'Recording Bank');
    const other = await seedOrganisation(knex, 'Other Bank');
    clerkUser = await seedUser(knex, org, 'clerk');
    const otherClerkUser = await seedUser(knex, org, 'clerk');
    [admin, compliance, clerk, otherClerk, foreignCompliance] = await Promise.all([
      signIn(app, await seedUser(knex, org, 'admin')),
      signIn(app, await seedUser(knex, org, 'compliance')),
      signIn(app, clerkUser),
      signIn(app, otherClerkUser),
      signIn(app, await seedUser(knex, other, 'compliance')),
    ]);
    const p = await finishedRecording(org.id, clerkUser.id, null);
    plain = { ...p, bytes: fs.readFileSync(path.join(recordingDir(dataDir, org.id, p.id), 'recording.mp4')) };
    encrypted = await finishedRecording(org.id, clerkUser.id, KEY);
    otherClerksRecording = (await finishedRecording(org.id, otherClerkUser.id, null)).id;
  });

  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  async function auditCount(action: string): Promise<number> {
    const [row] = await db.current.knex('audit_events').where({ action }).count<{ count: string }[]>({ count: '*' });
    return Number(row!.count);
  }

  it('the policy is off by default; an admin sets it, and the change is audited', async () => {
    const page = await admin.agent.get('/admin/organisation').expect(200);
    assert.match(page.text, /id="f-mode-off"[^>]*checked/);
    await admin.agent.post('/admin/organisation/recording').type('form').send({ _csrf: admin.csrf, mode: 'on_demand', clerk_access: 'on' }).expect(303);
    const org2 = await db.current.knex('organisations').where({ id: org.id }).first('settings');
    assert.deepEqual(org2!.settings.recording, { mode: 'on_demand', allowUnrecorded: false, adminAccess: false, clerkAccess: true });
    const event = await db.current.knex('audit_events').where({ action: 'organisation.recording_policy_changed' }).first();
    assert.equal((event!.details.after as Record<string, unknown>).mode, 'on_demand');
    assert.equal((event!.details.before as Record<string, unknown>).mode, 'off');
  });

  it('a bad policy is refused and changes nothing', async () => {
    await admin.agent.post('/admin/organisation/recording').type('form').set('Accept', 'application/json').send({ _csrf: admin.csrf, mode: 'sometimes' }).expect(400);
    const row = await db.current.knex('organisations').where({ id: org.id }).first('settings');
    assert.equal((row!.settings.recording as Record<string, unknown>).mode, 'on_demand');
    await clerk.agent.post('/admin/organisation/recording').type('form').send({ _csrf: clerk.csrf, mode: 'always' }).expect(403);
  });

  it('compliance staff list every recording of the organisation', async () => {
    const res = await compliance.agent.get('/recordings').expect(200);
    for (const id of [plain.id, encrypted.id, otherClerksRecording]) assert.ok(res.text.includes(id));
    assert.match(plain.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'random (v4) ids, not guessable');
  });

  it('an admin without access by the policy gets 403, and the refusal is audited', async () => {
    const before = await auditCount('security.recording_access_denied');
    await admin.agent.get('/recordings').expect(403);
    await admin.agent.get(`/recordings/${plain.id}/download`).expect(403);
    assert.equal(await auditCount('security.recording_access_denied'), before + 2);
    assert.ok(!fs.existsSync(path.join(dataDir, 'downloads')));
  });

  it('clerks, allowed by the policy, see only the recordings of their own calls', async () => {
    const list = await clerk.agent.get('/recordings').expect(200);
    assert.ok(list.text.includes(plain.id));
    assert.ok(!list.text.includes(otherClerksRecording));
    await clerk.agent.get(`/recordings/${otherClerksRecording}`).expect(404);
    await otherClerk.agent.get(`/recordings/${otherClerksRecording}`).expect(200);
  });

  it('another organisation cannot reach a recording (404, audited)', async () => {
    const before = await auditCount('security.cross_organisation_denied');
    await foreignCompliance.agent.get(`/recordings/${plain.id}`).expect(404);
    await foreignCompliance.agent.get(`/recordings/${plain.id}/media`).expect(404);
    assert.equal(await auditCount('security.cross_organisation_denied'), before + 4, 'each attempt in the prober\'s organisation and in this one');
  });

  it('plays with range requests; the start of a playback is audited, seeking is not', async () => {
    const before = await auditCount('recording.played');
    const head = await compliance.agent.get(`/recordings/${plain.id}/media`).set('Range', 'bytes=0-99').expect(206);
    assert.equal(head.headers['accept-ranges'], 'bytes');
    assert.equal(head.headers['content-type'], 'video/mp4');
    assert.equal(head.headers['content-range'], `bytes 0-99/${plain.bytes.length}`);
    assert.deepEqual(Buffer.from(head.body), plain.bytes.subarray(0, 100));
    const tail = await compliance.agent.get(`/recordings/${plain.id}/media`).set('Range', 'bytes=1000-').expect(206);
    assert.deepEqual(Buffer.from(tail.body), plain.bytes.subarray(1000));
    await compliance.agent.get(`/recordings/${plain.id}/media`).set('Range', `bytes=${plain.bytes.length + 10}-`).expect(416);
    assert.equal(await auditCount('recording.played'), before + 1);
  });

  it('a download is the exact file whose SHA-256 is stored, and is audited', async () => {
    const res = await compliance.agent.get(`/recordings/${plain.id}/download`).buffer(true).parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    }).expect(200);
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="recording-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}\.mp4"/);
    assert.equal(sha256(res.body as Buffer), plain.sha256);
    const event = await db.current.knex('audit_events').where({ action: 'recording.downloaded', target_id: plain.id }).first();
    assert.equal(event!.details.sha256, plain.sha256);
    const finalised = await db.current.knex('audit_events').where({ action: 'recording.finalised', target_id: plain.id }).first();
    assert.equal(finalised!.details.sha256, plain.sha256);
  });

  it('an encrypted recording is stored encrypted and decrypted on the fly, ranges too', async () => {
    const row = await db.current.knex('recordings').where({ id: encrypted.id }).first();
    assert.equal(row!.encrypted, true);
    const onDisk = fs.readFileSync(path.join(recordingDir(dataDir, org.id, encrypted.id), row!.file_name!));
    assert.equal(onDisk.subarray(0, 8).toString('latin1'), 'VCLERKE1');
    const res = await compliance.agent.get(`/recordings/${encrypted.id}/download`).buffer(true).parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    }).expect(200);
    assert.equal(sha256(res.body as Buffer), encrypted.sha256);
    const part = await compliance.agent.get(`/recordings/${encrypted.id}/media`).set('Range', 'bytes=70000-70099').expect(206);
    assert.deepEqual(Buffer.from(part.body), (res.body as Buffer).subarray(70000, 70100));
  });

  it('the detail page shows the hash and the player, and nothing from outside', async () => {
    const res = await compliance.agent.get(`/recordings/${plain.id}`).expect(200);
    assert.ok(res.text.includes(plain.sha256));
    assert.match(res.text, new RegExp(`<video[^>]+src="/recordings/${plain.id}/media"`));
    assert.doesNotMatch(res.text, /(src|href)="(https?:)?\/\//i);
  });
});
