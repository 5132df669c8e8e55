import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FaasError } from '@faas/protocol/errors';
import { backoffDelay, isRetryableFailure, sleep } from './retry-policy.ts';

describe('backoffDelay', () => {
  test('starts near the base delay and doubles per attempt', () => {
    const low = { random: () => 0 };
    const high = { random: () => 0.999999 };
    assert.equal(backoffDelay(0, low), 50);
    assert.ok(backoffDelay(0, high) <= 100);
    assert.equal(backoffDelay(1, low), 100);
    assert.equal(backoffDelay(2, low), 200);
  });

  test('never exceeds the 2 s cap, however many attempts', () => {
    for (let attempt = 0; attempt < 100; attempt++) {
      for (const r of [0, 0.5, 0.999999]) {
        const delay = backoffDelay(attempt, { random: () => r });
        assert.ok(delay <= 2_000, `attempt ${attempt}: ${delay}`);
        assert.ok(delay >= 25, `attempt ${attempt}: ${delay}`);
      }
    }
  });

  test('jitters: the same attempt gives different delays', () => {
    const delays = new Set(Array.from({ length: 20 }, () => backoffDelay(3)));
    assert.ok(delays.size > 1);
  });
});

describe('isRetryableFailure', () => {
  test('retries connection failures and capacity or shutdown codes', () => {
    assert.equal(isRetryableFailure(new FaasError('CONNECTION_FAILED', 'x')), true);
    assert.equal(isRetryableFailure(new FaasError('CAPACITY_EXHAUSTED', 'x')), true);
    assert.equal(isRetryableFailure(new FaasError('SHUTTING_DOWN', 'x')), true);
  });

  test('retries 502, 503 and 504 whatever the code', () => {
    for (const status of [502, 503, 504]) assert.equal(isRetryableFailure(new FaasError('INTERNAL_ERROR', 'x', {}, { status })), true);
  });

  test('does not retry a client timeout, other 4xx or 500', () => {
    assert.equal(isRetryableFailure(new FaasError('CLIENT_TIMEOUT', 'x')), false);
    assert.equal(isRetryableFailure(new FaasError('VALIDATION_FAILED', 'x')), false);
    assert.equal(isRetryableFailure(new FaasError('INSTANCE_NOT_FOUND', 'x')), false);
    assert.equal(isRetryableFailure(new FaasError('INTERNAL_ERROR', 'x')), false);
    assert.equal(isRetryableFailure(new Error('plain')), false);
  });
});

describe('sleep', () => {
  test('rejects at once when the signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 10);
    await assert.rejects(sleep(10_000, controller.signal), { name: 'AbortError' });
    assert.ok(Date.now() - started < 1_000);
  });
});
