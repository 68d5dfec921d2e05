/**
 * RTP and RTCP on the generator's side: one replayed stream (header fields
 * rewritten in place in preallocated buffers, timestamps and sequence
 * numbers continuing across loops of the clip) and one receiver (loss from
 * sequence gaps with wrap, RFC 3550 interarrival jitter, receiver reports).
 */
import type dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { ClipStream } from './clip';

/** Seconds between 1900 (NTP) and 1970 (Unix). */
const NTP_EPOCH = 2_208_988_800;
const startedAt = Date.now() - performance.now();

function ntp(buf: Buffer, at: number, nowMs: number): void {
  const ms = startedAt + nowMs;
  const seconds = Math.floor(ms / 1000);
  buf.writeUInt32BE((seconds + NTP_EPOCH) >>> 0, at);
  buf.writeUInt32BE(Math.floor(((ms % 1000) / 1000) * 2 ** 32) >>> 0, at + 4);
}

/** Slots in each stream's ring of send buffers: more than the packets of a key frame sent in one tick. */
const RING = { audio: 8, video: 192 } as const;

/**
 * A stream more than this late (ms: the generator was not scheduled) slips:
 * its schedule moves on by the delay instead of sending the backlog in one
 * burst that would overflow the SFU's socket buffers. Receivers then see a
 * pause (jitter), and the lateness is still counted.
 */
const SLIP_MS = 200;

export class StreamSender {
  private readonly ring: Buffer[];
  private slot = 0;
  private index = 0;
  private loop = 0;
  private readonly seqBase = Math.floor(Math.random() * 65536);
  private readonly tsBase = Math.floor(Math.random() * 2 ** 32);
  private readonly periodMs: number;
  private readonly offsetsMs: Float64Array;
  private readonly sr = Buffer.alloc(28);
  packets = 0;
  octets = 0;
  /** Sum and maximum of how late packets went out (ms), since the last reset. */
  lateSum = 0;
  lateMax = 0;
  lateCount = 0;
  /** Times the schedule slipped (see SLIP_MS). */
  slips = 0;

  constructor(private readonly clip: ClipStream, private readonly ssrc: number, private readonly payloadType: number, private readonly socket: dgram.Socket, private readonly rtcp: dgram.Socket | undefined, private start: number) {
    this.ring = Array.from({ length: RING[clip.kind] }, () => Buffer.alloc(clip.maxLength));
    this.periodMs = (clip.period / clip.clockRate) * 1000;
    this.offsetsMs = Float64Array.from(clip.offsets, (o) => (o / clip.clockRate) * 1000);
    this.sr[0] = 0x80;
    this.sr[1] = 200;
    this.sr.writeUInt16BE(6, 2);
    this.sr.writeUInt32BE(ssrc >>> 0, 4);
  }

  /** Sends every packet due by `now` (performance.now() ms). */
  tick(now: number): void {
    const { packets } = this.clip;
    for (;;) {
      const due = this.start + this.loop * this.periodMs + this.offsetsMs[this.index]!;
      if (due > now) return;
      const late = now - due;
      if (late > SLIP_MS) {
        this.start += late;
        this.slips++;
      }
      this.lateSum += late;
      this.lateCount++;
      if (late > this.lateMax) this.lateMax = late;
      const source = packets[this.index]!;
      const buf = this.ring[this.slot]!;
      this.slot = (this.slot + 1) % this.ring.length;
      source.copy(buf, 0, 0, source.length);
      // ffmpeg marks every Opus packet; a browser marks only the start of a talk spurt (here: the first packet).
      buf[1] = (this.clip.kind === 'audio' ? (this.packets === 0 ? 0x80 : 0) : source[1]! & 0x80) | this.payloadType;
      const n = this.loop * packets.length + this.index;
      buf.writeUInt16BE((this.seqBase + n) & 0xffff, 2);
      buf.writeUInt32BE((this.tsBase + this.loop * this.clip.period + this.clip.offsets[this.index]!) % 2 ** 32, 4);
      buf.writeUInt32BE(this.ssrc >>> 0, 8);
      this.socket.send(buf, 0, source.length);
      this.packets++;
      this.octets += source.length - 12;
      if (++this.index === packets.length) {
        this.index = 0;
        this.loop++;
      }
    }
  }

  /** An RTCP sender report for now (to the SFU's RTCP port, or its RTP port with rtcp-mux). */
  senderReport(now: number): void {
    const elapsed = now - this.start;
    ntp(this.sr, 8, now);
    this.sr.writeUInt32BE((this.tsBase + Math.floor((elapsed / 1000) * this.clip.clockRate)) % 2 ** 32, 16);
    this.sr.writeUInt32BE(this.packets >>> 0, 20);
    this.sr.writeUInt32BE(this.octets >>> 0, 24);
    (this.rtcp ?? this.socket).send(this.sr, 0, 28);
  }

  resetLateness(): void {
    this.lateSum = 0;
    this.lateMax = 0;
    this.lateCount = 0;
  }
}

