/**
 * camelCase shapes of what the execution modes add around executions: the result cache,
 * branch merges, environments and their warm pools, and the orchestration helpers built on
 * `execute` (parallelMap, race).
 */
import type { ExecuteRequest, ExecutionResult } from './execution-types.ts';
import type { Snapshot } from './snapshot-types.ts';

/**
 * Which cached results `client.invalidateCache()` drops: `{ all: true }`, or the entries that
 * match every condition given. No condition drops nothing.
 *
 * @example
 * await client.invalidateCache({ cacheKey: 'dataset-v1' });
 * await client.invalidateCache({ env: 'host', olderThanMs: 3_600_000 });
 */
export interface CacheFilter {
  all?: boolean;
  cacheKey?: string;
  env?: string;
  /** Entries stored more than this many ms ago. */
  olderThanMs?: number;
}

/** @example const { removed, remaining } = await client.invalidateCache({ all: true }); */
export interface InvalidateCacheResult {
  removed: number;
  /** Entries left in the cache. */
  remaining: number;
}

/**
 * The result cache's size, bounds and counters (since the server started).
 *
 * @example
 * const { hits, misses } = await client.cacheStats();
 */
export interface CacheStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  ttlMs: number;
  hits: number;
  misses: number;
  evictions: number;
}

/**
 * How a merge settles a path two inputs changed differently: `fail` (the default: MERGE_CONFLICT),
 * `ours` (the first input wins), `theirs` (the last input wins), or `{ prefer }` (that input, by
 * snapshot id, content hash or branch execution id, wins).
 *
 * @default 'fail'
 * @example
 * await client.mergeBranches([a.id, b.id], { strategy: { prefer: b.id } });
 */
export type MergeStrategy = 'fail' | 'ours' | 'theirs' | { prefer: string };

/**
 * Options of `client.mergeBranches()`.
 *
 * @example
 * await client.mergeBranches([snapA, snapB], { snapshots: true, strategy: 'ours', metadata: { why: 'combine' } });
 */
export interface MergeOptions {
  /** @default 'fail' */
  strategy?: MergeStrategy;
  /** The ids are snapshots (ids or content hashes), not executions of branched runs. @default false */
  snapshots?: boolean;
  /** Labels for the merge snapshot. */
  metadata?: Record<string, string>;
}

/**
 * A path the inputs of a merge changed differently. In a MERGE_CONFLICT error (read them with
 * `mergeConflicts(error)`) nothing was written; in `resolvedConflicts`, `winner` says whose
 * state was taken.
 *
 * @example
 * for (const c of conflicts) console.log(c.path, c.kind, c.sides.map((s) => s.state));
 */
export interface MergeConflict {
  /** Path in the snapshot tree, e.g. "workspace/a.txt". */
  path: string;
  /** The path's raw bytes, base64, when they are not valid UTF-8. */
  pathBase64?: string;
  kind: 'content' | 'mode' | 'type' | 'delete_modify' | 'env';
  /** What each input has there, e.g. "file 0644 12 bytes <hash>" or "deleted". */
  sides: Array<{ snapshotId: string; state: string }>;
  /** Resolved conflicts: the snapshot whose state was taken. */
  winner?: string;
}

/**
 * A merge's outcome: the new snapshot (its `mergeParentIds` are the inputs).
 *
 * @example
 * const { snapshot, resolvedConflicts } = await client.mergeBranches([a.id, b.id], { strategy: 'theirs' });
 */
export interface MergeResult {
  snapshot: Snapshot;
  /** The common ancestor the inputs were compared with. */
  baseSnapshotId: string;
  /** The input snapshots, in order. */
  mergedFrom: string[];
  /** Conflicts the strategy settled, and how. */
  resolvedConflicts: MergeConflict[];
}

/**
 * An environment: a base filesystem, what it contains, and its warm pool.
 *
 * @example
 * const envs = await client.listEnvironments();
 * const python = envs.find((e) => e.name === 'host')?.contains.find((t) => t.name === 'python3');
 */
export interface Environment {
  name: string;
  runtime: string;
  description: string;
  /** Interpreters and tools found in it. */
  contains: Array<{ name: string; version: string | null; path: string }>;
  /** Hash of what the environment provides; part of every cache key. */
  identity: string;
  pool: PoolStats;
}

/** A warm pool: instances started ahead of demand. @example if (env.pool.ready === 0) await client.preWarmEnvironment(env.name, 4); */
export interface PoolStats {
  /** How many it keeps ready. */
  target: number;
  ready: number;
  /** Creates served from the pool, and those that started cold. */
  hits: number;
  misses: number;
}

/** @example const { ready, target } = await client.preWarmEnvironment('host', 4); */
export interface WarmResult {
  env: string;
  target: number;
  /** Ready right now (the pool fills in the background). */
  ready: number;
  updatedAt: Date;
}

/**
 * Options of `client.parallelMap()`.
 *
 * @example
 * await client.parallelMap(files, (f) => ({ command: ['wc', '-l', f] }), { baseSnapshot: snap.id, concurrency: 4, settle: true });
 */
export interface ParallelMapOptions {
  /** Each item runs on its own branch of this snapshot (id, content hash, or an execution that left one). */
  baseSnapshot?: string;
  /** Executions in flight at once. @default 8 */
  concurrency?: number;
  /**
   * false: reject with the first error (items not started yet are never started; those in
   * flight run to their end). true: run every item and resolve with one settled outcome per item.
   * A non-zero exit code is a result either way, not an error.
   * @default false
   */
  settle?: boolean;
  /** Stop starting items and reject with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * What `parallelMap`'s function returns for one item: what to run and how (the mode and
 * `branchFrom` are set by parallelMap).
 *
 * @example
 * const toRequest: ParallelMapFn<string> = (name) => ({ code: `grep -c ${name} /workspace/log` });
 */
export type ParallelMapFn<T> = (item: T, index: number) => ExecuteRequest | Promise<ExecuteRequest>;

/** One item's outcome with `settle: true`. @example if (outcome.status === 'rejected') console.error(outcome.reason); */
export type ParallelMapOutcome = PromiseSettledResult<ExecutionResult>;

/**
 * Options of `client.race()`.
 *
 * @example
 * await client.race([fast, slow], { timeout: 60_000 });
 */
export interface RaceOptions {
  /** Give up after this many ms: every entrant is killed and the race rejects with CLIENT_TIMEOUT. @default no limit */
  timeout?: number;
  /** Abort the race: every entrant is killed and it rejects with the signal's reason. */
  signal?: AbortSignal;
}
