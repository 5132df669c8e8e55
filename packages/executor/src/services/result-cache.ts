import { createHash, type Hash } from 'node:crypto';
import type { CacheStats, ExecutionStatus, ExitReason, InvalidateCacheRequest } from '@faas/protocol';
import type { ExecutorConfig } from '../config.ts';
import type { Store } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';

/** Names the key encoding; a change to the encoding changes this, so old entries simply miss. */
export const RESULT_CACHE_KEY_VERSION = 'faas/result-cache/v1';

/**
 * Everything that determines the result of a `cached` execution, as it will actually be run
 * (after defaults and validation). See docs/execution-modes.md for the exact encoding.
 */
export interface CacheKeyInput {
  /** Environment name, e.g. "host". */
  env: string;
  /** Hash of what the environment provides (the `identity` of `GET /environments`). */
  environmentIdentity: string;
  /** Runtime name, e.g. "bwrap". */
  runtime: string;
  /** The resolved argv: `command`, or for `code` the interpreter argv ending with the code. */
  argv: readonly string[];
  /** The request's environment variables (not the ones the server sets, like the execution id). */
  envVars: Readonly<Record<string, string>>;
  workingDir: string;
  /** Bytes written to stdin; a string is taken as UTF-8. Absent and empty are different keys. */
  stdin: string | Uint8Array | undefined;
  timeoutMs: number;
  /** The limits as applied (defaults filled in). */
  limits: { memory_mb: number; cpu_cores: number; pids_max: number };
  /** Absent (undefined or null) and "" are different keys. */
  cacheKey: string | null | undefined;
  cacheFailures: boolean;
}

/** What {@link ResultCache.isCacheable} looks at: fields of the finished Execution wire object. */
export interface CacheableExecution {
  status: ExecutionStatus;
  exit_reason: ExitReason | null;
  exit_code: number | null;
  output_truncated: boolean;
}

/** A prom-client Counter fits. */
export interface CounterLike {
  inc(value?: number): void;
}

/** Optional metrics the cache bumps besides its own in-memory counts. */
export interface ResultCacheCounters {
  hits?: CounterLike;
  misses?: CounterLike;
  evictions?: CounterLike;
}

export interface ResultCacheDeps {
  store: Store;
  clock: Clock;
  config: Pick<ExecutorConfig, 'resultCacheMaxBytes' | 'resultCacheMaxEntryBytes' | 'resultCacheTtlMs'>;
  counters?: ResultCacheCounters;
}

export interface CacheHit {
  /** The stored Execution wire object with `cached: true` and this hit's `cache_latency_ms` set. */
  result: Record<string, unknown>;
  /** Server-side time of the lookup (row read, expiry check, parse, touch), in ms. */
  latencyMs: number;
}

export interface CacheEntryMeta {
  env: string;
  cacheKey: string | null | undefined;
  executionId: string;
}

export interface StoreOutcome {
  stored: boolean;
  /** Why it was not stored. */
  reason?: 'too_large';
  sizeBytes: number;
  /** Live entries evicted to make room. */
  evicted: number;
}

/** Candidates read per round of LRU eviction. */
const EVICTION_BATCH = 64;

/**
 * The result cache of `mode: "cached"`: finished results stored under a hash of everything
 * that determined them, bounded in total size (least recently used go first) and in age.
 */
export class ResultCache {
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  /**
   * Entries and bytes in the store, kept up to date by this object's own writes so that storing
   * does not sum the table (a scan that reads every stored result: SQLite runs it synchronously,
   * blocking the server). Loaded on first need; dropped after deletes whose size is unknown.
   * Assumes this object is the only writer of the table, as in the server.
   */
  #totals: { entries: number; bytes: number } | undefined;

  constructor(private readonly deps: ResultCacheDeps) {}

