import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Socket } from 'socket.io-client';
import type { RecordingState } from '../app/calls/protocol';
import { recordingNotice } from '../app/recordings/policy';
import { seedOrganisation, seedUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { startRtpSource, type RtpSource } from './support/rtp-source';
import { ok, openCall, sessionCookie } from './support/signal-client';
import request from 'supertest';

/**
 * Issue 17, a fault: the disk holding the recordings fills up while a call
 * is recorded. The data directory is a small tmpfs (mounted here, so this
 * needs root: mounting is the only way to give this process a filesystem
 * that really runs out, with ENOSPC as production sees it); media comes
 * from ffmpeg test patterns sent as RTP into the call's room. Then a file
 * fills the rest. The recording stops with the reason `disk_full` (its
 * state, told to both sides, and the audit trail), the call and its media
 * go on, the appliance answers; what was written is kept and, once space
 * is freed, made into a partial recording that plays.
 */

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NOTICE = recordingNotice('en');
const isRoot = process.getuid?.() === 0;

function next(socket: Socket, match: (s: RecordingState) => boolean, timeoutMs = 30_000): Promise<RecordingState> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching recording.state')), timeoutMs);
    const handler = (state: RecordingState) => {
      if (!match(state)) return;
      clearTimeout(timer);
      socket.off('recording.state', handler);
      resolve(state);
    };
    socket.on('recording.state', handler);
  });
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Writes zeros into `file` until the filesystem is full; answers the bytes written. */
function fill(file: string): number {
  const chunk = Buffer.alloc(256 * 1024);
  const fd = fs.openSync(file, 'w');
  let written = 0;
  try {
    for (;;) {
      try {
        written += fs.writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return written;
        throw err;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

describe('fault: the disk fills up during a recording', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let mount: string;
  let mounted = false;
  let server: CallServer | undefined;
  const sources: RtpSource[] = [];
  const sockets: Socket[] = [];

  before(function () {
    // Mounting needs root (CAP_SYS_ADMIN); as a plain user nothing here can make a filesystem this process sees run out.
    if (!isRoot) {
      console.log('      skipped: mounting the small filesystem this test fills needs root (as a plain user, no filesystem this process sees can be made to run out)');
      this.skip();
    }
    mount = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-fault-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0755', 'tmpfs', mount]);
    mounted = true;
  });

  after(async () => {
    for (const socket of sockets) socket.close();
    for (const source of sources) await source.stop();
    await server?.close();
    if (mounted) execFileSync('umount', ['-l', mount]);
    if (mount) fs.rmSync(mount, { recursive: true, force: true });
  });

  it('stops the recording with disk_full, keeps the call and its media going, and keeps what was written', async () => {
    server = await startCallServer(db.current, { recordings: true, env: { VCLERK_DATA_DIR: mount, VCLERK_RECORDING_MIN_FREE_MB: '1' } });
    const knex = db.current.knex;
    const org = await seedOrganisation(knex, 'Disk Bank');
    const clerk = await seedUser(knex, org, 'clerk');
    await knex('organisations').where({ id: org.id }).update({
      settings: knex.raw(`settings || ?::jsonb`, [JSON.stringify({ recording: { mode: 'on_demand', allowUnrecorded: false, adminAccess: false, clerkAccess: false } })]),
    });
    const cookie = await sessionCookie(server.url, clerk);
    const { callId, clerkSocket, customerSocket } = await openCall(knex, server.url, clerk, cookie);
    sockets.push(clerkSocket, customerSocket);

    // Media: each side an ffmpeg test pattern; the clerk's side consumes the customer's video (to a UDP socket here).
    const room = await server.hub.rooms.get(callId);
    sources.push(await startRtpSource(room, { peerId: 'clerk-media', role: 'clerk' }));
    const customer = await startRtpSource(room, { peerId: 'customer-media', role: 'customer', frequency: 660 });
    sources.push(customer);
    const receiver = dgram.createSocket('udp4');
    let packets = 0;
    receiver.on('message', () => packets++);
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    const port = receiver.address().port;
    const { consumer } = await room.createPlainConsumer(customer.video!.id, { ip: '127.0.0.1', port, rtcpPort: port });
    await consumer.resume();
    try {
      await until(async () => (packets > 20 ? true : undefined), 'media reaching the other side');

      // Recording starts: the clerk asks, the customer consents.
      const recording = next(clerkSocket, (s) => s.status === 'recording');
      await ok(clerkSocket, 'recording.start');
      await ok(customerSocket, 'recording.consent', { answer: 'granted', noticeVersion: NOTICE.version, language: 'en' });
      const { recordingId } = await recording;
      assert.ok(recordingId);
      await sleep(3000); // a few seconds of media in the raw tracks

      // The disk fills up.
      const toldClerk = next(clerkSocket, (s) => s.status === 'idle' && s.reason !== null);
      const toldCustomer = next(customerSocket, (s) => s.status === 'idle' && s.reason !== null);
      const filledAt = Date.now();
      const filled = fill(path.join(mount, 'filler'));
      const stopped = await toldClerk;
      const stopMs = Date.now() - filledAt;
      assert.equal(stopped.reason, 'disk_full', 'the clerk is told why');
      assert.equal((await toldCustomer).reason, 'disk_full', 'the customer is told why');
      const row = await until(async () => {
        const r = await knex('recordings').where({ id: recordingId }).first();
        return r && r.status !== 'recording' ? r : undefined;
      }, 'the recording to stop');
      assert.match(String(row.stop_reason), /disk_full/);
      const audited = await knex('audit_events').where({ action: 'recording.stopped', target_id: recordingId }).first('details');
      assert.equal(audited?.details?.reason, 'disk_full', 'the audit trail says why');

      // The call goes on: media still reaches the other side; signalling and the appliance answer.
      const before = packets;
      await sleep(3000);
      assert.ok(packets - before > 5, `media keeps flowing after the disk filled (${packets - before} packets in 3 s)`);
      assert.equal((await ok<RecordingState>(clerkSocket, 'recording.status')).reason, 'disk_full');
      await ok(customerSocket, 'chat.send', { text: 'still here' });
      await request(server.url).get('/healthz').expect(200);
      await request(server.url).get('/login').expect(200);
      assert.equal(consumer.closed, false);

      // While the disk stays full the final file cannot be made: the raw tracks stay, nothing is marked lost.
      await sleep(3000);
      const waiting = await knex('recordings').where({ id: recordingId }).first('status', 'error');
      const tracksDir = path.join(mount, 'recordings', org.id, recordingId, 'tracks');
      if (waiting?.status === 'processing') {
        const kept = fs.readdirSync(tracksDir).filter((f) => f.endsWith('.mkv'));
        assert.ok(kept.length > 0, 'the raw tracks are kept');
      } else {
        // The stopped ffmpegs freed what they had buffered, and the final file fitted after all.
        assert.ok(['partial', 'ready'].includes(String(waiting?.status)), `finished, not lost (${waiting?.status} ${waiting?.error ?? ''})`);
      }

      // Space is freed: the recording is finished as a partial one that plays.
      fs.rmSync(path.join(mount, 'filler'));
      const done = await until(async () => {
        const r = await knex('recordings').where({ id: recordingId }).first();
        return r && (r.status === 'partial' || r.status === 'ready' || r.status === 'failed') ? r : undefined;
      }, 'the final file', 60_000);
      assert.equal(done.status, 'partial', `kept as a partial recording (${done.error ?? ''})`);
      const file = path.join(mount, 'recordings', org.id, recordingId, String(done.file_name));
      const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames', '-of', 'json', file]);
      const streams = (JSON.parse(stdout) as { streams: { codec_type: string; nb_read_frames?: string }[] }).streams;
      const frames = streams.filter((s) => s.codec_type === 'video').reduce((n, s) => n + Number(s.nb_read_frames ?? 0), 0);
      assert.ok(frames > 10, `the partial recording plays (${frames} video frames)`);
      console.log(`      disk filled with ${Math.round(filled / 1024 / 1024)} MB; recording stopped ${stopMs} ms later (${stopped.reason}); while full: ${waiting?.status}; final: ${done.status}, ${frames} video frames`);
    } finally {
      consumer.close();
      receiver.close();
    }
  });
});
