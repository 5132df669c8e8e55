import type { ExecModeName, ExecutionStatus, ExitReason, InstanceState } from '@faas/protocol';

/**
 * Metadata records as the domain sees them (camelCase, Dates). How a backend lays them out is
 * its own business; the wire format is made from these by the routes.
 */
export interface InstanceLimits {
  memoryMb: number;
  cpuCores: number;
  pidsMax: number;
}

export interface InstanceRecord {
  id: string;
  state: InstanceState;
  /** Why the instance left `running` (deleted, executor_restart, start_failed: ...). */
  stateReason: string | null;
  env: string;
  runtime: string;
  envVars: Record<string, string>;
  limits: InstanceLimits;
  metadata: Record<string, string>;
  /** Unprivileged host uid the instance's processes run as; unique among non-deleted instances. */
  hostUid: number;
  /** Which executor node holds the instance (one node today; kept so records stay meaningful with many). */
  nodeId: string;
  createdAt: Date;
  startedAt: Date | null;
  stoppedAt: Date | null;
  startDurationMs: number | null;
  /** The snapshot it was restored or branched from (its files start as that snapshot's tree). */
  sourceSnapshotId: string | null;
  /** Its newest snapshot: the parent of its next one (falls back to `sourceSnapshotId`). */
  lastSnapshotId: string | null;
  /** persistent mode: the stable name requests use for it; unique among live instances. */
  functionId: string | null;
  /** Started ahead of demand by a warm pool and not handed out yet. */
  pooled: boolean;
}

/** A committed snapshot. Only complete snapshots are ever stored: the record is the commit. */
export interface SnapshotRecord {
  id: string;
  contentHash: string;
  parentId: string | null;
  parentHash: string | null;
  fsHash: string;
  envHash: string;
  memoryHash: string | null;
  /** Sum of the sizes of the files in the tree. */
  size: number;
  /** Bytes this snapshot added to the blob store. */
  storedBytes: number;
  fileCount: number;
  /** Files whose content the capture read (the rest were known unchanged). */
  filesRead: number;
  dirCount: number;
  symlinkCount: number;
  env: string;
  envVars: Record<string, string>;
  metadata: Record<string, string>;
  sourceInstanceId: string | null;
  sourceExecutionId: string | null;
  deterministic: boolean;
  durationMs: number;
  createdAt: Date;
  /** A merge: every snapshot merged, in order (`parentId` is the first). Empty otherwise. */
  mergeParentIds: string[];
}

export interface SnapshotFilter {
  /** Children of this snapshot; null lists roots (no parent). */
  parentId?: string | null;
  sourceInstanceId?: string;
  /** Newest first; default 1000. */
  limit?: number;
}

export interface SnapshotRepository {
  /** Throws FaasError ID_CONFLICT when the id exists, SNAPSHOT_NOT_FOUND when the parent does not. */
  insert(record: SnapshotRecord): Promise<void>;
  get(id: string): Promise<SnapshotRecord | undefined>;
  /** The oldest snapshot with this content hash (equal content and parent give equal hashes). */
  getByContentHash(hash: string): Promise<SnapshotRecord | undefined>;
  /** Snapshots an execution left (checkpointed and branched runs), newest first. */
  listByExecution(executionId: string): Promise<SnapshotRecord[]>;
  list(filter?: SnapshotFilter): Promise<SnapshotRecord[]>;
  /** Every snapshot, oldest first: for lineage walks, verify and gc. */
  all(): Promise<SnapshotRecord[]>;
  /** Deletes these snapshots (children before parents, in one statement); returns how many existed. */
  delete(ids: readonly string[]): Promise<number>;
}

export interface ExecutionRecord {
  id: string;
  instanceId: string;
  /** Created by `POST /execute`: its instance is destroyed when it ends. */
  ephemeral: boolean;
  /** The execute mode it ran under (`ephemeral` also for execs in an instance). */
  mode: ExecModeName;
  status: ExecutionStatus;
  command: string[];
  workingDir: string;
  /** Names only: values may be secrets and are never stored. */
  envVarNames: string[];
  timeoutMs: number;
  /** Hash of the request that created it, so a retried client-chosen id can be told from a clash. */
  requestHash: string;
  exitCode: number | null;
  exitReason: ExitReason | null;
  signal: string | null;
  stdoutBytes: number;
  stderrBytes: number;
  outputTruncated: boolean;
  progress: number | null;
  lastSeq: number;
  startedAt: Date;
  finishedAt: Date | null;
  durationMs: number | null;
}

