import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listMigrationNames } from '../app/db/migrations';
import { createTestDatabase, type TestDatabase } from './support/database';
import { assertBuilt, cleanEnv, compiledCli, compiledServer, freePort, mediaEnv, run } from './support/process';

/** The compiled appliance as a real process: start, configuration errors, restart, shutdown. */
describe('the appliance process', () => {
  let dataDir: string;

  before(() => {
    assertBuilt();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-proc-'));
    fs.chmodSync(dataDir, 0o755);
  });

  after(() => {
    // Never leave a PostgreSQL behind, even if a test failed half-way.
    const pidFile = path.join(dataDir, 'data', 'postgres', 'postmaster.pid');
    if (fs.existsSync(pidFile)) {
      try { process.kill(Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGKILL'); } catch { /* already gone */ }
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses a bad configuration: names every bad key and exits non-zero without starting', async () => {
    const proc = run(compiledServer, [], cleanEnv({ VCLERK_PORT: 'eighty', VCLERK_LOG_LEVL: 'debug', DATABASE_URL: 'mysql://u:Secr3tPw@h/d' }));
    const { code } = await proc.finished();
    assert.equal(code, 78);
    const out = proc.output();
    assert.match(out, /Invalid configuration/);
    assert.match(out, /VCLERK_PORT \(port\): must be a whole number/);
    assert.match(out, /VCLERK_LOG_LEVL: unknown setting \(did you mean VCLERK_LOG_LEVEL\?\)/);
    assert.match(out, /DATABASE_URL \(databaseUrl\): must be a URL/);
    assert.doesNotMatch(out, /Secr3tPw/);
    assert.ok(!fs.existsSync(path.join(dataDir, 'data')), 'nothing was created');
  });

  it('starts with the embedded PostgreSQL, is ready, and shuts down cleanly on SIGTERM', async () => {
    const port = await freePort();
    const env = cleanEnv({ ...(await mediaEnv()), VCLERK_PORT: String(port), VCLERK_HOST: '127.0.0.1', VCLERK_DATA_DIR: path.join(dataDir, 'data'), VCLERK_EMBEDDED_DB_PORT: String(await freePort()) });
    const proc = run(compiledServer, [], env);
    await proc.waitFor(/VClerk is listening/);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', database: 'ok', migrations: 'current' });
    assert.match(proc.output(), /"applied":\["20261129070000_create_appliance_info"/);
    assert.ok(fs.existsSync(path.join(dataDir, 'data', 'postgres', 'PG_VERSION')), 'the cluster lives under the data directory');

    // First run: a one-time setup link is logged, and it opens the setup form.
    const line = await proc.waitFor(/not set up yet/);
    const link = JSON.parse(line).setupLink as string;
    assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${port}/setup/[A-Za-z0-9_-]{43}$`));
    const setup = await fetch(link);
    assert.equal(setup.status, 200);
    assert.match(await setup.text(), /Set up VClerk/);
    const token = link.split('/').pop()!;
    await proc.waitFor(/"url":"\/setup\/\[redacted\]"/);
    const mentions = proc.output().split('\n').filter((l) => l.includes(token));
    assert.deepEqual(mentions, [line], 'the token is in the announcement only, never in request logs');

    assert.deepEqual(await proc.stop(), { code: 0, signal: null }, proc.output());
    assert.match(proc.output(), /embedded PostgreSQL stopped/);
    assert.match(proc.output(), /shutdown complete/);
    // The node registry: registered at start, marked stopped by the clean shutdown.
    assert.match(proc.output(), /"msg":"node registered"/);
    assert.match(proc.output(), /"msg":"node marked stopped"/);
    assert.ok(!fs.existsSync(path.join(dataDir, 'data', 'postgres', 'postmaster.pid')), 'PostgreSQL has stopped');
    for (const line of proc.output().split('\n').filter(Boolean)) {
      assert.doesNotThrow(() => JSON.parse(line), `log lines are JSON: ${line}`);
    }
    assert.doesNotMatch(proc.output(), new RegExp(fs.readFileSync(path.join(dataDir, 'data', 'postgres.password'), 'utf8').trim()));
  });

  it('recovers after a crash: the next start takes over the orphaned database and keeps the data', async () => {
    const port = await freePort();
    const dbPort = String(await freePort());
    const env = cleanEnv({ ...(await mediaEnv()), VCLERK_PORT: String(port), VCLERK_HOST: '127.0.0.1', VCLERK_DATA_DIR: path.join(dataDir, 'data'), VCLERK_EMBEDDED_DB_PORT: dbPort });
    const first = run(compiledServer, [], env);
    await first.waitFor(/VClerk is listening/);
    first.child.kill('SIGKILL');
    await first.exited;
    assert.ok(fs.existsSync(path.join(dataDir, 'data', 'postgres', 'postmaster.pid')), 'the crash left PostgreSQL running');

    const second = run(compiledServer, [], env);
    await second.waitFor(/VClerk is listening/);
    assert.match(second.output(), /left running by an earlier VClerk process/);
    assert.match(second.output(), /database schema is current/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    second.child.kill('SIGINT');
    assert.equal((await second.finished()).code, 0, second.output());
  });

  describe('with DATABASE_URL', () => {
    let db: TestDatabase;
    before(async () => {
      db = await createTestDatabase({ migrated: false });
    });
    after(async () => db.drop());

    it('`vclerk migrate` migrates that database, and the server starts on it', async () => {
      const env = cleanEnv({ DATABASE_URL: db.url });
      const status = run(compiledCli, ['migrate', 'status'], env);
      assert.equal((await status.finished()).code, 0, status.output());
      assert.match(status.output(), new RegExp(`0 applied, ${listMigrationNames().length} pending`));

      const migrate = run(compiledCli, ['migrate'], env);
      assert.equal((await migrate.finished()).code, 0, migrate.output());
      assert.match(migrate.output(), new RegExp(`applied ${listMigrationNames().length} migration`));

      const port = await freePort();
      const server = run(compiledServer, [], { ...env, ...(await mediaEnv()), VCLERK_PORT: String(port), VCLERK_HOST: '127.0.0.1' });
      await server.waitFor(/VClerk is listening/);
      assert.match(server.output(), /"embeddedDatabase":false/);
      const password = decodeURIComponent(new URL(db.url).password);
      if (password) assert.ok(!server.output().includes(password), 'the database password is never logged');
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
      assert.deepEqual(await server.stop(), { code: 0, signal: null }, server.output());
    });

    it('`vclerk config check` reports a bad setting with exit code 78', async () => {
      const check = run(compiledCli, ['config', 'check'], cleanEnv({ VCLERK_SHUTDOWN_TIMEOUT_MS: '-1' }));
      assert.equal((await check.finished()).code, 78, check.output());
      assert.match(check.output(), /VCLERK_SHUTDOWN_TIMEOUT_MS/);
    });
  });
});