/** What one receiver saw over an interval. */
export interface ReceiveInterval {
  received: number;
  expected: number;
  bytes: number;
  /** Interarrival jitter at the end of the interval, ms. */
  jitterMs: number;
}

export class StreamReceiver {
  private started = false;
  private baseSeq = 0;
  private maxSeq = 0;
  private cycles = 0;
  private received = 0;
  private bytes = 0;
  private jitter = 0;
  private lastTransit = 0;
  private hasTransit = false;
  private senderSsrc = 0;
  /** For the receiver report: the middle 32 bits of the last SR's NTP time, and when it arrived. */
  private lsr = 0;
  private lsrAt = 0;
  private rtcpRemote: { port: number; address: string } | undefined;
  private readonly rr = Buffer.alloc(32);
  private expectedPrior = 0;
  private receivedPrior = 0;
  private mark = { extMax: 0, received: 0, bytes: 0 };

  constructor(private readonly clockRate: number, private readonly rtcp: dgram.Socket, ownSsrc: number) {
    this.rr[0] = 0x81;
    this.rr[1] = 201;
    this.rr.writeUInt16BE(7, 2);
    this.rr.writeUInt32BE(ownSsrc >>> 0, 4);
  }

  onRtp(msg: Buffer, now: number): void {
    // The socket gets RTP only (RTCP has its own port): byte 1 is marker and payload type.
    if (msg.length < 12 || msg[0]! >> 6 !== 2) return;
    const seq = msg.readUInt16BE(2);
    if (!this.started) {
      this.started = true;
      this.baseSeq = seq;
      this.maxSeq = seq;
      this.senderSsrc = msg.readUInt32BE(8);
      this.mark.extMax = seq - 1;
    } else {
      const delta = (seq - this.maxSeq + 65536) % 65536;
      if (delta > 0 && delta < 32768) {
        if (seq < this.maxSeq) this.cycles += 65536;
        this.maxSeq = seq;
      }
    }
    this.received++;
    this.bytes += msg.length;
    const arrival = (now / 1000) * this.clockRate;
    const transit = arrival - msg.readUInt32BE(4);
    if (this.hasTransit) {
      let d = transit - this.lastTransit;
      // Timestamp wrap: a step of about 2^32 is no jitter.
      if (d > 2 ** 31) d -= 2 ** 32;
      else if (d < -(2 ** 31)) d += 2 ** 32;
      this.jitter += (Math.abs(d) - this.jitter) / 16;
    }
    this.lastTransit = transit;
    this.hasTransit = true;
  }

  /** RTCP from the SFU: remembers where it comes from (receiver reports go back there) and the last sender report. */
  onRtcp(msg: Buffer, rinfo: dgram.RemoteInfo, now: number): void {
    if (!this.rtcpRemote) this.rtcpRemote = { port: rinfo.port, address: rinfo.address };
    if (msg.length >= 28 && msg[1] === 200) {
      this.lsr = msg.readUInt32BE(10);
      this.lsrAt = now;
    }
  }

  private get extMax(): number {
    return this.cycles + this.maxSeq;
  }

  receiverReport(now: number): void {
    if (!this.rtcpRemote || !this.started) return;
    const expected = this.extMax - this.baseSeq + 1;
    const lost = Math.max(0, expected - this.received);
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.received - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction = expectedInterval <= 0 || lostInterval <= 0 ? 0 : Math.min(255, Math.floor((lostInterval * 256) / expectedInterval));
    const rr = this.rr;
    rr.writeUInt32BE(this.senderSsrc >>> 0, 8);
    rr.writeUInt32BE(((fraction << 24) | Math.min(lost, 0x7fffff)) >>> 0, 12);
    rr.writeUInt32BE(this.extMax >>> 0, 16);
    rr.writeUInt32BE(Math.floor(this.jitter) >>> 0, 20);
    rr.writeUInt32BE(this.lsr >>> 0, 24);
    rr.writeUInt32BE(this.lsrAt ? Math.floor(((now - this.lsrAt) / 1000) * 65536) >>> 0 : 0, 28);
    this.rtcp.send(rr, 0, 32, this.rtcpRemote.port, this.rtcpRemote.address);
  }

  describe(): string {
    return `receiver clock ${this.clockRate} ssrc ${this.senderSsrc} seq ${this.baseSeq}..${this.extMax} received ${this.received} rtcp from ${this.rtcpRemote?.port ?? '-'}`;
  }

  /** What arrived since the last call (the first call: since the stream started). */
  interval(): ReceiveInterval {
    const extMax = this.started ? this.extMax : this.mark.extMax;
    const result = { received: this.received - this.mark.received, expected: Math.max(0, extMax - this.mark.extMax), bytes: this.bytes - this.mark.bytes, jitterMs: (this.jitter / this.clockRate) * 1000 };
    this.mark = { extMax, received: this.received, bytes: this.bytes };
    return result;
  }
}