export interface InstanceFilter {
  states?: readonly InstanceState[];
  /** Instances restored or branched from this snapshot. */
  sourceSnapshotId?: string;
  functionId?: string;
  /** Pooled (true) or handed-out (false) instances only; both when undefined. */
  pooled?: boolean;
  nodeId?: string;
  /** Newest first; default 1000. */
  limit?: number;
}

export interface ExecutionFilter {
  instanceId?: string;
  statuses?: readonly ExecutionStatus[];
  /** Newest first; default 1000. */
  limit?: number;
}

export type InstancePatch = Partial<Omit<InstanceRecord, 'id' | 'createdAt' | 'hostUid' | 'nodeId'>>;
export type ExecutionPatch = Partial<Omit<ExecutionRecord, 'id' | 'instanceId' | 'startedAt' | 'requestHash'>>;

export interface InstanceRepository {
  /** Throws FaasError ID_CONFLICT when the id exists. */
  insert(record: InstanceRecord): Promise<void>;
  get(id: string): Promise<InstanceRecord | undefined>;
  list(filter?: InstanceFilter): Promise<InstanceRecord[]>;
  /** Throws FaasError INSTANCE_NOT_FOUND when the id is unknown. Returns the updated record. */
  update(id: string, patch: InstancePatch): Promise<InstanceRecord>;
  /** Host uids held by instances that are not deleted (their files may still exist). */
  usedHostUids(): Promise<number[]>;
}

export interface ExecutionRepository {
  /** Throws FaasError ID_CONFLICT when the id exists. */
  insert(record: ExecutionRecord): Promise<void>;
  get(id: string): Promise<ExecutionRecord | undefined>;
  list(filter?: ExecutionFilter): Promise<ExecutionRecord[]>;
  /** Throws FaasError EXECUTION_NOT_FOUND when the id is unknown. Returns the updated record. */
  update(id: string, patch: ExecutionPatch): Promise<ExecutionRecord>;
}

/**
 * The metadata store. Async even over synchronous SQLite so that a networked backend
 * (PostgreSQL) is an added folder, not a rewrite of every caller.
 */
export interface Store {
  readonly instances: InstanceRepository;
  readonly executions: ExecutionRepository;
  readonly snapshots: SnapshotRepository;
  readonly resultCache: ResultCacheRepository;
  /**
   * Runs `fn` in one transaction: all of its writes land or none do. The store passed to `fn`
   * must be used inside it (not the outer one). Nested calls join the outer transaction.
   */
  withTransaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A stored result of a `cached` execution, under the key of everything that determined it. */
export interface CachedResultRecord {
  /** SHA-256 hex of the canonical request encoding (see docs/execution-modes.md). */
  key: string;
  /** Environment name: invalidation by environment. */
  env: string;
  /** The request's `cache_key`, if any: invalidation by cache key. */
  cacheKey: string | null;
  /** The execution that produced the result. */
  executionId: string;
  /** The finished Execution wire object as JSON (output included). */
  result: string;
  /** UTF-8 size of `result`. */
  sizeBytes: number;
  createdAt: Date;
  lastUsedAt: Date;
  hits: number;
}

/** Which cached results to delete; the given conditions all apply (`all` matches every entry). */
export interface ResultCacheFilter {
  all?: boolean;
  cacheKey?: string;
  env?: string;
  /** Entries created before this instant. */
  olderThan?: Date;
}

export interface ResultCacheRepository {
  get(key: string): Promise<CachedResultRecord | undefined>;
  /** The stored size of the entry with this key, without its result. */
  sizeOf(key: string): Promise<number | undefined>;
  /** Marks a hit: last_used_at = at, hits + 1. Returns whether the entry existed. */
  touch(key: string, at: Date): Promise<boolean>;
  /** Inserts, or replaces the entry with this key. */
  put(record: CachedResultRecord): Promise<void>;
  /**
   * Deletes the entries matching every given condition; returns how many. A filter with no
   * condition (and `all` not true) deletes nothing, so a forgotten field cannot wipe the cache.
   */
  delete(filter: ResultCacheFilter): Promise<number>;
  totals(): Promise<{ entries: number; bytes: number }>;
  /** The least recently used entries first (ties: oldest created, then key). */
  oldestUsed(limit: number): Promise<Array<{ key: string; sizeBytes: number }>>;
  deleteKeys(keys: readonly string[]): Promise<number>;
  deleteExpired(createdBefore: Date): Promise<number>;
}
