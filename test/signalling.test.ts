import assert from 'node:assert/strict';
import { REFUSAL_COUNT_SQL, refusalsFor } from '../app/audit/refusals';
import crypto from 'node:crypto';
import type { Socket } from 'socket.io-client';
import request from 'supertest';
import { CallService } from '../app/calls/service';
import { csrfFrom, PASSWORD, seedOrganisation, seedUser, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { ask, connect, ok, refusedCode } from './support/signal-client';

/** Minimal valid-looking RTP parameters for an Opus producer (no browser needed to produce). */
const OPUS = { codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [] }], encodings: [{ ssrc: 11111111 }], headerExtensions: [], rtcp: { cname: 'test' } };

/** Joins the media room as a device would (capabilities from the router itself). */
async function joinWithTransports(socket: Socket) {
  const { rtpCapabilities } = (await ok(socket, 'getRouterRtpCapabilities')) as { rtpCapabilities: Record<string, unknown> };
  await ok(socket, 'join', { rtpCapabilities });
  const send = (await ok(socket, 'createTransport', { direction: 'send' })) as { id: string };
  const recv = (await ok(socket, 'createTransport', { direction: 'recv' })) as { id: string };
  return { send: send.id, recv: recv.id };
}

describe('signalling', () => {
  const db = useTestDatabase();
  let server: CallServer;
  let clerk: SeededUser;
  let clerkCookie: string;

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 300, silenceMs: 4000 });
    const org = await seedOrganisation(db.current.knex, 'Signal Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    const agent = request.agent(server.url);
    const login = await agent.get('/login');
    const res = await agent.post('/login').type('form').send({ _csrf: csrfFrom(login.text), email: clerk.email, password: PASSWORD }).expect(303);
    clerkCookie = String(res.headers['set-cookie']).split(';')[0]!;
  });
  after(async () => server.close());

  async function newCall(): Promise<{ callId: string; token: string }> {
    const caller = { user: { id: clerk.id, organisationId: clerk.organisationId } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' };
    const { call, token } = await new CallService(db.current.knex).start(caller, 1);
    return { callId: call.id, token };
  }

  describe('who may connect', () => {
    it('refuses a malformed, unknown or expired customer token, and audits it', async () => {
      const { callId, token } = await newCall();
      await assert.rejects(connect(server.url, { token: 'nonsense' }), /token_invalid/);
      await assert.rejects(connect(server.url, { token: crypto.randomBytes(32).toString('base64url') }), /token_invalid/);
      await db.current.knex('calls').where({ id: callId }).update({ guest_token_expires_at: new Date(Date.now() - 1000) });
      await assert.rejects(connect(server.url, { token }), /token_invalid/);
      // The first refusal of a source is written at once, the rest are counted and written per window.
      await refusalsFor(db.current.knex).flush();
      const events = await db.current.knex('audit_events').where({ action: 'security.signalling_refused' }).select<{ ip: string | null; n: string }[]>('ip', db.current.knex.raw(`${REFUSAL_COUNT_SQL} AS n`));
      assert.ok(events.reduce((sum, e) => sum + Number(e.n), 0) >= 3 && events.every((e) => e.ip));
    });

    it('refuses a revoked link', async () => {
      const { callId, token } = await newCall();
      await db.current.knex('calls').where({ id: callId }).update({ link_revoked_at: new Date() });
      await assert.rejects(connect(server.url, { token }), /token_invalid/);
    });

    it('refuses a customer of an ended call', async () => {
      const { callId, token } = await newCall();
      await db.current.knex('calls').where({ id: callId }).update({ status: 'ended', ended_at: new Date(), end_reason: 'test' });
      await assert.rejects(connect(server.url, { token }), /call_ended/);
    });

    it('refuses a clerk without a session, and a call that is not theirs', async () => {
      const { callId } = await newCall();
      await assert.rejects(connect(server.url, { callId }), /unauthenticated/);
      await assert.rejects(connect(server.url, { callId: crypto.randomUUID() }, clerkCookie), /call_not_found/);
      await assert.rejects(connect(server.url, { nonsense: 'x' }), /unauthenticated/);
      const socket = await connect(server.url, { callId }, clerkCookie);
      socket.close();
    });
  });

  describe('requests', () => {
    let callA: { callId: string; token: string };
    let clerkSocket: Socket;
    let customerA: Socket;
    let customerB: Socket;
    let clerkProducer: string;
    let clerkTransports: { send: string; recv: string };
    let customerTransports: { send: string; recv: string };

    before(async () => {
      callA = await newCall();
      const callB = await newCall();
      clerkSocket = await connect(server.url, { callId: callA.callId }, clerkCookie);
      customerA = await connect(server.url, { token: callA.token });
      customerB = await connect(server.url, { token: callB.token });
      clerkTransports = await joinWithTransports(clerkSocket);
      customerTransports = await joinWithTransports(customerA);
      await joinWithTransports(customerB);
      clerkProducer = String((await ok(clerkSocket, 'produce', { transportId: clerkTransports.send, kind: 'audio', rtpParameters: OPUS, source: 'microphone' })).producerId);
    });
    after(() => {
      for (const s of [clerkSocket, customerA, customerB]) s.close();
    });

    async function callUnharmed() {
      const state = await server.hub.describeCall(callA.callId);
      const clerkPeer = state!.peers.find((p) => p.role === 'clerk')!;
      assert.equal(clerkPeer.producers, 1, 'the clerk still produces');
      assert.equal(clerkPeer.transports, 2);
      assert.ok(clerkSocket.connected && customerA.connected);
    }

    it('refuses malformed messages with invalid_message', async () => {
      assert.equal(await refusedCode(customerA, 'createTransport', { direction: 'sideways' }), 'invalid_message');
      assert.equal(await refusedCode(customerA, 'createTransport', 'not an object'), 'invalid_message');
      assert.equal(await refusedCode(customerA, 'connectTransport', { transportId: 42 }), 'invalid_message');
      assert.equal(await refusedCode(customerA, 'produce', { transportId: customerTransports.send, kind: 'audio', rtpParameters: OPUS, source: 'microphone', extra: true }), 'invalid_message');
      assert.equal(await refusedCode(customerA, 'selfDestruct', {}), 'invalid_message');
      // Names that are properties of every plain object, and numbers (socket.io allows them), are no requests either.
      for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 42 as unknown as string]) assert.equal(await refusedCode(customerA, name, {}), 'invalid_message');
      await callUnharmed();
    });

    it('refuses oversized messages with too_large', async () => {
      assert.equal(await refusedCode(customerA, 'connectTransport', { transportId: customerTransports.send, dtlsParameters: { junk: 'x'.repeat(40_000) } }), 'too_large');
      await callUnharmed();
    });

    it('lets the customer consume the clerk in the same call', async () => {
      const consumer = await ok(customerA, 'consume', { transportId: customerTransports.recv, producerId: clerkProducer });
      assert.equal(consumer.kind, 'audio');
      await ok(customerA, 'resumeConsumer', { consumerId: consumer.consumerId });
    });

    it('refuses touching another call\'s or another participant\'s objects with not_found', async () => {
      const b = await joinWithTransports(customerB);
      assert.equal(await refusedCode(customerB, 'consume', { transportId: b.recv, producerId: clerkProducer }), 'not_found');
      assert.equal(await refusedCode(customerB, 'connectTransport', { transportId: clerkTransports.send, dtlsParameters: { role: 'auto', fingerprints: [] } }), 'not_found');
      assert.equal(await refusedCode(customerA, 'closeProducer', { producerId: clerkProducer }), 'not_found');
      assert.equal(await refusedCode(customerA, 'pauseProducer', { producerId: clerkProducer }), 'not_found');
      assert.equal(await refusedCode(customerA, 'consume', { transportId: clerkTransports.recv, producerId: clerkProducer }), 'not_found');
      assert.equal(await refusedCode(customerA, 'restartIce', { transportId: clerkTransports.recv }), 'not_found');
      await callUnharmed();
    });

    it('lets the customer share a screen too (issue 16: the grant is the same for both roles)', async () => {
      const vp8 = { codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, parameters: {}, rtcpFeedback: [] }], encodings: [{ ssrc: 2222 }], headerExtensions: [], rtcp: { cname: 'x' } };
      const { producerId } = await ok(customerA, 'produce', { transportId: customerTransports.send, kind: 'video', rtpParameters: vp8, source: 'screen' });
      assert.ok(producerId);
      await ok(customerA, 'closeProducer', { producerId: String(producerId) });
      await callUnharmed();
    });

    it('rate-limits a flooding connection', async () => {
      const acks = await Promise.all(Array.from({ length: 150 }, () => ask(customerB, 'heartbeat', {})));
      const limited = acks.filter((a) => !a.ok && a.error.code === 'rate_limited').length;
      assert.ok(limited > 0, 'some requests are refused');
      assert.ok(acks.filter((a) => a.ok).length >= 50, 'a burst is allowed');
      await callUnharmed();
    });

    it('refuses parameters mediasoup cannot read with invalid_parameters, not internal_error (issue 17: a flood of them)', async () => {
      await new Promise((resolve) => setTimeout(resolve, 2000)); // the flood test before used up this connection's requests
      const fresh = await joinWithTransports(customerB);
      assert.equal(await refusedCode(customerB, 'connectTransport', { transportId: fresh.send, dtlsParameters: { role: 'auto' } }), 'invalid_parameters');
      assert.equal(await refusedCode(customerB, 'connectTransport', { transportId: fresh.send, dtlsParameters: { role: 'auto', fingerprints: [{ algorithm: 'md0', value: 'zz' }] } }), 'invalid_parameters');
      assert.equal(await refusedCode(customerB, 'produce', { transportId: fresh.send, kind: 'audio', rtpParameters: { codecs: 'none' }, source: 'microphone' }), 'invalid_parameters');
      await callUnharmed();
    });
  });

  describe('leaving', () => {
    it('leave frees the participant\'s transports at once and is audited', async () => {
      const call = await newCall();
      const customer = await connect(server.url, { token: call.token });
      await joinWithTransports(customer);
      assert.equal((await server.hub.describeCall(call.callId))!.peers[0]!.transports, 2);
      const closed = new Promise((resolve) => customer.once('disconnect', resolve));
      await ok(customer, 'leave');
      await closed;
      assert.equal(await server.hub.describeCall(call.callId), undefined, 'the empty room is closed');
      const [event] = await db.current.knex('audit_events').where({ action: 'call.left', target_id: call.callId });
      assert.equal(event!.details.reason, 'left');
    });

    it('a dropped connection keeps its media for the grace period, then frees it', async () => {
      const call = await newCall();
      const customer = await connect(server.url, { token: call.token });
      await joinWithTransports(customer);
      customer.close();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await server.hub.describeCall(call.callId))?.peers.length, 1, 'still there during the grace period');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(await server.hub.describeCall(call.callId), undefined);
    });

    it('a connection whose heartbeat stops is dropped and its media freed', async () => {
      const call = await newCall();
      const customer = await connect(server.url, { token: call.token });
      await joinWithTransports(customer);
      const dropped = new Promise((resolve) => customer.once('disconnect', resolve));
      const started = Date.now();
      await dropped; // the client says nothing more; socket.io's own pings do not count
      assert.ok(Date.now() - started >= 1000, 'not before the silence limit');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await server.hub.describeCall(call.callId), undefined, 'transports closed after the grace period');
      const [event] = await db.current.knex('audit_events').where({ action: 'call.left', target_id: call.callId });
      assert.equal(event!.details.reason, 'connection_lost');
    });

    it('reconnecting within the grace period replaces the old peer', async () => {
      const call = await newCall();
      const first = await connect(server.url, { token: call.token });
      await joinWithTransports(first);
      first.close();
      const second = await connect(server.url, { token: call.token });
      await joinWithTransports(second);
      const state = await server.hub.describeCall(call.callId);
      assert.equal(state!.peers.length, 1);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await server.hub.describeCall(call.callId))!.peers.length, 1, 'the grace timer of the old connection does not remove the new one');
      second.close();
    });
  });
});
