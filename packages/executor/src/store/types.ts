import type { ExecModeName, ExecutionStatus, ExitReason, InstanceState, SessionEndReason, SessionState } from '@faas/protocol';

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

/** One checkpoint of a session: a snapshot of its instance. */
export interface SessionCheckpointRecord {
  snapshotId: string;
  contentHash: string;
  createdAt: Date;
  sizeBytes: number;
}

/** A long-running session (services/sessions/): an execution with a deadline, heartbeats and checkpoints. */
export interface SessionRecord {
  /** `sess-` + 16 base32 chars. */
  id: string;
  /** The current execution; a resume starts a new one. */
  executionId: string;
  instanceId: string;
  /** The session created its instance (and deletes it when it ends). */
  ownsInstance: boolean;
  nodeId: string;
  state: SessionState;
  stateReason: SessionEndReason | null;
  /** What a resume runs again. Env var values are never stored, only names. */
  process: { command: string[]; workingDir: string; envVarNames: string[] };
  startedAt: Date;
  /** Changes only by an extension. */
  deadline: Date;
  lastHeartbeat: Date;
  maxDurationMs: number;
  heartbeatIntervalMs: number | null;
  /** 0: none. */
  idleTimeoutMs: number;
  gracePeriodMs: number;
  /** 0: none. */
  checkpointIntervalMs: number;
  /** Oldest first. */
  checkpoints: SessionCheckpointRecord[];
  extendedCount: number;
  maxExtensions: number;
  autoExtend: boolean;
  exitCode: number | null;
  endedAt: Date | null;
}

export type SessionPatch = Partial<Omit<SessionRecord, 'id' | 'startedAt' | 'nodeId'>>;

export interface SessionRepository {
  /** Also records `executionId` as one of its executions. Throws FaasError ID_CONFLICT when the id exists. */
  insert(record: SessionRecord): Promise<void>;
  get(id: string): Promise<SessionRecord | undefined>;
  /** The session that ran this execution (its current one or an earlier one). */
  getByExecution(executionId: string): Promise<SessionRecord | undefined>;
  /** Sessions in these states (oldest first), of this node when given. */
  list(filter: { states: readonly SessionState[]; nodeId?: string; limit?: number }): Promise<SessionRecord[]>;
  /** Throws FaasError SESSION_NOT_FOUND when the id is unknown. A new `executionId` is recorded as one of its executions. */
  update(id: string, patch: SessionPatch): Promise<SessionRecord>;
  /** Many last_heartbeat writes in one statement each, inside one transaction (the heartbeat flush). */
  setHeartbeats(entries: ReadonlyArray<{ id: string; at: Date }>): Promise<void>;
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
  readonly sshKeys: SshKeyRepository;
  readonly exposedPorts: ExposedPortRepository;
  readonly sessions: SessionRepository;
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

/** Algorithms of SSH keys (see `ssh/key-material.ts`). */
export type SshKeyAlgorithmName = 'ed25519' | 'rsa' | 'ecdsa';

/**
 * An SSH key of an instance. Its private half, when the server made it, is a file (see
 * `ssh/private-key-files.ts`), never a column. A key is live until the earlier of `expiresAt`
 * and `revokedAt`; a `revokedAt` in the future is a scheduled revocation (a rotation's overlap).
 */
export interface SshKeyRecord {
  /** `key-` + 16 base32 chars. */
  id: string;
  instanceId: string;
  algorithm: SshKeyAlgorithmName;
  /** One authorized_keys line. */
  publicKey: string;
  /** `SHA256:...` of the wire blob, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  createdAt: Date;
  expiresAt: Date;
  /** The key this one replaced (rotation chain). */
  rotatedFrom: string | null;
  revokedAt: Date | null;
  /** rotated, evicted, revoked (by request), instance_deleted. */
  revokeReason: string | null;
  /** Bring-your-own: the user's public key; the server never held the private key. */
  byo: boolean;
  /** A successor is issued this long before expiry (null: never). */
  autoRotateBeforeMs: number | null;
  /**
   * When the service noticed the key had ended, recorded that in the audit trail and removed
   * its private key file. Null while live, and for an ended key not yet noticed.
   */
  retiredAt: Date | null;
}

export type SshKeyPatch = Partial<Pick<SshKeyRecord, 'revokedAt' | 'revokeReason' | 'retiredAt'>>;

export type SshAuditEvent = 'issued' | 'rotated' | 'revoked' | 'expired' | 'login_succeeded' | 'login_failed';

/** One entry of the SSH audit trail; entries are only ever appended. */
export interface SshAuditRecord {
  /** Ascending, assigned by the store: the cursor of `listAudit`. */
  seq: number;
  at: Date;
  /** As given (a login attempt may name an instance that does not exist). */
  instanceId: string;
  keyId: string | null;
  event: SshAuditEvent;
  fingerprint: string | null;
  clientAddress: string | null;
  details: Record<string, unknown>;
}

export interface SshKeyRepository {
  /** Throws FaasError ID_CONFLICT when the id exists, INSTANCE_NOT_FOUND when the instance does not. */
  insert(record: SshKeyRecord): Promise<void>;
  get(id: string): Promise<SshKeyRecord | undefined>;
  /** Every key of an instance, newest first (ties: id descending). */
  listByInstance(instanceId: string): Promise<SshKeyRecord[]>;
  /** Keys with this fingerprint, of any instance, newest first. */
  listByFingerprint(fingerprint: string): Promise<SshKeyRecord[]>;
  /** Keys not retired yet (live, or ended but not noticed), oldest first. */
  listUnretired(): Promise<SshKeyRecord[]>;
  /** Throws FaasError SSH_KEY_NOT_FOUND when the id is unknown. Returns the updated record. */
  update(id: string, patch: SshKeyPatch): Promise<SshKeyRecord>;
  /** Appends an entry and returns its seq. */
  appendAudit(entry: Omit<SshAuditRecord, 'seq'>): Promise<number>;
  /** Entries of an instance with seq > `after` (default 0), oldest first, at most `limit` (default 1000). */
  listAudit(instanceId: string, options?: { after?: number; limit?: number }): Promise<SshAuditRecord[]>;
}

/**
 * A port of an instance exposed at a public URL (`/p/<instance>/<port>/`). The access token
 * itself is never stored: only its SHA-256, so a copy of the database opens no port.
 */
export interface ExposedPortRecord {
  instanceId: string;
  port: number;
  /** SHA-256 (hex) of the access token; null when the port needs none (public). */
  tokenHash: string | null;
  createdAt: Date;
}

export interface ExposedPortRepository {
  /**
   * Throws FaasError PORT_ALREADY_EXPOSED when this port of the instance is exposed already,
   * INSTANCE_NOT_FOUND when the instance does not exist.
   */
  insert(record: ExposedPortRecord): Promise<void>;
  get(instanceId: string, port: number): Promise<ExposedPortRecord | undefined>;
  /** The exposed ports of an instance, by port. */
  listByInstance(instanceId: string): Promise<ExposedPortRecord[]>;
  /** Returns whether it was exposed. */
  delete(instanceId: string, port: number): Promise<boolean>;
  /** Removes every exposure of the instance; returns how many. */
  deleteByInstance(instanceId: string): Promise<number>;
  /** Removes the exposures of instances whose record says `deleted` (what a crash mid-delete left); returns how many. */
  deleteOfDeletedInstances(): Promise<number>;
}
