import assert from 'node:assert/strict';
import { RequestGate } from '../app/calls/request-gate';

/** The order in which the hub's gate lets waiting module requests in (unit: no database). */
describe('RequestGate', () => {
  const tick = () => new Promise((r) => setImmediate(r));

  it('lets in at most its size, then calm calls in turn, then flooding ones', async () => {
    const gate = new RequestGate(1);
    const first = await gate.enter('a', false);
    const order: string[] = [];
    const wait = (call: string, flooding: boolean, label: string) => gate.enter(call, flooding).then((release) => {
      order.push(label);
      return release;
    });
    // Call a queues three, b one, c one; a flooder of f queues first of all.
    const entries = [wait('f', true, 'f1'), wait('a', false, 'a1'), wait('a', false, 'a2'), wait('a', false, 'a3'), wait('b', false, 'b1'), wait('c', false, 'c1')];
    await tick();
    assert.equal(gate.waiting, 6);
    assert.deepEqual(order, []);
    first();
    first(); // a second release changes nothing
    const labels = ['f1', 'a1', 'a2', 'a3', 'b1', 'c1'];
    for (let i = 0; i < entries.length; i++) {
      await tick();
      assert.equal(order.length, i + 1, 'one holder at a time');
      // The holder leaves; the next comes in.
      (await entries[labels.indexOf(order[i]!)]!)();
    }
    await tick();
    assert.deepEqual(order, ['a1', 'b1', 'c1', 'a2', 'a3', 'f1']);
    assert.equal(gate.waiting, 0);
  });

  it('refuses a size below one', () => {
    assert.throws(() => new RequestGate(0));
  });
});
