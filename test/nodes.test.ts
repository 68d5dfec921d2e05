import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import request from 'supertest';
import { createApp } from '../app/app';
import { createKnex } from '../app/db/connection';
import { CALLS_PER_WORKER, defaultNodeUrl, nameFromHost, nodeIdentity, type NodeIdentity } from '../app/nodes/identity';
import { formatNodeList, runNodeCommand } from '../app/nodes/cli';
import { NodeRegistry, type NodeLoad } from '../app/nodes/registry';
import { listNodes, UnknownNodeError } from '../app/nodes/service';
import { MISSED_HEARTBEATS, nodeState } from '../app/nodes/state';
import { lostNodeIds } from '../app/nodes/store';
import { appVersion } from '../app/core/paths';
import { seedOrganisation, seedUser, signIn } from './support/accounts';
import { testConfig, TEST_SECRET } from './support/context';
import { useTestDatabase } from './support/database';

/** A logger whose lines the test reads. */
function capturingLogger() {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } }));
  return { logger, lines };
}

function identity(name: string, overrides: Partial<NodeIdentity> = {}): NodeIdentity {
  return { name, url: `http://127.0.0.${name.endsWith('b') ? 2 : 1}:8080`, mediaAddress: `127.0.0.${name.endsWith('b') ? 2 : 1}`, capacity: 200, heartbeatSeconds: 60, ...overrides };
}

