import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import request from 'supertest';
import { SYSTEM } from '../app/audit/actions';
import { CallService } from '../app/calls/service';
import { createKnex, type Knex } from '../app/db/connection';
import { NotifyBus, NotifyPayloadTooLargeError } from '../app/db/notify-bus';
import { csrfFrom, seedOrganisation, seedUser, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { silentLogger } from './support/context';
import { useTestDatabase } from './support/database';
import { connect, join, sessionCookie } from './support/signal-client';

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('notify bus: notifications between nodes over LISTEN/NOTIFY', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  const pools: Knex[] = [];
  const buses: NotifyBus[] = [];

  /** A node's pool with its bus; `role` 'app': as the restricted app role. */
  async function node(role?: 'app'): Promise<{ bus: NotifyBus; got: unknown[] }> {
    const knex = role ? db.current.connectAs(role) : createKnex(db.current.url, 2);
    pools.push(knex);
    const bus = new NotifyBus({ knex, logger: silentLogger, reconnectMinMs: 50, reconnectMaxMs: 200 });
    buses.push(bus);
    await bus.start();
    const got: unknown[] = [];
    bus.subscribe('ping', (data) => got.push(data));
    return { bus, got };
  }

  afterEach(async () => {
    for (const bus of buses.splice(0)) await bus.close();
    for (const knex of pools.splice(0)) await knex.destroy();
  });

  it('two buses on one database deliver each notification to both, the publisher included, once each', async () => {
    const a = await node();
    const b = await node();
    assert.equal(NotifyBus.of(pools[0]!), a.bus, 'the bus of its pool');
    await a.bus.publish('ping', { n: 1 });
    await b.bus.publish('ping', { n: 2 });
    await a.bus.publish('other', { n: 3 });
    await until(() => a.got.length === 2 && b.got.length === 2, 'both notifications on both buses');
    await pause(300);
    assert.deepEqual(a.got, [{ n: 1 }, { n: 2 }]);
    assert.deepEqual(b.got, [{ n: 1 }, { n: 2 }]);
  });

  it('inside a transaction: sent at the commit, never after a rollback', async () => {
    const a = await node();
    const b = await node();
    const knex = pools[0]!;
    await knex.transaction(async (trx) => {
      await a.bus.publish('ping', 'rolled back', trx);
      throw new Error('roll back');
    }).catch(() => undefined);
    await knex.transaction(async (trx) => {
      await a.bus.publish('ping', 'committed', trx);
      await pause(200);
      assert.deepEqual(b.got, [], 'nothing before the commit');
    });
    await until(() => b.got.length === 1, 'the committed notification');
    await pause(200);
    assert.deepEqual(b.got, ['committed']);
    assert.deepEqual(a.got, ['committed']);
  });

  it('refuses a payload over 8000 bytes; one just under goes through', async () => {
    const a = await node();
    await assert.rejects(a.bus.publish('ping', 'x'.repeat(8000)), (err: unknown) => err instanceof NotifyPayloadTooLargeError && err.code === 'notify_payload_too_large');
    const fits = 'y'.repeat(7999 - JSON.stringify({ event: 'ping', data: '', origin: a.bus.id }).length);
    await a.bus.publish('ping', fits);
    await until(() => a.got.length === 1, 'the largest payload');
    assert.equal(a.got[0], fits);
  });

  it('reconnects after its listening connection is terminated and delivers again; works as the app role', async () => {
    const a = await node('app');
    const b = await node();
    const pid = a.bus.backendPid;
    assert.ok(pid);
    const [row] = (await db.current.knex.raw('SELECT pg_terminate_backend(?) AS done', [pid])).rows as { done: boolean }[];
    assert.equal(row?.done, true);
    await until(() => a.bus.listening && a.bus.backendPid !== pid, 'the bus to listen again');
    await b.bus.publish('ping', 'after');
    await a.bus.publish('ping', 'own');
    await until(() => a.got.length === 2 && b.got.length === 2, 'delivery after the reconnection');
    assert.deepEqual(a.got, ['after', 'own']);
  });
});

/** A TCP proxy to the database that the test can cut (a database outage as the bus sees it) and open again on the same port. */
async function cuttableProxy(target: URL): Promise<{ url: string; cut(): Promise<void>; open(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const open = async () => {
    server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  };
  const cut = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server?.close(resolve));
  };
  await open();
  const url = new URL(target.href);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return { url: url.href, cut, open, close: cut };
}