  /**
   * The cache key: SHA-256 (hex) of a length-prefixed encoding of every input, in a fixed
   * order, after the version string. Documented in docs/execution-modes.md.
   */
  static keyOf(input: CacheKeyInput): string {
    const h = createHash('sha256');
    putString(h, RESULT_CACHE_KEY_VERSION);
    putString(h, input.env);
    putString(h, input.environmentIdentity);
    putString(h, input.runtime);
    putCount(h, input.argv.length);
    for (const arg of input.argv) putString(h, arg);
    const vars = Object.entries(input.envVars)
      .map(([name, value]) => [Buffer.from(name, 'utf8'), Buffer.from(value, 'utf8')] as const)
      .sort(([a], [b]) => Buffer.compare(a, b));
    putCount(h, vars.length);
    for (const [name, value] of vars) {
      putBytes(h, name);
      putBytes(h, value);
    }
    putString(h, input.workingDir);
    if (input.stdin === undefined) putFlag(h, false);
    else {
      putFlag(h, true);
      putBytes(h, typeof input.stdin === 'string' ? Buffer.from(input.stdin, 'utf8') : input.stdin);
    }
    putNumber(h, input.timeoutMs);
    putNumber(h, input.limits.memory_mb);
    putNumber(h, input.limits.cpu_cores);
    putNumber(h, input.limits.pids_max);
    if (input.cacheKey == null) putFlag(h, false);
    else {
      putFlag(h, true);
      putString(h, input.cacheKey);
    }
    putFlag(h, input.cacheFailures);
    return h.digest('hex');
  }

  /**
   * Whether a finished execution may be stored: it completed and its process exited by itself
   * with code 0 (any code with `cacheFailures`), and none of its output was discarded. Never
   * timeouts, OOM, kills, signals, interrupted runs or truncated output.
   */
  static isCacheable(execution: CacheableExecution, cacheFailures: boolean): boolean {
    if (execution.status !== 'completed' || execution.exit_reason !== 'exited') return false;
    if (execution.output_truncated || execution.exit_code === null) return false;
    return execution.exit_code === 0 || cacheFailures;
  }

  /** @see ResultCache.isCacheable */
  isCacheable(execution: CacheableExecution, cacheFailures: boolean): boolean {
    return ResultCache.isCacheable(execution, cacheFailures);
  }

  /**
   * The stored result for `key`, or undefined. An entry older than the TTL is a miss and is
   * deleted. A hit is one primary-key read and one update (last use, hit count).
   */
  async lookup(key: string): Promise<CacheHit | undefined> {
    const { store, clock, config } = this.deps;
    const started = clock.monotonicMs();
    const row = await store.resultCache.get(key);
    const now = clock.now();
    if (row === undefined) return this.#miss();
    if (now.getTime() - row.createdAt.getTime() >= config.resultCacheTtlMs) {
      // A put of a fresh entry for the key in between would be deleted too: a later miss, no harm.
      const deleted = await store.resultCache.deleteKeys([key]);
      if (deleted > 0) this.#adjust(-1, -row.sizeBytes);
      return this.#miss();
    }
    const result = JSON.parse(row.result) as Record<string, unknown>;
    await store.resultCache.touch(key, now);
    this.#hits++;
    this.deps.counters?.hits?.inc();
    const latencyMs = clock.monotonicMs() - started;
    result.cached = true;
    result.cache_latency_ms = latencyMs;
    return { result, latencyMs };
  }

  /**
   * Stores a finished result (the caller checked {@link isCacheable}) under `key`, replacing
   * any entry there. Refuses one larger than the entry bound, or alone larger than the total
   * bound. Then, while the cache is over its total bound, evicts the least recently used
   * entries, never the one just stored.
   */
  async store(key: string, meta: CacheEntryMeta, result: object): Promise<StoreOutcome> {
    const { store, clock, config } = this.deps;
    const json = JSON.stringify(result);
    const sizeBytes = Buffer.byteLength(json, 'utf8');
    if (sizeBytes > config.resultCacheMaxEntryBytes || sizeBytes > config.resultCacheMaxBytes) {
      return { stored: false, reason: 'too_large', sizeBytes, evicted: 0 };
    }
    const now = clock.now();
    // One transaction: concurrent stores do not both evict for the same excess.
    const evicted = await store.withTransaction(async (tx) => {
      const totals = await this.#loadTotals(tx);
      const replaced = await tx.resultCache.sizeOf(key);
      await tx.resultCache.put({ key, env: meta.env, cacheKey: meta.cacheKey ?? null, executionId: meta.executionId, result: json, sizeBytes, createdAt: now, lastUsedAt: now, hits: 0 });
      totals.entries += replaced === undefined ? 1 : 0;
      totals.bytes += sizeBytes - (replaced ?? 0);
      return this.#evict(tx, key, totals);
    }).catch((err: unknown) => {
      this.#totals = undefined; // rolled back: the counts may be off
      throw err;
    });
    if (evicted > 0) {
      this.#evictions += evicted;
      this.deps.counters?.evictions?.inc(evicted);
    }
    return { stored: true, sizeBytes, evicted };
  }

