import { AsyncLocalStorage } from 'node:async_hooks';
import { FaasError } from '@faas/protocol';
import type { ExecModeName, ExecutionStatus, ExitReason, InstanceState } from '@faas/protocol';
import Database from 'better-sqlite3';
import { Kysely, type SqliteDatabase, SqliteAdapter, SqliteDialect } from 'kysely';
import type { DialectAdapter, Transaction } from 'kysely';
import type {
  ExecutionFilter,
  ExecutionPatch,
  ExecutionRecord,
  ExecutionRepository,
  InstanceFilter,
  SnapshotFilter,
  SnapshotRecord,
  SnapshotRepository,
  InstanceLimits,
  InstancePatch,
  InstanceRecord,
  InstanceRepository,
  ResultCacheRepository,
  SshKeyRepository,
  ExposedPortRepository,
  SessionRepository,
  Store,
} from '../types.ts';
import { migrateToLatest } from './migrations.ts';
import { SqliteResultCacheRepository, type ResultCacheTable } from './sqlite-result-cache.ts';
import { SqliteSshKeyRepository, type SshAuditTable, type SshKeysTable } from './sqlite-ssh-keys.ts';
import { SqliteExposedPortRepository, type ExposedPortsTable } from './sqlite-exposed-ports.ts';
import { SqliteSessionRepository, type SessionExecutionsTable, type SessionsTable } from './sqlite-sessions.ts';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file (its directory must exist; the file is created) or `':memory:'`. */
  path: string;
}

/** Rows as stored; see `migrations.ts` for the layout. */
export interface InstancesTable {
  id: string;
  state: string;
  state_reason: string | null;
  env: string;
  runtime: string;
  env_vars: string;
  limits: string;
  metadata: string;
  host_uid: number;
  node_id: string;
  created_at: number;
  started_at: number | null;
  stopped_at: number | null;
  start_duration_ms: number | null;
  source_snapshot_id: string | null;
  last_snapshot_id: string | null;
  function_id: string | null;
  pooled: number;
}

export interface SnapshotsTable {
  id: string;
  content_hash: string;
  parent_id: string | null;
  parent_hash: string | null;
  fs_hash: string;
  env_hash: string;
  memory_hash: string | null;
  size: number;
  stored_bytes: number;
  file_count: number;
  files_read: number;
  dir_count: number;
  symlink_count: number;
  env: string;
  env_vars: string;
  metadata: string;
  source_instance_id: string | null;
  source_execution_id: string | null;
  deterministic: number;
  duration_ms: number;
  created_at: number;
  merge_parent_ids: string;
}

export interface ExecutionsTable {
  id: string;
  instance_id: string;
  ephemeral: number;
  mode: string;
  status: string;
  command: string;
  working_dir: string;
  env_var_names: string;
  timeout_ms: number;
  request_hash: string;
  exit_code: number | null;
  exit_reason: string | null;
  signal: string | null;
  stdout_bytes: number;
  stderr_bytes: number;
  output_truncated: number;
  progress: number | null;
  last_seq: number;
  started_at: number;
  finished_at: number | null;
  duration_ms: number | null;
}

export interface SqliteSchema {
  instances: InstancesTable;
  executions: ExecutionsTable;
  snapshots: SnapshotsTable;
  result_cache: ResultCacheTable;
  ssh_keys: SshKeysTable;
  ssh_audit: SshAuditTable;
  exposed_ports: ExposedPortsTable;
  sessions: SessionsTable;
  session_executions: SessionExecutionsTable;
}

const BUSY_TIMEOUT_MS = 5000;
const DEFAULT_LIST_LIMIT = 1000;

/**
 * kysely's SqliteAdapter says SQLite has no transactional DDL, so its Migrator would run each
 * migration outside a transaction and a crash mid-migration would leave half a schema with no
 * record of it. SQLite does roll back DDL; saying so makes the Migrator wrap every run in one.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class TransactionalDdlSqliteDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

/** A kysely instance over an open better-sqlite3 database, as the store and its migrations use it. */
export function createSqliteKysely(database: Database.Database): Kysely<SqliteSchema> {
  return new Kysely<SqliteSchema>({ dialect: new TransactionalDdlSqliteDialect({ database: withStatementCache(database) }) });
}

