/**
 * One load generator process (forked by generators.ts): owns the UDP
 * sockets of its simulated participants on 127.0.0.1, replays the clip
 * into the SFU paced to real time (a timer tick every few ms sends the
 * packets due), receives the forwarded streams and measures them, and
 * sends RTCP (sender reports from the senders, receiver reports from the
 * receivers). Driven over IPC by the ramp in the parent.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { readClip, type Clip } from './clip';
import { StreamReceiver, StreamSender } from './rtp';
import type { ParticipantReceivers, ParticipantSend, StreamKind } from './target';

export type GeneratorRequest =
  | { id: number; op: 'init'; clipFile: string; tickMs: number }
  | { id: number; op: 'receivers'; call: number }
  | { id: number; op: 'send'; call: number; sends: [ParticipantSend, ParticipantSend] }
  | { id: number; op: 'stats' }
  /** The call's participants joined again (new ingest ports): its senders start over towards the new ports, from the clip's first (key) frame, as a browser's new encoder would. */
  | { id: number; op: 'retarget'; call: number; sends: [ParticipantSend, ParticipantSend] }
  /** What each call's receivers get now: see Arrival. */
  | { id: number; op: 'arrivals' }
  | { id: number; op: 'stop' };

export interface GeneratorStats {
  streams: number;
  /** Receive streams that got nothing in the interval. */
  silent: number;
  received: number;
  expected: number;
  bytes: number;
  /** Loss of the worst stream in the interval, %. */
  lossWorst: number;
  jitterMeanMs: number;
  jitterWorstMs: number;
  /** How late packets left compared with their schedule: mean and max, ms. */
  lateMeanMs: number;
  lateMaxMs: number;
  sent: number;
  /** RTCP packets from the SFU at the senders (receiver reports, NACK, PLI). */
  rtcpIn: number;
  sockets: number;
  /** Datagrams the kernel dropped at this process's receive sockets since the last call (its buffers overflowed: the generator fell behind). */
  drops: number;
  /** Times a stream's schedule slipped because the process ran more than 200 ms late. */
  slips: number;
}

/** One receive stream as the fault bench sees it: the SSRC arriving now, since when and until when (epoch ms, performance.timeOrigin + now). */
export interface Arrival {
  kind: StreamKind;
  ssrc: number;
  since: number;
  last: number;
}

let clip: Clip;
const senders: StreamSender[] = [];
const receivers: StreamReceiver[] = [];
/** Per call: its senders with their sockets (for retarget), and its receive streams. */
const callSenders = new Map<number, { senders: StreamSender[]; sockets: dgram.Socket[] }>();
const callArrivals = new Map<number, Arrival[]>();
const sockets: dgram.Socket[] = [];
let rtcpIn = 0;
const receivePorts = new Set<string>();
let dropsMark = 0;
let slipsMark = 0;

/** Drops at our receive sockets, from /proc/net/udp (its last column), by local port. */
function socketDrops(): number {
  let drops = 0;
  try {
    for (const line of fs.readFileSync('/proc/net/udp', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13 || !f[1]!.startsWith('0100007F:')) continue;
      if (receivePorts.has(f[1]!.slice(9))) drops += Number(f[12]);
    }
  } catch {
    return 0;
  }
  return drops;
}
let sentMark = 0;
let tickTimer: NodeJS.Timeout | undefined;
let rtcpTimer: NodeJS.Timeout | undefined;

async function bind(recvBufferSize?: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', ...(recvBufferSize ? { recvBufferSize } : {}) });
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(0, '127.0.0.1', () => resolve()));
  socket.on('error', () => undefined);
  sockets.push(socket);
  return socket;
}

let receiverSsrc = 0x10000000 + Math.floor(Math.random() * 0x1000000);

async function receiver(kind: StreamKind, arrivals: Arrival[]): Promise<{ port: number; rtcpPort: number }> {
  const rtp = await bind(kind === 'video' ? 1024 * 1024 : 256 * 1024);
  const rtcp = await bind();
  const clockRate = kind === 'video' ? 90000 : 48000;
  let r = new StreamReceiver(clockRate, rtcp, receiverSsrc++);
  const slot = receivers.push(r) - 1;
  const arrival: Arrival = { kind, ssrc: 0, since: 0, last: 0 };
  arrivals.push(arrival);
  rtp.on('message', (msg) => {
    const now = performance.now();
    const ssrc = msg.length >= 12 ? msg.readUInt32BE(8) : arrival.ssrc;
    if (ssrc !== arrival.ssrc) {
      // A new SSRC is a new stream (the SFU's consumer was replaced, e.g. after its worker died): counted afresh.
      if (arrival.ssrc !== 0) receivers[slot] = r = new StreamReceiver(clockRate, rtcp, receiverSsrc++);
      arrival.ssrc = ssrc;
      arrival.since = performance.timeOrigin + now;
    }
    arrival.last = performance.timeOrigin + now;
    r.onRtp(msg, now);
  });
  rtcp.on('message', (msg, rinfo) => r.onRtcp(msg, rinfo, performance.now()));
  for (const socket of [rtp, rtcp]) receivePorts.add(socket.address().port.toString(16).toUpperCase().padStart(4, '0'));
  return { port: rtp.address().port, rtcpPort: rtcp.address().port };
}

async function makeReceivers(call: number): Promise<ParticipantReceivers[]> {
  const out: ParticipantReceivers[] = [];
  const arrivals: Arrival[] = [];
  callArrivals.set(call, arrivals);
  for (let p = 0; p < 2; p++) out.push({ audio: { kind: 'audio', ...(await receiver('audio', arrivals)) }, video: { kind: 'video', ...(await receiver('video', arrivals)) } });
  return out;
}

