import assert from 'node:assert/strict';
import { once } from 'node:events';
import { RoomRegistry, WorkerPool } from '../media';
import { startTestPool } from './support/media-pool';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A room moving to a new router after its worker died (media/room.ts reset), and what ends meanwhile. */
describe('media room reset after a worker died', function () {
  this.timeout(30_000);
  let pool: WorkerPool;
  let rooms: RoomRegistry;

  before(async () => {
    ({ pool, rooms } = await startTestPool());
  });
  after(async () => {
    await rooms?.closeAll();
    await pool?.close();
  });

  async function killWorker(): Promise<void> {
    const replaced = once(pool, 'workerDied');
    process.kill(pool.describe()[0]!.pid, 'SIGKILL');
    await replaced;
  }

  it('moves every open room to a router on the new worker and tells it (reset)', async () => {
    const a = await rooms.get('reset-a');
    const b = await rooms.get('reset-b');
    const resets = [once(a, 'reset'), once(b, 'reset')];
    const before = [a.routerId, b.routerId];
    await killWorker();
    await Promise.all(resets);
    assert.notDeepEqual([a.routerId, b.routerId], before);
    assert.deepEqual([a.routerClosed, b.routerClosed], [false, false]);
    assert.equal(pool.describe()[0]!.routers, 2);
    a.close();
    b.close();
    assert.equal(pool.describe()[0]!.routers, 0);
  });

  it('leaves no router behind for a room closed while it is being reset (the call ended meanwhile)', async () => {
    const room = await rooms.get('reset-closing');
    let resetEmitted = false;
    room.on('reset', () => (resetEmitted = true));
    const died = new Promise<void>((resolve) => pool.once('workerDied', () => resolve()));
    process.kill(pool.describe()[0]!.pid, 'SIGKILL');
    await died;
    // The registry has started the reset (a new router is being made); the call ends now.
    room.close();
    await sleep(500);
    assert.equal(pool.describe()[0]!.routers, 0, 'the router made for the closed room is closed too');
    assert.equal(resetEmitted, false, 'a closed room tells nobody to join again');
    assert.equal(rooms.size, 0);
  });
});