/** Distinct SQL texts kept prepared; the store issues a few dozen shapes, parameters vary. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * kysely prepares every query anew; better-sqlite3 statements can be reused with new
 * parameters. Queries of one shape compile to the same SQL text, so caching by text saves the
 * prepare (~0.1 ms) on every store call of the execution hot path.
 */
function withStatementCache(database: Database.Database): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (stmt === undefined) {
        stmt = database.prepare(sql);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(sql, stmt);
      }
      return stmt;
    },
  };
}

/**
 * Opens (creating if needed) the SQLite metadata store and brings its schema up to date.
 *
 * @example
 * const store = await openSqliteStore({ path: join(dataDir, 'faas.db') });
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  const database = new Database(options.path, { timeout: BUSY_TIMEOUT_MS });
  try {
    // WAL lets readers in other processes (backup, inspection) proceed during writes; with WAL,
    // NORMAL sync can lose the last commits on power loss but never corrupts the file.
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const db = createSqliteKysely(database);
    await migrateToLatest(db);
    return new SqliteStore({ db, database, transactions: new AsyncLocalStorage(), closed: false });
  } catch (err) {
    database.close();
    throw err;
  }
}

/** What the root store shares with the stores it hands to transactions. */
interface Shared {
  readonly db: Kysely<SqliteSchema>;
  readonly database: Database.Database;
  /** Set while code runs inside a transaction of this store; `active` drops when it ends. */
  readonly transactions: AsyncLocalStorage<{ active: boolean }>;
  closed: boolean;
}

/**
 * The SQLite Store. There is one connection: kysely's SqliteDriver lends it out behind a mutex
 * for one query, or for a whole transaction. So a transaction in progress makes every other
 * caller wait until it ends, and nothing interleaves with it.
 *
 * The trap of that design: a transaction callback that calls the outer store instead of the
 * `tx` store it was given would wait for its own transaction forever. The outer store detects
 * this (through AsyncLocalStorage) and throws INTERNAL_ERROR instead of hanging.
 */
export class SqliteStore implements Store {
  readonly instances: InstanceRepository;
  readonly executions: ExecutionRepository;
  readonly snapshots: SnapshotRepository;
  readonly resultCache: ResultCacheRepository;
  readonly sshKeys: SshKeyRepository;
  readonly exposedPorts: ExposedPortRepository;
  readonly sessions: SessionRepository;
  readonly #shared: Shared;
  readonly #trx: Transaction<SqliteSchema> | undefined;

  constructor(shared: Shared, trx?: Transaction<SqliteSchema>) {
    this.#shared = shared;
    this.#trx = trx;
    const db = trx === undefined ? () => this.#rootDb() : () => trx;
    this.instances = new SqliteInstanceRepository(db);
    this.executions = new SqliteExecutionRepository(db);
    this.snapshots = new SqliteSnapshotRepository(db);
    this.resultCache = new SqliteResultCacheRepository(db);
    this.sshKeys = new SqliteSshKeyRepository(db);
    this.exposedPorts = new SqliteExposedPortRepository(db);
    this.sessions = new SqliteSessionRepository(db);
  }

  async withTransaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    // Nested: join the transaction in progress; no savepoint, so an inner failure the outer
    // callback catches does not undo the inner writes.
    if (this.#trx !== undefined) return fn(this);
    return this.#rootDb()
      .transaction()
      .execute(async (trx) => {
        const scope = { active: true };
        try {
          return await this.#shared.transactions.run(scope, () => fn(new SqliteStore(this.#shared, trx)));
        } finally {
          // Work started inside `fn` that outlives it may use the outer store again.
          scope.active = false;
        }
      });
  }

