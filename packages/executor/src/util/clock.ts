/** Wall time for records and a monotonic clock for durations; injected so tests can control them. */
export interface Clock {
  now(): Date;
  /** Monotonic milliseconds with sub-ms precision. */
  monotonicMs(): number;
}

export const systemClock: Clock = {
  now: () => new Date(),
  monotonicMs: () => Number(process.hrtime.bigint()) / 1e6,
};