describe('node registry', () => {
  describe('who a node is (no database)', () => {
    it('takes its name from the host name when VCLERK_NODE_NAME is unset, in the setting\'s form', () => {
      assert.equal(nameFromHost('vclerk-0'), 'vclerk-0');
      assert.equal(nameFromHost('Node1.Bank.Example'), 'node1-bank-example');
      assert.equal(nameFromHost('_weird_'), 'weird');
      assert.equal(nameFromHost('a'.repeat(80)).length, 63);
      assert.equal(nameFromHost('...'), 'node');
    });

    it('builds its URL from VCLERK_HOST (or the host name on all addresses), the port and TLS', () => {
      assert.equal(defaultNodeUrl({ host: '0.0.0.0', port: 8080, tls: 'off' }, 'vclerk-0'), 'http://vclerk-0:8080');
      assert.equal(defaultNodeUrl({ host: '10.0.0.11', port: 8443, tls: 'self-signed' }, 'vclerk-0'), 'https://10.0.0.11:8443');
      assert.equal(defaultNodeUrl({ host: '::1', port: 8080, tls: 'off' }, 'h'), 'http://[::1]:8080');
    });

    it('takes 100 calls per media worker unless VCLERK_NODE_CAPACITY says otherwise; the settings win', () => {
      const fromHost = nodeIdentity(testConfig(), { mediaAddress: '192.0.2.10', workers: 3 }, 'Box-7');
      assert.deepEqual(fromHost, { name: 'box-7', url: 'http://Box-7:8080', mediaAddress: '192.0.2.10', capacity: 3 * CALLS_PER_WORKER, heartbeatSeconds: 2 });
      const configured = nodeIdentity(testConfig({ VCLERK_NODE_NAME: 'node-a', VCLERK_NODE_URL: 'http://127.0.0.1:8081/', VCLERK_NODE_CAPACITY: '40', VCLERK_NODE_HEARTBEAT_SECONDS: '7' }), { mediaAddress: null, workers: 3 }, 'ignored');
      assert.deepEqual(configured, { name: 'node-a', url: 'http://127.0.0.1:8081', mediaAddress: null, capacity: 40, heartbeatSeconds: 7 });
    });

    it('refuses a node name that is not 1-63 lower-case letters, digits and dashes', () => {
      for (const bad of ['Node-A', 'node_a', '-node', 'node-', 'a'.repeat(64)]) assert.throws(() => testConfig({ VCLERK_NODE_NAME: bad }), /VCLERK_NODE_NAME/, bad);
    });

    it('is gone after three missed heartbeats (one and a half with its liveness lock free), stopped after a clean stop, draining when drained', () => {
      const renewed = new Date('2026-12-06T10:00:00Z');
      const at = (seconds: number) => new Date(renewed.getTime() + seconds * 1000);
      const row = { renewed_at: renewed, heartbeat_seconds: 5, stopped_at: null, draining: false, lock_held: true };
      assert.equal(nodeState(row, at(15)), 'up');
      assert.equal(nodeState({ ...row, lock_held: false }, at(7.5)), 'up');
      assert.equal(nodeState({ ...row, lock_held: false }, at(7.6)), 'gone');
      assert.equal(nodeState(row, at(15.1)), 'gone');
      assert.equal(nodeState({ ...row, draining: true }, at(4)), 'draining');
      assert.equal(nodeState({ ...row, draining: true }, at(16)), 'gone');
      assert.equal(nodeState({ ...row, stopped_at: at(1) }, at(2)), 'stopped');
    });
  });

  describe('in the database', () => {
    const db = useTestDatabase();
    const knex = () => db.current.knex;
    const running: NodeRegistry[] = [];

    function registry(name: string, load: NodeLoad = { calls: 0, workers: 2 }, logger = capturingLogger().logger, over: Partial<NodeIdentity> = {}) {
      const r = new NodeRegistry({ knex: knex(), logger, identity: identity(name, over), version: appVersion, load: () => load });
      running.push(r);
      return r;
    }

    afterEach(async () => {
      await Promise.all(running.splice(0).map((r) => r.stop()));
      await knex()('nodes').delete();
    });

    it('registers a node at start and renews it with its load', async () => {
      const load = { calls: 0, workers: 2 };
      const a = registry('node-a', load);
      const row = await a.register();
      assert.equal(row.name, 'node-a');
      assert.equal(row.url, 'http://127.0.0.1:8080');
      assert.equal(row.media_address, '127.0.0.1');
      assert.equal(row.capacity, 200);
      assert.equal(row.calls, 0);
      assert.equal(row.workers, 2);
      assert.equal(row.version, appVersion);
      assert.equal(row.stopped_at, null);
      assert.equal(row.draining, false);
      assert.equal(row.run_id, a.runId);

      load.calls = 3;
      load.workers = 1;
      await new Promise((r) => setTimeout(r, 20));
      const renewed = await a.renew();
      assert.equal(renewed!.calls, 3);
      assert.equal(renewed!.workers, 1);
      assert.ok(renewed!.renewed_at > row.renewed_at, 'renewed_at moves on');
      assert.equal(renewed!.started_at.getTime(), row.started_at.getTime(), 'started_at stays');
      const [listed] = await listNodes(knex());
      assert.equal(listed!.state, 'up');
      assert.equal(listed!.calls, 3);
    });

    it('a node that stops renewing is gone after three heartbeats, while one that renews stays up; a clean stop marks it stopped', async () => {
      const a = registry('node-a', undefined, undefined, { heartbeatSeconds: 1 });
      const b = registry('node-b', undefined, undefined, { heartbeatSeconds: 1 });
      await a.register();
      a.start(); // renews every second
      await b.register(); // never renews: as if killed
      await new Promise((r) => setTimeout(r, 3400));
      const states = Object.fromEntries((await listNodes(knex())).map((n) => [n.name, n.state]));
      assert.deepEqual(states, { 'node-a': 'up', 'node-b': 'gone' });

      await a.stop();
      const stopped = (await listNodes(knex())).find((n) => n.name === 'node-a')!;
      assert.equal(stopped.state, 'stopped');
      assert.ok(stopped.stoppedAt);
      assert.equal(stopped.calls, 0);

      // Started again under the same name: the same row, up, no longer stopped.
      const again = registry('node-a');
      const row = await again.register();
      assert.equal(row.id, stopped.id);
      assert.equal(row.stopped_at, null);
      assert.equal((await listNodes(knex())).find((n) => n.name === 'node-a')!.state, 'up');
    });

    it('a node whose process died (its liveness lock free) is gone after one and a half heartbeats; one that holds it, after three', async () => {
      const slow = registry('node-slow', undefined, undefined, { heartbeatSeconds: 1 });
      const dead = registry('node-dead', undefined, undefined, { heartbeatSeconds: 1 });
      await slow.register(); // registered, holding its lock, renewing no more: alive but stalled
      await dead.register();
      // The dead one's database session ends, as a killed process's does.
      await knex().raw(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'vclerk-node-registry' AND pid IN (SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objid = (hashtextextended('vclerk-node:' || ?, 0) & 4294967295)::bigint::oid)`, [(await knex()('nodes').where({ name: 'node-dead' }).first('id'))!.id]);
      await new Promise((r) => setTimeout(r, 1800));
      const states = Object.fromEntries((await listNodes(knex())).map((n) => [n.name, n.state]));
      assert.deepEqual(states, { 'node-dead': 'gone', 'node-slow': 'up' });
      assert.deepEqual((await lostNodeIds(knex(), MISSED_HEARTBEATS)).length, 1, 'the queries judge alike');
      await new Promise((r) => setTimeout(r, 1400));
      assert.equal((await listNodes(knex())).find((n) => n.name === 'node-slow')!.state, 'gone', 'three heartbeats without a renewal');
    });

    it('lists two nodes on /admin/status and in /metrics', async () => {
      await registry('node-a', { calls: 2, workers: 2 }).register();
      await registry('node-b', { calls: 0, workers: 1 }, undefined, { capacity: 50, mediaAddress: null }).register();
      await runNodeCommand(knex(), ['drain', 'node-b'], () => undefined);
      const app = createApp({ config: testConfig(), db: knex(), logger: pino({ level: 'silent' }), sessionSecret: TEST_SECRET, ops: { node: { name: 'node-a' } } });

      const metrics = (await request(app).get('/metrics').expect(200)).text.split('\n');
      for (const line of [
        'vclerk_node_up{node="node-a"} 1',
        'vclerk_node_up{node="node-b"} 1',
        'vclerk_node_calls{node="node-a"} 2',
        'vclerk_node_calls{node="node-b"} 0',
        'vclerk_node_capacity{node="node-a"} 200',
        'vclerk_node_capacity{node="node-b"} 50',
        'vclerk_node_draining{node="node-a"} 0',
        'vclerk_node_draining{node="node-b"} 1',
      ]) assert.ok(metrics.includes(line), `missing: ${line}`);

      const org = await seedOrganisation(knex());
      const { agent } = await signIn(app, await seedUser(knex(), org, 'admin'));
      const html = (await agent.get('/admin/status').set('Accept', 'text/html').expect(200)).text;
      const rowOf = (name: string) => new RegExp(`<tr data-node="${name}"[^>]*>([\\s\\S]*?)</tr>`).exec(html)?.[1] ?? '';
      assert.match(html, /<h2 id="ops-nodes">Appliance nodes<\/h2>/);
      assert.match(rowOf('node-a'), /<code>node-a<\/code> \(this node\)/);
      assert.match(rowOf('node-a'), /<td>up<\/td>/);
      assert.match(rowOf('node-a'), /<td>2 of 200<\/td>/);
      assert.match(rowOf('node-a'), /http:\/\/127\.0\.0\.1:8080/);
      assert.match(rowOf('node-a'), /<code>127\.0\.0\.1<\/code>/);
      assert.ok(rowOf('node-a').includes(`<code>${appVersion}</code>`));
      assert.match(rowOf('node-a'), /<td>\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}<\/td>/, 'the last renewal');
      assert.match(rowOf('node-b'), /draining: no new calls/);
      assert.match(rowOf('node-b'), /<td>0 of 50<\/td>/);
      assert.doesNotMatch(rowOf('node-b'), /this node/);

      const de = (await agent.get('/admin/status').set('Accept', 'text/html').set('Accept-Language', 'de').expect(200)).text;
      assert.match(de, /Appliance-Knoten/);
      assert.match(de, /dieser Knoten/);
      assert.match(de, /2 von 200/);

      // An organisation's admin on an appliance shared with another: the nodes, not their load.
      await seedOrganisation(knex());
      const scoped = (await agent.get('/admin/status').set('Accept', 'text/html').expect(200)).text;
      assert.match(scoped, /id="ops-scope"/);
      assert.match(scoped, /<tr data-node="node-b" data-state="draining">/);
      assert.doesNotMatch(scoped, /2 of 200/);
    });

    it('drains and takes back a node through the CLI\'s command, audited appliance-wide', async () => {
      await registry('node-a').register();
      const printed: string[] = [];
      const out = (line: string) => printed.push(line);

      assert.equal(await runNodeCommand(knex(), ['drain', 'node-a'], out), 0);
      assert.match(printed.pop()!, /node node-a is draining/);
      assert.equal((await listNodes(knex()))[0]!.state, 'draining');
      assert.equal(await runNodeCommand(knex(), ['drain', 'node-a'], out), 0);
      assert.match(printed.pop()!, /already draining/);

      assert.equal(await runNodeCommand(knex(), ['list'], out), 0);
      const list = printed.pop()!;
      assert.match(list, /^NAME\s+STATE\s+CALLS/);
      assert.match(list, /\nnode-a\s+draining\s+0\/200\s+2\s+http:\/\/127\.0\.0\.1:8080\s+127\.0\.0\.1/);

      // A drained node that starts again stays drained until undrained.
      await registry('node-a').register();
      assert.equal((await listNodes(knex()))[0]!.state, 'draining');

      assert.equal(await runNodeCommand(knex(), ['undrain', 'node-a'], out), 0);
      assert.match(printed.pop()!, /node node-a takes new calls again/);
      assert.equal((await listNodes(knex()))[0]!.state, 'up');

      const events = await knex()('audit_events').where({ target_id: (await listNodes(knex()))[0]!.id }).orderBy('seq');
      assert.deepEqual(events.map((e) => [e.action, e.organisation_id, e.actor_type, e.actor_label, e.target_type, e.details.name]), [
        ['node.drained', null, 'system', 'vclerk CLI', 'node', 'node-a'],
        ['node.undrained', null, 'system', 'vclerk CLI', 'node', 'node-a'],
      ]);

      await assert.rejects(runNodeCommand(knex(), ['drain', 'nope'], out), (err: unknown) => err instanceof UnknownNodeError && /no node is registered under the name "nope"/.test(err.message));
      assert.equal(await runNodeCommand(knex(), ['drain'], out), 2);
      assert.equal(await runNodeCommand(knex(), ['frobnicate'], out), 2);
      assert.equal(formatNodeList([]), 'no node has registered yet');
    });

    it('a renewal while the database is out of reach does not throw: it is logged, and the loop goes on', async () => {
      const unreachable = createKnex('postgres://vclerk:x@127.0.0.1:9/vclerk', 1, pino({ level: 'silent' }));
      const { logger, lines } = capturingLogger();
      const rejections: unknown[] = [];
      const onRejection = (reason: unknown) => rejections.push(reason);
      process.on('unhandledRejection', onRejection);
      try {
        const r = new NodeRegistry({ knex: unreachable, logger, identity: identity('node-a', { heartbeatSeconds: 1 }), version: appVersion, load: () => ({ calls: 1, workers: 1 }) });
        assert.equal(await r.renew(), undefined);
        r.start();
        await new Promise((resolve) => setTimeout(resolve, 1300));
        await r.stop();
        const warnings = lines.filter((l) => l.msg === 'could not renew the node registration');
        assert.ok(warnings.length >= 2, `one warning per failed renewal (${warnings.length})`);
        assert.equal(warnings[0]!.level, 40);
        assert.equal(warnings[0]!.databaseUnavailable, true);
        assert.ok(lines.some((l) => l.msg === 'could not mark the node stopped'));
        assert.deepEqual(rejections, []);
      } finally {
        process.off('unhandledRejection', onRejection);
        await unreachable.destroy();
      }
    });

    it('a second process under the same name takes the row; the first one says so instead of renewing it', async () => {
      const { logger, lines } = capturingLogger();
      const first = registry('node-a', undefined, logger);
      await first.register();
      const second = registry('node-a');
      await second.register();
      assert.equal(await first.renew(), undefined);
      assert.ok(lines.some((l) => l.level === 50 && /another process has registered under this node name/.test(l.msg)));
      assert.ok(await second.renew());
    });
  });
});