  /**
   * Deletes entries: all of them, or those matching every given condition (cache key,
   * environment, created more than `older_than_ms` ago). Returns how many. A request with no
   * condition and no `all: true` deletes nothing.
   */
  async invalidate(filter: InvalidateCacheRequest): Promise<number> {
    this.#totals = undefined;
    return this.deps.store.resultCache.delete({
      all: filter.all,
      cacheKey: filter.cache_key,
      env: filter.env,
      olderThan: filter.older_than_ms === undefined ? undefined : new Date(this.deps.clock.now().getTime() - filter.older_than_ms),
    });
  }

  /** Deletes entries past the TTL (lookups skip them anyway); for a periodic sweep. */
  async purgeExpired(): Promise<number> {
    this.#totals = undefined;
    return this.deps.store.resultCache.deleteExpired(this.#expiryCutoff(this.deps.clock.now()));
  }

  /** Size and bounds from the store; hits, misses and evictions counted since this object was made. */
  async stats(): Promise<CacheStats> {
    const { entries, bytes } = await this.#loadTotals(this.deps.store);
    const { config } = this.deps;
    return { entries, bytes, max_bytes: config.resultCacheMaxBytes, ttl_ms: config.resultCacheTtlMs, hits: this.#hits, misses: this.#misses, evictions: this.#evictions };
  }

  #miss(): undefined {
    this.#misses++;
    this.deps.counters?.misses?.inc();
    return undefined;
  }

  /** Entries created before this are expired (age >= TTL). */
  #expiryCutoff(now: Date): Date {
    return new Date(now.getTime() - this.deps.config.resultCacheTtlMs + 1);
  }

  async #loadTotals(store: Store): Promise<{ entries: number; bytes: number }> {
    if (this.#totals === undefined) {
      const loaded = await store.resultCache.totals();
      this.#totals ??= loaded;
    }
    return this.#totals;
  }

  #adjust(entries: number, bytes: number): void {
    if (this.#totals === undefined) return;
    this.#totals.entries += entries;
    this.#totals.bytes += bytes;
  }

  /** Evicts least recently used entries (not `keep`) until `totals` is within the bound; returns how many. */
  async #evict(tx: Store, keep: string, totals: { entries: number; bytes: number }): Promise<number> {
    const max = this.deps.config.resultCacheMaxBytes;
    let evicted = 0;
    while (totals.bytes > max) {
      const candidates = (await tx.resultCache.oldestUsed(EVICTION_BATCH + 1)).filter((c) => c.key !== keep);
      if (candidates.length === 0) break;
      const victims: string[] = [];
      let bytes = totals.bytes;
      for (const c of candidates) {
        if (bytes <= max) break;
        victims.push(c.key);
        bytes -= c.sizeBytes;
      }
      const deleted = await tx.resultCache.deleteKeys(victims);
      totals.entries -= deleted;
      totals.bytes = bytes;
      evicted += deleted;
    }
    return evicted;
  }
}

// The key encoding's primitives; every variable-length item carries its length first.

function putCount(h: Hash, n: number): void {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  h.update(b);
}

function putBytes(h: Hash, bytes: Uint8Array): void {
  putCount(h, bytes.byteLength);
  h.update(bytes);
}

function putString(h: Hash, s: string): void {
  putBytes(h, Buffer.from(s, 'utf8'));
}

function putFlag(h: Hash, flag: boolean): void {
  h.update(Buffer.of(flag ? 1 : 0));
}

/** IEEE 754 binary64, big-endian; -0 is written as 0. */
function putNumber(h: Hash, n: number): void {
  if (!Number.isFinite(n)) throw new RangeError(`cache key numbers must be finite, got ${n}`);
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n === 0 ? 0 : n);
  h.update(b);
}
