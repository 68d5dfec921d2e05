import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createKnex } from '../app/db/connection';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../app/db/embedded';
import http from 'node:http';
import { JobQueue } from '../app/jobs/queue';
import { createShutdown } from '../app/lifecycle/shutdown';
import { silentLogger } from './support/context';
import { assertBuilt, cleanEnv, compiledServer, freePort, mediaEnv, run, type Running } from './support/process';

/**
 * PostgreSQL dies under the running appliance (a real process, the
 * compiled server as production runs it): the embedded server is started again, an external one is
 * reconnected to once it is back, and a database gone for good makes the
 * appliance exit (non-zero) so its supervisor restarts it. Outcomes only:
 * every wait is a bounded poll.
 */

function startApp(env: Record<string, string>): Running {
  // `node dist/app/server.js`, as the image runs it: one process, so signals and the exit code are the appliance's own.
  return run(compiledServer, [], cleanEnv({ VCLERK_HOST: '127.0.0.1', ...env }));
}

async function status(port: number, urlPath: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Polls `urlPath` until it answers `want` (at most `tries` times, 200 ms apart); answers the last status. */
async function until(port: number, urlPath: string, want: number, tries = 300): Promise<number> {
  let last = 0;
  for (let i = 0; i < tries; i++) {
    last = await status(port, urlPath);
    if (last === want) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

function postmasterPid(clusterDir: string): number {
  return Number(fs.readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function killHard(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

describe('database recovery', function () {
  this.timeout(180_000);
  const temps: string[] = [];
  const apps: Running[] = [];

  function tempDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.chmodSync(dir, 0o755);
    temps.push(dir);
    return dir;
  }

  before(() => assertBuilt());

  afterEach(() => {
    for (const app of apps.splice(0)) if (app.child.exitCode === null && app.child.signalCode === null) app.child.kill('SIGKILL');
  });

  after(() => {
    for (const dir of temps) {
      const pidFile = path.join(dir, 'postgres', 'postmaster.pid');
      if (fs.existsSync(pidFile)) killHard(postmasterPid(path.join(dir, 'postgres')));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('embedded: the killed PostgreSQL is started again, /readyz goes 503 then 200, pages work, without restarting the app', async () => {
    const dataDir = tempDir('vclerk-dbrec-');
    const port = await freePort();
    const dbPort = await freePort();
    const app = startApp({ ...(await mediaEnv()), VCLERK_PORT: String(port), VCLERK_DATA_DIR: dataDir, VCLERK_EMBEDDED_DB_PORT: String(dbPort), VCLERK_DB_PROBE_INTERVAL_MS: '300' });
    apps.push(app);
    await app.waitFor(/VClerk is listening/, 120_000);
    assert.equal(await status(port, '/readyz'), 200);

    // Running, the app holds connections as its own role only: none as the owner of the tables.
    const superuser = createKnex(`postgres://vclerk:${encodeURIComponent(fs.readFileSync(path.join(dataDir, 'postgres.password'), 'utf8').trim())}@127.0.0.1:${dbPort}/vclerk`, 1);
    try {
      const { rows } = await superuser.raw("SELECT usename, count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'vclerk' AND pid <> pg_backend_pid() GROUP BY usename");
      const by = Object.fromEntries((rows as { usename: string; n: number }[]).map((r) => [r.usename, r.n]));
      assert.ok((by.vclerk_app ?? 0) > 0, JSON.stringify(by));
      assert.equal(by.vclerk_owner, undefined, JSON.stringify(by));
    } finally {
      await superuser.destroy();
    }
    const clusterDir = fs.realpathSync(path.join(dataDir, 'postgres'));
    const before = postmasterPid(clusterDir);

    killHard(before);
    assert.equal(await until(port, '/readyz', 503, 100), 503, 'not ready while the database is gone');
    assert.equal(await until(port, '/readyz', 200), 200, `ready again; output:\n${app.output().slice(-3000)}`);
    assert.match(app.output(), /embedded PostgreSQL restarted/);
    assert.notEqual(postmasterPid(clusterDir), before, 'a new postmaster runs');
    assert.equal(app.child.exitCode, null, 'the appliance process kept running');
    assert.equal(await status(port, '/login'), 200, 'a page that reads the database answers');
    assert.equal(await status(port, '/healthz'), 200);

    assert.deepEqual(await app.stop(), { code: 0, signal: null }, app.output().slice(-3000));
    assert.match(app.output(), /shutdown complete/);
    assert.match(app.output(), /embedded PostgreSQL stopped/);
  });

  describe('with an external database (a throwaway PostgreSQL, not the shared test server)', () => {
    let server: EmbeddedPostgresHandle;
    let serverDir: string;
    let url: string;

    before(async () => {
      serverDir = tempDir('vclerk-dbrec-ext-');
      server = await startEmbeddedPostgres({ dataDir: serverDir, port: await freePort(), logger: silentLogger });
      await server.createDatabase('vclerk');
      url = server.url('vclerk');
    });

    after(async () => {
      await server?.stop();
    });

    async function ensureUp(): Promise<void> {
      if (!server.alive()) await server.restart();
    }

    function kill(): void {
      killHard(postmasterPid(fs.realpathSync(path.join(serverDir, 'postgres'))));
    }

    async function waitDead(): Promise<void> {
      for (let i = 0; i < 100 && server.alive(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(server.alive(), false);
    }

    it('reconnects once the server is back; /healthz turns 503 after the unhealthy threshold and 200 again', async () => {
      await ensureUp();
      const port = await freePort();
      const app = startApp({ ...(await mediaEnv()), VCLERK_PORT: String(port), DATABASE_URL: url, VCLERK_DB_PROBE_INTERVAL_MS: '300', VCLERK_DB_UNHEALTHY_SECONDS: '1', VCLERK_DB_UNAVAILABLE_EXIT_SECONDS: '0' });
      apps.push(app);
      await app.waitFor(/VClerk is listening/, 120_000);
      assert.equal(await status(port, '/readyz'), 200);
      assert.equal(await status(port, '/healthz'), 200);

      kill();
      await waitDead();
      assert.equal(await until(port, '/readyz', 503, 100), 503);
      assert.equal(await until(port, '/healthz', 503, 100), 503, 'the health check sees the lasting outage');
      assert.match(app.output(), /the database does not answer/);

      await server.restart();
      assert.equal(await until(port, '/readyz', 200), 200, `ready again; output:\n${app.output().slice(-3000)}`);
      assert.equal(await until(port, '/healthz', 200, 100), 200);
      assert.equal(await status(port, '/login'), 200);
      assert.match(app.output(), /the database answers again/);
      assert.equal(app.child.exitCode, null);

      assert.deepEqual(await app.stop(), { code: 0, signal: null }, app.output().slice(-3000));
      assert.match(app.output(), /shutdown complete/);
    });

    it('exits non-zero (for its supervisor to restart it) when the database stays away longer than VCLERK_DB_UNAVAILABLE_EXIT_SECONDS', async () => {
      await ensureUp();
      const port = await freePort();
      const app = startApp({ ...(await mediaEnv()), VCLERK_PORT: String(port), DATABASE_URL: url, VCLERK_DB_PROBE_INTERVAL_MS: '300', VCLERK_DB_UNAVAILABLE_EXIT_SECONDS: '2' });
      apps.push(app);
      await app.waitFor(/VClerk is listening/, 120_000);
      kill();
      await waitDead();
      const { code } = await app.finished();
      assert.equal(code, 1, app.output().slice(-3000));
      assert.match(app.output(), /unreachable too long/);
      assert.match(app.output(), /shutdown complete/);
    });

    it('SIGTERM while the database is down finishes the shutdown and logs "shutdown complete"', async () => {
      await ensureUp();
      const port = await freePort();
      const app = startApp({ ...(await mediaEnv()), VCLERK_PORT: String(port), DATABASE_URL: url, VCLERK_DB_PROBE_INTERVAL_MS: '300', VCLERK_DB_UNAVAILABLE_EXIT_SECONDS: '0' });
      apps.push(app);
      await app.waitFor(/VClerk is listening/, 120_000);
      kill();
      await waitDead();
      assert.equal(await until(port, '/readyz', 503, 100), 503);
      // Bounded: a shutdown that hangs on the dead database ends in SIGKILL and fails here, with the output.
      const exit = await app.stop();
      assert.equal(exit.signal, null, `exited by itself, not killed; output:\n${app.output().slice(-3000)}`);
      assert.match(app.output(), /shutdown complete/);
    });

    it('the job queue (pg-boss) works again after the database came back, without a restart', async () => {
      await ensureUp();
      const knex = createKnex(url, 4);
      const jobs = new JobQueue(knex, silentLogger, { pollingIntervalSeconds: 0.5 });
      try {
        await jobs.start();
        const done: string[] = [];
        await jobs.work<{ n: string }>('recovery.test', async (job) => {
          done.push(job.data.n);
        });
        await jobs.send('recovery.test', { n: 'before' });
        for (let i = 0; i < 100 && !done.includes('before'); i++) await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(done, ['before']);

        kill();
        await waitDead();
        await new Promise((r) => setTimeout(r, 1500)); // a few polls fail meanwhile
        await server.restart();
        let sent: string | null = null;
        for (let i = 0; i < 50 && sent === null; i++) {
          sent = await jobs.send('recovery.test', { n: 'after' }).catch(() => null);
          if (sent === null) await new Promise((r) => setTimeout(r, 200));
        }
        assert.ok(sent, 'a job can be queued again');
        for (let i = 0; i < 100 && !done.includes('after'); i++) await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(done, ['before', 'after'], 'the worker polls again and runs the new job');
      } finally {
        await jobs.stop(1000).catch(() => undefined);
        await knex.destroy();
      }
    });

    it('stopping an embedded server whose process died returns (it used to wait forever for an exit that had happened)', async () => {
      await ensureUp();
      kill();
      await waitDead();
      await server.stop();
      assert.equal(server.alive(), false);
    });
  });

  it('the shutdown goes past a step that hangs (a pool waiting for a dead database) and still completes', async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const closed: string[] = [];
    const lines: string[] = [];
    const logger = { info: (_o: unknown, m?: string) => lines.push(String(m ?? _o)), warn: () => undefined, error: (o: { step?: string }) => lines.push(`error ${o.step}`) };
    let exited: (code: number) => void = () => undefined;
    const exit = new Promise<number>((resolve) => { exited = resolve; });
    const { shutdown } = createShutdown({
      server,
      logger: logger as never,
      timeoutMs: 1000,
      stepTimeoutMs: 200,
      closers: [
        { name: 'job queue', close: () => new Promise<void>(() => undefined) },
        { name: 'database', close: async () => { closed.push('database'); } },
      ],
      exit: (code) => exited(code),
    });
    void shutdown('database unreachable', 1);
    assert.equal(await exit, 1);
    assert.deepEqual(closed, ['database'], 'the steps after the hanging one ran');
    assert.ok(lines.includes('error job queue'), 'the hanging step is logged');
    assert.ok(lines.includes('shutdown complete'));
  });
});
