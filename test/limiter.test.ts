import assert from 'node:assert/strict';
import { clientKey, RefusalLimiter } from '../app/http/limiter';

describe('per-client refusal limits', () => {
  it('count an IPv6 client by its /64, an IPv4-mapped address as IPv4', () => {
    assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), clientKey('2001:0db8:0001:0002::9'));
    assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'));
    assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey(undefined), 'unknown');
  });

  it('a client rotating addresses within its /64 shares one bucket; another network has its own', () => {
    let now = 0;
    const limiter = new RefusalLimiter({ burst: 3, perMinute: 1 }, () => now);
    const taken = Array.from({ length: 5 }, (_, i) => limiter.take('link', `2001:db8:1:2::${i + 1}`).ok);
    assert.deepEqual(taken, [true, true, true, false, false]);
    assert.equal(limiter.take('link', '2001:db8:1:3::1').ok, true);
    now += 60_000;
    assert.equal(limiter.take('link', '2001:db8:1:2::99').ok, true, 'refilled after a minute');
  });

  it('a refunded token comes back (accepted requests do not use the bucket up)', () => {
    const limiter = new RefusalLimiter({ burst: 1, perMinute: 1 }, () => 0);
    const slot = limiter.take('link', '192.0.2.1');
    assert.ok(slot.ok);
    slot.refund();
    assert.equal(limiter.take('link', '192.0.2.1').ok, true);
  });
});
