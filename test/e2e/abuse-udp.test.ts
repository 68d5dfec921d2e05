import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import type { types } from 'mediasoup';
import type { Browser, Page } from 'playwright-core';
import { recordingDir } from '../../app/recordings/storage';
import { loadMediasoup, resolveWorkerBinary } from '../../media';
import { PASSWORD, seedOrganisation, seedUser, type SeededUser } from '../support/accounts';
import { assertFlowing, clerkStartsCall, launchBrowser, stats, type MediaStats } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { testConfig } from '../support/context';
import { useTestDatabase } from '../support/database';

/**
 * Issue 17, abuse: UDP junk and spoofed RTP at the media ports and at the
 * recorder's ports during a recorded call (two headless Chromium pages,
 * the real worker and ffmpeg recorder). For JUNK_MS at about JUNK_RATE
 * packets a second, from other local ports, to the worker's WebRtcServer
 * port, the worker's PlainTransports (which feed the recorder) and each
 * recording ffmpeg's RTP and RTCP ports: random bytes, truncated RTP,
 * RTP with garbage headers, RTCP junk, STUN junk (a binding request with a
 * made-up username, broken attributes), and spoofed RTP: the SSRCs and
 * payload types of the real streams (read from the server's own state:
 * mediasoup's observer) with garbage payloads and sequence numbers.
 *
 * Asserted: the call continues (frames decoded keep growing on both sides
 * during and after), the worker and the ffmpegs are the same processes and
 * alive, the recording keeps being written and its final file has video
 * frames after the junk window.
 */

const JUNK_MS = 5000;
const JUNK_RATE = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stream {
  ssrc: number;
  payloadType: number;
  kind: string;
}

/** The local UDP ports a process holds (its socket inodes matched against /proc/net/udp). */
function udpPortsOf(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    if (match) inodes.add(match[1]!);
  }
  const ports: number[] = [];
  for (const line of fs.readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length > 9 && inodes.has(cols[9]!)) ports.push(parseInt(cols[1]!.split(':')[1]!, 16));
  }
  return ports;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function rtp(stream: { ssrc: number; payloadType: number }, seq: number, payload: Buffer, marker = false): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = (marker ? 0x80 : 0) | (stream.payloadType & 0x7f);
  header.writeUInt16BE(seq & 0xffff, 2);
  header.writeUInt32BE(crypto.randomInt(0, 2 ** 32 - 1), 4);
  header.writeUInt32BE(stream.ssrc >>> 0, 8);
  return Buffer.concat([header, payload]);
}

/** One junk packet of the kind `i` picks (spoofed ones use the real streams). */
function junk(i: number, streams: Stream[]): { kind: string; packet: Buffer } {
  const random = (n: number) => crypto.randomBytes(n);
  switch (i % 6) {
    case 0:
      return { kind: 'random', packet: random(crypto.randomInt(1, 1400)) };
    case 1:
      return { kind: 'truncated rtp', packet: Buffer.concat([Buffer.from([0x80 | crypto.randomInt(0, 16), crypto.randomInt(0, 256)]), random(crypto.randomInt(0, 10))]) };
    case 2: {
      // RTP version 2 with garbage: CSRC count, extension and padding bits set, lengths that lie.
      const packet = rtp({ ssrc: crypto.randomInt(0, 2 ** 32 - 1), payloadType: crypto.randomInt(0, 128) }, crypto.randomInt(0, 65536), random(crypto.randomInt(0, 1200)));
      packet[0] = 0x80 | 0x20 | 0x10 | crypto.randomInt(0, 16);
      return { kind: 'garbage rtp', packet };
    }
    case 3: {
      // RTCP (payload type 200-206) with a length field that lies, or a compound of garbage.
      const packet = random(crypto.randomInt(4, 200));
      packet[0] = 0x80 | crypto.randomInt(0, 32);
      packet[1] = 200 + crypto.randomInt(0, 7);
      packet.writeUInt16BE(crypto.randomInt(0, 65536), 2);
      return { kind: 'rtcp junk', packet };
    }
    case 4: {
      // STUN binding request: the magic cookie, a made-up USERNAME, a MESSAGE-INTEGRITY of garbage, sometimes a length that lies.
      const username = Buffer.from(`${random(8).toString('hex')}:${random(4).toString('hex')}`);
      const padded = Buffer.concat([username, Buffer.alloc((4 - (username.length % 4)) % 4)]);
      const attrs = Buffer.concat([Buffer.from([0x00, 0x06, 0, username.length]), padded, Buffer.from([0x00, 0x08, 0, 20]), random(20)]);
      const header = Buffer.alloc(20);
      header.writeUInt16BE(0x0001, 0);
      header.writeUInt16BE(i % 12 === 4 ? crypto.randomInt(0, 65536) : attrs.length, 2);
      header.writeUInt32BE(0x2112a442, 4);
      random(12).copy(header, 8);
      return { kind: 'stun junk', packet: Buffer.concat([header, attrs]) };
    }
    default: {
      // Spoofed: a real stream's SSRC and payload type, a plausible sequence number, a garbage payload (sometimes a "key frame" marker).
      const stream = streams[i % streams.length]!;
      return { kind: 'spoofed rtp', packet: rtp(stream, (i * 7919) & 0xffff, random(crypto.randomInt(20, 1100)), i % 2 === 0) };
    }
  }
}

