import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import os from 'node:os';
import { Manager, type Socket } from 'socket.io-client';
import { connect, join, ok, type Ack } from './signal-client';

/**
 * Signalling flooders for abuse tests, run in a child process so that
 * their own work (encoding tens of thousands of messages, 200 websockets)
 * does not share the appliance's event loop or count in its memory.
 * `floodSignalling` starts the child and resolves with what each flooder saw.
 */

/** An authenticated flooder: a clerk (`callId` and the session cookie) or a customer (`token`) of some call. */
export interface FlooderSpec {
  auth: Record<string, string>;
  cookie?: string;
  /** Joins its media room and opens a send transport first, so that produce and consume requests reach the media layer. */
  join: boolean;
  /** Whether it also sends one frame over the transport's 64 kB limit. */
  oversizedFrame: boolean;
}

export interface FloodOptions {
  url: string;
  flooders: FlooderSpec[];
  /** Unauthenticated raw engine.io connections. */
  raw: number;
  /** The real call's id: some raw connections claim it without a session. */
  realCallId: string;
  /** Requests per authenticated flooder, and their pace per second. */
  messages: number;
  rate: number;
}

export interface FlooderResult {
  /** How the server ended the connection (socket.io's disconnect reason), if it did. */
  cutOff: string | null;
  cutAfterMs: number | null;
  codes: Record<string, number>;
  accepted: number;
  unanswered: number;
  sent: number;
}

export interface RawResult {
  /** `cut off` (the server closed it), `open`, or why it did not open. */
  outcome: string;
  /** The stable code its socket.io CONNECT was refused with. */
  refused: string | null;
  kind: 'unjoined events' | 'undecodable' | 'oversized';
}

export interface FloodResult {
  flooders: FlooderResult[];
  raw: RawResult[];
  ms: number;
}

const OPUS = (ssrc: number) => ({ codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [] }], encodings: [{ ssrc }], headerExtensions: [], rtcp: { cname: 'flood' } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the flood in a child process; resolves with its results. */
export function floodSignalling(options: FloodOptions, onStarted: () => void = () => undefined): Promise<FloodResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', __filename], { stdio: ['pipe', 'pipe', 'inherit'] });
    // The flooders stand for other machines: on a 2-core test machine they must not take the appliance's, the database's and the browsers' CPU first.
    if (child.pid) os.setPriority(child.pid, 15);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      if (!out.includes('STARTED') && (out + c).includes('STARTED')) onStarted();
      out += c;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('FLOOD '));
      if (code !== 0 || !line) return reject(new Error(`the flood process ended with ${code}: ${out.slice(-500)}`));
      resolve(JSON.parse(line.slice(6)) as FloodResult);
    });
    child.stdin.end(JSON.stringify(options));
  });
}

async function authenticated(spec: FlooderSpec, url: string): Promise<{ socket: Socket; transportId?: string }> {
  const socket = await connect(url, spec.auth, spec.cookie);
  if (!spec.join) return { socket };
  await join(socket);
  return { socket, transportId: (await ok<{ id: string }>(socket, 'createTransport', { direction: 'send' })).id };
}

/**
 * Requests an authenticated flooder sends at once, over the connection's
 * burst allowance (REQUEST_LIMITS.burst): a flood however slowly the
 * flooder process runs.
 */
const BURST = 100;

/** One authenticated flooder: `messages` requests at about `rate` a second in bursts of BURST (valid, malformed, oversized, without an ack); answers counted. */
async function flood(socket: Socket, transportId: string | undefined, spec: FlooderSpec, index: number, options: FloodOptions, started: number): Promise<FlooderResult> {
  const result: FlooderResult = { cutOff: null, cutAfterMs: null, codes: {}, accepted: 0, unanswered: 0, sent: 0 };
  socket.on('disconnect', (reason) => {
    result.cutOff = reason;
    result.cutAfterMs = Date.now() - started;
  });
  const pending: Promise<void>[] = [];
  const send = (name: unknown, ...args: unknown[]) => {
    result.sent++;
    pending.push(
      (socket.timeout(8000).emitWithAck(name as string, ...args) as Promise<Ack>).then(
        (ack) => {
          if (ack.ok) result.accepted++;
          else result.codes[ack.error.code] = (result.codes[ack.error.code] ?? 0) + 1;
        },
        () => {
          // No answer: the connection was cut (counted by its disconnect) or the answer came too late.
          if (socket.connected) result.unanswered++;
        },
      ),
    );
  };
  const big = 'x'.repeat(40_000);
  for (let i = 0; i < options.messages && socket.connected; i++) {
    switch (i % 10) {
      case 0: send('chat.send', { text: `flood ${index}/${i}` }); break;
      case 1: send('produce', { transportId: transportId ?? crypto.randomUUID(), kind: 'audio', rtpParameters: OPUS(3_000_000 + index * 1000 + i), source: 'microphone' }); break;
      case 2: send('consume', { transportId: transportId ?? 'x', producerId: crypto.randomUUID() }); break;
      case 3: send('heartbeat', {}); break;
      case 4: send('chat.send', { text: 42, extra: [null, { a: 1 }] }); break; // malformed
      case 5: send('__proto__', {}); break; // unknown name
      case 6: send('connectTransport', { transportId: transportId ?? 'x', dtlsParameters: { junk: i % 20 === 6 ? big : 'x' } }); break; // every other one over 32 kB
      case 7: result.sent++; socket.emit('chat.send', { text: 'no ack' }); break;
      case 8: send('chat.send', 'not an object'); break;
      default:
        if (i === 99 && spec.oversizedFrame) send('chat.send', { text: 'y'.repeat(70 * 1024) }); // over the 64 kB frame limit
        else send('getRouterRtpCapabilities', {});
    }
    if (i % BURST === BURST - 1) await sleep(Math.round((BURST * 1000) / options.rate));
  }
  await Promise.all(pending);
  return result;
}

