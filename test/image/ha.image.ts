import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import request from 'supertest';
import { csrfFrom } from '../support/accounts';
import { setupLinkIn, sleep } from '../support/compose';
import { HA_NODES, HaComposeProject, type HaNode } from '../support/ha-compose';
import { join, sessionCookie } from '../support/signal-client';

/**
 * docker/ha/docker-compose.yml as an IT admin runs it (scripts/test-image.sh
 * builds the app image and HAProxy's image first): PostgreSQL, two nodes and
 * HAProxy in front, on a compose network, with HAProxy's port published on
 * loopback. Both nodes become healthy and register; HAProxy spreads pages
 * over both; the organisation and a clerk are made through HAProxy; a call's
 * two participants reach the node holding its media room through HAProxy
 * (following `wrong_node` as the browser client does) and join it; kill -9
 * of that node: the other takes the call back and the next connection
 * through HAProxy is placed on it.
 */
describe('docker/ha (two nodes behind HAProxy), started for real', function () {
  this.timeout(600_000);
  let project: HaComposeProject;
  let base: string;
  let clerk: { email: string; password: string; cookie: string };
  let call: { id: string; token: string };
  let holder: HaNode;
  const sockets: Socket[] = [];

  before(async () => {
    ({ project, base } = await HaComposeProject.createHa());
  });

  after(async () => {
    for (const socket of sockets) socket.close();
    if (process.env.VCLERK_TEST_KEEP !== '1') await project?.destroy();
  });

  const sql = (statement: string) => project.sql(statement);
  const holderOf = async (callId: string) => (await sql(`SELECT n.name, c.status FROM calls c LEFT JOIN nodes n ON n.id = c.node_id WHERE c.id = '${callId}'`))[0] ?? [];

  /**
   * Connects to /signal through HAProxy as the browser client does: on
   * `wrong_node`, again naming that node (`/signal/?node=<name>`). A node
   * that is not there yet (HAProxy still sending to a node that died, 502/503)
   * is tried again for up to `retryMs`. Answers the socket and the nodes that refused it.
   */
  async function reach(auth: Record<string, string>, cookie?: string, retryMs = 0): Promise<{ socket: Socket; refusedWith: string[] }> {
    const refusedWith: string[] = [];
    const deadline = Date.now() + retryMs;
    let node: string | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        const socket = await connectOnce(base, auth, cookie, node);
        sockets.push(socket);
        return { socket, refusedWith };
      } catch (err) {
        const e = err as Error & { data?: { node?: string } };
        if (e.message === 'wrong_node' && typeof e.data?.node === 'string' && refusedWith.length < 5) {
          refusedWith.push(e.data.node);
          node = e.data.node;
          continue;
        }
        if (e.message !== 'wrong_node' && Date.now() < deadline) {
          await sleep(500);
          continue;
        }
        throw new Error(`no signalling connection after ${attempt + 1} attempts: ${e.message}`);
      }
    }
  }

  it('starts the nodes once the database is healthy; both become healthy and register', async () => {
    await project.mustCompose(['up', '-d', '--no-build']);
    await Promise.all(HA_NODES.map((node) => project.waitHealthy(node)));
    let list = '';
    for (let i = 0; i < 20; i++) {
      list = await project.mustCompose(['exec', '-T', 'node-a', 'node', 'dist/app/cli.js', 'node', 'list']);
      if (HA_NODES.every((node) => new RegExp(`^${node}\\s+up\\s`, 'm').test(list))) break;
      await sleep(1000);
    }
    for (const node of HA_NODES) {
      const row = list.split('\n').find((line) => line.startsWith(`${node} `)) ?? assert.fail(`${node} is not in \`node list\`:\n${list}`);
      assert.match(row, new RegExp(`^${node}\\s+up\\s+0/\\d+\\s+2\\s+http://${node}:8080\\s+127\\.0\\.0\\.1\\s`), row);
    }
  });

  it('HAProxy answers /readyz and /login on its published port and spreads them over both nodes', async () => {
    let ready = 0;
    for (let i = 0; i < 60 && ready !== 200; i++) {
      ready = await fetch(`${base}/readyz`).then((r) => r.status, () => 0);
      if (ready !== 200) await sleep(1000);
    }
    assert.equal(ready, 200, 'HAProxy answers /readyz');
    // Each request carries its own id (X-Request-Id): the node that serves it logs it and echoes it.
    // Rounds of /readyz, /login, /login, /readyz (round-robin gives each node both) until both
    // nodes have served some: on a busy machine HAProxy may hold a slow node out for a while.
    const ids: string[] = [];
    const served: Record<string, string[]> = {};
    for (let round = 0; round < 12; round++) {
      for (const path of ['/readyz', '/login', '/login', '/readyz']) {
        const id = `ha-spread-${crypto.randomBytes(6).toString('hex')}-${ids.length}`;
        ids.push(id);
        const res = await fetch(`${base}${path}`, { headers: { 'X-Request-Id': id } });
        assert.equal(res.status, 200, `${path} through HAProxy`);
        assert.equal(res.headers.get('x-request-id'), id);
        await res.arrayBuffer();
      }
      for (const node of HA_NODES) {
        const logs = await project.mustCompose(['logs', '--no-color', node]);
        served[node] = ids.filter((id) => logs.includes(id));
      }
      if (HA_NODES.every((node) => served[node]!.length > 0)) break;
      await sleep(5000);
    }
    assert.deepEqual([...served['node-a']!, ...served['node-b']!].sort(), [...ids].sort(), `every request is logged by exactly one node: ${JSON.stringify(served)}`);
    for (const node of HA_NODES) assert.ok(served[node]!.length > 0, `${node} served some of the requests: ${JSON.stringify(served)}`);
    const proxy = await project.mustCompose(['logs', '--no-color', 'haproxy']);
    for (const node of HA_NODES) assert.match(proxy, new RegExp(`vclerk_nodes/${node} .*"GET /(login|readyz) `), `HAProxy's log names ${node} for a page`);
  });

  it('sets up the organisation and invites a clerk through HAProxy (the nodes share sessions)', async () => {
    // Each node's first start logs a setup link, and each replaces the ones before: the one to
    // open is a fresh one from the CLI, as docker/ha/docker-compose.yml tells the admin.
    const logs = (await Promise.all(HA_NODES.map((node) => project.mustCompose(['logs', '--no-color', node])))).join('\n');
    assert.ok(setupLinkIn(logs)?.startsWith(`${base}/setup/`), 'the nodes log a setup link');
    const printed = await project.mustCompose(['exec', '-T', 'node-a', 'node', 'dist/app/cli.js', 'setup-link']);
    const link = setupLinkIn(printed) ?? assert.fail(`setup-link prints a link: ${printed}`);
    assert.ok(link.startsWith(`${base}/setup/`), link);
    const path = new URL(link).pathname;
    // Every request through HAProxy may reach either node: the session and its CSRF token live in PostgreSQL.
    const admin = request.agent(base);
    const adminEmail = `admin-${crypto.randomBytes(3).toString('hex')}@example.org`;
    const adminPassword = `Pw-${crypto.randomBytes(12).toString('hex')}`;
    const form = await admin.get(path).expect(200);
    await admin.post(path).type('form').send({
      _csrf: csrfFrom(form.text), organisation_name: 'HA Bank', name: 'First Admin', email: adminEmail, password: adminPassword, password_confirm: adminPassword,
    }).expect(303).expect('location', '/dashboard');
    const users = await admin.get('/admin/users').expect(200);
    const email = `clerk-${crypto.randomBytes(3).toString('hex')}@example.org`;
    const issued = await admin.post('/admin/users').type('form').send({ _csrf: csrfFrom(users.text), name: 'A clerk', email, role: 'clerk' }).expect(201);
    const invite = new URL(/id="issued-link"[^>]*value="([^"]+)"/.exec(issued.text)?.[1] ?? assert.fail('the invitation link is shown')).pathname;
    const password = `Pw-${crypto.randomBytes(12).toString('hex')}`;
    const own = request.agent(base);
    const page = await own.get(invite).expect(200);
    await own.post(invite).type('form').send({ _csrf: csrfFrom(page.text), email, password, password_confirm: password }).expect(303).expect('location', '/login');
    clerk = { email, password, cookie: await sessionCookie(base, { email }, password) };
  });

  it('signals a call through HAProxy: both participants reach the node holding its room (after wrong_node) and join it', async () => {
    const agent = request.agent(base).set('Cookie', clerk.cookie);
    const dashboard = await agent.get('/dashboard').expect(200);
    const started = await agent.post('/calls').type('form').send({ _csrf: csrfFrom(dashboard.text) }).expect(303);
    const location = /^\/calls\/([0-9a-f-]{36})#customer=([A-Za-z0-9_-]+)$/.exec(String(started.headers.location)) ?? assert.fail(`redirect to the call: ${started.headers.location}`);
    call = { id: location[1]!, token: location[2]! };

    // HAProxy sends a connection without `node` to either node round-robin: the one not holding the room refuses it.
    const refusals: string[] = [];
    for (let i = 0; i < 4 && refusals.length === 0; i++) {
      try {
        (await connectOnce(base, { callId: call.id }, clerk.cookie)).close();
      } catch (err) {
        const e = err as Error & { data?: { node?: string } };
        assert.equal(e.message, 'wrong_node');
        refusals.push(String(e.data?.node));
      }
    }
    assert.equal(refusals.length, 1, 'a connection that reached the other node was refused with wrong_node');
    holder = refusals[0] as HaNode;
    assert.ok(HA_NODES.includes(holder), `wrong_node names a node: ${holder}`);

    const clerkSide = await reach({ callId: call.id }, clerk.cookie);
    const customerSide = await reach({ token: call.token });
    for (const side of [clerkSide, customerSide]) assert.ok(side.refusedWith.every((node) => node === holder), `refused only towards ${holder}: ${side.refusedWith}`);
    await join(clerkSide.socket);
    await join(customerSide.socket);
    assert.deepEqual(await holderOf(call.id), [holder, 'active'], 'calls.node_id is the holder; both joined');
  });

  it('kill -9 of the holder: the other node takes the call back within 15 s, and a new connection through HAProxy is placed on it', async () => {
    const living = HA_NODES.find((node) => node !== holder)!;
    const started = Date.now();
    await project.mustCompose(['kill', '-s', 'SIGKILL', holder]);
    const dead = await project.inspect(holder);
    assert.equal(dead.State.Running, false);
    let state: string[] = [];
    let interrupted: string[][] = [];
    // Polled through `compose exec` (slow on a busy machine); the time is the audit event's own.
    while (Date.now() - started < 60_000) {
      state = await holderOf(call.id);
      interrupted = await sql(`SELECT details->>'reason', extract(epoch FROM occurred_at) FROM audit_events WHERE action = 'call.interrupted' AND target_id = '${call.id}'`);
      if (state[1] === 'waiting' && interrupted.length > 0) break;
      await sleep(500);
    }
    assert.equal(state[1], 'waiting', `the call is waiting again (${JSON.stringify(state)})`);
    assert.deepEqual(interrupted.map((row) => row[0]), ['node_lost'], 'call.interrupted, node_lost, audited once');
    const tookBack = Number(interrupted[0]![1]) * 1000 - new Date(dead.State.FinishedAt).getTime();
    assert.ok(tookBack > 0 && tookBack <= 15_000, `taken back ${tookBack} ms after the kill`);

    // HAProxy may still pick the dead node until its checks mark it down: the client tries again, as browsers do.
    const clerkSide = await reach({ callId: call.id }, clerk.cookie, 30_000);
    const customerSide = await reach({ token: call.token }, undefined, 30_000);
    await join(clerkSide.socket);
    await join(customerSide.socket);
    assert.deepEqual(await holderOf(call.id), [living, 'active'], `the call is placed on ${living} and active again`);
    const list = await project.mustCompose(['exec', '-T', living, 'node', 'dist/app/cli.js', 'node', 'list']);
    assert.match(list, new RegExp(`^${holder}\\s+gone\\s`, 'm'), list);
  });
});

/** One socket.io connection to `/signal` (websocket only, no reconnection), naming `node` when given. */
function connectOnce(base: string, auth: Record<string, string>, cookie?: string, node?: string): Promise<Socket> {
  const socket = io(base, {
    path: '/signal',
    auth,
    query: node ? { node } : {},
    transports: ['websocket'],
    reconnection: false,
    timeout: 10_000,
    extraHeaders: cookie ? { Cookie: cookie } : {},
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}
