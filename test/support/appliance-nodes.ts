import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestDatabase } from './database';
import { assertBuilt, cleanEnv, compiledCli, compiledServer, freePortBlock, root, run, stopChild, type Running } from './process';

/**
 * Several appliance nodes (the compiled server, dist/, as child processes)
 * on one test database, each on its own loopback address 127.0.0.(i+2)
 * with its own HTTP port, media port and recorder ports, one shared data
 * directory and session secret, and HAProxy in front on 127.0.0.1 with the
 * shipped docker/ha/haproxy/haproxy.cfg (pages round-robin, /signal by its
 * `node` parameter), its servers and front moved to loopback and its health
 * checks made fast. For test/e2e/nodes-three.test.ts and bench/nodes.ts.
 * Nothing listens or sends anywhere but 127.0.0.0/8.
 */

export interface ApplianceNode {
  name: string;
  /** Its own loopback address (HTTP and media). */
  address: string;
  port: number;
  url: string;
  mediaPort: number;
  env: NodeJS.ProcessEnv;
  process: Running;
  killedAt?: number;
}

export interface NodeCluster {
  /** The proxy's URL: what browsers open. */
  url: string;
  nodes: ApplianceNode[];
  dataDir: string;
  node(name: string): ApplianceNode;
  /** kill -9 of a node's process (its media workers end with it); resolves once it exited. */
  kill(name: string): Promise<number>;
  /** Runs `vclerk <args>` (dist/app/cli.js) with a node's settings; resolves with its exit code and output. */
  cli(args: string[]): Promise<{ code: number | null; output: string }>;
  /** The last lines of every node's log and of HAProxy's (for a failure's message). */
  logs(lines?: number): string;
  stop(): Promise<void>;
}

export const NODE_NAMES = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e'];

const HAPROXY_CFG = path.join(root, 'docker', 'ha', 'haproxy', 'haproxy.cfg');

