import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from './support/database';
import { assertBuilt, cleanEnv, compiledServer, freePort, mediaEnv, run } from './support/process';

/**
 * A SIGTERM at any moment of the start ends the appliance by itself: during
 * the start-up (exit 1, what had started stopped) or once it runs (the
 * graceful shutdown, exit 0). Found in CI: a SIGTERM sent as soon as "VClerk
 * is listening" was logged was lost in most runs (the process went on until
 * SIGKILL), because the boot swapped its start-up listener for the
 * shutdown's, and the moment no listener was left Node closed its signal
 * handle, dropping a signal caught but not yet handled (and restoring the
 * default action). `docker compose stop` right after a start waited out its
 * grace period and killed the appliance.
 */
describe('the appliance process: a signal at any moment of the start', function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let dataDir: string;

  before(async () => {
    assertBuilt();
    db = await createTestDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-signals-'));
  });
  after(async () => {
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function signalWhen(pattern: RegExp) {
    const app = run(compiledServer, [], cleanEnv({ ...(await mediaEnv()), VCLERK_HOST: '127.0.0.1', VCLERK_PORT: String(await freePort()), VCLERK_DATA_DIR: dataDir, DATABASE_URL: db.url }));
    try {
      await app.waitFor(pattern, 120_000);
      // SIGTERM at once (the process is most likely still in the same turn of its event loop), SIGKILL 20 s later.
      return { exit: await app.stop(20_000), output: app.output() };
    } finally {
      await app.stop(1000);
    }
  }

  it('a SIGTERM as soon as it listens ends it by itself (graceful or as an interrupted start), every time', async () => {
    for (let i = 0; i < 6; i++) {
      const { exit, output } = await signalWhen(/VClerk is listening/);
      assert.equal(exit.signal, null, `run ${i}: ended by itself, not killed; output:\n${output.slice(-3000)}`);
      assert.ok(exit.code === 0 || exit.code === 1, `run ${i}: exit ${JSON.stringify(exit)}`);
      assert.match(output, exit.code === 0 ? /shutdown complete/ : /interrupted during start-up/, `run ${i}: exit ${JSON.stringify(exit)}; output:\n${output.slice(-3000)}`);
    }
  });

  it('a SIGTERM while the database phase runs ends the start-up: exit 1, what had started stopped', async () => {
    const { exit, output } = await signalWhen(/database schema is current/);
    assert.deepEqual(exit, { code: 1, signal: null }, output.slice(-3000));
    assert.match(output, /interrupted during start-up/);
    assert.doesNotMatch(output, /VClerk is listening/);
  });
});
