import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, schema } from '../config';
import { formatNodeList } from '../app/nodes/cli';
import { routes } from '../app/routes';
import { freePort, root, stopChild } from './support/process';

// js-yaml ships no types; only load() is used.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { load(text: string): unknown; loadAll(text: string): unknown[] };

/**
 * The deployment examples of docs/high-availability.md stay true to the
 * application: docker/ha (two nodes, PostgreSQL, a shared volume, HAProxy)
 * and deploy/kubernetes (a StatefulSet of nodes). Every VClerk variable they
 * set is a setting with a valid value (config/load), the nodes differ where
 * they must and agree where they must, the health paths exist, and HAProxy's
 * configuration passes `haproxy -c` and routes /signal by its `node`
 * parameter (run for real on loopback). Needs Debian's haproxy and
 * docker-compose (or Compose v2): .ci/run installs them.
 */
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
type Env = Record<string, string>;
type Obj = Record<string, unknown>;
const obj = (value: unknown, what: string): Obj => {
  assert.ok(value && typeof value === 'object' && !Array.isArray(value), `${what} is an object`);
  return value as Obj;
};

const healthPaths = new Set(routes({ db: {} } as never).filter((r) => r.method === 'get' && r.access === 'public').map((r) => r.path));
const signalPath = /path: '(\/[a-z]+)'/.exec(read('app/calls/hub.ts'))?.[1];

/** Loads a node's environment as VClerk would: throws ConfigError naming any unknown or invalid setting. */
function assertLoads(env: Env, what: string) {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) assert.fail(`${what}: ${err.message}`);
    throw err;
  }
}

/** The media ports of a node: VCLERK_MEDIA_PORT + i for each worker. */
function mediaPorts(env: Env): number[] {
  const first = Number(env.VCLERK_MEDIA_PORT);
  return Array.from({ length: Number(env.VCLERK_MEDIA_WORKERS) }, (_, i) => first + i);
}

// ---------------------------------------------------------------- compose

const haDir = 'docker/ha';
const composeRaw = obj(yaml.load(read(`${haDir}/docker-compose.yml`)), 'docker/ha/docker-compose.yml');
const composeServices = obj(composeRaw.services, 'services');
const nodeNames = Object.keys(composeServices).filter((name) => /^node-/.test(name));
const haproxyCfg = read(`${haDir}/haproxy/haproxy.cfg`);

/** The values a .env made from docker/ha/.env.example gets for the test. */
const dotEnvValues: Env = {
  POSTGRES_PASSWORD: 'ownerpass1',
  POSTGRES_APP_PASSWORD: 'apppass2',
  VCLERK_SESSION_SECRET: 'a'.repeat(40),
  NODE_A_MEDIA_ADDRESS: '192.0.2.11',
  NODE_B_MEDIA_ADDRESS: '192.0.2.12',
};

function dotEnv(): string {
  return read(`${haDir}/.env.example`)
    .split('\n')
    .map((line) => {
      const m = /^([A-Z_][A-Z0-9_]*)=$/.exec(line);
      return m ? `${m[1]}=${dotEnvValues[m[1]!] ?? assert.fail(`no test value for ${m[1]} of .env.example`)}` : line;
    })
    .join('\n');
}

interface ComposeService {
  environment: Env;
  ports: { protocol: string; published: number; target: number }[];
  volumes: { source: string; target: string }[];
  networks?: Record<string, { ipv4_address?: string } | null>;
}