async function connected(port: number): Promise<dgram.Socket> {
  const socket = await bind();
  socket.setSendBufferSize(1024 * 1024);
  await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
  socket.on('message', () => rtcpIn++);
  return socket;
}

async function startSending(call: number, sends: [ParticipantSend, ParticipantSend]): Promise<void> {
  // Requests run concurrently (retargets of many calls at once): this call's own sockets and senders are collected here.
  const own = { senders: [] as StreamSender[], sockets: [] as dgram.Socket[] };
  const start = performance.now() + 20;
  for (const participant of sends) {
    // Streams of one participant sharing a port share a socket (the SFU learns the sender's address from the first packet).
    const byPort = new Map<number, dgram.Socket>();
    const byRtcpPort = new Map<number, dgram.Socket>();
    for (const s of participant.streams) {
      let socket = byPort.get(s.port);
      if (!socket) {
        byPort.set(s.port, (socket = await connected(s.port)));
        own.sockets.push(socket);
      }
      let rtcp: dgram.Socket | undefined;
      if (s.rtcpPort !== undefined) {
        rtcp = byRtcpPort.get(s.rtcpPort);
        if (!rtcp) {
          byRtcpPort.set(s.rtcpPort, (rtcp = await connected(s.rtcpPort)));
          own.sockets.push(rtcp);
        }
      }
      own.senders.push(new StreamSender(s.kind === 'video' ? clip.video : clip.audio, s.ssrc, s.payloadType, socket, rtcp, start));
    }
  }
  senders.push(...own.senders);
  callSenders.set(call, own);
  // The SFU's port closed (the kernel refuses: its worker died): this call stops sending until retargeted, so that
  // stale packets do not reach whichever new transport gets that port next (comedia would latch onto them; a
  // browser's stale media, going through ICE and DTLS, never lands in another call).
  for (const socket of own.sockets) {
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' && callSenders.get(call) === own) {
        if (process.env.LOAD_DEBUG) console.error(`generator: call ${call}: ${err.message}, its senders stop`);
        stopSending(call);
      }
    });
  }
}

/** Stops the call's senders and closes their sockets. */
function stopSending(call: number): void {
  const old = callSenders.get(call);
  if (!old) return;
  callSenders.delete(call);
  const gone = new Set(old.senders);
  const closed = new Set(old.sockets);
  for (let i = senders.length - 1; i >= 0; i--) if (gone.has(senders[i]!)) senders.splice(i, 1);
  for (let i = sockets.length - 1; i >= 0; i--) if (closed.has(sockets[i]!)) sockets.splice(i, 1);
  for (const s of old.sockets) s.close();
}

function tick(): void {
  const now = performance.now();
  for (let i = 0; i < senders.length; i++) senders[i]!.tick(now);
}

function rtcpRound(): void {
  const now = performance.now();
  for (const s of senders) s.senderReport(now);
  for (const r of receivers) r.receiverReport(now);
}

function stats(): GeneratorStats {
  let received = 0;
  let expected = 0;
  let bytes = 0;
  let lossWorst = 0;
  let jitterSum = 0;
  let jitterWorst = 0;
  let silent = 0;
  for (const r of receivers) {
    const i = r.interval();
    if (process.env.LOAD_DEBUG) console.error(`generator: ${r.describe()} ${JSON.stringify(i)}`);
    received += i.received;
    expected += i.expected;
    bytes += i.bytes;
    if (i.received === 0) silent++;
    if (i.expected > 0) lossWorst = Math.max(lossWorst, (Math.max(0, i.expected - i.received) / i.expected) * 100);
    jitterSum += i.jitterMs;
    jitterWorst = Math.max(jitterWorst, i.jitterMs);
  }
  let lateSum = 0;
  let lateCount = 0;
  let lateMax = 0;
  let sent = 0;
  let slips = 0;
  for (const s of senders) {
    slips += s.slips;
    lateSum += s.lateSum;
    lateCount += s.lateCount;
    lateMax = Math.max(lateMax, s.lateMax);
    sent += s.packets;
    s.resetLateness();
  }
  const result: GeneratorStats = {
    streams: receivers.length,
    silent,
    received,
    expected,
    bytes,
    lossWorst,
    jitterMeanMs: receivers.length ? jitterSum / receivers.length : 0,
    jitterWorstMs: jitterWorst,
    lateMeanMs: lateCount ? lateSum / lateCount : 0,
    lateMaxMs: lateMax,
    sent: sent - sentMark,
    rtcpIn,
    sockets: sockets.length,
    drops: 0,
    slips: slips - slipsMark,
  };
  slipsMark = slips;
  const drops = socketDrops();
  result.drops = drops - dropsMark;
  dropsMark = drops;
  sentMark = sent;
  rtcpIn = 0;
  return result;
}

async function handle(req: GeneratorRequest): Promise<unknown> {
  switch (req.op) {
    case 'init':
      clip = readClip(req.clipFile);
      tickTimer = setInterval(tick, req.tickMs);
      rtcpTimer = setInterval(rtcpRound, 1000);
      return {};
    case 'receivers':
      return makeReceivers(req.call);
    case 'send':
      await startSending(req.call, req.sends);
      return {};
    case 'retarget':
      stopSending(req.call);
      await startSending(req.call, req.sends);
      return {};
    case 'arrivals':
      return Object.fromEntries(callArrivals);
    case 'stats':
      return stats();
    case 'stop':
      clearInterval(tickTimer);
      clearInterval(rtcpTimer);
      for (const s of sockets) s.close();
      setTimeout(() => process.exit(0), 50);
      return {};
  }
}

process.on('message', (req: GeneratorRequest) => {
  handle(req).then(
    (result) => process.send!({ id: req.id, result }),
    (err: unknown) => process.send!({ id: req.id, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