function probeFrames(file: string, from?: number): { duration: number; frames: number } {
  const interval = from === undefined ? [] : ['-read_intervals', `${from.toFixed(2)}%`];
  const out = JSON.parse(execFileSync('ffprobe', ['-v', 'error', ...interval, '-count_frames', '-select_streams', 'v:0', '-show_entries', 'format=duration:stream=nb_read_frames', '-of', 'json', file], { encoding: 'utf8' })) as {
    format: { duration: string };
    streams: { nb_read_frames?: string }[];
  };
  return { duration: Number(out.format.duration), frames: Number(out.streams[0]?.nb_read_frames ?? 0) };
}

describe('abuse: UDP junk and spoofed RTP at the media and recorder ports during a recorded call (two browsers)', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  let clerkPage: Page;
  let customerPage: Page;
  let clerk: SeededUser;
  let organisationId: string;
  const producers: Stream[] = [];
  const recorderConsumers: Stream[] = [];

  before(async () => {
    // The server's own state: every producer's and every recorder consumer's SSRC and payload type, from mediasoup's observer.
    const mediasoup = loadMediasoup(resolveWorkerBinary(process.env.MEDIASOUP_WORKER_BIN, path.join(__dirname, '..', '..')));
    mediasoup.observer.on('newworker', (worker: types.Worker) =>
      worker.observer.on('newrouter', (router: types.Router) =>
        router.observer.on('newtransport', (transport: types.Transport) => {
          const plain = transport.constructor.name === 'PlainTransport';
          transport.observer.on('newproducer', (p: types.Producer) => {
            for (const e of p.rtpParameters.encodings ?? []) if (e.ssrc) producers.push({ ssrc: e.ssrc, payloadType: p.rtpParameters.codecs[0]!.payloadType, kind: p.kind });
          });
          transport.observer.on('newconsumer', (c: types.Consumer) => {
            if (plain) recorderConsumers.push({ ssrc: c.rtpParameters.encodings![0]!.ssrc!, payloadType: c.rtpParameters.codecs[0]!.payloadType, kind: c.kind });
          });
        }),
      ),
    );
    server = await startCallServer(db.current, { recordings: true, graceMs: 5000 });
    const org = await seedOrganisation(db.current.knex, 'Junk Bank');
    organisationId = org.id;
    await db.current.knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', allowUnrecorded: false, adminAccess: false, clerkAccess: false } } });
    clerk = await seedUser(db.current.knex, org, 'clerk');
    [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await server?.close();
  });

  it('the call and the recording continue, nothing crashes, and the final file has video after the junk', async () => {
    const knex = db.current.knex;
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

    // Recording, with the customer's consent, through the pages.
    await clerkPage.click('#record-toggle');
    await customerPage.locator('#recording-consent').waitFor({ state: 'visible' });
    await customerPage.click('#consent-grant');
    await clerkPage.locator('#recording-indicator').waitFor({ state: 'visible', timeout: 60_000 }).catch(async (err: Error) => {
      const rows = await knex('recordings').where({ call_id: callId });
      throw new Error(`${err.message}; recordings ${JSON.stringify(rows.map((r) => [r.status, r.error]))}; clerk sees "${await clerkPage.textContent('#recording-message').catch(() => '')}"`);
    });
    const recordingStarted = Date.now();
    const recording = await knex('recordings').where({ call_id: callId, status: 'recording' }).first();
    assert.ok(recording, 'a recording runs');
    let ffmpegs: number[] = [];
    for (let i = 0; i < 100 && ffmpegs.length < 2; i++) {
      ffmpegs = server.recordings!.live.processIds(callId);
      if (ffmpegs.length < 2) await sleep(100);
    }
    assert.equal(ffmpegs.length, 2, 'one ffmpeg per participant');
    await sleep(2000);

    // The targets: the worker's UDP ports (its WebRtcServer port and the PlainTransports feeding the recorder) and the ffmpegs' ports.
    const [worker] = server.pool.describe();
    const workerPorts = udpPortsOf(worker!.pid);
    assert.ok(workerPorts.includes(worker!.port), 'the WebRtcServer port is among the worker\'s');
    const recorderPorts = ffmpegs.flatMap((pid) => udpPortsOf(pid));
    const config = testConfig();
    const range = [config.recordingPortMin, config.recordingPortMax];
    assert.ok(recorderPorts.length >= 4 && recorderPorts.every((p) => p >= range[0]! && p <= range[1]!), `the recorder's ports ${recorderPorts}`);
    const spoofable = [...producers, ...recorderConsumers];
    assert.ok(producers.length >= 4 && recorderConsumers.length >= 4, `SSRCs read from the server: ${producers.length} producers, ${recorderConsumers.length} recorder consumers`);
    const targets = [...new Set([...workerPorts, ...recorderPorts])];

    // The junk, from a few local ports.
    const senders = await Promise.all(Array.from({ length: 4 }, () => new Promise<dgram.Socket>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.on('error', () => undefined);
      s.bind(0, '127.0.0.1', () => resolve(s));
    })));
    const before = await Promise.all([stats(clerkPage), stats(customerPage)]);
    const sizeBefore = recordedBytes(server.dataDir);
    const sent: Record<string, number> = {};
    const junkStarted = Date.now();
    let i = 0;
    while (Date.now() - junkStarted < JUNK_MS) {
      // Bursts every 20 ms, at about JUNK_RATE a second in all.
      const due = Math.floor(((Date.now() - junkStarted) / 1000) * JUNK_RATE);
      for (; i < due; i++) {
        const { kind, packet } = junk(i, spoofable);
        // Every port gets every kind in turn (six kinds, then the next port).
        const port = targets[Math.floor(i / 6) % targets.length]!;
        senders[i % senders.length]!.send(packet, port, '127.0.0.1');
        sent[kind] = (sent[kind] ?? 0) + 1;
      }
      await sleep(20);
    }
    const junkEnded = Date.now();
    const during = await Promise.all([stats(clerkPage), stats(customerPage)]);
    for (const s of senders) s.close();
    await sleep(4000);
    const after = await Promise.all([stats(clerkPage), stats(customerPage)]);
    const sizeAfter = recordedBytes(server.dataDir);

    const frames = (s: MediaStats[]) => s.map((x) => x.video.framesDecoded);
    console.log(`      junk: ${i} packets in ${junkEnded - junkStarted} ms to ${targets.length} ports (worker ${workerPorts.join(',')}; recorder ${recorderPorts.join(',')}): ${JSON.stringify(sent)}`);
    console.log(`      frames decoded (clerk, customer) before ${frames(before)} during ${frames(during)} after ${frames(after)}; recorded bytes ${sizeBefore} -> ${sizeAfter}`);
    for (const side of [0, 1]) {
      assert.ok(during[side]!.video.framesDecoded > before[side]!.video.framesDecoded, `side ${side} decodes frames during the junk`);
      assert.ok(after[side]!.video.framesDecoded > during[side]!.video.framesDecoded, `side ${side} decodes frames after the junk`);
    }
    await assertFlowing(customerPage);
    await assertFlowing(clerkPage);
    assert.deepEqual(server.pool.describe().map((w) => [w.pid, w.alive]), [[worker!.pid, true]], 'the worker is the same process, alive');
    // A junk RTCP BYE (type 203) at an ffmpeg's RTCP port ends its input as the recorder's own
    // stop does: that segment is finalised and the recorder starts the next one. Either way
    // the participants are recorded by live ffmpegs, one per participant.
    const recorders = server.recordings!.live.processIds(callId);
    const replaced = recorders.filter((pid) => !ffmpegs.includes(pid)).length;
    console.log(`      recorder ffmpegs: ${ffmpegs.length} before, ${recorders.length} now, ${replaced} of them new (a segment ended by junk is followed by the next)`);
    assert.equal(recorders.length, ffmpegs.length, 'one recording ffmpeg per participant');
    assert.ok(recorders.every(alive), 'they run');
    assert.ok(sizeAfter > sizeBefore, 'the recording keeps being written');

    // Stop; the final file has video after the junk window.
    await clerkPage.click('#record-toggle');
    await clerkPage.locator('#recording-indicator').waitFor({ state: 'hidden' });
    let row = (await knex('recordings').where({ id: recording.id }).first())!;
    for (const deadline = Date.now() + 90_000; !['ready', 'partial', 'failed'].includes(row.status) && Date.now() < deadline;) {
      await sleep(500);
      row = (await knex('recordings').where({ id: recording.id }).first())!;
    }
    assert.equal(row.status, 'ready', `finished as ${row.status}: ${row.error}`);
    const file = path.join(recordingDir(server.dataDir, organisationId, recording.id as string), row.file_name as string);
    const whole = probeFrames(file);
    const afterJunk = (junkEnded - recordingStarted) / 1000 + 0.5;
    const tail = probeFrames(file, afterJunk);
    console.log(`      final file: ${whole.duration.toFixed(1)} s, ${whole.frames} video frames; ${tail.frames} from ${afterJunk.toFixed(1)} s (after the junk)`);
    assert.ok(whole.duration >= afterJunk + 2, `the file (${whole.duration} s) runs past the junk window (${afterJunk} s)`);
    assert.ok(tail.frames >= 20, `${tail.frames} video frames after the junk window`);
  });
});

/** Bytes of recording tracks written so far under the data directory. */
function recordedBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.mkv')) total += fs.statSync(p).size;
    }
  };
  walk(dir);
  return total;
}