describe('notify bus: a database outage', function () {
  this.timeout(30_000);
  const db = useTestDatabase();

  it('logs the loss once, retries with backoff while the database is away, and delivers again once it is back', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const proxy = await cuttableProxy(new URL(db.current.url));
    const knex = createKnex(proxy.url, 2);
    const bus = new NotifyBus({ knex, logger, reconnectMinMs: 50, reconnectMaxMs: 200 });
    const other = createKnex(db.current.url, 2);
    const sender = new NotifyBus({ knex: other, logger: silentLogger });
    try {
      await bus.start();
      await sender.start();
      const got: unknown[] = [];
      bus.subscribe('ping', (data) => got.push(data));
      await proxy.cut();
      await until(() => !bus.listening, 'the loss to be noticed');
      await pause(1000); // several failed attempts (50, 100, 200, 200 … ms)
      await sender.publish('ping', 'while away');
      await proxy.open();
      await until(() => bus.listening, 'the bus to listen again');
      await sender.publish('ping', 'back');
      await until(() => got.length > 0, 'delivery after the outage');
      await pause(200);
      assert.deepEqual(got, ['back'], 'what was sent while away is lost (documented)');
      assert.equal(lines.filter((l) => l.level === 40).length, 1, 'the loss is logged once');
      assert.equal(lines.filter((l) => /listening again/.test(l.msg)).length, 1);
    } finally {
      await bus.close();
      await sender.close();
      await proxy.close();
      await knex.destroy();
      await other.destroy();
    }
  });
});

describe('notify bus: a link revoked on one node disconnects the customer on another', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let a: CallServer;
  let b: CallServer;
  let clerk: SeededUser;
  let cookie: string;

  before(async () => {
    a = await startCallServer(db.current, { bus: true });
    b = await startCallServer(db.current, { bus: true });
    const org = await seedOrganisation(db.current.knex, 'Two Nodes Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    cookie = await sessionCookie(a.url, clerk);
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  /** A call whose clerk is on node A and whose customer is on node B. */
  async function callAcrossNodes() {
    const caller = { user: { id: clerk.id, organisationId: clerk.organisationId } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' };
    const { call, token } = await new CallService(db.current.knex).start(caller, 1);
    const clerkSocket = await connect(a.url, { callId: call.id }, cookie);
    const customerSocket = await connect(b.url, { token });
    const heard: unknown[] = [];
    b.bus!.subscribe('linkRevoked', (data) => heard.push(data));
    return { callId: call.id, clerkSocket, customerSocket, heard };
  }

  it('through node A\'s dashboard route: node B hears it and disconnects its customer (link_revoked)', async () => {
    const { callId, clerkSocket, customerSocket, heard } = await callAcrossNodes();
    await join(clerkSocket);
    await join(customerSocket);
    const told = new Promise<{ reason: string }>((resolve) => customerSocket.once('callEnded', resolve));
    const gone = new Promise<string>((resolve) => customerSocket.once('disconnect', resolve));
    const page = await request(a.url).get('/dashboard').set('Cookie', cookie).expect(200);
    await request(a.url).post(`/calls/${callId}/revoke`).set('Cookie', cookie).type('form').send({ _csrf: csrfFrom(page.text) }).expect(303);
    const revoked = Date.now();
    assert.equal((await told).reason, 'link_revoked');
    // The hub's own sweep (every 5 s) would find the revoked link too, later.
    assert.ok(Date.now() - revoked < 3000, `told within 3 s (${Date.now() - revoked} ms)`);
    assert.equal(await gone, 'io server disconnect');
    assert.deepEqual(heard, [[callId]], 'node B heard it through the database, once');
    assert.equal(clerkSocket.connected, true, 'the clerk stays');
    clerkSocket.close();
  });

  it('through node A\'s service for the API: the same', async () => {
    const { callId, clerkSocket, customerSocket, heard } = await callAcrossNodes();
    const told = new Promise<{ reason: string }>((resolve) => customerSocket.once('callEnded', resolve));
    await new CallService(a.knex).revokeLinkForOrganisation(clerk.organisationId, callId, SYSTEM, { ip: null, userAgent: null });
    assert.equal((await told).reason, 'link_revoked');
    await until(() => !customerSocket.connected, 'the customer to be disconnected');
    assert.deepEqual(heard, [[callId]]);
    clerkSocket.close();
  });
});
