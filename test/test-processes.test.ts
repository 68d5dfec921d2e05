import assert from 'node:assert/strict';
import { cleanEnv, run } from './support/process';

/**
 * How tests stop the processes they start (test/support/process.ts): a
 * process that hangs on SIGTERM is killed after a grace period, so the test
 * fails on its exit, with the output, instead of timing out with nothing
 * to show (CI at stop 28: the appliance-process test of recording-files
 * hung in `await exited` after SIGTERM until mocha's 180 s ran out).
 */
describe('test processes: stopping is bounded', function () {
  this.timeout(30_000);

  it('a process that ignores SIGTERM is killed after the grace period', async () => {
    const proc = run('-e', ["process.on('SIGTERM', () => console.log('ignored SIGTERM')); console.log('ready'); setInterval(() => {}, 1000);"], cleanEnv({}));
    await proc.waitFor(/^ready$/);
    const exit = await proc.stop(500);
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
    assert.match(proc.output(), /ignored SIGTERM/, 'it got the SIGTERM first');
  });

  it('a process that ends on SIGTERM ends by itself, with its own code', async () => {
    const proc = run('-e', ["process.on('SIGTERM', () => { console.log('bye'); process.exit(0); }); console.log('ready'); setInterval(() => {}, 1000);"], cleanEnv({}));
    await proc.waitFor(/^ready$/);
    assert.deepEqual(await proc.stop(10_000), { code: 0, signal: null });
    assert.match(proc.output(), /bye/);
  });

  it('stopping a process that already ended answers how it ended', async () => {
    const proc = run('-e', ['process.exit(3)'], cleanEnv({}));
    await proc.exited;
    assert.deepEqual(await proc.stop(), { code: 3, signal: null });
  });
});
