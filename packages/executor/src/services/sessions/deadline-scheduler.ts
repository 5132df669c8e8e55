/**
 * One timer for every session of a server: keys with a due time (epoch ms) in a binary min-heap,
 * one `setTimeout` armed for the earliest. Rescheduling a key does not search the heap: the old
 * entry stays and is skipped when it comes up (its version is stale), so every operation is
 * O(log n) and a heartbeat (which does not reschedule at all, see SessionService) is O(1).
 */

/** How the scheduler waits; tests pass a fake that they advance by hand. */
export interface SchedulerTimers {
  now(): number;
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: SchedulerTimers = {
  now: () => Date.now(),
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface Entry {
  at: number;
  key: string;
  version: number;
}

/** Longest single wait: setTimeout overflows past 2^31-1 ms, and a long wait should re-check the clock anyway. */
const MAX_WAIT_MS = 60_000;

export class DeadlineScheduler {
  private readonly heap: Entry[] = [];
  private readonly versions = new Map<string, number>();
  private timer: unknown;
  private armedAt = Infinity;
  private closed = false;

  constructor(
    private readonly timers: SchedulerTimers,
    private readonly fire: (key: string, now: number) => void,
  ) {}

  /** (Re)schedules `key` at `at`; the previous time of the key no longer counts. */
  schedule(key: string, at: number): void {
    if (this.closed) return;
    const version = (this.versions.get(key) ?? 0) + 1;
    this.versions.set(key, version);
    this.push({ at, key, version });
    if (at < this.armedAt) this.arm();
  }

  cancel(key: string): void {
    this.versions.delete(key);
  }

  get size(): number {
    return this.versions.size;
  }

  /** Fires every key due at `now` (the timer calls this; tests may too). */
  runDue(now = this.timers.now()): void {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.at > now) break;
      this.pop();
      if (this.versions.get(top.key) !== top.version) continue; // rescheduled or cancelled
      this.versions.delete(top.key);
      this.fire(top.key, now);
    }
    this.arm();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    this.heap.length = 0;
    this.versions.clear();
  }

  private arm(): void {
    if (this.closed) return;
    // Drop stale entries at the top so the timer is armed for a live one.
    while (this.heap.length > 0 && this.versions.get(this.heap[0]!.key) !== this.heap[0]!.version) this.pop();
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    const top = this.heap[0];
    if (top === undefined) {
      this.armedAt = Infinity;
      return;
    }
    this.armedAt = top.at;
    const wait = Math.min(MAX_WAIT_MS, Math.max(0, top.at - this.timers.now()));
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      this.armedAt = Infinity;
      this.runDue();
    }, wait);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= e.at) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= last.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
