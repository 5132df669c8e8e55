/**
 * Kubernetes' readiness counting, and nothing else (no time, no probes), so it can be tested
 * round by round.
 *
 * - A round passes when every probe passed in it.
 * - `consecutiveSuccesses` counts passing rounds since the last failing one, and the reverse for
 *   `consecutiveFailures`: a result resets the opposite counter to 0.
 * - Not ready at first. Ready once `consecutiveSuccesses` reaches `successThreshold`; not ready
 *   again once `consecutiveFailures` reaches `failureThreshold`. Between the two, readiness
 *   stays what it was: a ready instance with one failing round (under the failure threshold)
 *   is still ready, and a not-ready one with one passing round (under the success threshold)
 *   is still not ready.
 */
export class ReadinessTracker {
  ready = false;
  checksPerformed = 0;
  consecutiveSuccesses = 0;
  consecutiveFailures = 0;

  constructor(
    readonly successThreshold: number,
    readonly failureThreshold: number,
  ) {
    if (!(successThreshold >= 1 && failureThreshold >= 1)) throw new RangeError('thresholds must be at least 1');
  }

  /** Counts one round; returns whether the instance is ready after it. */
  record(passed: boolean): boolean {
    this.checksPerformed++;
    if (passed) {
      this.consecutiveSuccesses++;
      this.consecutiveFailures = 0;
      if (this.consecutiveSuccesses >= this.successThreshold) this.ready = true;
    } else {
      this.consecutiveFailures++;
      this.consecutiveSuccesses = 0;
      if (this.consecutiveFailures >= this.failureThreshold) this.ready = false;
    }
    return this.ready;
  }

  /** `failureThreshold` consecutive rounds failed (what ends a wait with stop_on_failure). */
  get failed(): boolean {
    return this.consecutiveFailures >= this.failureThreshold;
  }
}