  async close(): Promise<void> {
    if (this.#trx !== undefined) {
      throw new FaasError('INTERNAL_ERROR', 'close() called on a transaction store; close the store that opened it');
    }
    if (this.#shared.closed) return;
    this.#shared.closed = true;
    // Closing while holding the connection lets a transaction in progress commit first;
    // kysely's destroy() alone would close under it and lose its writes.
    await this.#shared.db.connection().execute(async () => {
      this.#shared.database.close();
    });
    await this.#shared.db.destroy();
  }

  #rootDb(): Kysely<SqliteSchema> {
    if (this.#shared.closed) throw new FaasError('INTERNAL_ERROR', 'the metadata store is closed');
    if (this.#shared.transactions.getStore()?.active === true) {
      throw new FaasError(
        'INTERNAL_ERROR',
        'the outer store was used inside its own withTransaction callback (this would deadlock); use the store passed to the callback',
      );
    }
    return this.#shared.db;
  }
}

type DbSource = () => Kysely<SqliteSchema>;

class SqliteInstanceRepository implements InstanceRepository {
  readonly #db: DbSource;

  constructor(db: DbSource) {
    this.#db = db;
  }

  async insert(record: InstanceRecord): Promise<void> {
    const result = await this.#db()
      .insertInto('instances')
      .values(encodeInstance(record))
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    if (result.numInsertedOrUpdatedRows === 0n) {
      throw new FaasError('ID_CONFLICT', `an instance with id ${record.id} already exists`, { id: record.id });
    }
  }

  async get(id: string): Promise<InstanceRecord | undefined> {
    const row = await this.#db().selectFrom('instances').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : decodeInstance(row);
  }

  async list(filter: InstanceFilter = {}): Promise<InstanceRecord[]> {
    const limit = listLimit(filter.limit);
    // `IN ()` is not portable SQL; an empty set of states matches nothing.
    if (filter.states !== undefined && filter.states.length === 0) return [];
    let query = this.#db().selectFrom('instances').selectAll();
    if (filter.states !== undefined) query = query.where('state', 'in', filter.states);
    if (filter.nodeId !== undefined) query = query.where('node_id', '=', filter.nodeId);
    if (filter.sourceSnapshotId !== undefined) query = query.where('source_snapshot_id', '=', filter.sourceSnapshotId);
    if (filter.functionId !== undefined) query = query.where('function_id', '=', filter.functionId);
    if (filter.pooled !== undefined) query = query.where('pooled', '=', filter.pooled ? 1 : 0);
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(decodeInstance);
  }

  async update(id: string, patch: InstancePatch): Promise<InstanceRecord> {
    const set = encodeInstancePatch(patch);
    // One UPDATE ... RETURNING rather than read-merge-write, so a concurrent update of other
    // fields outside a transaction is not overwritten with stale values.
    const row =
      Object.keys(set).length === 0
        ? await this.#db().selectFrom('instances').selectAll().where('id', '=', id).executeTakeFirst()
        : await this.#db().updateTable('instances').set(set).where('id', '=', id).returningAll().executeTakeFirst();
    if (row === undefined) throw new FaasError('INSTANCE_NOT_FOUND', `no instance ${id}`, { instance_id: id });
    return decodeInstance(row);
  }

  async usedHostUids(): Promise<number[]> {
    const rows = await this.#db()
      .selectFrom('instances')
      .select('host_uid')
      .where('state', '!=', 'deleted')
      .orderBy('host_uid')
      .execute();
    return rows.map((r) => r.host_uid);
  }
}

class SqliteExecutionRepository implements ExecutionRepository {
  readonly #db: DbSource;

  constructor(db: DbSource) {
    this.#db = db;
  }

