import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressLimiter } from './address-limiter.ts';

describe('AddressLimiter', () => {
  it('blocks an address past its failures within the window, for one window, and only that address', () => {
    let t = 0;
    const limiter = new AddressLimiter({ maxFailures: 3, windowMs: 1000, now: () => t });
    for (let i = 0; i < 3; i++) limiter.recordFailure('a');
    assert.equal(limiter.retryAfterMs('a'), 0, 'at the limit, not past it');
    limiter.recordFailure('a');
    assert.equal(limiter.retryAfterMs('a'), 1000);
    assert.equal(limiter.retryAfterMs('b'), 0);
    t = 999;
    assert.equal(limiter.retryAfterMs('a'), 1);
    t = 1000;
    assert.equal(limiter.retryAfterMs('a'), 0);
  });

  it('forgets failures older than the window', () => {
    let t = 0;
    const limiter = new AddressLimiter({ maxFailures: 2, windowMs: 100, now: () => t });
    limiter.recordFailure('a');
    limiter.recordFailure('a');
    t = 150;
    limiter.recordFailure('a');
    assert.equal(limiter.retryAfterMs('a'), 0);
  });

  it('a successful login clears the record', () => {
    const limiter = new AddressLimiter({ maxFailures: 1, windowMs: 1000, now: () => 0 });
    limiter.recordFailure('a');
    limiter.recordSuccess('a');
    limiter.recordFailure('a');
    assert.equal(limiter.retryAfterMs('a'), 0);
  });

  it('keeps at most maxAddresses entries (rotating addresses cannot grow memory)', () => {
    const limiter = new AddressLimiter({ maxFailures: 5, windowMs: 1000, maxAddresses: 100, now: () => 0 });
    for (let i = 0; i < 1000; i++) limiter.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(limiter.size, 100);
  });
});
