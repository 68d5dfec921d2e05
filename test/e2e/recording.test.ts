import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { recordingDir } from '../../app/recordings/storage';
import { PASSWORD, seedOrganisation, seedUser, type SeededUser } from '../support/accounts';
import { assertFlowing, clerkStartsCall, launchBrowser } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';

interface Probe {
  duration: number;
  video?: { codec: string; frames: number; width: number; height: number };
  audio?: { codec: string };
}

function probe(file: string): Probe {
  const out = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'format=duration:stream=codec_type,codec_name,nb_read_frames,width,height', '-of', 'json', file], { encoding: 'utf8' })) as {
    format: { duration: string };
    streams: { codec_type: string; codec_name: string; nb_read_frames?: string; width?: number; height?: number }[];
  };
  const video = out.streams.find((s) => s.codec_type === 'video');
  const audio = out.streams.find((s) => s.codec_type === 'audio');
  return {
    duration: Number(out.format.duration),
    video: video && { codec: video.codec_name, frames: Number(video.nb_read_frames ?? 0), width: video.width ?? 0, height: video.height ?? 0 },
    audio: audio && { codec: audio.codec_name },
  };
}

/**
 * How far each half of the frame at `at` seconds is from the black canvas
 * a missing participant leaves: the mean distance of its colour (U and V
 * planes) from neutral grey, 0-255. Chromium's fake camera is a saturated
 * green (Y, U and V near 0), so its half is far from 0; black is 0.
 */
function halves(file: string, at: number): [number, number] {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-ss', String(at), '-i', file, '-frames:v', '1', '-vf', 'scale=64:24,format=yuv444p', '-f', 'rawvideo', '-'], { maxBuffer: 1 << 20 });
  const plane = 64 * 24;
  let left = 0;
  let right = 0;
  for (let y = 0; y < 24; y++) {
    for (let x = 0; x < 64; x++) {
      const i = y * 64 + x;
      const colour = Math.abs(raw[plane + i]! - 128) + Math.abs(raw[2 * plane + i]! - 128);
      if (x < 32) left += colour;
      else right += colour;
    }
  }
  return [left / (32 * 24), right / (32 * 24)];
}

function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * Recording with consent, end to end: two real browsers with fake devices,
 * the real mediasoup worker, ffmpeg recorder and the finishing job.
 */
