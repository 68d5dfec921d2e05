import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root } from './support/process';

/**
 * docker-compose.yml as Compose itself reads it: `config` needs no Docker
 * engine. Debian 12's docker-compose 1.29 (what CI installs) or Compose v2.
 * Without either the suite is skipped, unless REQUIRE_COMPOSE=1 (CI).
 */
type Compose = { argv: string[]; v1: boolean };

function findCompose(): Compose | undefined {
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return { argv: ['docker-compose'], v1: true };
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return { argv: ['docker', 'compose'], v1: false };
  return undefined;
}

interface Port { protocol: string; published: number; target: number }
interface Mount { source: string; target: string }
interface Service {
  image?: string;
  build?: unknown;
  restart?: string;
  profiles?: string[];
  healthcheck?: { test: string[] };
  environment?: Record<string, string>;
  ports?: Port[];
  volumes?: Mount[];
  command?: string[];
  depends_on?: Record<string, { condition: string }>;
  user?: string;
  read_only?: boolean;
  tmpfs?: string[] | string;
}
interface Project { services: Record<string, Service>; volumes: Record<string, unknown> }

/** Runs `config` in a scratch project directory holding the compose file and the given .env. */
function composeConfig(compose: Compose, env: string, profiles: string[] = []): { status: number; stderr: string; project?: Project } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-compose-'));
  try {
    fs.copyFileSync(path.join(root, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
    fs.writeFileSync(path.join(dir, '.env'), env);
    const args = [...compose.argv.slice(1), ...profiles.flatMap((p) => ['--profile', p]), 'config', ...(compose.v1 ? [] : ['--format', 'json'])];
    const { PATH, HOME } = process.env;
    const result = spawnSync(compose.argv[0]!, args, { cwd: dir, encoding: 'utf8', env: { PATH, HOME, LANG: 'C.UTF-8' } });
    if (result.status !== 0) return { status: result.status ?? -1, stderr: result.stderr };
    // docker-compose 1.29 prints YAML only; its own Python (with PyYAML) turns it into JSON.
    const json = compose.v1
      ? execFileSync('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: result.stdout, encoding: 'utf8' })
      : result.stdout;
    return { status: 0, stderr: result.stderr, project: normalise(JSON.parse(json)) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** v1 and v2 print ports and volumes in different shapes: one shape for the assertions. */
function normalise(raw: { services: Record<string, Record<string, unknown>>; volumes?: Record<string, unknown> }): Project {
  const services: Record<string, Service> = {};
  for (const [name, s] of Object.entries(raw.services)) {
    // A range may stay one entry ("49160-49259") or be expanded, depending on the version.
    const ports = ((s.ports ?? []) as Array<Record<string, unknown>>).flatMap((p) => {
      const [from, to = from] = String(p.published).split('-').map(Number) as [number, number?];
      return Array.from({ length: to! - from + 1 }, (_, i) => ({ protocol: String(p.protocol ?? 'tcp'), published: from + i, target: Number(p.target) + i }));
    });
    const volumes = ((s.volumes ?? []) as Array<string | Record<string, unknown>>).map((v) =>
      typeof v === 'string' ? { source: v.split(':')[0]!, target: v.split(':')[1]! } : { source: String(v.source), target: String(v.target) },
    );
    const command = s.command === undefined ? undefined : ([] as string[]).concat(s.command as string | string[]);
    services[name] = { ...(s as Service), ports, volumes, command };
  }
  return { services, volumes: raw.volumes ?? {} };
}

const example = fs.readFileSync(path.join(root, '.env.example'), 'utf8');
/** .env as the README says: a copy of .env.example with the password set (and, here, the TURN lines). */
const dotEnv = example
  .replace(/^POSTGRES_PASSWORD=$/m, 'POSTGRES_PASSWORD=Ab12cd34')
  .replace(/^POSTGRES_APP_PASSWORD=$/m, 'POSTGRES_APP_PASSWORD=Ef56gh78')
  .concat('\nVCLERK_MEDIA_ANNOUNCED_ADDRESS=192.0.2.10\nVCLERK_TURN_SECRET=turn-secret-for-the-test-0123456789abcdef\n');

describe('docker-compose.yml', function () {
  const compose = findCompose();
  let project: Project;

  before(function () {
    if (!compose) {
      if (process.env.REQUIRE_COMPOSE === '1') throw new Error('neither docker-compose nor `docker compose` is installed (apt-get install docker-compose)');
      this.skip();
    }
    const result = composeConfig(compose!, dotEnv);
    assert.equal(result.status, 0, result.stderr);
    project = result.project!;
  });

  it('is valid with a copy of .env.example, and refuses to run without POSTGRES_PASSWORD', () => {
    assert.ok(project.services.app && project.services.db);
    const bare = composeConfig(compose!, example);
    assert.notEqual(bare.status, 0);
    assert.match(bare.stderr, /set POSTGRES_PASSWORD in \.env/);
  });

  it('runs the app from docker/Dockerfile on PostgreSQL, after the database is healthy', () => {
    const { app, db } = project.services;
    assert.deepEqual(app!.depends_on, { db: { condition: 'service_healthy' } });
    assert.match(JSON.stringify(app!.build), /docker\/Dockerfile/);
    assert.match(db!.image!, /^postgres:\d+/);
    // The app runs as its own role; the owner of the tables (the db service's superuser) runs migrations.
    assert.equal(app!.environment!.DATABASE_URL, 'postgres://vclerk_app:Ef56gh78@db:5432/vclerk');
    assert.equal(app!.environment!.DATABASE_OWNER_URL, 'postgres://vclerk:Ab12cd34@db:5432/vclerk');
    assert.equal(db!.environment!.POSTGRES_PASSWORD, 'Ab12cd34');
    assert.equal(db!.environment!.VCLERK_DB_APP_PASSWORD, 'Ef56gh78');
    assert.equal(db!.ports!.length, 0, 'the database is not published');
  });

  it('runs the app as uid 10001 on a read-only root file system with an in-memory /tmp', () => {
    const app = project.services.app!;
    assert.equal(app.user, '10001:10001');
    assert.equal(app.read_only, true);
    assert.deepEqual([app.tmpfs].flat(), ['/tmp']);
    assert.equal(app.image, 'vclerk:local', 'APP_IMAGE defaults to the built image');
  });

  it('gives every service a restart policy and the long-running ones a healthcheck', () => {
    for (const [name, service] of Object.entries(project.services)) assert.equal(service.restart, 'unless-stopped', name);
    assert.match(project.services.db!.healthcheck!.test.join(' '), /pg_isready/);
    assert.match(project.services.app!.healthcheck!.test.join(' '), /docker\/healthcheck\.js/);
  });

  it('keeps the database and the data directory (recordings included) in named volumes', () => {
    assert.deepEqual(Object.keys(project.volumes).sort(), ['app-data', 'db-data']);
    const { app, db } = project.services;
    assert.deepEqual(db!.volumes![0], { source: 'db-data', target: '/var/lib/postgresql/data' });
    // The init script that creates the app's role on a new volume.
    assert.equal(db!.volumes![1]!.target, '/docker-entrypoint-initdb.d');
    assert.match(db!.volumes![1]!.source, /docker\/postgres-init$/);
    assert.deepEqual(app!.volumes, [{ source: 'app-data', target: app!.environment!.VCLERK_DATA_DIR }]);
  });

  it('publishes the web port and one UDP and one TCP port per media worker', () => {
    const app = project.services.app!;
    const workers = Number(app.environment!.VCLERK_MEDIA_WORKERS);
    const first = Number(app.environment!.VCLERK_MEDIA_PORT);
    assert.ok(workers >= 1, 'a fixed worker count, so that the published ports match');
    const expected: Port[] = [{ protocol: 'tcp', published: 8080, target: 8080 }];
    for (let i = 0; i < workers; i++) {
      for (const protocol of ['udp', 'tcp']) expected.push({ protocol, published: first + i, target: first + i });
    }
    const key = (p: Port) => `${p.protocol}/${p.published}:${p.target}`;
    assert.deepEqual(app.ports!.map(key).sort(), expected.map(key).sort());
  });

  it('has an optional coturn under the turn profile, with time-limited credentials from VCLERK_TURN_SECRET', () => {
    const turn = project.services.turn!;
    assert.deepEqual(turn.profiles, ['turn']);
    assert.match(turn.image!, /^coturn\/coturn:/);
    assert.equal(turn.environment!.VCLERK_TURN_SECRET, 'turn-secret-for-the-test-0123456789abcdef');
    assert.equal(turn.environment!.TURN_EXTERNAL_IP, '192.0.2.10');
    const command = turn.command!.join(' ');
    assert.match(command, /--use-auth-secret/);
    assert.match(command, /static-auth-secret=%s.*VCLERK_TURN_SECRET/);
    assert.doesNotMatch(command, /turn-secret-for-the-test-0123456789abcdef/, 'the secret is not on the command line');
    assert.match(command, /--allowed-peer-ip="\$\$?\{TURN_EXTERNAL_IP\}"/, 'relays only to the appliance');
    const ports = turn.ports!;
    for (const protocol of ['udp', 'tcp']) assert.ok(ports.some((p) => p.protocol === protocol && p.published === 3478 && p.target === 3478), protocol);
    const relay = ports.filter((p) => p.protocol === 'udp' && p.published !== 3478).map((p) => p.published);
    const min = Number(turn.environment!.TURN_MIN_PORT);
    const max = Number(turn.environment!.TURN_MAX_PORT);
    assert.deepEqual(relay, Array.from({ length: max - min + 1 }, (_, i) => min + i), 'the whole relay range is published');
    assert.ok(ports.every((p) => p.published === p.target));
  });

  it('documents in .env.example every variable docker-compose.yml reads', () => {
    const file = fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
    const used = new Set([...file.matchAll(/(?<!\$)\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!));
    for (const name of ['VCLERK_TURN_URLS', 'VCLERK_TURN_SECRET', 'VCLERK_TURN_TTL_SECONDS']) used.add(name);
    const missing = [...used].filter((name) => !new RegExp(`^#? ?${name}=`, 'm').test(example));
    assert.deepEqual(missing, []);
  });
});
