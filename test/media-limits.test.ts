import assert from 'node:assert/strict';
import { PEER_LIMITS } from '../media';
import { seedOrganisation, seedUser, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { ask, join, ok, openCall, sessionCookie, type Ack } from './support/signal-client';

const OPUS = { codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [] }], encodings: [{ ssrc: 11111111 }], headerExtensions: [], rtcp: { cname: 'test' } };
const VP8 = { codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, parameters: {}, rtcpFeedback: [] }], encodings: [{ ssrc: 22222222 }], headerExtensions: [], rtcp: { cname: 'test' } };

function codes(acks: Ack[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of acks) {
    const key = a.ok ? 'ok' : a.error.code;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

describe('limits per participant in the media room', function () {
  this.timeout(90_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerk: SeededUser;
  let cookie: string;

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 300 });
    const org = await seedOrganisation(db.current.knex, 'Limits Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    cookie = await sessionCookie(server.url, clerk);
  });
  after(async () => server?.close());

  it('refuses transports beyond the limit with limit_reached; the router holds no more, and none after leaving', async () => {
    const { callId, clerkSocket, customerSocket } = await openCall(db.current.knex, server.url, clerk, cookie);
    await join(clerkSocket);
    await ok(clerkSocket, 'createTransport', { direction: 'recv' });
    await join(customerSocket);
    const room = (await server.hub.rooms.find(callId))!;

    const acks = await Promise.all(Array.from({ length: 20 }, (_, i) => ask(customerSocket, 'createTransport', { direction: i % 2 ? 'send' : 'recv' })));
    assert.deepEqual(codes(acks), { ok: PEER_LIMITS.transports, limit_reached: 20 - PEER_LIMITS.transports });
    assert.equal(await room.routerTransportCount(), PEER_LIMITS.transports + 1, 'the customer\'s and the clerk\'s one');

    // Joining again (a client's rejoin) starts over: the earlier transports are closed, new ones can be made.
    await join(customerSocket);
    assert.equal(await room.routerTransportCount(), 1);
    await ok(customerSocket, 'createTransport', { direction: 'recv' });
    await ok(customerSocket, 'createTransport', { direction: 'send' });
    assert.equal(await room.routerTransportCount(), 3);

    const gone = new Promise((resolve) => customerSocket.once('disconnect', resolve));
    await ok(customerSocket, 'leave');
    await gone;
    assert.equal(await room.routerTransportCount(), 1, 'only the clerk\'s transport is left');
    clerkSocket.close();
  });

  it('refuses a steady stream of new transports across rejoins with rate_limited', async () => {
    const { callId, clerkSocket, customerSocket } = await openCall(db.current.knex, server.url, clerk, cookie);
    const results: Ack[] = [];
    for (let round = 0; round < 10; round++) {
      await join(customerSocket);
      for (let i = 0; i < 4; i++) results.push(await ask(customerSocket, 'createTransport', { direction: i % 2 ? 'send' : 'recv' }));
    }
    const counted = codes(results);
    assert.equal(counted.ok, PEER_LIMITS.transportsPerMinute);
    assert.equal(counted.rate_limited, 40 - PEER_LIMITS.transportsPerMinute);
    const room = (await server.hub.rooms.find(callId))!;
    assert.ok((await room.routerTransportCount()) <= PEER_LIMITS.transports);
    for (const s of [clerkSocket, customerSocket]) s.close();
  });

  it('allows one producer per source and one consumer per producer; only those reach the other side', async () => {
    const { callId, clerkSocket, customerSocket } = await openCall(db.current.knex, server.url, clerk, cookie);
    await join(clerkSocket);
    const clerkRecv = await ok<{ id: string }>(clerkSocket, 'createTransport', { direction: 'recv' });
    await join(customerSocket);
    const send = await ok<{ id: string }>(customerSocket, 'createTransport', { direction: 'send' });
    const recv = await ok<{ id: string }>(customerSocket, 'createTransport', { direction: 'recv' });
    const announced: string[] = [];
    clerkSocket.on('newProducer', (p: { producerId: string }) => announced.push(p.producerId));

    const audio = await Promise.all(Array.from({ length: 10 }, () => ask(customerSocket, 'produce', { transportId: send.id, kind: 'audio', rtpParameters: OPUS, source: 'microphone' })));
    assert.deepEqual(codes(audio), { ok: 1, limit_reached: 9 });
    const video = await Promise.all(Array.from({ length: 10 }, (_, i) => ask(customerSocket, 'produce', { transportId: send.id, kind: 'video', rtpParameters: { ...VP8, encodings: [{ ssrc: 30000 + i }] }, source: 'camera' })));
    assert.deepEqual(codes(video), { ok: 1, limit_reached: 9 });
    assert.equal(await ask(customerSocket, 'produce', { transportId: recv.id, kind: 'video', rtpParameters: VP8, source: 'camera' }).then((a) => (a.ok ? 'ok' : a.error.code)), 'forbidden', 'not on a receive transport');
    await ok(clerkSocket, 'heartbeat'); // the announcements went out before this answer
    assert.equal(announced.length, 2, 'the clerk hears of two producers only');

    // Closing one frees its source again.
    const microphone = String((audio.find((a) => a.ok) as { data: Record<string, unknown> }).data.producerId);
    await ok(customerSocket, 'closeProducer', { producerId: microphone });
    await ok(customerSocket, 'produce', { transportId: send.id, kind: 'audio', rtpParameters: OPUS, source: 'microphone' });

    const camera = String((video.find((a) => a.ok) as { data: Record<string, unknown> }).data.producerId);
    const consumes = await Promise.all(Array.from({ length: 5 }, () => ask(clerkSocket, 'consume', { transportId: clerkRecv.id, producerId: camera })));
    assert.deepEqual(codes(consumes), { ok: 1, limit_reached: 4 });
    const state = await server.hub.describeCall(callId);
    assert.deepEqual(state!.peers.map((p) => [p.role, p.producers, p.consumers]).sort(), [['clerk', 0, 1], ['customer', 2, 0]]);
    for (const s of [clerkSocket, customerSocket]) s.close();
  });
});
