/**
 * Back-off per client address for failed SSH logins: more than `maxFailures` failures within
 * `windowMs` and the address is refused (before any key check) until the window has passed.
 * Per-connection limits alone do not stop a client that reconnects for every guess. (The
 * gateway records one failure per connection that had any, see auth.ts.)
 *
 * Memory is bounded: at most `maxAddresses` are tracked; past that the stalest entry goes
 * (an attacker rotating addresses cannot grow the map, only forget its own older entries).
 */
export interface AddressLimiterOptions {
  /** @default 20 */
  maxFailures?: number;
  /** @default 60_000 */
  windowMs?: number;
  /** @default 10_000 */
  maxAddresses?: number;
  /** Monotonic milliseconds. @default performance.now */
  now?: () => number;
}

interface Entry {
  /** Times of the failures inside the window, oldest first. */
  failures: number[];
  /** Refused until then (monotonic ms); 0 when not blocked. */
  blockedUntil: number;
}

export class AddressLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;

  constructor(options: AddressLimiterOptions = {}) {
    this.maxFailures = options.maxFailures ?? 20;
    this.windowMs = options.windowMs ?? 60_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
    this.now = options.now ?? (() => performance.now());
  }

  /** Milliseconds the address must still wait, or 0 when it may try. */
  retryAfterMs(address: string): number {
    const entry = this.entries.get(address);
    if (entry === undefined) return 0;
    const left = entry.blockedUntil - this.now();
    return left > 0 ? Math.ceil(left) : 0;
  }

  recordFailure(address: string): void {
    const t = this.now();
    let entry = this.entries.get(address);
    if (entry === undefined) {
      if (this.entries.size >= this.maxAddresses) this.evictStalest();
      entry = { failures: [], blockedUntil: 0 };
    } else {
      // Re-insert: the map's order is then least recently failed first (see evictStalest).
      this.entries.delete(address);
    }
    this.entries.set(address, entry);
    while (entry.failures.length > 0 && entry.failures[0]! <= t - this.windowMs) entry.failures.shift();
    entry.failures.push(t);
    if (entry.failures.length > this.maxFailures) {
      entry.blockedUntil = t + this.windowMs;
      entry.failures = [];
    }
  }

  /** A successful login clears the address's record (a user who mistyped is not punished later). */
  recordSuccess(address: string): void {
    this.entries.delete(address);
  }

  get size(): number {
    return this.entries.size;
  }

  private evictStalest(): void {
    const t = this.now();
    for (const [address, entry] of this.entries) {
      // Prefer an entry that no longer matters; else the least recently failed one.
      if (entry.blockedUntil <= t) {
        this.entries.delete(address);
        return;
      }
    }
    const first = this.entries.keys().next();
    if (first.done !== true) this.entries.delete(first.value);
  }
}
