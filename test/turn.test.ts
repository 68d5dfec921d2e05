import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createApp } from '../app/app';
import { sessionMiddleware } from '../app/access/session';
import { CallHub } from '../app/calls/hub';
import { revealRows } from '../app/audit/personal';
import { CallService } from '../app/calls/service';
import { trustProxyFunction } from '../app/net/addresses';
import { turnCredentials, TurnIssuer } from '../app/calls/turn';
import { RoomRegistry, WorkerPool, resolveWorkerBinary } from '../media';
import { seedOrganisation, seedUser } from './support/accounts';
import { silentLogger, testConfig, TEST_SECRET } from './support/context';
import { useTestDatabase } from './support/database';
import { freePort } from './support/process';
import { io } from 'socket.io-client';
import { connect, ok } from './support/signal-client';

const SECRET = '0123456789abcdef0123456789abcdef';

describe('TURN credentials', () => {
  it('follow the TURN REST API scheme (coturn use-auth-secret): expiry:label, base64 HMAC-SHA1', () => {
    // Known answer: echo -n "1700000000:vclerk-test" | openssl dgst -sha1 -hmac "$SECRET" -binary | base64
    assert.deepEqual(turnCredentials(SECRET, 'vclerk-test', 1700000000), { username: '1700000000:vclerk-test', credential: 'QBtpotVJYOoEY4qPXWtMAVyVhew=' });
  });

  it('are issued for the configured URLs, valid for the TTL, with a random label', () => {
    const issuer = TurnIssuer.fromConfig(testConfig({ VCLERK_TURN_URLS: 'turn:turn.example.org:3478, turns:turn.example.org:5349?transport=tcp', VCLERK_TURN_SECRET: SECRET, VCLERK_TURN_TTL_SECONDS: '600' }))!;
    const now = Date.UTC(2030, 0, 1);
    const [a] = issuer.iceServers(now);
    const [b] = issuer.iceServers(now);
    assert.deepEqual(a!.urls, ['turn:turn.example.org:3478', 'turns:turn.example.org:5349?transport=tcp']);
    const [expiry, label] = a!.username.split(':');
    assert.equal(Number(expiry), now / 1000 + 600);
    assert.match(label!, /^[A-Za-z0-9_-]{12}$/);
    assert.notEqual(a!.username, b!.username);
    assert.equal(a!.credential, crypto.createHmac('sha1', SECRET).update(a!.username).digest('base64'));
  });

  it('are off without settings; the settings are validated', () => {
    assert.equal(TurnIssuer.fromConfig(testConfig()), null);
    assert.throws(() => TurnIssuer.fromConfig(testConfig({ VCLERK_TURN_SECRET: SECRET })), /TURN needs both/);
    assert.throws(() => testConfig({ VCLERK_TURN_URLS: 'stun:stun.example.org', VCLERK_TURN_SECRET: SECRET }), /VCLERK_TURN_URLS.*not a turn: or turns: URL/);
    assert.throws(() => testConfig({ VCLERK_TURN_URLS: 'turn:t.example.org', VCLERK_TURN_SECRET: 'short' }), /VCLERK_TURN_SECRET.*at least 32/);
  });
});

describe('TURN servers in the signalling answers', () => {
  const db = useTestDatabase();
  let url: string;
  let close: () => Promise<void>;
  let clerk: Awaited<ReturnType<typeof seedUser>>;

  before(async () => {
    const config = testConfig({ VCLERK_TURN_URLS: 'turns:turn.example.org:5349?transport=tcp', VCLERK_TURN_SECRET: SECRET, VCLERK_TURN_TTL_SECONDS: '900', VCLERK_TRUST_PROXY: 'loopback' });
    const pool = await WorkerPool.create({ workerBin: resolveWorkerBinary(process.env.MEDIASOUP_WORKER_BIN, path.join(__dirname, '..')), workers: 1, listenIp: '127.0.0.1', basePort: await freePort(), logLevel: 'warn', logger: silentLogger });
    const session = sessionMiddleware(db.current.knex, { secret: TEST_SECRET, idleMinutes: 30 });
    const hub = new CallHub({ knex: db.current.knex, logger: silentLogger, rooms: new RoomRegistry(pool, silentLogger), session, graceMs: 500, absoluteHours: 12, trustProxy: trustProxyFunction(config.trustProxy), turn: TurnIssuer.fromConfig(config) });
    const server = http.createServer(createApp({ config, db: db.current.knex, logger: silentLogger, sessionSecret: TEST_SECRET, session, hub }));
    hub.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = async () => {
      await hub.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pool.close();
    };
    clerk = await seedUser(db.current.knex, await seedOrganisation(db.current.knex), 'clerk');
  });
  after(async () => close?.());

  it('a participant gets the TURN servers with credentials valid for the TTL when joining, and fresh ones on request', async () => {
    const caller = { user: { id: clerk.id, organisationId: clerk.organisationId } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' };
    const { call, token } = await new CallService(db.current.knex).start(caller, 1);
    const socket = await connect(url, { token });
    try {
      const { rtpCapabilities } = await ok<{ rtpCapabilities: Record<string, unknown> }>(socket, 'getRouterRtpCapabilities');
      const before = Math.floor(Date.now() / 1000);
      const joined = await ok<{ iceServers: { urls: string[]; username: string; credential: string }[] }>(socket, 'join', { rtpCapabilities });
      assert.equal(joined.iceServers.length, 1);
      const [server] = joined.iceServers;
      assert.deepEqual(server!.urls, ['turns:turn.example.org:5349?transport=tcp']);
      const expiry = Number(server!.username.split(':')[0]);
      assert.ok(expiry >= before + 900 && expiry <= Math.ceil(Date.now() / 1000) + 900, `expiry ${expiry} is now + TTL`);
      assert.equal(server!.credential, crypto.createHmac('sha1', SECRET).update(server!.username).digest('base64'));
      assert.ok(!server!.username.includes(call.id), 'the username names no call');

      const fresh = await ok<{ iceServers: { username: string }[] }>(socket, 'getIceServers');
      assert.equal(fresh.iceServers.length, 1);
      assert.notEqual(fresh.iceServers[0]!.username, server!.username);
    } finally {
      socket.close();
    }
  });

  it('audits the join with the forwarded client address when the proxy is trusted', async () => {
    const caller = { user: { id: clerk.id, organisationId: clerk.organisationId } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' };
    const { call, token } = await new CallService(db.current.knex).start(caller, 1);
    const forwarded = io(url, { path: '/signal', auth: { token }, transports: ['websocket'], reconnection: false, extraHeaders: { 'X-Forwarded-For': '203.0.113.9' } });
    await new Promise<void>((resolve, reject) => {
      forwarded.once('connect', resolve);
      forwarded.once('connect_error', reject);
    });
    try {
      const { rtpCapabilities } = await ok<{ rtpCapabilities: Record<string, unknown> }>(forwarded, 'getRouterRtpCapabilities');
      await ok(forwarded, 'join', { rtpCapabilities });
      const event = await db.current.knex('audit_events').where({ action: 'call.joined', target_id: call.id }).first('ip', 'user_agent');
      // A customer's address is stored encrypted under the call's key (audit/personal.ts).
      const [revealed] = await revealRows(db.current.knex, [event!]);
      assert.equal(revealed?.ip, '203.0.113.9');
    } finally {
      forwarded.close();
    }
  });
});
