import assert from 'node:assert/strict';
import { SYSTEM } from '../app/audit/actions';
import { originAllowed } from '../app/calls/origin';
import { CallService } from '../app/calls/service';
import { trustProxyFunction } from '../app/net/addresses';
import { csrfFrom, seedOrganisation, seedUser, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import request from 'supertest';
import { ask, connect, join, openCall, sessionCookie } from './support/signal-client';

describe('signalling: revoked links and foreign origins', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerk: SeededUser;
  let cookie: string;

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 300, silenceMs: 2000 });
    const org = await seedOrganisation(db.current.knex, 'Revoke Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    cookie = await sessionCookie(server.url, clerk);
  });
  after(async () => server?.close());

  it('revoking the link on the dashboard disconnects the connected customer at once; they get no further', async () => {
    const { callId, token, clerkSocket, customerSocket } = await openCall(db.current.knex, server.url, clerk, cookie);
    await join(clerkSocket);
    await join(customerSocket);
    const told = new Promise<{ reason: string }>((resolve) => customerSocket.once('callEnded', resolve));
    const gone = new Promise<string>((resolve) => customerSocket.once('disconnect', resolve));
    const peerLeft = new Promise((resolve) => clerkSocket.once('peerLeft', resolve));

    const page = await request(server.url).get('/dashboard').set('Cookie', cookie).expect(200);
    await request(server.url).post(`/calls/${callId}/revoke`).set('Cookie', cookie).type('form').send({ _csrf: csrfFrom(page.text) }).expect(303);

    assert.equal((await told).reason, 'link_revoked');
    assert.equal(await gone, 'io server disconnect');
    await peerLeft;
    assert.equal(customerSocket.connected, false);
    await assert.rejects(connect(server.url, { token }), /token_invalid/);
    assert.equal((await db.current.knex('call_messages').where({ call_id: callId })).length, 0, 'no chat got through');
    const state = await server.hub.describeCall(callId);
    assert.deepEqual(state!.peers.map((p) => p.role), ['clerk'], 'the customer\'s media is closed');
    // peerLeft goes out before the leave is recorded: wait (bounded) for the audit row.
    let left: { details: Record<string, unknown> } | undefined;
    for (let i = 0; i < 100 && !left; i++) {
      [left] = await db.current.knex('audit_events').where({ action: 'call.left', target_id: callId });
      if (!left) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(left?.details.reason, 'link_revoked');
    assert.equal((await ask(clerkSocket, 'heartbeat', {})).ok, true, 'the clerk stays');
    clerkSocket.close();
  });

  it('revoking through the API (the organisation\'s systems) does the same', async () => {
    const { callId, clerkSocket, customerSocket } = await openCall(db.current.knex, server.url, clerk, cookie);
    const told = new Promise<{ reason: string }>((resolve) => customerSocket.once('callEnded', resolve));
    await new CallService(db.current.knex).revokeLinkForOrganisation(clerk.organisationId, callId, SYSTEM, { ip: null, userAgent: null });
    assert.equal((await told).reason, 'link_revoked');
    assert.equal(customerSocket.connected, false);
    clerkSocket.close();
  });

  it('a link revoked or a call ended behind the hub\'s back ends the session within a sweep', async () => {
    const revoked = await openCall(db.current.knex, server.url, clerk, cookie);
    const ended = await openCall(db.current.knex, server.url, clerk, cookie);
    const revokedTold = new Promise<{ reason: string }>((resolve) => revoked.customerSocket.once('callEnded', resolve));
    const endedTold = new Promise<{ reason: string }>((resolve) => ended.clerkSocket.once('callEnded', resolve));
    // Both keep talking (heartbeats), so only the state of their call can end them.
    const beat = setInterval(() => {
      for (const s of [revoked.clerkSocket, revoked.customerSocket, ended.clerkSocket, ended.customerSocket]) if (s.connected) s.emit('heartbeat', {}, () => undefined);
    }, 200);
    try {
      await db.current.knex('calls').where({ id: revoked.callId }).update({ link_revoked_at: new Date() });
      await new CallService(db.current.knex).end(ended.callId, 'link_expired', SYSTEM);
      assert.equal((await revokedTold).reason, 'link_revoked');
      assert.equal((await endedTold).reason, 'link_expired');
      assert.equal(revoked.clerkSocket.connected, true, 'the clerk of the revoked link stays');
    } finally {
      clearInterval(beat);
    }
    for (const s of [revoked.clerkSocket, revoked.customerSocket, ended.clerkSocket, ended.customerSocket]) s.close();
  });

  it('refuses a connection whose Origin is another site\'s, with or without the clerk\'s cookie; the appliance\'s own origin works', async () => {
    const caller = { user: { id: clerk.id, organisationId: clerk.organisationId } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' };
    const { call, token } = await new CallService(db.current.knex).start(caller, 1);
    const withOrigin = (origin: string, auth: Record<string, string>, withCookie: boolean) =>
      (async () => {
        const { io } = await import('socket.io-client');
        const socket = io(server.url, { path: '/signal', auth, transports: ['websocket'], reconnection: false, extraHeaders: { Origin: origin, ...(withCookie ? { Cookie: cookie } : {}) } });
        return new Promise<string>((resolve) => {
          socket.once('connect', () => {
            socket.close();
            resolve('connected');
          });
          socket.once('connect_error', (err) => {
            socket.close();
            resolve(err.message);
          });
        });
      })();
    assert.equal(await withOrigin('http://evil.example', { callId: call.id }, true), 'forbidden');
    assert.equal(await withOrigin(`http://evil.example:${new URL(server.url).port}`, { callId: call.id }, true), 'forbidden');
    assert.equal(await withOrigin('null', { callId: call.id }, true), 'forbidden');
    assert.equal(await withOrigin('http://evil.example', { token }, false), 'forbidden');
    assert.equal(await withOrigin(server.url, { callId: call.id }, true), 'connected');
    assert.equal(await withOrigin(server.url, { token }, false), 'connected');
  });

  it('compares the Origin with the Host, X-Forwarded-Host only from a trusted proxy, and the public URL', () => {
    const trustLoopback = trustProxyFunction('loopback');
    assert.equal(originAllowed({ host: 'vclerk.example.org' }, '10.0.0.1', {}), true, 'no Origin: not a browser');
    assert.equal(originAllowed({ origin: 'https://vclerk.example.org', host: 'vclerk.example.org' }, '10.0.0.1', {}), true);
    assert.equal(originAllowed({ origin: 'https://vclerk.example.org', host: 'vclerk.example.org:443' }, '10.0.0.1', {}), true);
    assert.equal(originAllowed({ origin: 'https://VClerk.example.org:8443', host: 'vclerk.example.org:8443' }, '10.0.0.1', {}), true);
    assert.equal(originAllowed({ origin: 'https://evil.example', host: 'vclerk.example.org' }, '10.0.0.1', {}), false);
    assert.equal(originAllowed({ origin: 'javascript:alert(1)', host: 'vclerk.example.org' }, '10.0.0.1', {}), false);
    // Behind a proxy: its X-Forwarded-Host counts only when it is trusted.
    const proxied = { origin: 'https://vclerk.example.org', host: '127.0.0.1:8080', 'x-forwarded-host': 'vclerk.example.org' };
    assert.equal(originAllowed(proxied, '127.0.0.1', { trustProxy: trustLoopback }), true);
    assert.equal(originAllowed(proxied, '10.0.0.1', { trustProxy: trustLoopback }), false);
    const forged = { origin: 'https://evil.example', host: 'vclerk.example.org', 'x-forwarded-host': 'evil.example' };
    assert.equal(originAllowed(forged, '10.0.0.1', { trustProxy: trustLoopback }), false);
    // The configured public URL is the appliance's own origin whatever the Host says.
    assert.equal(originAllowed({ origin: 'https://vclerk.example.org', host: '127.0.0.1:8080' }, '10.0.0.1', { publicUrl: 'https://vclerk.example.org' }), true);
  });
});
