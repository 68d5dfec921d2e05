import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import request from 'supertest';
import { requests } from '../app/calls/protocol';
import { CallService } from '../app/calls/service';
import { seedOrganisation, seedUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { ask, connect, join, ok, openCall, sessionCookie, type Ack } from './support/signal-client';

/**
 * The signalling fuzz test: both sides of a real call connected, then a few
 * hundred requests with every protocol name and hostile ones (inherited
 * properties of plain objects, numbers, empty and very long names) and
 * random payloads (null, arrays, nested objects, huge numbers, strings for
 * objects, valid messages with one field spoiled; with an ack, without,
 * with a non-function in its place). Afterwards the server still answers
 * and the call is unharmed. Seeded, so a failure can be replayed.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const MESSAGES = 360;

/** mulberry32: small, seeded, good enough to pick shapes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const OPUS = { codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [] }], encodings: [{ ssrc: 11111111 }], headerExtensions: [], rtcp: { cname: 'test' } };

const HOSTILE_NAMES: unknown[] = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf', 'curation.__proto__', 'recording.constructor', 'chat.toString', 0, 42, -1, 1.5, 2 ** 53, '', ' ', 'x'.repeat(10_000), 'join\u0000', 'héllo ☃'];
const STABLE_CODES = new Set(['invalid_message', 'invalid_parameters', 'too_large', 'rate_limited', 'not_joined', 'not_found', 'forbidden', 'call_ended', 'media_unavailable', 'limit_reached', 'cannot_consume', 'consent_required', 'disk_full', 'recording_unavailable', 'database_unavailable', 'internal_error']);

describe('signalling fuzz: hostile names and random payloads', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let server: CallServer;

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 2000, silenceMs: 60_000 });
  });
  after(async () => server?.close());

  it(`survives ${MESSAGES} fuzzed requests (seed ${SEED}) with the server up and the call unharmed`, async () => {
    const org = await seedOrganisation(db.current.knex, 'Fuzz Bank');
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const cookie = await sessionCookie(server.url, clerk);
    const { callId, clerkSocket, customerSocket } = await openCall(db.current.knex, server.url, clerk, cookie);
    await join(clerkSocket);
    const clerkSend = await ok<{ id: string }>(clerkSocket, 'createTransport', { direction: 'send' });
    const { producerId } = await ok<{ producerId: string }>(clerkSocket, 'produce', { transportId: clerkSend.id, kind: 'audio', rtpParameters: OPUS, source: 'microphone' });
    await join(customerSocket);
    const customerRecv = await ok<{ id: string }>(customerSocket, 'createTransport', { direction: 'recv' });
    const customerSend = await ok<{ id: string }>(customerSocket, 'createTransport', { direction: 'send' });
    let disconnected = 0;
    for (const s of [clerkSocket, customerSocket]) s.on('disconnect', () => disconnected++);

    const random = prng(SEED);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const ids = [customerRecv.id, customerSend.id, clerkSend.id, producerId, crypto.randomUUID(), 'x', '../../etc', '__proto__'];
    const scalar = (): unknown =>
      pick<() => unknown>([
        () => null,
        () => undefined,
        () => random() < 0.5,
        () => pick([0, -1, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 1.5, -0]),
        () => pick(['', 'a', 'x'.repeat(2000), '__proto__', 'constructor', '{"a":1}', 'send', 'recv', 'audio', 'microphone', 'screen', '\u0000', '☃'.repeat(50)]),
        () => pick(ids),
      ])();
    const value = (depth: number): unknown => {
      const r = random();
      if (depth <= 0 || r < 0.5) return scalar();
      if (r < 0.7) return Array.from({ length: Math.floor(random() * 5) }, () => value(depth - 1));
      const object: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 5); i > 0; i--) object[pick(['transportId', 'producerId', 'consumerId', 'direction', 'kind', 'source', 'rtpParameters', 'dtlsParameters', 'rtpCapabilities', 'text', 'itemId', 'constructor', 'toString', 'x'])] = value(depth - 1);
      if (random() < 0.1) Object.defineProperty(object, '__proto__', { value: { polluted: true }, enumerable: true });
      return object;
    };
    /** A valid message for the request with one field spoiled (or none), to get past the schema into the handlers. */
    const spoiled = (name: unknown): unknown => {
      const id = () => pick(ids);
      const templates: Record<string, () => Record<string, unknown>> = {
        join: () => ({ rtpCapabilities: pick([{}, { codecs: value(2) }, { headerExtensions: 'x' }, { codecs: [{ kind: 'audio', mimeType: 'audio/opus' }] }]) }),
        createTransport: () => ({ direction: pick(['send', 'recv', 'both']) }),
        connectTransport: () => ({ transportId: id(), dtlsParameters: { role: pick(['auto', 'client', 'server', 'x']), fingerprints: value(2) } }),
        restartIce: () => ({ transportId: id() }),
        produce: () => ({ transportId: id(), kind: pick(['audio', 'video']), rtpParameters: pick([OPUS, value(3), { codecs: value(2), encodings: value(2) }]), source: pick(['microphone', 'camera', 'screen']) }),
        pauseProducer: () => ({ producerId: id() }),
        resumeProducer: () => ({ producerId: id() }),
        closeProducer: () => ({ producerId: id() }),
        consume: () => ({ transportId: id(), producerId: id() }),
        resumeConsumer: () => ({ consumerId: id() }),
        'curation.show': () => ({ productId: crypto.randomUUID(), note: pick(['', 'n', 'x'.repeat(1001)]) }),
        'curation.favourite': () => ({ itemId: crypto.randomUUID(), favourite: pick([true, 'yes']) }),
        'curation.ask': () => ({ itemId: crypto.randomUUID(), text: pick(['?', 'x'.repeat(3000)]) }),
        'curation.reorder': () => ({ itemIds: [crypto.randomUUID(), crypto.randomUUID()] }),
        'chat.send': () => ({ text: pick(['hello', '', 'x'.repeat(3000)]) }),
        'recording.consent': () => ({ answer: pick(['granted', 'declined', 'maybe']), noticeVersion: pick(['1', '']), language: pick(['en', 'fr']) }),
      };
      const template = typeof name === 'string' && Object.hasOwn(templates, name) ? templates[name]! : () => ({});
      return template();
    };
    const names = [...Object.keys(requests), ...HOSTILE_NAMES];

    let answered = 0;
    let unanswered = 0;
    const codes = new Map<string, number>();
    const send = (socket: Socket, isClerk: boolean): Promise<void> => {
      const name = pick(names);
      let payload = random() < 0.5 ? spoiled(name) : value(3);
      // The fuzzer must not end its own session or start its media over: a valid `leave`, or any valid request of the clerk's, is replaced.
      const schema = typeof name === 'string' && Object.hasOwn(requests, name) ? requests[name as keyof typeof requests] : undefined;
      if (schema?.safeParse(payload).success && (isClerk || name === 'leave')) payload = [payload];
      const form = random();
      if (form < 0.1) {
        socket.emit(name as string, payload); // no ack
        return Promise.resolve();
      }
      if (form < 0.15) {
        socket.emit(name as string, payload, pick(['not a function', 42, null, { ack: true }])); // a non-function where the ack goes
        return Promise.resolve();
      }
      const args = form < 0.25 ? [payload, value(1)] : form < 0.3 ? [] : [payload];
      return (socket.timeout(10_000).emitWithAck(name as string, ...args) as Promise<Ack>).then(
        (ack) => {
          answered++;
          assert.equal(typeof ack.ok, 'boolean', 'every answer says ok or not');
          if (!ack.ok) {
            assert.ok(STABLE_CODES.has(ack.error.code), `a stable code, not ${ack.error.code}`);
            codes.set(ack.error.code, (codes.get(ack.error.code) ?? 0) + 1);
          }
        },
        () => {
          unanswered++;
        },
      );
    };

    // In paced rounds of 12, about the connection's rate limit (20 a second), so most requests reach their handlers; some are refused as rate_limited, which is fine.
    for (let sent = 0; sent < MESSAGES; sent += 12) {
      await Promise.all(Array.from({ length: 12 }, (_, i) => send(i % 4 === 0 ? clerkSocket : customerSocket, i % 4 === 0)));
      await new Promise((r) => setTimeout(r, 400));
    }

    // A name socket.io itself refuses (an object): only that connection is closed (the clerk's second call here).
    const other = await new CallService(db.current.knex).start({ user: { id: clerk.id, organisationId: clerk.organisationId } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' }, 1);
    const stranger = await connect(server.url, { callId: other.call.id }, cookie);
    const strangerGone = new Promise((resolve) => stranger.once('disconnect', resolve));
    stranger.emit({ name: 'join' } as unknown as string, {}, () => undefined);
    await strangerGone;

    // The process is up and answers HTTP.
    await request(server.url).get('/healthz').expect(200);

    // Every request with an ack got an answer with a stable code, and the call is unharmed.
    assert.equal(unanswered, 0, 'every request with an ack was answered');
    assert.ok(answered > MESSAGES / 2, `most requests were answered (${answered})`);
    assert.ok((codes.get('invalid_message') ?? 0) > 0);
    assert.equal(disconnected, 0, 'no participant was thrown out by the fuzzing');
    assert.ok(clerkSocket.connected && customerSocket.connected);
    let customerAnswer: Ack | undefined;
    for (let attempt = 0; attempt < 50 && !customerAnswer?.ok; attempt++) {
      customerAnswer = await ask(customerSocket, 'heartbeat', {});
      if (!customerAnswer.ok) await new Promise((r) => setTimeout(r, 100)); // the flood's rate limit refills
    }
    assert.equal(customerAnswer?.ok, true, 'the customer gets answers again');
    const received = new Promise<{ body: string }>((resolve) => customerSocket.once('chat.message', resolve));
    await ok(clerkSocket, 'chat.send', { text: 'still here' });
    assert.equal((await received).body, 'still here', 'the customer still hears the clerk');
    const state = await server.hub.describeCall(callId);
    assert.equal(state!.peers.find((p) => p.role === 'clerk')!.producers, 1, 'the clerk still sends');
    console.log(`      fuzz: ${answered} answered, refusals ${JSON.stringify(Object.fromEntries(codes))}`);
    for (const s of [clerkSocket, customerSocket]) s.close();
  });
});
