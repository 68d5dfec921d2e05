import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { seedOrganisation, seedUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { connect, join, ok, openCall, sessionCookie } from './support/signal-client';

/** The next `event` on `socket` within `ms`, or null. */
function next<T>(socket: Socket, event: string, ms: number): Promise<T | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      resolve(null);
    }, ms);
    const handler = (payload: T) => {
      clearTimeout(timer);
      resolve(payload);
    };
    socket.once(event, handler);
  });
}

/**
 * The other side learns at once how a participant went: a connection the
 * page closed itself (Leave, the tab closed) is `peerLeft` right away; one
 * that dropped (a crashed tab, a lost network) is `peerAway` right away and
 * `peerLeft` only when the grace period for a reconnect is over.
 */
describe('peer presence: left and away', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerk: { id: string; organisationId: string; email: string };
  let cookie: string;

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 4000 });
    const org = await seedOrganisation(db.current.knex, 'Presence Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    cookie = await sessionCookie(server.url, clerk);
  });
  after(async () => server?.close());

  it('a connection closed by the page is peerLeft at once (not after the grace period)', async () => {
    const call = await openCall(db.current.knex, server.url, clerk, cookie);
    await join(call.clerkSocket);
    await join(call.customerSocket);
    const left = next<{ peerId: string }>(call.clerkSocket, 'peerLeft', 1500);
    call.customerSocket.disconnect();
    assert.ok(await left, 'peerLeft within 1.5 s although the grace period is 4 s');
    // The media stays for the grace period (a reload comes back into it).
    assert.equal((await server.hub.describeCall(call.callId))!.peers.length, 2);
    call.clerkSocket.disconnect();
  });

  it('a dropped connection is peerAway at once, peerLeft after the grace period; a reconnect is peerJoined', async () => {
    const call = await openCall(db.current.knex, server.url, clerk, cookie);
    await join(call.clerkSocket);
    await join(call.customerSocket);
    const away = next<{ peerId: string }>(call.clerkSocket, 'peerAway', 1500);
    const leftEarly = next(call.clerkSocket, 'peerLeft', 1500);
    // The transport goes without socket.io's goodbye, as when a tab crashes.
    call.customerSocket.io.engine.close();
    assert.ok(await away, 'peerAway within 1.5 s');
    assert.equal(await leftEarly, null, 'not peerLeft while the customer may come back');

    const back = await connect(server.url, { token: call.token });
    const joined = next<{ peerId: string; role: string }>(call.clerkSocket, 'peerJoined', 3000);
    await join(back);
    assert.equal((await joined)?.role, 'customer');
    back.disconnect();
    call.clerkSocket.disconnect();
  });

  it('a dropped connection that does not come back is peerLeft after the grace period', async () => {
    const call = await openCall(db.current.knex, server.url, clerk, cookie);
    await join(call.clerkSocket);
    await join(call.customerSocket);
    const left = next<{ peerId: string }>(call.clerkSocket, 'peerLeft', 8000);
    call.customerSocket.io.engine.close();
    assert.ok(await left, 'peerLeft once the grace period is over');
    call.clerkSocket.disconnect();
  });
});

describe('peer presence: producers of a leaving peer', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerk: { id: string; organisationId: string; email: string };
  let cookie: string;
  const OPUS = { codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [] }], encodings: [{ ssrc: 11111111 }], headerExtensions: [], rtcp: { cname: 'test' } };

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 4000 });
    const org = await seedOrganisation(db.current.knex, 'Presence Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    cookie = await sessionCookie(server.url, clerk);
  });
  after(async () => server?.close());

  it('a clerk replaced by a new connection: the customer hears producerClosed for the old producers', async () => {
    const call = await openCall(db.current.knex, server.url, clerk, cookie);
    await join(call.customerSocket);
    await join(call.clerkSocket);
    const send = await ok<{ id: string }>(call.clerkSocket, 'createTransport', { direction: 'send' });
    const { producerId } = await ok<{ producerId: string }>(call.clerkSocket, 'produce', { transportId: send.id, kind: 'audio', rtpParameters: OPUS, source: 'microphone' });
    const closed = next<{ producerId: string }>(call.customerSocket, 'producerClosed', 3000);
    call.clerkSocket.io.engine.close();
    const again = await connect(server.url, { callId: call.callId }, cookie);
    assert.deepEqual(await closed, { producerId });
    again.disconnect();
    call.customerSocket.disconnect();
  });
});
