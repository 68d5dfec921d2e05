/**
 * Probe of the Janus target alone (no load generator needed):
 *
 *   npx tsx bench/load/janus-probe.ts [calls=2] [seconds=3]
 *
 * Starts Janus through `janus-target.ts`, sets up the calls, and for each
 * participant sends synthetic plain RTP from one local socket (Opus-sized
 * audio at 50 packets/s, VP8-sized video at 30 fps × 3 packets ≈ 0.8
 * Mbit/s, correct sequence numbers, timestamps and the SSRCs the target
 * returned) plus a sender report per second to the RTCP port. Receivers on
 * 127.0.0.1 count what arrives forwarded: packets, loss (sequence gaps),
 * SSRC and payload type. Then each video receiver sends a PLI to the
 * address Janus's forwarder contacted its RTCP port from, and the probe
 * checks that Janus passes it on to the sender as a PLI for SSRC 1010.
 * Prints a table and Janus's CPU over the sending window; exits non-zero
 * if a stream lost more than 5 % or arrived with the wrong SSRC or PT.
 * All traffic is on 127.0.0.1; it stops by itself.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createTarget, forwardedSsrc } from './janus-target';
import type { ParticipantReceivers, ParticipantSend, StreamKind } from './target';

const CALLS = Math.max(1, Math.min(10, Number(process.argv[2] ?? 2)));
const SECONDS = Math.max(1, Math.min(30, Number(process.argv[3] ?? 3)));
const KINDS: StreamKind[] = ['audio', 'video'];

interface Receiver {
  kind: StreamKind;
  rtp: Socket;
  rtcp: Socket;
  packets: number;
  firstSeq?: number;
  lastSeq?: number;
  ssrcs: Set<number>;
  pts: Set<number>;
  /** Where Janus's forwarder contacts our RTCP port from (its latching packets). */
  janusRtcp?: { address: string; port: number };
}

function bind(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve(socket));
  });
}

async function receiver(kind: StreamKind): Promise<Receiver> {
  const r: Receiver = { kind, rtp: await bind(), rtcp: await bind(), packets: 0, ssrcs: new Set(), pts: new Set() };
  r.rtp.on('message', (msg) => {
    if (msg.length < 12 || msg[0]! >> 6 !== 2) return;
    const seq = msg.readUInt16BE(2);
    r.packets++;
    r.firstSeq ??= seq;
    r.lastSeq = seq;
    r.ssrcs.add(msg.readUInt32BE(8));
    r.pts.add(msg[1]! & 0x7f);
  });
  r.rtcp.on('message', (_msg, from) => {
    r.janusRtcp ??= { address: from.address, port: from.port };
  });
  return r;
}

const port = (s: Socket): number => s.address().port;

/** RTCP sender report, no report blocks. */
function senderReport(ssrc: number, rtpTs: number, packets: number, octets: number): Buffer {
  const b = Buffer.alloc(28);
  b[0] = 0x80;
  b[1] = 200;
  b.writeUInt16BE(6, 2);
  b.writeUInt32BE(ssrc, 4);
  const now = Date.now() / 1000 + 2208988800;
  b.writeUInt32BE(Math.floor(now) >>> 0, 8);
  b.writeUInt32BE(Math.floor((now % 1) * 2 ** 32) >>> 0, 12);
  b.writeUInt32BE(rtpTs >>> 0, 16);
  b.writeUInt32BE(packets >>> 0, 20);
  b.writeUInt32BE(octets >>> 0, 24);
  return b;
}

/** RTCP PLI (payload-specific feedback, FMT 1). */
function pli(senderSsrc: number, mediaSsrc: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = 0x81;
  b[1] = 206;
  b.writeUInt16BE(2, 2);
  b.writeUInt32BE(senderSsrc, 4);
  b.writeUInt32BE(mediaSsrc, 8);
  return b;
}

interface Sender {
  rtp: Socket;
  rtcp: Socket;
  send: ParticipantSend;
  sent: Record<StreamKind, number>;
  plis: number[];
}

function janusCpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function main(): Promise<void> {
  const target = createTarget();
  await target.start({ workers: 1 });
  const senders: Sender[] = [];
  const receivers: Array<[Record<StreamKind, Receiver>, Record<StreamKind, Receiver>]> = [];
  let failed = false;
  try {
    for (let c = 0; c < CALLS; c++) {
      const rx: [Record<StreamKind, Receiver>, Record<StreamKind, Receiver>] = [
        { audio: await receiver('audio'), video: await receiver('video') },
        { audio: await receiver('audio'), video: await receiver('video') },
      ];
      receivers.push(rx);
      const endpoints = rx.map((r) => ({
        audio: { kind: 'audio', port: port(r.audio.rtp), rtcpPort: port(r.audio.rtcp) },
        video: { kind: 'video', port: port(r.video.rtp), rtcpPort: port(r.video.rtcp) },
      })) as [ParticipantReceivers, ParticipantReceivers];
      const sends = await target.addCall(c, endpoints);
      for (const send of sends) {
        const s: Sender = { rtp: await bind(), rtcp: await bind(), send, sent: { audio: 0, video: 0 }, plis: [] };
        s.rtcp.on('message', (msg) => {
          if (msg.length >= 12 && msg[1] === 206 && (msg[0]! & 0x1f) === 1) s.plis.push(msg.readUInt32BE(8));
        });
        senders.push(s);
      }
    }
    console.log(`janus ${target.mediaPids().join(',')}: ${CALLS} call(s) set up; sending ${SECONDS} s of RTP`);
    for (const s of senders) console.log(`  send to ${s.send.streams.map((x) => `${x.kind} ssrc ${x.ssrc} pt ${x.payloadType} → 127.0.0.1:${x.port} (rtcp ${x.rtcpPort})`).join('; ')}`);

    const pid = target.mediaPids()[0]!;
    const cpu0 = janusCpuTicks(pid);
    const started = Date.now();
    const payload = { audio: Buffer.alloc(120, 0xa5), video: Buffer.alloc(1150, 0x5a) };
    const state = senders.map(() => ({ audio: { seq: 1000, frames: 0 }, video: { seq: 20000, frames: 0 } }));
    await new Promise<void>((resolve) => {
      let lastSr = 0;
      const timer = setInterval(() => {
        const elapsed = (Date.now() - started) / 1000;
        senders.forEach((s, i) => {
          for (const stream of s.send.streams) {
            const st = state[i]![stream.kind];
            const fps = stream.kind === 'audio' ? 50 : 30;
            while (st.frames < Math.min(elapsed, SECONDS) * fps) {
              const packets = stream.kind === 'audio' ? 1 : 3;
              const ts = st.frames * (stream.kind === 'audio' ? 960 : 3000);
              for (let k = 0; k < packets; k++) {
                const header = Buffer.alloc(12);
                header[0] = 0x80;
                header[1] = stream.payloadType | (k === packets - 1 ? 0x80 : 0);
                header.writeUInt16BE(st.seq++ & 0xffff, 2);
                header.writeUInt32BE(ts >>> 0, 4);
                header.writeUInt32BE(stream.ssrc, 8);
                s.rtp.send(Buffer.concat([header, payload[stream.kind]]), stream.port, '127.0.0.1');
                s.sent[stream.kind]++;
              }
              st.frames++;
            }
          }
          if (elapsed - lastSr >= 1) {
            for (const stream of s.send.streams) {
              if (stream.rtcpPort) s.rtcp.send(senderReport(stream.ssrc, 0, s.sent[stream.kind], 0), stream.rtcpPort, '127.0.0.1');
            }
          }
        });
        if (elapsed - lastSr >= 1) lastSr = elapsed;
        if (elapsed >= SECONDS) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    const cpuSeconds = (janusCpuTicks(pid) - cpu0) / 100;
    const windowSeconds = (Date.now() - started) / 1000;
    // Keyframe requests: each video receiver asks the forwarder's RTCP socket; the sender should get a PLI for SSRC 1010.
    for (const rx of receivers) {
      for (const r of rx) {
        if (r.video.janusRtcp) r.video.rtcp.send(pli(0x1234, [...r.video.ssrcs][0] ?? 0), r.video.janusRtcp.port, '127.0.0.1');
      }
    }
    await new Promise((r) => setTimeout(r, 500));

    console.log('\ncall  from→to  kind   sent  recv  lost  ssrc in → out           pt   janus rtcp latch');
    receivers.forEach((rx, c) => {
      for (const to of [0, 1] as const) {
        const from = to === 0 ? 1 : 0;
        const s = senders[c * 2 + from]!;
        for (const kind of KINDS) {
          const r = rx[to][kind];
          const expectedSsrc = forwardedSsrc(c, from, kind);
          const span = r.firstSeq !== undefined && r.lastSeq !== undefined ? ((r.lastSeq - r.firstSeq) & 0xffff) + 1 : 0;
          const lost = Math.max(0, s.sent[kind] - r.packets);
          const inSsrc = s.send.streams.find((x) => x.kind === kind)!.ssrc;
          const pt = s.send.streams.find((x) => x.kind === kind)!.payloadType;
          const ok = lost <= s.sent[kind] * 0.05 && span === r.packets && r.ssrcs.size === 1 && r.ssrcs.has(expectedSsrc) && r.pts.size === 1 && r.pts.has(pt);
          if (!ok) failed = true;
          console.log(`${String(c).padEnd(5)} ${from}→${to}     ${kind.padEnd(5)} ${String(s.sent[kind]).padStart(5)} ${String(r.packets).padStart(5)} ${String(lost).padStart(5)}  ${String(inSsrc).padStart(4)} → ${[...r.ssrcs].map((x) => `0x${x.toString(16)}`).join(',').padEnd(14)} ${[...r.pts].join(',').padStart(4)}   ${r.janusRtcp ? `:${r.janusRtcp.port}` : '—'}${ok ? '' : '   FAIL'}`);
        }
      }
    });
    senders.forEach((s, i) => {
      const ok = s.plis.length > 0 && s.plis.every((x) => x === 1010);
      if (!ok) failed = true;
      console.log(`PLI back to call ${Math.floor(i / 2)} participant ${i % 2}: ${s.plis.length ? s.plis.map((x) => `media ssrc ${x}`).join(', ') : 'none'}${ok ? '' : '   FAIL'}`);
    });
    const streams = CALLS * 4;
    console.log(`\njanus CPU over ${windowSeconds.toFixed(1)} s: ${((cpuSeconds / windowSeconds) * 100).toFixed(1)} % of a core for ${streams} forwarded streams (${((cpuSeconds / windowSeconds / streams) * 100).toFixed(2)} % per stream; a probe, not a measurement)`);
  } finally {
    for (const s of senders) {
      s.rtp.close();
      s.rtcp.close();
    }
    for (const rx of receivers) for (const r of rx) for (const kind of KINDS) {
      r[kind].rtp.close();
      r[kind].rtcp.close();
    }
    await target.stop();
  }
  console.log(failed ? '\nprobe FAILED' : '\nprobe ok: every stream forwarded with the forwarder\'s SSRC and PT, PLI passed back');
  process.exitCode = failed ? 1 : 0;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
