import assert from 'node:assert/strict';
import { MediaStallWatch, STALL_MS, type ConsumerActivity } from '../client/call/stall';

/**
 * The call page's media watch (client/call/stall.ts): "stalled" when none
 * of the other side's unpaused consumers received a packet for STALL_MS,
 * never for paused media or no media at all, and no longer once packets
 * arrive again. Samples are fed by hand with a fake clock.
 */
describe('media stall watch (call client)', () => {
  const realNow = Date.now;
  let now = 1_000_000;
  before(() => {
    Date.now = () => now;
  });
  after(() => {
    Date.now = realNow;
  });

  function watch() {
    let sample: ConsumerActivity[] = [];
    const changes: boolean[] = [];
    const w = new MediaStallWatch(async () => sample, (stalled) => changes.push(stalled));
    return { w, changes, set: (s: ConsumerActivity[]) => (sample = s) };
  }

  it('stalls when every active consumer stops receiving, and recovers when packets come back', async () => {
    const { w, changes, set } = watch();
    set([{ id: 'a', active: true, packets: 10 }, { id: 'v', active: true, packets: 100 }]);
    await w.check();
    now += STALL_MS - 1;
    await w.check();
    assert.equal(w.isStalled, false, 'not before the limit');
    now += 1;
    await w.check();
    assert.equal(w.isStalled, true);
    set([{ id: 'a', active: true, packets: 11 }, { id: 'v', active: true, packets: 100 }]);
    now += 500;
    await w.check();
    assert.equal(w.isStalled, false);
    assert.deepEqual(changes, [true, false]);
  });

  it('one source still flowing is enough; paused media and no media are no stall', async () => {
    const { w, set } = watch();
    set([{ id: 'a', active: true, packets: 10 }, { id: 'v', active: true, packets: 100 }]);
    await w.check();
    for (let i = 1; i <= 6; i++) {
      now += 500;
      set([{ id: 'a', active: true, packets: 10 + i }, { id: 'v', active: true, packets: 100 }]);
      await w.check();
    }
    assert.equal(w.isStalled, false, 'the audio still flows');
    set([{ id: 'a', active: false, packets: 16 }, { id: 'v', active: false, packets: 100 }]);
    now += STALL_MS * 2;
    await w.check();
    assert.equal(w.isStalled, false, 'the other side paused both');
    set([]);
    await w.check();
    assert.equal(w.isStalled, false, 'nothing to receive');
  });

  it('media that resumes gets the full limit before it counts as stalled', async () => {
    const { w, set } = watch();
    set([{ id: 'v', active: false, packets: 100 }]);
    await w.check();
    now += STALL_MS * 3;
    set([{ id: 'v', active: true, packets: 100 }]);
    await w.check();
    assert.equal(w.isStalled, false);
    now += STALL_MS;
    await w.check();
    assert.equal(w.isStalled, true);
  });
});
