import assert from 'node:assert/strict';
import { cleanEnv, run } from './support/process';

/**
 * How tests stop and wait for the processes they start
 * (test/support/process.ts): a process that hangs on SIGTERM is killed
 * after a grace period, and one that should end by itself but does not is
 * killed after a timeout, so the test fails on its exit, with the output,
 * instead of timing out with nothing to show (CI at stop 28: the appliance-process test of recording-files
 * hung in `await exited` after SIGTERM until mocha's 180 s ran out).
 */
describe('test processes: stopping and waiting are bounded', function () {
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
    assert.deepEqual(await proc.finished(), { code: 3, signal: null });
    assert.deepEqual(await proc.stop(), { code: 3, signal: null });
  });

  it('waiting for a process to end by itself is bounded: one that does not is killed and the wait fails with its output', async () => {
    const proc = run('-e', ["console.log('still here'); setInterval(() => {}, 1000);"], cleanEnv({}));
    await proc.waitFor(/still here/);
    await assert.rejects(proc.finished(300), /did not end within 300 ms \(killed\); output:\nstill here/);
    assert.deepEqual(await proc.exited, { code: null, signal: 'SIGKILL' });
  });
});
