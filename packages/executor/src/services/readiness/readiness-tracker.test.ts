import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReadinessTracker } from './readiness-tracker.ts';

/** Feeds a sequence of round results ('+' pass, '-' fail) and returns readiness after each. */
function run(successThreshold: number, failureThreshold: number, rounds: string): string {
  const tracker = new ReadinessTracker(successThreshold, failureThreshold);
  return [...rounds].map((r) => (tracker.record(r === '+') ? 'R' : '.')).join('');
}

describe('ReadinessTracker (Kubernetes readiness counting)', () => {
  it('starts not ready and becomes ready on the first pass with success_threshold 1', () => {
    assert.equal(run(1, 3, '-+'), '.R');
  });

  it('becomes ready only after success_threshold consecutive passes; a failure in between resets the count', () => {
    assert.equal(run(3, 3, '++-+++'), '.....R');
    assert.equal(run(2, 1, '+-++'), '...R');
  });

  it('stays ready through fewer than failure_threshold consecutive failures; a pass resets the failure count', () => {
    assert.equal(run(1, 3, '+--+--+'), 'RRRRRRR');
  });

  it('becomes not ready after failure_threshold consecutive failures, and needs success_threshold passes again', () => {
    assert.equal(run(2, 2, '++--+++'), '.RR..RR');
    assert.equal(run(1, 1, '+-+-'), 'R.R.');
  });

  it('counts checks and consecutive results, the opposite counter reset to 0', () => {
    const tracker = new ReadinessTracker(1, 3);
    for (const r of '++-') tracker.record(r === '+');
    assert.deepEqual([tracker.checksPerformed, tracker.consecutiveSuccesses, tracker.consecutiveFailures, tracker.ready, tracker.failed], [3, 0, 1, true, false]);
    tracker.record(false);
    tracker.record(false);
    assert.deepEqual([tracker.consecutiveSuccesses, tracker.consecutiveFailures, tracker.ready, tracker.failed], [0, 3, false, true]);
    tracker.record(true);
    assert.deepEqual([tracker.consecutiveSuccesses, tracker.consecutiveFailures, tracker.ready, tracker.failed], [1, 0, true, false]);
  });

  it('refuses thresholds below 1', () => {
    assert.throws(() => new ReadinessTracker(0, 3), RangeError);
    assert.throws(() => new ReadinessTracker(1, -1), RangeError);
  });
});