  async insert(record: ExecutionRecord): Promise<void> {
    let inserted: bigint;
    try {
      const result = await this.#db()
        .insertInto('executions')
        .values(encodeExecution(record))
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      inserted = result.numInsertedOrUpdatedRows ?? 0n;
    } catch (err) {
      if (err instanceof Database.SqliteError && err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new FaasError(
          'INSTANCE_NOT_FOUND',
          `no instance ${record.instanceId} for execution ${record.id}`,
          { instance_id: record.instanceId },
          { cause: err },
        );
      }
      throw err;
    }
    if (inserted === 0n) {
      throw new FaasError('ID_CONFLICT', `an execution with id ${record.id} already exists`, { id: record.id });
    }
  }

  async get(id: string): Promise<ExecutionRecord | undefined> {
    const row = await this.#db().selectFrom('executions').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : decodeExecution(row);
  }

  async list(filter: ExecutionFilter = {}): Promise<ExecutionRecord[]> {
    const limit = listLimit(filter.limit);
    if (filter.statuses !== undefined && filter.statuses.length === 0) return [];
    let query = this.#db().selectFrom('executions').selectAll();
    if (filter.instanceId !== undefined) query = query.where('instance_id', '=', filter.instanceId);
    if (filter.statuses !== undefined) query = query.where('status', 'in', filter.statuses);
    const rows = await query.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(decodeExecution);
  }

  async update(id: string, patch: ExecutionPatch): Promise<ExecutionRecord> {
    const set = encodeExecutionPatch(patch);
    const row =
      Object.keys(set).length === 0
        ? await this.#db().selectFrom('executions').selectAll().where('id', '=', id).executeTakeFirst()
        : await this.#db().updateTable('executions').set(set).where('id', '=', id).returningAll().executeTakeFirst();
    if (row === undefined) throw new FaasError('EXECUTION_NOT_FOUND', `no execution ${id}`, { execution_id: id });
    return decodeExecution(row);
  }
}

class SqliteSnapshotRepository implements SnapshotRepository {
  readonly #db: DbSource;

  constructor(db: DbSource) {
    this.#db = db;
  }

  async insert(record: SnapshotRecord): Promise<void> {
    let inserted: bigint;
    try {
      const result = await this.#db()
        .insertInto('snapshots')
        .values(encodeSnapshot(record))
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      inserted = result.numInsertedOrUpdatedRows ?? 0n;
    } catch (err) {
      if (err instanceof Database.SqliteError && err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new FaasError('SNAPSHOT_NOT_FOUND', `parent snapshot ${record.parentId} of ${record.id} does not exist`, { snapshot: record.parentId }, { cause: err });
      }
      throw err;
    }
    if (inserted === 0n) throw new FaasError('ID_CONFLICT', `a snapshot with id ${record.id} already exists`, { id: record.id });
  }

  async get(id: string): Promise<SnapshotRecord | undefined> {
    const row = await this.#db().selectFrom('snapshots').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : decodeSnapshot(row);
  }

  async getByContentHash(hash: string): Promise<SnapshotRecord | undefined> {
    const row = await this.#db()
      .selectFrom('snapshots')
      .selectAll()
      .where('content_hash', '=', hash)
      .orderBy('created_at')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : decodeSnapshot(row);
  }

  async listByExecution(executionId: string): Promise<SnapshotRecord[]> {
    const rows = await this.#db().selectFrom('snapshots').selectAll().where('source_execution_id', '=', executionId).orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    return rows.map(decodeSnapshot);
  }

  async list(filter: SnapshotFilter = {}): Promise<SnapshotRecord[]> {
    let query = this.#db().selectFrom('snapshots').selectAll();
    if (filter.parentId === null) query = query.where('parent_id', 'is', null);
    else if (filter.parentId !== undefined) query = query.where('parent_id', '=', filter.parentId);
    if (filter.sourceInstanceId !== undefined) query = query.where('source_instance_id', '=', filter.sourceInstanceId);
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(listLimit(filter.limit)).execute();
    return rows.map(decodeSnapshot);
  }

  async all(): Promise<SnapshotRecord[]> {
    const rows = await this.#db().selectFrom('snapshots').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(decodeSnapshot);
  }

