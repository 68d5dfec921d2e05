import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from './support/database';
import { cleanEnv, freePort, mediaEnv, root, watch } from './support/process';

/**
 * The image's production path without Docker: docker/entrypoint itself, with
 * NODE_ENV=production, as a non-root user (the image's user is not root;
 * when the tests run as root, as `nobody`), on the repository's own build.
 * The built image itself is started by test/image (`npm run test:image`).
 */
const appDir = root;
const entrypoint = path.join(appDir, 'docker', 'entrypoint');
const asRoot = process.getuid?.() === 0;
let user = asRoot ? { uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })) } : undefined;

/** The HEALTHCHECK command of docker/Dockerfile, as written there. */
function dockerHealthcheck(): string[] {
  const dockerfile = fs.readFileSync(path.join(root, 'docker', 'Dockerfile'), 'utf8');
  const match = /^HEALTHCHECK .*\\\n\s*CMD (\[.*\])$/m.exec(dockerfile);
  assert.ok(match, 'docker/Dockerfile has an exec-form HEALTHCHECK');
  return JSON.parse(match[1]!) as string[];
}

function start(args: string[], env: NodeJS.ProcessEnv, cwd: string) {
  return watch(spawn(entrypoint, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], ...user }));
}

describe('the production start (docker/entrypoint in the repository)', function () {
  let home: string;

  before(function () {
    if (!fs.existsSync(path.join(appDir, 'dist', 'app', 'server.js'))) throw new Error(`${appDir}/dist is missing: run \`npm run build\``);
    if (user) {
      // The user must reach the application: a checkout under /root is not reachable for nobody.
      try {
        execFileSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(path.join(appDir, 'dist', 'app', 'server.js'))}, require('fs').constants.R_OK)`], { ...user, stdio: 'ignore' });
      } catch {
        // A checkout in a private directory (0700, as the README's newcomer has it): run as root then, as
        // `docker run --user 0` would; the image's own non-root start is tested through the image (test/image).
        console.log('      (the checkout is private to root: the entrypoint runs as root here)');
        user = undefined;
      }
    }
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-prod-'));
    fs.chmodSync(home, 0o755);
    if (user) fs.chownSync(home, user.uid, user.gid);
  });

  after(() => {
    if (!home) return;
    const pidFile = path.join(home, 'data', 'postgres', 'postmaster.pid');
    if (fs.existsSync(pidFile)) {
      try { process.kill(Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGKILL'); } catch { /* already gone */ }
    }
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('without DATABASE_URL: execs node dist/app/server.js on the embedded PostgreSQL, healthy, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const dataDir = path.join(home, 'data');
    const env = cleanEnv({ ...(await mediaEnv()), HOME: home, NODE_ENV: 'production', VCLERK_PORT: String(port), VCLERK_HOST: '127.0.0.1', VCLERK_DATA_DIR: dataDir, VCLERK_EMBEDDED_DB_PORT: String(await freePort()) });
    // Started from elsewhere, like Docker's WORKDIR would not guarantee: the entry point finds its app itself.
    const proc = start([], env, home);
    await proc.waitFor(/VClerk is listening/);

    // exec: the entry point's process is now Node running the server, so signals reach it.
    const cmdline = fs.readFileSync(`/proc/${proc.child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.equal(path.basename(cmdline[0]!), 'node');
    assert.equal(cmdline.at(-1), 'dist/app/server.js');
    if (user) assert.equal(fs.statSync(`/proc/${proc.child.pid}`).uid, user.uid, 'not root');

    // The image's HEALTHCHECK, as written in the Dockerfile.
    const [cmd, ...args] = dockerHealthcheck();
    assert.equal(cmd, 'node');
    execFileSync(process.execPath, args, { env: { ...env }, stdio: 'ignore', timeout: 10000 });
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.deepEqual(await ready.json(), { status: 'ready', database: 'ok', migrations: 'current' });
    assert.ok(fs.existsSync(path.join(dataDir, 'postgres', 'PG_VERSION')), 'the embedded cluster lives in the data directory');
    assert.match(proc.output(), /not set up yet/);

    assert.deepEqual(await proc.stop(), { code: 0, signal: null }, proc.output());
    assert.match(proc.output(), /shutdown complete/);
    assert.ok(!fs.existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), 'PostgreSQL has stopped');

    // The healthcheck fails once nothing listens.
    assert.throws(() => execFileSync(process.execPath, args, { env: { ...env }, stdio: 'ignore', timeout: 10000 }));
  });

  it('a command instead of flags runs the CLI', async () => {
    const proc = start(['config', 'check'], cleanEnv({ HOME: home, NODE_ENV: 'production', VCLERK_SHUTDOWN_TIMEOUT_MS: '-1' }), home);
    assert.equal((await proc.finished()).code, 78, proc.output());
    assert.match(proc.output(), /VCLERK_SHUTDOWN_TIMEOUT_MS/);
  });

  describe('with DATABASE_URL (as docker-compose.yml runs it)', () => {
    let db: TestDatabase;
    before(async () => {
      db = await createTestDatabase({ migrated: false });
    });
    after(async () => db?.drop());

    it('migrates the database first, then starts the server on it', async () => {
      const port = await freePort();
      const env = cleanEnv({ ...(await mediaEnv()), HOME: home, NODE_ENV: 'production', DATABASE_URL: db.url, VCLERK_PORT: String(port), VCLERK_HOST: '127.0.0.1', VCLERK_DATA_DIR: path.join(home, 'data-external') });
      const proc = start([], env, home);
      await proc.waitFor(/VClerk is listening/);
      assert.match(proc.output(), /applied \d+ migration/);
      assert.match(proc.output(), /"embeddedDatabase":false/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
      assert.deepEqual(await proc.stop(), { code: 0, signal: null }, proc.output());
    });
  });
});
