import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ENGINE, must, requiredEnv, run, setupLinkIn, sleep } from '../support/compose';
import { freePort } from '../support/process';

/**
 * The image on its own, without DATABASE_URL: VClerk starts its embedded
 * PostgreSQL in the data volume, read-only root file system, as uid 10001.
 */
describe('the image without DATABASE_URL (embedded PostgreSQL in the volume)', function () {
  this.timeout(300_000);
  const name = `vclerk-ci-embedded-${crypto.randomBytes(4).toString('hex')}`;

  after(async () => {
    await run([ENGINE, 'rm', '--force', '--volumes', name]);
    await run([ENGINE, 'volume', 'rm', '--force', `${name}-data`]);
  });

  it('starts, serves its pages and stops cleanly', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    await must([ENGINE, 'run', '--detach', '--name', name, '--init', '--read-only', '--tmpfs', '/tmp',
      '--publish', `127.0.0.1:${port}:8080`, '--volume', `${name}-data:/var/lib/vclerk`,
      '--env', `VCLERK_PUBLIC_URL=${base}`, requiredEnv('VCLERK_TEST_IMAGE')]);
    let ready = false;
    for (let i = 0; i < 120 && !ready; i++) {
      ready = await fetch(`${base}/readyz`).then((r) => r.status === 200, () => false);
      if (!ready) await sleep(1000);
    }
    const logs = await run([ENGINE, 'logs', name]);
    assert.ok(ready, `/readyz never answered 200:\n${logs.stdout}${logs.stderr}`);
    const link = setupLinkIn(logs.stdout + logs.stderr);
    assert.ok(link?.startsWith(`${base}/setup/`), 'the setup link is logged');
    const page = await fetch(link!);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /name="organisation_name"/);
    assert.equal((await must([ENGINE, 'exec', name, 'id', '-u'])).trim(), '10001');
    await must([ENGINE, 'stop', '--time', '30', name], 120_000);
    const exit = (await must([ENGINE, 'inspect', '--format', '{{.State.ExitCode}}', name])).trim();
    assert.equal(exit, '0');
  });
});