  async delete(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.#db().deleteFrom('snapshots').where('id', 'in', ids).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function listLimit(limit: number | undefined): number {
  const n = limit ?? DEFAULT_LIST_LIMIT;
  // SQLite reads a negative LIMIT as "no limit": refuse it rather than return everything.
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`list limit must be a non-negative integer, got ${n}`);
  return n;
}

// Patch encoders map `undefined` to "leave the column alone" and `null` to NULL.
function ms(date: Date): number;
function ms(date: Date | null): number | null;
function ms(date: Date | null | undefined): number | null | undefined;
function ms(date: Date | null | undefined): number | null | undefined {
  return date == null ? date : date.getTime();
}

function json(value: unknown): string | undefined {
  return value === undefined ? undefined : JSON.stringify(value);
}

function bool(value: boolean | undefined): number | undefined {
  return value === undefined ? undefined : value ? 1 : 0;
}

function date(value: number): Date;
function date(value: number | null): Date | null;
function date(value: number | null): Date | null {
  return value === null ? null : new Date(value);
}

function withoutUndefined<T extends object>(row: T): Partial<T> {
  return Object.fromEntries(Object.entries(row).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function encodeInstance(r: InstanceRecord): InstancesTable {
  return {
    id: r.id,
    state: r.state,
    state_reason: r.stateReason,
    env: r.env,
    runtime: r.runtime,
    env_vars: JSON.stringify(r.envVars),
    limits: JSON.stringify(r.limits),
    metadata: JSON.stringify(r.metadata),
    host_uid: r.hostUid,
    node_id: r.nodeId,
    created_at: r.createdAt.getTime(),
    started_at: ms(r.startedAt),
    stopped_at: ms(r.stoppedAt),
    start_duration_ms: r.startDurationMs,
    source_snapshot_id: r.sourceSnapshotId,
    last_snapshot_id: r.lastSnapshotId,
    function_id: r.functionId,
    pooled: r.pooled ? 1 : 0,
  };
}

/** Only the patchable fields are read, so a cast-in `id` or `hostUid` cannot slip through. */
function encodeInstancePatch(p: InstancePatch): Partial<InstancesTable> {
  return withoutUndefined({
    state: p.state,
    state_reason: p.stateReason,
    env: p.env,
    runtime: p.runtime,
    env_vars: json(p.envVars),
    limits: json(p.limits),
    metadata: json(p.metadata),
    started_at: ms(p.startedAt),
    stopped_at: ms(p.stoppedAt),
    start_duration_ms: p.startDurationMs,
    source_snapshot_id: p.sourceSnapshotId,
    last_snapshot_id: p.lastSnapshotId,
    function_id: p.functionId,
    pooled: bool(p.pooled),
  });
}

function decodeInstance(row: InstancesTable): InstanceRecord {
  return {
    id: row.id,
    state: row.state as InstanceState,
    stateReason: row.state_reason,
    env: row.env,
    runtime: row.runtime,
    envVars: JSON.parse(row.env_vars) as Record<string, string>,
    limits: JSON.parse(row.limits) as InstanceLimits,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    hostUid: row.host_uid,
    nodeId: row.node_id,
    createdAt: date(row.created_at),
    startedAt: date(row.started_at),
    stoppedAt: date(row.stopped_at),
    startDurationMs: row.start_duration_ms,
    sourceSnapshotId: row.source_snapshot_id,
    lastSnapshotId: row.last_snapshot_id,
    functionId: row.function_id,
    pooled: row.pooled === 1,
  };
}

function encodeSnapshot(r: SnapshotRecord): SnapshotsTable {
  return {
    id: r.id,
    content_hash: r.contentHash,
    parent_id: r.parentId,
    parent_hash: r.parentHash,
    fs_hash: r.fsHash,
    env_hash: r.envHash,
    memory_hash: r.memoryHash,
    size: r.size,
    stored_bytes: r.storedBytes,
    file_count: r.fileCount,
    files_read: r.filesRead,
    dir_count: r.dirCount,
    symlink_count: r.symlinkCount,
    env: r.env,
    env_vars: JSON.stringify(r.envVars),
    metadata: JSON.stringify(r.metadata),
    source_instance_id: r.sourceInstanceId,
    source_execution_id: r.sourceExecutionId,
    deterministic: r.deterministic ? 1 : 0,
    duration_ms: r.durationMs,
    created_at: r.createdAt.getTime(),
    merge_parent_ids: JSON.stringify(r.mergeParentIds),
  };
}

function decodeSnapshot(row: SnapshotsTable): SnapshotRecord {
  return {
    id: row.id,
    contentHash: row.content_hash,
    parentId: row.parent_id,
    parentHash: row.parent_hash,
    fsHash: row.fs_hash,
    envHash: row.env_hash,
    memoryHash: row.memory_hash,
    size: row.size,
    storedBytes: row.stored_bytes,
    fileCount: row.file_count,
    filesRead: row.files_read,
    dirCount: row.dir_count,
    symlinkCount: row.symlink_count,
    env: row.env,
    envVars: JSON.parse(row.env_vars) as Record<string, string>,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    sourceInstanceId: row.source_instance_id,
    sourceExecutionId: row.source_execution_id,
    deterministic: row.deterministic === 1,
    durationMs: row.duration_ms,
    createdAt: date(row.created_at),
    mergeParentIds: JSON.parse(row.merge_parent_ids) as string[],
  };
}

function encodeExecution(r: ExecutionRecord): ExecutionsTable {
  return {
    id: r.id,
    instance_id: r.instanceId,
    ephemeral: r.ephemeral ? 1 : 0,
    mode: r.mode,
    status: r.status,
    command: JSON.stringify(r.command),
    working_dir: r.workingDir,
    env_var_names: JSON.stringify(r.envVarNames),
    timeout_ms: r.timeoutMs,
    request_hash: r.requestHash,
    exit_code: r.exitCode,
    exit_reason: r.exitReason,
    signal: r.signal,
    stdout_bytes: r.stdoutBytes,
    stderr_bytes: r.stderrBytes,
    output_truncated: r.outputTruncated ? 1 : 0,
    progress: r.progress,
    last_seq: r.lastSeq,
    started_at: r.startedAt.getTime(),
    finished_at: ms(r.finishedAt),
    duration_ms: r.durationMs,
  };
}

function encodeExecutionPatch(p: ExecutionPatch): Partial<ExecutionsTable> {
  return withoutUndefined({
    ephemeral: bool(p.ephemeral),
    mode: p.mode,
    status: p.status,
    command: json(p.command),
    working_dir: p.workingDir,
    env_var_names: json(p.envVarNames),
    timeout_ms: p.timeoutMs,
    exit_code: p.exitCode,
    exit_reason: p.exitReason,
    signal: p.signal,
    stdout_bytes: p.stdoutBytes,
    stderr_bytes: p.stderrBytes,
    output_truncated: bool(p.outputTruncated),
    progress: p.progress,
    last_seq: p.lastSeq,
    finished_at: ms(p.finishedAt),
    duration_ms: p.durationMs,
  });
}

function decodeExecution(row: ExecutionsTable): ExecutionRecord {
  return {
    id: row.id,
    instanceId: row.instance_id,
    ephemeral: row.ephemeral === 1,
    mode: row.mode as ExecModeName,
    status: row.status as ExecutionStatus,
    command: JSON.parse(row.command) as string[],
    workingDir: row.working_dir,
    envVarNames: JSON.parse(row.env_var_names) as string[],
    timeoutMs: row.timeout_ms,
    requestHash: row.request_hash,
    exitCode: row.exit_code,
    exitReason: row.exit_reason as ExitReason | null,
    signal: row.signal,
    stdoutBytes: row.stdout_bytes,
    stderrBytes: row.stderr_bytes,
    outputTruncated: row.output_truncated === 1,
    progress: row.progress,
    lastSeq: row.last_seq,
    startedAt: date(row.started_at),
    finishedAt: date(row.finished_at),
    durationMs: row.duration_ms,
  };
}