describe('recording a call with consent (two real browsers)', function () {
  this.timeout(240_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  let clerkPage: Page;
  let customerPage: Page;
  let clerk: SeededUser;
  let callId: string;
  let organisationId: string;

  async function waitForRecording(id: string, statuses: string[], timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const row = await db.current.knex('recordings').where({ id }).first();
      if (statuses.includes(row!.status)) return row!;
      if (Date.now() > deadline) throw new Error(`recording stayed ${row!.status}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async function startRecordingWithConsent(): Promise<string> {
    await clerkPage.click('#record-toggle');
    await customerPage.locator('#recording-consent').waitFor({ state: 'visible' });
    await customerPage.click('#consent-grant');
    await clerkPage.locator('#recording-indicator').waitFor({ state: 'visible' });
    await customerPage.locator('#recording-indicator').waitFor({ state: 'visible' });
    // The customer's privacy note now says the call is being recorded.
    await customerPage.locator('#privacy-recording').waitFor({ state: 'visible' });
    assert.equal(await customerPage.isVisible('#privacy-unrecorded'), false, 'the "not recorded" note is hidden while recording');
    const row = await db.current.knex('recordings').where({ call_id: callId, status: 'recording' }).first();
    assert.ok(row, 'a recording runs');
    return row.id as string;
  }

  before(async () => {
    server = await startCallServer(db.current, { recordings: true, graceMs: 5000 });
    const org = await seedOrganisation(db.current.knex, 'Recorded Bank');
    organisationId = org.id;
    await db.current.knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', allowUnrecorded: false, adminAccess: false, clerkAccess: false } } });
    clerk = await seedUser(db.current.knex, org, 'clerk');
    [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
    clerkPage = await clerkBrowser.newPage();
    const link = await clerkStartsCall(clerkPage, server.url, clerk, PASSWORD);
    callId = (await clerkPage.getAttribute('[data-call-id]', 'data-call-id'))!;
    await clerkPage.click('#join');
    customerPage = await customerBrowser.newPage();
    await customerPage.goto(link);
    await customerPage.click('#join');
    await assertFlowing(customerPage);
    await assertFlowing(clerkPage);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await server?.close();
  });

  it('declining means no recording and no file', async () => {
    assert.equal(await customerPage.isVisible('#privacy-unrecorded'), true, 'not recording: the customer reads that nothing is being recorded');
    assert.equal(await customerPage.isVisible('#privacy-recording'), false);
    await clerkPage.click('#record-toggle');
    await customerPage.locator('#recording-consent').waitFor({ state: 'visible' });
    await customerPage.click('#consent-decline');
    await clerkPage.locator('#recording-message', { hasText: 'did not agree' }).waitFor();
    assert.equal(await clerkPage.isVisible('#recording-indicator'), false);
    assert.equal((await db.current.knex('recordings').where({ call_id: callId })).length, 0);
    assert.equal(await customerPage.isVisible('#privacy-recording'), false, 'declined: the note still says not recorded');
    assert.equal(await customerPage.isVisible('#privacy-unrecorded'), true);
    assert.equal(fs.existsSync(path.join(server.dataDir, 'recordings', organisationId)), false);
  });

  it('a 10-second recording yields a final file with both participants, audio, and the stored SHA-256', async () => {
    // The file covers at least the time between the indicator showing and the stop click, and at most
    // the time from asking for consent to the indicator hiding again (on a busy machine both ends can lag).
    const asked = Date.now();
    const id = await startRecordingWithConsent();
    const started = Date.now();
    await clerkPage.waitForTimeout(10_000);
    await clerkPage.click('#record-toggle');
    const recordedMs = Date.now() - started;
    await clerkPage.locator('#recording-indicator').waitFor({ state: 'hidden' });
    const outerMs = Date.now() - asked;
    await customerPage.locator('#privacy-unrecorded').waitFor({ state: 'visible' });
    assert.equal(await customerPage.isVisible('#privacy-recording'), false, 'stopped: the recording note is hidden again');
    const row = await waitForRecording(id, ['ready', 'partial', 'failed']);
    assert.equal(row.status, 'ready', `finished as ${row.status}: ${row.error}`);
    const file = path.join(recordingDir(server.dataDir, organisationId, id), row.file_name as string);
    const info = probe(file);
    assert.ok(info.duration >= recordedMs / 1000 - 2 && info.duration <= outerMs / 1000 + 1, `duration ${info.duration} s for ${recordedMs} ms recorded (${outerMs} ms from asking to the indicator hiding)`);
    assert.equal(info.video?.codec, 'h264');
    assert.ok(info.video!.frames > 100, `only ${info.video?.frames} frames`);
    assert.equal(info.audio?.codec, 'aac');
    const [left, right] = halves(file, info.duration / 2);
    assert.ok(left > 40 && right > 40, `both participants visible (colour left ${left}, right ${right})`);
    assert.equal(sha256File(file), row.sha256);
    const audited = await db.current.knex('audit_events').where({ action: 'recording.finalised', target_id: id }).first();
    assert.equal(audited!.details.sha256, row.sha256);
  });

  it('when the recorder dies mid-call, the clerk is told and the partial file plays', async () => {
    const id = await startRecordingWithConsent();
    await clerkPage.waitForTimeout(4000);
    const pids = server.recordings!.live.processIds(callId);
    assert.ok(pids.length >= 1, 'ffmpeg runs');
    process.kill(pids[0]!, 'SIGKILL');
    await clerkPage.locator('#recording-message', { hasText: 'recorder failed' }).waitFor();
    await clerkPage.locator('#recording-indicator').waitFor({ state: 'hidden' });
    const row = await waitForRecording(id, ['ready', 'partial', 'failed']);
    assert.equal(row.status, 'partial', `finished as ${row.status}: ${row.error}`);
    const info = probe(path.join(recordingDir(server.dataDir, organisationId, id), row.file_name as string));
    assert.ok(info.duration >= 2, `partial file of ${info.duration} s`);
    assert.ok(info.video!.frames > 20, 'the partial file has frames');
  });
});
