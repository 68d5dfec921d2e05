/**
 * Several nodes: how calls spread over three appliance nodes and how fast
 * a dead node's calls come back.
 *
 *   npm run build && npm run bench:nodes -- [--nodes 3] [--calls 30] [--bound 30] [--heartbeat 2]
 *
 * Starts the compiled appliance (dist/) as `--nodes` child processes on one
 * PostgreSQL, each on its own loopback address with its own HTTP and media
 * ports, HAProxy in front with the shipped docker/ha/haproxy/haproxy.cfg
 * (test/support/appliance-nodes.ts). Then `--calls` calls, each opened by
 * its customer's signalling through the proxy as the browser does it
 * (WebSocket, `wrong_node` followed to the named node): prints the time to
 * a connection on the call's node per call and how many calls each node
 * got. Then kill -9 of the node holding the most calls: prints, per call
 * of that node, the time until its participant is connected again on a
 * living node (the call placed again), median and max, within `--bound`
 * seconds, side by side with what the detection alone would take without
 * the liveness lock (three heartbeats after the last renewal; heartbeat
 * `--heartbeat` seconds, the appliance's default 2). Media after a kill is measured with real browsers by
 * test/e2e/nodes-three.test.ts (it prints its time).
 *
 * Everything runs on 127.0.0.0/8 and stops by itself.
 */
import { parseArgs } from 'node:util';
import { io, type Socket } from 'socket.io-client';
import { CallService } from '../app/calls/service';
import { seedOrganisation, seedUser } from '../test/support/accounts';
import { startNodes } from '../test/support/appliance-nodes';
import { createTestDatabase, startTestServer, stopTestServer } from '../test/support/database';
import { median } from '../test/support/fault-calls';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    calls: { type: 'string', default: '30' },
    bound: { type: 'string', default: '30' },
    heartbeat: { type: 'string', default: '2' },
    verbose: { type: 'boolean', default: false },
  },
});
const nodeCount = Math.min(5, Math.max(2, Number(values.nodes)));
const callCount = Math.min(500, Math.max(1, Number(values.calls)));
const boundMs = Math.min(120, Math.max(5, Number(values.bound))) * 1000;
const heartbeatSeconds = Math.min(10, Math.max(1, Number(values.heartbeat)));
const log = values.verbose ? (m: string) => console.log(`  ${m}`) : () => undefined;

type Refusal = Error & { data?: { node?: string } };

/** One connection attempt of a customer's signalling (WebSocket, no reconnection), naming `node` if given. */
function connectOnce(url: string, token: string, node: string | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = io(url, { path: '/signal', auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000, ...(node ? { query: { node } } : {}) });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err: Refusal) => {
      socket.close();
      reject(err);
    });
  });
}

/** Connects as the browser does: a `wrong_node` refusal is followed to the node it names (a few hops at most). */
async function connectFollowing(url: string, token: string, node?: string): Promise<{ socket: Socket; node: string | undefined }> {
  for (let hop = 0; ; hop++) {
    try {
      return { socket: await connectOnce(url, token, node), node };
    } catch (err) {
      const refusal = err as Refusal;
      if (refusal.message === 'wrong_node' && refusal.data?.node && hop < 5) node = refusal.data.node;
      else throw err;
    }
  }
}

/** Tries to connect every 250 ms until connected or `deadline`; resolves with when it connected, or null. */
async function reconnectUntil(url: string, token: string, node: string | undefined, deadline: number): Promise<{ at: number; socket: Socket } | null> {
  while (Date.now() < deadline) {
    try {
      const { socket } = await connectFollowing(url, token, node);
      return { at: Date.now(), socket };
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return null;
}

const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(0)} %`;

async function main(): Promise<void> {
  await startTestServer();
  const db = await createTestDatabase();
  const sockets: Socket[] = [];
  const cluster = await startNodes(db, { count: nodeCount, heartbeatSeconds, log });
  try {
    const knex = db.knex;
    const org = await seedOrganisation(knex, 'Bench Nodes Bank');
    const clerk = await seedUser(knex, org, 'clerk');
    const caller = { user: { id: clerk.id, organisationId: org.id } as never, ip: '127.0.0.1', userAgent: 'bench', sessionId: 'bench' };
    const calls: { id: string; token: string; node: string; joinMs: number }[] = [];
    for (let i = 0; i < callCount; i++) {
      const { call, token } = await new CallService(knex).start(caller, 1);
      const at = Date.now();
      const { socket } = await connectFollowing(cluster.url, token);
      const joinMs = Date.now() - at;
      sockets.push(socket);
      const row = await knex('calls').join('nodes', 'nodes.id', 'calls.node_id').where('calls.id', call.id).first('nodes.name as name');
      calls.push({ id: call.id, token, node: row.name as string, joinMs });
    }
    const perNode = new Map(cluster.nodes.map((n) => [n.name, 0]));
    for (const c of calls) perNode.set(c.node, (perNode.get(c.node) ?? 0) + 1);
    const joins = calls.map((c) => c.joinMs);
    console.log('');
    console.log(`${nodeCount} nodes (dist/, 1 media worker each, heartbeat ${heartbeatSeconds} s) behind HAProxy on loopback; ${callCount} calls opened one after another through the proxy`);
    console.log(`  calls per node                 ${[...perNode].map(([n, k]) => `${n} ${k} (${pct(k, callCount)})`).join(', ')}`);
    console.log(`  signalling connect on the call's node (incl. wrong_node hop)  median ${median(joins)} ms, max ${Math.max(...joins)} ms`);

    // kill -9 of the node holding the most calls.
    const [victim, held] = [...perNode].sort((a, b) => b[1] - a[1])[0]!;
    const lost = calls.filter((c) => c.node === victim);
    const killedAt = await cluster.kill(victim);
    const deadline = killedAt + boundMs;
    const again = await Promise.all(lost.map((c) => reconnectUntil(cluster.url, c.token, victim, deadline)));
    for (const a of again) if (a) sockets.push(a.socket);
    const times = again.filter((a): a is NonNullable<typeof a> => a !== null).map((a) => a.at - killedAt);
    const placed = await knex('calls').join('nodes', 'nodes.id', 'calls.node_id').whereIn('calls.id', lost.map((c) => c.id)).select('nodes.name as name');
    const moved = new Map<string, number>();
    for (const p of placed) moved.set(p.name as string, (moved.get(p.name as string) ?? 0) + 1);
    const gone = await knex('nodes').where({ name: victim }).first('renewed_at');
    console.log(`  kill -9 of ${victim} holding ${held} calls: connected again on a living node ${times.length} / ${held} within ${boundMs / 1000} s`);
    if (times.length) {
      const renewedBefore = gone ? Math.max(0, killedAt - new Date(gone.renewed_at as Date).getTime()) : 0;
      // Without the liveness lock the node would be known gone three heartbeats after its last renewal.
      const unlocked = 3 * heartbeatSeconds * 1000 - renewedBefore;
      console.log(`  time from the kill to connected again   median ${median(times)} ms, max ${Math.max(...times)} ms (last renewal ${renewedBefore} ms before the kill)`);
      console.log(`  baseline: known gone by three missed heartbeats alone  ${unlocked} ms after the kill; ratio median / baseline ${(median(times) / unlocked).toFixed(2)}`);
    }
    console.log(`  its calls now on               ${[...moved].map(([n, k]) => `${n} ${k}`).join(', ') || '-'}`);
  } catch (err) {
    console.error(cluster.logs(20));
    throw err;
  } finally {
    for (const s of sockets) s.close();
    await cluster.stop();
    await db.drop();
    await stopTestServer();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