/** A TCP port free on `address` (the kernel's choice). */
async function freePortOn(address: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The shipped haproxy.cfg for these nodes: front on 127.0.0.1:<front>, one
 * `use-server` rule and one `server` line per node (its loopback address),
 * health checks every second, each given 3 s (down after 2 failures, up after 1 success).
 */
export function clusterHaproxyCfg(front: number, nodes: { name: string; address: string; port: number }[]): string {
  const cfg = fs
    .readFileSync(HAPROXY_CFG, 'utf8')
    .replace(/^(\s*)bind :\d+$/m, `$1bind 127.0.0.1:${front}`)
    .replace(/^\s*(use-server|server) node-\S+ .*\n/gm, '')
    .replace(/^(\s*default-server check) inter \S+ fall \d+ rise \d+$/m, '$1 inter 1s fall 2 rise 1');
  if (!cfg.includes(`bind 127.0.0.1:${front}`) || !cfg.includes('inter 1s fall 2')) throw new Error('haproxy.cfg no longer has the bind or default-server line this test rewrites');
  const rules = nodes.map((n) => `    use-server ${n.name} if { path_beg /signal } { url_param(node) -m str ${n.name} }`);
  const servers = nodes.map((n) => `    server ${n.name} ${n.address}:${n.port}`);
  return `${cfg.trimEnd()}\n\n    # Loopback nodes of the test; a busy test machine may answer a check slowly\n    timeout check 3s\n${rules.join('\n')}\n${servers.join('\n')}\n`;
}

function tail(text: string, lines: number): string {
  return text
    .split('\n')
    .filter((l) => !/"msg":"request completed"/.test(l))
    .slice(-lines)
    .join('\n');
}

async function waitForHttp(url: string, timeoutMs: number, failed: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = failed();
    if (reason) throw new Error(reason);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Starts `count` nodes (node-a, node-b, …) and HAProxy. The first node
 * starts alone (it makes the data directory's keys), the others together.
 * On a failure everything started is stopped again.
 */
export async function startNodes(db: TestDatabase, options: { count?: number; heartbeatSeconds?: number; log?: (m: string) => void } = {}): Promise<NodeCluster> {
  assertBuilt();
  const count = options.count ?? 3;
  const log = options.log ?? (() => undefined);
  if (count > NODE_NAMES.length) throw new Error(`at most ${NODE_NAMES.length} nodes`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-nodes-'));
  const dataDir = path.join(home, 'data');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  const front = await freePortOn('127.0.0.1');
  const url = `http://127.0.0.1:${front}`;
  const secret = crypto.randomBytes(32).toString('hex');
  const nodes: ApplianceNode[] = [];
  let proxy: { child: ChildProcess; output: string; exited: Promise<unknown> } | undefined;

  const stop = async () => {
    await Promise.all(nodes.map((n) => n.process.stop(15_000)));
    if (proxy) await stopChild(proxy.child, proxy.exited, 5000);
    // VCLERK_NODES_LOG_DIR: every node's log and HAProxy's kept there (to look into a failure).
    const keepDir = process.env.VCLERK_NODES_LOG_DIR;
    if (keepDir) {
      fs.mkdirSync(keepDir, { recursive: true });
      for (const n of nodes) fs.writeFileSync(path.join(keepDir, `${n.name}.log`), n.process.output());
      fs.writeFileSync(path.join(keepDir, 'haproxy.log'), proxy?.output ?? '');
    }
    fs.rmSync(home, { recursive: true, force: true });
  };
  const logs = (lines = 30) =>
    [...nodes.map((n) => `--- ${n.name} (${n.url})${n.killedAt ? ', killed' : ''} ---\n${tail(n.process.output(), lines)}`), `--- haproxy ---\n${tail(proxy?.output ?? '', lines)}`].join('\n');

  const plan: Omit<ApplianceNode, 'process'>[] = [];
  for (let i = 0; i < count; i++) {
    const name = NODE_NAMES[i]!;
    const address = `127.0.0.${i + 2}`;
    const port = await freePortOn(address);
    // The worker's WebRTC port, then the recorder's 40 ports and the workers' 40 RTP ports to it.
    const block = await freePortBlock(81);
    const env = cleanEnv({
      NODE_ENV: 'production',
      DATABASE_URL: db.url,
      VCLERK_HOST: address,
      VCLERK_PORT: String(port),
      VCLERK_PUBLIC_URL: url,
      VCLERK_TRUST_PROXY: '127.0.0.0/8',
      VCLERK_SESSION_SECRET: secret,
      VCLERK_DATA_DIR: dataDir,
      VCLERK_NODE_NAME: name,
      VCLERK_NODE_URL: `http://${address}:${port}`,
      VCLERK_NODE_HEARTBEAT_SECONDS: String(options.heartbeatSeconds ?? 1),
      VCLERK_MEDIA_WORKERS: '1',
      VCLERK_MEDIA_LISTEN_IP: address,
      VCLERK_MEDIA_ANNOUNCED_ADDRESS: address,
      VCLERK_MEDIA_PORT: String(block),
      VCLERK_RECORDING_PORT_MIN: String(block + 1),
      VCLERK_RECORDING_PORT_MAX: String(block + 40),
      VCLERK_MEDIA_RTC_PORT_MIN: String(block + 41),
      VCLERK_MEDIA_RTC_PORT_MAX: String(block + 80),
      VCLERK_RECORDING_MIN_FREE_MB: '1',
      VCLERK_LOG_LEVEL: 'info',
    });
    plan.push({ name, address, port, url: `http://${address}:${port}`, mediaPort: block, env });
  }

  try {
    const startOne = async (p: Omit<ApplianceNode, 'process'>) => {
      const node: ApplianceNode = { ...p, process: run(compiledServer, [], p.env) };
      nodes.push(node);
      const at = Date.now();
      await node.process.waitFor(/VClerk is listening/, 90_000);
      log(`${node.name} listening on ${node.url} (media ${node.address}:${node.mediaPort}) after ${Date.now() - at} ms`);
    };
    await startOne(plan[0]!);
    await Promise.all(plan.slice(1).map(startOne));
    nodes.sort((a, b) => a.name.localeCompare(b.name));

    const file = path.join(home, 'haproxy.cfg');
    fs.writeFileSync(file, clusterHaproxyCfg(front, nodes));
    const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const started = { child, output: '', exited: new Promise((resolve) => child.once('exit', resolve)) };
    proxy = started;
    const keep = (d: Buffer) => {
      // Bounded: the last 200 kB.
      started.output = (started.output + d.toString()).slice(-200_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('error', (err) => keep(Buffer.from(`haproxy could not start (apt-get install haproxy): ${err.message}\n`)));
    await waitForHttp(`${url}/healthz`, 15_000, () => (child.exitCode !== null || child.signalCode !== null ? `haproxy exited: ${started.output}` : undefined));
    log(`haproxy in front on ${url}`);
  } catch (err) {
    const message = `${err instanceof Error ? err.message : String(err)}\n${logs()}`;
    await stop();
    throw new Error(message, { cause: err });
  }

  const node = (name: string) => {
    const found = nodes.find((n) => n.name === name);
    if (!found) throw new Error(`no node ${name}`);
    return found;
  };
  return {
    url,
    nodes,
    dataDir,
    node,
    async kill(name) {
      const n = node(name);
      n.killedAt = Date.now();
      n.process.child.kill('SIGKILL');
      await n.process.exited;
      return n.killedAt;
    },
    async cli(args) {
      // A living node's settings (the first one may have been killed).
      const cli = run(compiledCli, args, (nodes.find((n) => !n.killedAt) ?? nodes[0]!).env);
      const done = await Promise.race([cli.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 60_000))]);
      if (!done) cli.child.kill('SIGKILL');
      return { code: done ? done.code : null, output: cli.output() };
    },
    logs,
    stop,
  };
}
