import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { io, type Socket } from 'socket.io-client';
import { CallService } from '../app/calls/service';
import { forwardSignalling, namedNodeUnreachable } from '../app/nodes/signal-forward';
import { upsertNode } from '../app/nodes/store';
import { acceptForwarded, forwardedClient, forwardingHeaders } from '../app/net/forwarded-client';
import { seedOrganisation, seedUser, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { silentLogger, TEST_SECRET } from './support/context';
import { useTestDatabase } from './support/database';
import { join, sessionCookie } from './support/signal-client';

/**
 * Issue 19: three nodes on one database, each its own HTTP server on its own
 * loopback address (127.0.0.1-3), media workers, registry entry, placement
 * and signalling forwarding. A call is placed on the least loaded node
 * that takes calls; a connection to another node is refused `wrong_node`
 * with the holder's name; naming it, any node passes the connection on
 * (WebSocket and long-polling); a drained node takes no new call; a gone
 * node's call is placed again on the next connection.
 */

type Refused = Error & { data?: { node?: string } };

function connectTo(url: string, auth: Record<string, string>, options: { cookie?: string; node?: string; polling?: boolean } = {}): Promise<Socket> {
  const socket = io(url, {
    path: '/signal',
    auth,
    query: options.node ? { node: options.node } : {},
    transports: options.polling ? ['polling'] : ['websocket'],
    reconnection: false,
    extraHeaders: options.cookie ? { Cookie: options.cookie } : {},
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** The node a connection to `url` is sent to (`wrong_node`), or null when `url`'s node holds the call. */
async function holderSeenFrom(url: string, auth: Record<string, string>, cookie?: string): Promise<string | null> {
  try {
    const socket = await connectTo(url, auth, { cookie });
    socket.close();
    return null;
  } catch (err) {
    const refused = err as Refused;
    assert.equal(refused.message, 'wrong_node', `refused for another reason: ${refused.message}`);
    assert.equal(typeof refused.data?.node, 'string');
    return refused.data!.node!;
  }
}

describe('nodes: calls placed across three nodes, signalling passed on to the holder', function () {
  this.timeout(60_000);
  const servers: CallServer[] = [];
  const sockets: Socket[] = [];
  // Registered before the database's own hooks, so that the nodes stop before their database is dropped.
  after(async () => {
    for (const s of sockets) s.close();
    for (const s of servers) await s.close();
  });
  const db = useTestDatabase();
  let clerk: SeededUser;
  let cookie: string;

  const named = (name: string) => servers.find((s) => s.registry!.name === name)!;
  const newCall = async () => (await new CallService(db.current.knex).start({ user: { id: clerk.id, organisationId: clerk.organisationId } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' }, 1)).call;
  const nodeOf = async (callId: string) => (await db.current.knex('calls').join('nodes', 'nodes.id', 'calls.node_id').where('calls.id', callId).first('nodes.name'))?.name as string | undefined;

  before(async () => {
    for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) {
      servers.push(await startCallServer(db.current, { node: { name, host: `127.0.0.${i + 1}` }, bus: true, graceMs: 300 }));
    }
    // Each knows the others now, not only from its next read.
    for (const s of servers) await s.cluster!.refresh();
    const org = await seedOrganisation(db.current.knex, 'Spread Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    cookie = await sessionCookie(servers[0]!.url, clerk);
  });
  it('places each new call on the least loaded node, and sends a connection to another node there by name', async () => {
    const a = servers[0]!;
    const placed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const call = await newCall();
      // Through node-a: the first call is node-a's own (all empty: by name), the next go to the emptier nodes.
      const told = await holderSeenFrom(a.url, { callId: call.id }, cookie);
      const holder = (await nodeOf(call.id))!;
      assert.equal(told ?? 'node-a', holder, 'the refusal names the node the database holds');
      placed.push(holder);
    }
    assert.deepEqual(placed, ['node-a', 'node-b', 'node-c']);
  });

  it('passes a named connection on to the holder (WebSocket and long-polling), where the participant joins the media room', async () => {
    const [a, b] = [servers[0]!, servers[1]!];
    const call = await newCall();
    // Make node-b the holder: every other node is fuller for the moment.
    await db.current.knex('calls').where({ id: call.id }).update({ node_id: b.registry!.self!.id });
    assert.equal(await holderSeenFrom(a.url, { callId: call.id }, cookie), 'node-b');
    const viaSocket = await connectTo(a.url, { callId: call.id }, { cookie, node: 'node-b' });
    sockets.push(viaSocket);
    await join(viaSocket);
    const state = await b.hub.describeCall(call.id);
    assert.deepEqual(state?.peers.map((p) => p.role), ['clerk'], 'the clerk is in node-b\'s room');
    assert.equal(await a.hub.describeCall(call.id), undefined, 'node-a holds no room for it');
    viaSocket.close();

    const viaPolling = await connectTo(a.url, { callId: call.id }, { cookie, node: 'node-b', polling: true });
    sockets.push(viaPolling);
    await join(viaPolling);
    assert.equal((await b.hub.describeCall(call.id))?.peers.length, 1, 'the polling connection joined node-b\'s room');
    viaPolling.close();
  });

  it('holds a connection whose named holder cannot be reached (died, not yet known gone), then names the holder again; nothing hangs', async () => {
    const a = servers[0]!;
    // A node that renews (alive) but whose URL takes no connection.
    const ghost = await upsertNode(db.current.knex, { name: 'node-ghost', url: 'http://127.0.0.1:9', mediaAddress: null, capacity: 100, calls: 0, workers: 1, version: 'test', heartbeatSeconds: 60, runId: crypto.randomUUID() });
    await a.cluster!.refresh();
    const call = await newCall();
    await db.current.knex('calls').where({ id: call.id }).update({ node_id: ghost.id });
    try {
      for (const polling of [false, true]) {
        const refused = await connectTo(a.url, { callId: call.id }, { cookie, node: 'node-ghost', polling }).then(
          (s) => {
            s.close();
            return null;
          },
          (err: Refused) => err,
        );
        assert.equal(refused?.message, 'wrong_node', `${polling ? 'polling' : 'WebSocket'}: served by node-a, which names the holder once the hold is over`);
        assert.equal(refused?.data?.node, 'node-ghost');
      }
      // Once it is gone, the next connection places the call on a living node.
      await db.current.knex('nodes').where({ id: ghost.id }).update({ renewed_at: db.current.knex.raw(`now() - interval '1 hour'`) });
      const told = await holderSeenFrom(a.url, { callId: call.id }, cookie);
      assert.notEqual(told, 'node-ghost');
    } finally {
      await db.current.knex('calls').where({ id: call.id }).update({ node_id: null });
      await db.current.knex('nodes').where({ id: ghost.id }).delete();
    }
  });

  it('a held connection goes on as soon as its holder is known gone: the call is taken back (interrupted, audited once) and placed on a living node', async () => {
    const a = servers[0]!;
    const ghost = await upsertNode(db.current.knex, { name: 'node-ghost', url: 'http://127.0.0.1:9', mediaAddress: null, capacity: 100, calls: 0, workers: 1, version: 'test', heartbeatSeconds: 60, runId: crypto.randomUUID() });
    await a.cluster!.refresh();
    const call = await newCall();
    await db.current.knex('calls').where({ id: call.id }).update({ node_id: ghost.id, status: 'active' });
    try {
      const held = connectTo(a.url, { callId: call.id }, { cookie, node: 'node-ghost' }).then(
        (s) => {
          sockets.push(s);
          return 'node-a';
        },
        (err: Refused) => (err.message === 'wrong_node' ? err.data!.node! : `refused: ${err.message}`),
      );
      await new Promise((r) => setTimeout(r, 300));
      // The holder stops renewing for good while the connection waits.
      await db.current.knex('nodes').where({ id: ghost.id }).update({ renewed_at: db.current.knex.raw(`now() - interval '1 hour'`) });
      const answer = await held;
      assert.ok(['node-a', 'node-b', 'node-c'].includes(answer), `the answer names a living node: ${answer}`);
      assert.equal(await nodeOf(call.id), answer, 'where the database places it');
      const interrupted = await db.current.knex('audit_events').where({ action: 'call.interrupted', target_id: call.id }).select('details');
      assert.deepEqual(interrupted.map((e) => (e.details as { reason: string }).reason), ['node_lost'], 'taken back once, before it was placed again');
    } finally {
      await db.current.knex('calls').where({ id: call.id }).update({ node_id: null });
      await db.current.knex('nodes').where({ id: ghost.id }).delete();
    }
  });

  it('gives a drained node no new call, keeps its calls there, and refuses when no node takes calls', async () => {
    const c = named('node-c');
    const held = await newCall();
    await db.current.knex('calls').where({ id: held.id }).update({ node_id: c.registry!.self!.id });
    await db.current.knex('nodes').where({ name: 'node-c' }).update({ draining: true });
    try {
      for (let i = 0; i < 3; i++) {
        const call = await newCall();
        await holderSeenFrom(servers[0]!.url, { callId: call.id }, cookie);
        assert.notEqual(await nodeOf(call.id), 'node-c', 'a drained node takes no new call');
      }
      assert.equal(await holderSeenFrom(servers[0]!.url, { callId: held.id }, cookie), 'node-c', 'its own calls stay');
      await db.current.knex('nodes').update({ draining: true });
      const stranded = await newCall();
      await assert.rejects(connectTo(servers[0]!.url, { callId: stranded.id }, { cookie }), /no_node_available/);
      assert.equal(await nodeOf(stranded.id), undefined);
    } finally {
      await db.current.knex('nodes').update({ draining: false });
    }
  });

  it('places a gone node\'s call again on the next connection', async () => {
    const b = named('node-b');
    const call = await newCall();
    await db.current.knex('calls').where({ id: call.id }).update({ node_id: b.registry!.self!.id });
    // node-b stops renewing: three missed heartbeats later it counts as gone.
    await db.current.knex('nodes').where({ name: 'node-b' }).update({ renewed_at: db.current.knex.raw(`now() - interval '1 hour'`), run_id: db.current.knex.raw('gen_random_uuid()') });
    const told = await holderSeenFrom(servers[0]!.url, { callId: call.id }, cookie);
    const holder = await nodeOf(call.id);
    assert.notEqual(holder, 'node-b');
    assert.equal(told ?? 'node-a', holder);
  });
});

describe('nodes: which signalling requests a node serves for an unreachable node (and so may hold)', () => {
  it('those naming a node that refused the connection or that it does not know; never one a client claims was forwarded', async () => {
    const seen: boolean[] = [];
    const server = http.createServer((req, res) => {
      seen.push(namedNodeUnreachable(req));
      res.end('here');
    });
    // node-dead's URL takes no connection (port 9, discard: nothing listens on loopback).
    forwardSignalling(server, { path: '/signal/', self: 'node-me', urlOf: (name) => (name === 'node-dead' ? 'http://127.0.0.1:9' : undefined), secret: TEST_SECRET, logger: silentLogger });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const get = (path: string, headers: Record<string, string> = {}) =>
      new Promise<string>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
    try {
      for (const [path, headers] of [
        ['/signal/?EIO=4&transport=polling&node=node-dead', {}],
        ['/signal/?EIO=4&transport=polling&node=node-unknown', {}],
        ['/signal/?EIO=4&transport=polling&node=node-dead', { 'x-vclerk-forwarded-by': 'node-evil' }],
        ['/signal/?EIO=4&transport=polling&node=node-me', {}],
        ['/signal/?EIO=4&transport=polling', {}],
        ['/login?node=node-dead', {}],
      ] as const) {
        assert.equal(await get(path, headers), 'here', path);
      }
      assert.deepEqual(seen, [true, true, false, false, false, false]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('nodes: a forwarded client address', () => {
  const fakeRequest = (headers: Record<string, string>) => ({ headers: { ...headers } }) as never;

  it('is taken only when signed with the shared secret, fresh, and unchanged', () => {
    const now = Date.now();
    const good = fakeRequest(forwardingHeaders(TEST_SECRET, 'node-a', '192.0.2.7', now));
    assert.equal(acceptForwarded(good, TEST_SECRET, now), true);
    assert.equal(forwardedClient(good), '192.0.2.7');

    const otherSecret = fakeRequest(forwardingHeaders('another secret of 32 characters!!', 'node-a', '192.0.2.7', now));
    assert.equal(acceptForwarded(otherSecret, TEST_SECRET, now), false);
    const changed = fakeRequest({ ...forwardingHeaders(TEST_SECRET, 'node-a', '192.0.2.7', now), 'x-vclerk-client': '198.51.100.1' });
    assert.equal(acceptForwarded(changed, TEST_SECRET, now), false);
    const stale = fakeRequest(forwardingHeaders(TEST_SECRET, 'node-a', '192.0.2.7', now - 120_000));
    assert.equal(acceptForwarded(stale, TEST_SECRET, now), false);
    assert.equal(forwardedClient(stale), undefined);
    assert.equal((stale as { headers: Record<string, string> }).headers['x-vclerk-client'], undefined, 'the unchecked header is removed');
  });
});