type RawKind = RawResult['kind'];
const rawKind = (index: number): RawKind => (['unjoined events', 'unjoined events', 'unjoined events', 'undecodable', 'undecodable', 'oversized'] as const)[index % 6]!;

/** Opens an unauthenticated raw connection: engine.io without a socket.io session. */
async function rawOpen(url: string): Promise<Manager | Error> {
  const manager = new Manager(url, { path: '/signal', transports: ['websocket'], reconnection: false, autoConnect: false, timeout: 20_000 });
  const failed = await new Promise<Error | undefined>((resolve) => manager.open((err) => resolve(err)));
  return failed ?? manager;
}

/** Floods over a raw connection, sending socket.io packets by hand. */
async function rawFlood(manager: Manager | Error, index: number, realCallId: string): Promise<RawResult> {
  const kind = rawKind(index);
  if (manager instanceof Error) return { outcome: `not opened: ${manager.message}`, refused: null, kind };
  const engine = manager.engine;
  let closed: string | undefined;
  let refused: string | null = null;
  engine.on('close', (reason: string) => (closed = reason));
  engine.on('message', (data: unknown) => {
    const m = /^4(\{.*\})$/.exec(String(data)); // CONNECT_ERROR
    if (m) refused = (JSON.parse(m[1]!) as { message: string }).message;
  });
  const auth = [{ token: crypto.randomBytes(32).toString('base64url') }, {}, { callId: realCallId }][index % 3];
  engine.write(`0${JSON.stringify(auth)}`);
  for (let i = 0; i < 50 && !closed; i++) {
    if (kind === 'unjoined events') engine.write(`2${i}${JSON.stringify(['chat.send', { text: `raw ${index}/${i}` }])}`);
    else if (kind === 'undecodable') engine.write(i % 2 ? '2["unterminated' : '9garbage');
    else engine.write(`2${JSON.stringify(['chat.send', { text: 'z'.repeat(70 * 1024) }])}`);
    if (i % 10 === 9) await sleep(50);
  }
  // Undecodable or oversized traffic must end the connection: the server may take a while on a busy machine (bounded).
  const deadline = Date.now() + (kind === 'unjoined events' ? 1000 : 15_000);
  do await sleep(100);
  while (!closed && Date.now() < deadline);
  const outcome = closed ? 'cut off' : 'open';
  engine.close();
  return { outcome, refused, kind };
}

async function main(): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  const options = JSON.parse(input) as FloodOptions;
  const sockets = [];
  for (const spec of options.flooders) sockets.push(await authenticated(spec, options.url));
  const raws: (Manager | Error)[] = [];
  for (let i = 0; i < options.raw; i += 20) raws.push(...(await Promise.all(Array.from({ length: Math.min(20, options.raw - i) }, () => rawOpen(options.url)))));
  process.stdout.write('STARTED\n');
  const started = Date.now();
  const [flooders, raw] = await Promise.all([
    Promise.all(sockets.map(({ socket, transportId }, i) => flood(socket, transportId, options.flooders[i]!, i, options, started))),
    Promise.all(raws.map((manager, i) => rawFlood(manager, i, options.realCallId))),
  ]);
  for (const { socket } of sockets) socket.close();
  process.stdout.write(`FLOOD ${JSON.stringify({ flooders, raw, ms: Date.now() - started } satisfies FloodResult)}\n`);
  process.exit(0);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
