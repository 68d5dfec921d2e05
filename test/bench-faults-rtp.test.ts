import assert from 'node:assert/strict';
import { workerRtpKill } from '../bench/faults-worker-rtp';
import { DEFAULT_CLIP } from '../bench/load/clip';

/**
 * `npm run bench:faults -- --only worker-rtp` in small: kill -9 of the media
 * worker under 2 calls of replayed RTP (no browsers); the pool replaces the
 * worker, every room is reset, the simulated clients join again and both
 * directions' audio and video arrive again, without loss after the recovery.
 */
describe('fault: kill -9 of the media worker under RTP calls (bench/faults-worker-rtp.ts)', function () {
  // About 8 s, plus about 8 s the first time on a machine (ffmpeg encodes the 4 s clip, then it is cached).
  this.timeout(40_000);

  it('brings media back to every call, both directions, audio and video', async () => {
    const r = await workerRtpKill({ calls: 2, boundMs: 15_000, holdSeconds: 1, clip: { ...DEFAULT_CLIP, seconds: 4 }, log: () => undefined });
    assert.deepEqual(r.mediaAgainMs.map((t) => t !== null), [true, true], `media again per call (ms after the kill): ${JSON.stringify(r.mediaAgainMs)}`);
    assert.ok(r.replacedPid !== undefined && r.replacedPid !== r.killedPid, 'the worker was replaced');
    assert.equal(r.roomsReset, 2, 'both rooms were reset');
    assert.equal(r.routersOnReplaced, 2, 'both rooms have a router on the new worker');
    assert.ok(r.workerReplacedMs !== undefined && r.roomsResetMs !== undefined && r.rejoinedMs !== undefined);
    assert.equal(r.before.silent, 0, 'every stream flowed before the kill');
    assert.equal(r.after?.silent, 0, 'every stream flows after the recovery');
    // Loopback under a busy CI machine: a packet or two may go; a stream that did not come back would be 100 %.
    assert.ok(r.after!.lossMean < 5, `loss after the recovery ${r.after!.lossMean.toFixed(2)} %`);
  });
});