/** `docker-compose config` (1.29) or `docker compose config` (v2) in a scratch copy of the repository's layout. */
function composeConfig(): Record<string, ComposeService> {
  const compose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0
    ? ['docker-compose']
    : spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0 ? ['docker', 'compose'] : assert.fail('neither docker-compose nor docker compose is installed (.ci/run installs docker-compose)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-ha-compose-'));
  try {
    const ha = path.join(dir, haDir);
    fs.mkdirSync(path.join(ha, 'haproxy'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'docker', 'postgres-init'), { recursive: true });
    fs.copyFileSync(path.join(root, haDir, 'docker-compose.yml'), path.join(ha, 'docker-compose.yml'));
    fs.writeFileSync(path.join(ha, '.env'), dotEnv());
    const args = [...compose.slice(1), 'config', ...(compose[0] === 'docker' ? ['--format', 'json'] : [])];
    const result = spawnSync(compose[0]!, args, { cwd: ha, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8' } });
    assert.equal(result.status, 0, `compose config failed:\n${result.stderr}`);
    const services = obj(obj(yaml.load(result.stdout), 'compose config').services, 'services') as Record<string, Obj>;
    const out: Record<string, ComposeService> = {};
    for (const [name, s] of Object.entries(services)) {
      // v1 and v2 print ports and volumes in different shapes; a range may stay one entry.
      const ports = ((s.ports ?? []) as Obj[]).flatMap((p) => {
        const [from, to = from] = String(p.published).split('-').map(Number) as [number, number?];
        return Array.from({ length: to! - from + 1 }, (_, i) => ({ protocol: String(p.protocol ?? 'tcp'), published: from + i, target: Number(p.target) + i }));
      });
      const volumes = ((s.volumes ?? []) as (string | Obj)[]).map((v) => (typeof v === 'string' ? { source: v.split(':')[0]!, target: v.split(':')[1]! } : { source: String(v.source), target: String(v.target) }));
      const environment = Object.fromEntries(Object.entries((s.environment ?? {}) as Obj).map(([k, v]) => [k, String(v)]));
      out[name] = { environment, ports, volumes, networks: s.networks as ComposeService['networks'] };
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('docker/ha: two nodes, PostgreSQL, a shared volume and HAProxy', () => {
  let services: Record<string, ComposeService>;
  before(() => {
    services = composeConfig();
  });

  it('has two nodes built from the image of the main docker-compose.yml, with its health check', () => {
    assert.deepEqual(nodeNames, ['node-a', 'node-b']);
    const main = obj(obj(obj(yaml.load(read('docker-compose.yml')), 'main').services, 'services').app, 'app');
    for (const name of nodeNames) {
      const node = obj(composeServices[name], name);
      assert.equal(obj(node.build, 'build').dockerfile, obj(main.build, 'main build').dockerfile);
      assert.equal(obj(node.build, 'build').context, '../..');
      assert.equal(node.image, main.image);
      assert.deepEqual(obj(node.healthcheck, 'healthcheck').test, obj(main.healthcheck, 'main healthcheck').test);
      assert.equal(node.user, main.user);
      assert.equal(node.read_only, true);
    }
    assert.ok(composeServices.db && composeServices.haproxy);
  });

  it('every VClerk variable a node gets is a setting with a valid value', () => {
    for (const name of nodeNames) assertLoads(services[name]!.environment, name);
    const known = new Set(Object.values(schema).map((s) => s.env));
    const named = [...read(`${haDir}/.env.example`).matchAll(/^#?\s*((?:VCLERK|DATABASE)_[A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    assert.ok(named.length > 0);
    for (const name of named) assert.ok(known.has(name), `.env.example: ${name} is a setting`);
  });

  it('the nodes differ in name, URL, media ports and announced address, and publish their own media ports', () => {
    const envs = nodeNames.map((n) => services[n]!.environment);
    const distinct = (key: string) => assert.equal(new Set(envs.map((e) => e[key])).size, envs.length, `${key} differs per node`);
    distinct('VCLERK_NODE_NAME');
    distinct('VCLERK_NODE_URL');
    distinct('VCLERK_MEDIA_ANNOUNCED_ADDRESS');
    const all = envs.flatMap(mediaPorts);
    assert.equal(new Set(all).size, all.length, 'media port ranges do not overlap');
    // The announced addresses come from two variables of .env (one host may give both the same value).
    const raw = nodeNames.map((n) => String(obj(obj(composeServices[n], n).environment, 'environment').VCLERK_MEDIA_ANNOUNCED_ADDRESS));
    assert.equal(new Set(raw).size, raw.length);
    for (const name of nodeNames) {
      const { environment: env, ports } = services[name]!;
      assert.equal(env.VCLERK_NODE_NAME, name, 'the service is named like its node (HAProxy\'s server names)');
      assert.equal(env.VCLERK_NODE_URL, `http://${name}:${env.VCLERK_PORT}`);
      for (const port of mediaPorts(env)) {
        for (const protocol of ['udp', 'tcp']) assert.ok(ports.some((p) => p.protocol === protocol && p.published === port && p.target === port), `${name} publishes ${port}/${protocol}`);
      }
      assert.equal(ports.length, mediaPorts(env).length * 2, `${name} publishes only its media ports (HTTP goes through HAProxy)`);
    }
  });

  it('the nodes share the database, the session secret and the data directory on one volume', () => {
    const [a, b] = nodeNames.map((n) => services[n]!);
    for (const key of ['DATABASE_URL', 'DATABASE_OWNER_URL', 'VCLERK_SESSION_SECRET', 'VCLERK_DATA_DIR', 'VCLERK_TRUST_PROXY', 'VCLERK_PORT']) {
      assert.ok(a!.environment[key], `${key} is set`);
      assert.equal(a!.environment[key], b!.environment[key], `${key} is the same on both nodes`);
    }
    const dataDir = a!.environment.VCLERK_DATA_DIR!;
    const mounts = [a!, b!].map((s) => s.volumes.find((v) => v.target === dataDir)?.source);
    assert.ok(mounts[0] && mounts[0] === mounts[1], 'one volume at the data directory on both nodes');
    assert.ok(Object.keys(obj(composeRaw.volumes, 'volumes')).includes(mounts[0]!), `${mounts[0]} is a named volume`);
  });

  it('VCLERK_TRUST_PROXY names HAProxy and the nodes', () => {
    const trusted = services['node-a']!.environment.VCLERK_TRUST_PROXY!.split(',');
    for (const name of ['haproxy', ...nodeNames]) {
      const address = Object.values(services[name]!.networks ?? {})[0]?.ipv4_address;
      assert.ok(address && trusted.includes(address), `${name}'s address ${address} is trusted`);
    }
  });

  it('HAProxy is built from Debian\'s package on the app image\'s Debian base', () => {
    const dockerfile = read(`${haDir}/haproxy/Dockerfile`);
    const base = /^ARG RUNTIME_IMAGE=(.*)$/m.exec(read('docker/Dockerfile'))?.[1];
    assert.ok(base);
    assert.match(dockerfile, new RegExp(`^ARG RUNTIME_IMAGE=${base.replace(/[.]/g, '\\.')}$`, 'm'));
    assert.match(dockerfile, /^FROM \$\{RUNTIME_IMAGE\}$/m);
    assert.match(dockerfile, /apt-get install -y --no-install-recommends haproxy/);
    assert.match(dockerfile, /^COPY haproxy\.cfg \/etc\/haproxy\/haproxy\.cfg\nRUN chmod 0644 \/etc\/haproxy\/haproxy\.cfg$/m, 'readable by the user haproxy, whatever its mode in the checkout');
  });

  it('haproxy.cfg: a server per node named like it, /signal routed by url_param(node), checks on /readyz', () => {
    for (const name of nodeNames) {
      const port = services[name]!.environment.VCLERK_PORT;
      assert.match(haproxyCfg, new RegExp(`^\\s*server ${name} ${name}:${port}$`, 'm'), `server ${name}`);
      assert.match(haproxyCfg, new RegExp(`^\\s*use-server ${name} if \\{ path_beg ${signalPath} \\} \\{ url_param\\(node\\) -m str ${name} \\}$`, 'm'), `use-server ${name}`);
    }
    const check = /^\s*http-check send meth GET uri (\S+)$/m.exec(haproxyCfg)?.[1];
    assert.ok(check && healthPaths.has(check), `the check path ${check} is a route of the app`);
    assert.match(haproxyCfg, /^\s*balance roundrobin$/m);
    assert.match(haproxyCfg, /^\s*option forwardfor$/m);
    assert.match(haproxyCfg, /^\s*timeout tunnel \S+$/m);
    assert.doesNotMatch(haproxyCfg, /^[^#]*shutdown-sessions/m, 'a node marked down keeps its open sockets');
  });
});

// ------------------------------------------------------ haproxy for real

/** haproxy.cfg with its servers on loopback ports (and, to run it, its front on a loopback port). */
function loopbackCfg(servers: Record<string, number>, front?: number): string {
  let cfg = haproxyCfg.replace(/^(\s*server (\S+)) \S+:\d+/gm, (line, head: string, name: string) => {
    assert.ok(servers[name], `a loopback port for server ${name}`);
    return `${head} 127.0.0.1:${servers[name]}`;
  });
  if (front !== undefined) {
    cfg = cfg.replace(/^(\s*)bind :\d+$/m, `$1bind 127.0.0.1:${front}`);
  }
  return cfg;
}

describe('docker/ha/haproxy/haproxy.cfg with Debian\'s haproxy', function () {
  this.timeout(30_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-haproxy-'));
  const backends: http.Server[] = [];
  const sockets = new Set<net.Socket>();
  let proxy: ChildProcess | undefined;
  after(async () => {
    if (proxy) await stopChild(proxy, new Promise((resolve) => proxy!.once('exit', resolve)), 5000);
    for (const s of sockets) s.destroy();
    await Promise.all(backends.map((b) => new Promise((resolve) => b.close(resolve))));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('passes haproxy -c with no warning', () => {
    const file = path.join(dir, 'check.cfg');
    fs.writeFileSync(file, loopbackCfg(Object.fromEntries(nodeNames.map((n, i) => [n, 18080 + i]))));
    const result = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    assert.ok(!result.error, `haproxy is installed (apt-get install haproxy): ${result.error?.message}`);
    assert.equal(result.status, 0, result.stderr + result.stdout);
    assert.doesNotMatch(result.stderr + result.stdout, /\[(WARNING|ALERT)\]/);
  });

  it('sends /signal?node=<name> to that node (polling and WebSocket), the rest round-robin, with X-Forwarded-For and -Proto', async () => {
    // A stand-in per node: answers its name and the forwarded headers; upgrades echo what they get.
    const ports: Record<string, number> = {};
    for (const name of nodeNames) {
      const server = http.createServer((req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ node: name, xff: req.headers['x-forwarded-for'], xfp: req.headers['x-forwarded-proto'] }));
      });
      server.on('connection', (s) => sockets.add(s));
      server.on('upgrade', (req, socket) => {
        sockets.add(socket as net.Socket);
        const accept = crypto.createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Node: ${name}\r\n\r\n`);
        socket.on('data', (chunk) => socket.write(chunk));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      backends.push(server);
      ports[name] = (server.address() as net.AddressInfo).port;
    }
    const front = await freePort();
    const file = path.join(dir, 'run.cfg');
    fs.writeFileSync(file, loopbackCfg(ports, front));
    proxy = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proxy.stderr!.on('data', (d) => (stderr += d));
    const get = (p: string, headers: Env = {}) =>
      new Promise<{ node: string; xff?: string; xfp?: string }>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: front, path: p, headers, agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`${p}: ${res.statusCode} ${body}`))));
        }).on('error', reject);
      });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await get('/');
        break;
      } catch (err) {
        if (Date.now() > deadline || proxy.exitCode !== null) throw new Error(`haproxy did not answer: ${String(err)}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    for (const name of nodeNames) {
      for (let i = 0; i < 4; i++) {
        const polled = await get(`${signalPath}/?EIO=4&transport=polling&node=${name}`);
        assert.equal(polled.node, name, `polling for ${name} reaches ${name}`);
      }
    }
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await get('/healthz')).node);
    assert.deepEqual([...seen].sort(), [...nodeNames].sort(), 'pages go to every node');

    const forwarded = await get('/', { 'X-Forwarded-For': '203.0.113.9' });
    assert.equal(forwarded.xff, '127.0.0.1', 'X-Forwarded-For is the client HAProxy saw, not what the client sent');
    assert.equal(forwarded.xfp, 'http');

    for (const name of nodeNames) {
      const socket = net.connect(front, '127.0.0.1');
      sockets.add(socket);
      const answer = await new Promise<string>((resolve, reject) => {
        let got = '';
        socket.on('error', reject);
        socket.on('data', (d) => {
          got += d;
          if (got.includes('\r\n\r\n') && got.includes('ping-through')) resolve(got);
          else if (got.includes('\r\n\r\n') && !got.includes('ping')) socket.write('ping-through');
        });
        socket.write(`GET ${signalPath}/?EIO=4&transport=websocket&node=${name} HTTP/1.1\r\nHost: vclerk\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      });
      assert.match(answer, /^HTTP\/1\.1 101/);
      assert.match(answer, new RegExp(`x-node: ${name}`, 'i'));
      socket.destroy();
    }
  });

  it('a named node that refuses connections (it died; its health check has not failed yet): /signal for it goes to another node at once', async () => {
    assert.ok(proxy && proxy.exitCode === null, 'haproxy runs (the test before starts it)');
    const [dead, ...living] = nodeNames;
    const index = nodeNames.indexOf(dead!);
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => backends[index]!.close(resolve));
    const front = Number(/bind 127\.0\.0\.1:(\d+)/.exec(fs.readFileSync(path.join(dir, 'run.cfg'), 'utf8'))![1]);
    for (let i = 0; i < 3; i++) {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: front, path: `${signalPath}/?EIO=4&transport=polling&node=${dead}`, agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        }).on('error', reject);
      });
      assert.equal(answer.status, 200, `answered, not ${answer.status}: ${answer.body}`);
      assert.ok(living.includes((JSON.parse(answer.body) as { node: string }).node), `by a living node: ${answer.body}`);
    }
  });
});

// ------------------------------------------------------------ kubernetes

const k8sDir = 'deploy/kubernetes';
const kustomization = obj(yaml.load(read(`${k8sDir}/kustomization.yaml`)), 'kustomization');
const manifests = (kustomization.resources as string[]).flatMap((file) => yaml.loadAll(read(`${k8sDir}/${file}`)).map((doc) => obj(doc, file)));
const ofKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const one = (kind: string) => {
  const found = ofKind(kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
};

interface EnvVar { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } } }
interface Container {
  env: EnvVar[];
  envFrom: { configMapRef: { name: string } }[];
  ports: { name: string; containerPort: number; hostPort?: number; protocol: string }[];
  startupProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  lifecycle: { preStop: { exec: { command: string[] } }; postStart: { exec: { command: string[] } } };
  volumeMounts: { name: string; mountPath: string }[];
}

describe('deploy/kubernetes: a StatefulSet of nodes', () => {
  const set = one('StatefulSet');
  const spec = obj(set.spec, 'spec');
  const pod = obj(obj(spec.template, 'template').spec, 'pod spec');
  const labels = obj(obj(obj(spec.template, 'template').metadata, 'metadata').labels, 'labels');
  const container = (pod.containers as Container[])[0]!;
  const secret = one('Secret');
  const configMap = one('ConfigMap');
  const services = ofKind('Service');
  const headless = services.find((s) => obj(s.spec, 'spec').clusterIP === 'None')!;

  /** The container's environment as the kubelet makes it for pod `vclerk-0` on a node at 192.0.2.10. */
  function podEnv(secretValues: Env): Env {
    const env: Env = {};
    for (const from of container.envFrom) {
      assert.equal(from.configMapRef.name, obj(configMap.metadata, 'metadata').name);
      Object.assign(env, obj(configMap.data, 'data'));
    }
    const fields: Env = { 'metadata.name': 'vclerk-0', 'status.hostIP': '192.0.2.10' };
    for (const v of container.env) {
      if (v.value !== undefined) env[v.name] = v.value.replace(/\$\(([A-Z_]+)\)/g, (_, n: string) => env[n] ?? assert.fail(`$(${n}) is set before ${v.name}`));
      else if (v.valueFrom?.fieldRef) env[v.name] = fields[v.valueFrom.fieldRef.fieldPath] ?? assert.fail(`field ${v.valueFrom.fieldRef.fieldPath}`);
      else if (v.valueFrom?.secretKeyRef) {
        assert.equal(v.valueFrom.secretKeyRef.name, obj(secret.metadata, 'metadata').name);
        env[v.name] = secretValues[v.valueFrom.secretKeyRef.key] ?? assert.fail(`the Secret has ${v.valueFrom.secretKeyRef.key}`);
      } else assert.fail(`env ${v.name} has a value`);
    }
    return env;
  }
  const placeholders = obj(secret.stringData, 'stringData') as Env;
  const goodSecrets: Env = { ...placeholders, 'session-secret': 'b'.repeat(40) };

  it('kustomization lists every manifest of the folder', () => {
    const files = fs.readdirSync(path.join(root, k8sDir)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
    assert.deepEqual([...(kustomization.resources as string[])].sort(), files);
  });

  it('every VClerk variable a pod gets is a setting with a valid value; the Secret\'s placeholder session secret is refused', () => {
    const env = podEnv(goodSecrets);
    const config = assertLoads(env, 'the StatefulSet\'s pod');
    assert.equal(config.nodeName, 'vclerk-0');
    assert.throws(() => loadConfig(podEnv(placeholders)), (err: unknown) => err instanceof ConfigError && /VCLERK_SESSION_SECRET/.test(err.message));
  });

  it('VCLERK_NODE_NAME is the pod name; VCLERK_NODE_URL its stable name through the headless Service', () => {
    const byName = new Map(container.env.map((v) => [v.name, v]));
    assert.equal(byName.get('VCLERK_NODE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
    assert.equal(byName.get('VCLERK_MEDIA_ANNOUNCED_ADDRESS')?.valueFrom?.fieldRef?.fieldPath, 'status.hostIP');
    const hs = obj(headless.spec, 'headless spec');
    assert.equal(spec.serviceName, obj(headless.metadata, 'metadata').name);
    assert.equal(hs.publishNotReadyAddresses, true);
    assert.deepEqual(hs.selector, labels);
    const env = podEnv(goodSecrets);
    const httpPort = container.ports.find((p) => p.name === 'http')!;
    assert.equal(String(httpPort.containerPort), env.VCLERK_PORT);
    assert.equal(env.VCLERK_NODE_URL, `http://vclerk-0.${spec.serviceName as string}:${httpPort.containerPort}`);
    assert.equal(spec.podManagementPolicy, 'Parallel');
  });

  it('each media worker\'s port is open on the host, UDP and TCP, one pod per Kubernetes node', () => {
    const env = podEnv(goodSecrets);
    for (const port of mediaPorts(env)) {
      for (const protocol of ['UDP', 'TCP']) assert.ok(container.ports.some((p) => p.protocol === protocol && p.containerPort === port && p.hostPort === port), `${port}/${protocol} on the host`);
    }
    assert.equal(container.ports.filter((p) => p.hostPort).length, mediaPorts(env).length * 2);
    const anti = obj(obj(pod.affinity, 'affinity').podAntiAffinity, 'anti-affinity');
    const term = (anti.requiredDuringSchedulingIgnoredDuringExecution as Obj[])[0]!;
    assert.equal(term.topologyKey, 'kubernetes.io/hostname');
  });

  it('probes use the app\'s health routes; preStop drains the node and the grace period lets calls end', () => {
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
      assert.ok(healthPaths.has(probe.httpGet.path), `${probe.httpGet.path} is a route`);
      assert.equal(probe.httpGet.port, 'http');
    }
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    const preStop = container.lifecycle.preStop.exec.command.join(' ');
    assert.match(preStop, /node \/app\/dist\/app\/cli\.js node drain "\$VCLERK_NODE_NAME"/);
    assert.match(preStop, /node \/app\/dist\/app\/cli\.js node list/);
    assert.match(container.lifecycle.postStart.exec.command.join(' '), /node \/app\/dist\/app\/cli\.js node undrain "\$VCLERK_NODE_NAME"/);
    assert.match(read('docker/Dockerfile'), /^WORKDIR \/app$/m);
    assert.ok(fs.existsSync(path.join(root, 'app', 'cli.ts')));
    assert.ok(Number(pod.terminationGracePeriodSeconds) >= 600, 'at least ten minutes for calls to end');
  });

  it('the preStop wait reads `node list` the way the CLI prints it', () => {
    const row = (name: string, calls: number) => ({ id: name, name, url: `http://${name}:8080`, mediaAddress: '192.0.2.1', state: 'draining' as const, calls, capacity: 100, workers: 2, draining: true, version: '0.1.0', startedAt: new Date(), renewedAt: new Date(), stoppedAt: null });
    const script = /awk -v n="\$VCLERK_NODE_NAME" '([^']+)'/.exec(container.lifecycle.preStop.exec.command.join(' '))?.[1];
    assert.ok(script);
    const busy = (list: string) => spawnSync('awk', ['-v', 'n=vclerk-0', script], { input: list }).status === 0;
    assert.equal(busy(formatNodeList([row('vclerk-0', 3), row('vclerk-1', 0)])), true);
    assert.equal(busy(formatNodeList([row('vclerk-0', 0), row('vclerk-1', 5)])), false);
    assert.equal(busy(''), false, 'no answer (database away): stop waiting');
  });

  it('the data directory is one ReadWriteMany volume; the Ingress reaches the HTTP Service with WebSocket timeouts', () => {
    const env = podEnv(goodSecrets);
    const mount = container.volumeMounts.find((m) => m.mountPath === env.VCLERK_DATA_DIR)!;
    const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name)!;
    const claim = one('PersistentVolumeClaim');
    assert.equal(obj(volume.persistentVolumeClaim, 'pvc').claimName, obj(claim.metadata, 'metadata').name);
    assert.deepEqual(obj(claim.spec, 'pvc spec').accessModes, ['ReadWriteMany']);

    const ingress = one('Ingress');
    const annotations = obj(obj(ingress.metadata, 'metadata').annotations, 'annotations');
    for (const key of ['proxy-read-timeout', 'proxy-send-timeout']) assert.ok(Number(annotations[`nginx.ingress.kubernetes.io/${key}`]) >= 60, key);
    const rules = obj(ingress.spec, 'ingress spec').rules as { http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[];
    const backend = rules[0]!.http.paths[0]!.backend.service;
    const target = services.find((s) => obj(s.metadata, 'metadata').name === backend.name)!;
    assert.ok(target && obj(target.spec, 'spec').clusterIP !== 'None', 'the Ingress names the HTTP Service');
    assert.deepEqual(obj(target.spec, 'spec').selector, labels);
    assert.ok((obj(target.spec, 'spec').ports as { name: string; targetPort: string }[]).some((p) => p.name === backend.port.name && p.targetPort === 'http'));
  });
});

describe('docs/high-availability.md', () => {
  it('is linked from README.md and docs/operations.md, and names the example files', () => {
    assert.match(read('README.md'), /\(docs\/high-availability\.md\)/);
    assert.match(read('docs/operations.md'), /\(high-availability\.md\)/);
    const guide = read('docs/high-availability.md');
    for (const file of ['../docker/ha/docker-compose.yml', '../docker/ha/haproxy/haproxy.cfg', '../deploy/kubernetes/README.md']) {
      assert.ok(guide.includes(`(${file})`), file);
      assert.ok(fs.existsSync(path.join(root, 'docs', file)), file);
    }
  });
});
