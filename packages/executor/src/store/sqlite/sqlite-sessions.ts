import { FaasError } from '@faas/protocol';
import type { SessionEndReason, SessionState } from '@faas/protocol';
import Database from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { SessionPatch, SessionRecord, SessionRepository } from '../types.ts';
import type { SqliteSchema } from './sqlite-store.ts';

/** Rows of `sessions`; see migration 0006 in `migrations.ts`. */
export interface SessionsTable {
  id: string;
  execution_id: string;
  instance_id: string;
  owns_instance: number;
  node_id: string;
  state: string;
  state_reason: string | null;
  process: string;
  started_at: number;
  deadline: number;
  last_heartbeat: number;
  max_duration_ms: number;
  heartbeat_interval_ms: number | null;
  idle_timeout_ms: number;
  grace_period_ms: number;
  checkpoint_interval_ms: number;
  checkpoints: string;
  extended_count: number;
  max_extensions: number;
  auto_extend: number;
  exit_code: number | null;
  ended_at: number | null;
}

export interface SessionExecutionsTable {
  execution_id: string;
  session_id: string;
}

const DEFAULT_LIST_LIMIT = 1000;

export class SqliteSessionRepository implements SessionRepository {
  readonly #db: () => Kysely<SqliteSchema>;

  constructor(db: () => Kysely<SqliteSchema>) {
    this.#db = db;
  }

  async insert(record: SessionRecord): Promise<void> {
    const db = this.#db();
    try {
      await db.insertInto('sessions').values(encode(record)).execute();
      await db.insertInto('session_executions').values({ execution_id: record.executionId, session_id: record.id }).execute();
    } catch (err) {
      if (err instanceof Database.SqliteError && err.code.startsWith('SQLITE_CONSTRAINT')) {
        throw new FaasError('ID_CONFLICT', `session id ${record.id} is already used`, { id: record.id }, { cause: err });
      }
      throw err;
    }
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const row = await this.#db().selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : decode(row);
  }

  async getByExecution(executionId: string): Promise<SessionRecord | undefined> {
    const row = await this.#db()
      .selectFrom('session_executions')
      .innerJoin('sessions', 'sessions.id', 'session_executions.session_id')
      .selectAll('sessions')
      .where('session_executions.execution_id', '=', executionId)
      .executeTakeFirst();
    return row === undefined ? undefined : decode(row);
  }

  async list(filter: { states: readonly SessionState[]; nodeId?: string; limit?: number }): Promise<SessionRecord[]> {
    if (filter.states.length === 0) return [];
    let q = this.#db().selectFrom('sessions').selectAll().where('state', 'in', [...filter.states]);
    if (filter.nodeId !== undefined) q = q.where('node_id', '=', filter.nodeId);
    const rows = await q.orderBy('started_at').orderBy('id').limit(filter.limit ?? DEFAULT_LIST_LIMIT).execute();
    return rows.map(decode);
  }

  async update(id: string, patch: SessionPatch): Promise<SessionRecord> {
    const db = this.#db();
    const current = await this.get(id);
    if (current === undefined) throw new FaasError('SESSION_NOT_FOUND', `no session with id ${id}`, { session_id: id });
    const next: SessionRecord = { ...current, ...patch };
    const { id: _id, started_at: _s, node_id: _n, ...row } = encode(next);
    await db.updateTable('sessions').set(row).where('id', '=', id).execute();
    if (patch.executionId !== undefined && patch.executionId !== current.executionId) {
      await db.insertInto('session_executions').values({ execution_id: patch.executionId, session_id: id }).onConflict((oc) => oc.column('execution_id').doNothing()).execute();
    }
    return next;
  }

  async setHeartbeats(entries: ReadonlyArray<{ id: string; at: Date }>): Promise<void> {
    const db = this.#db();
    for (const e of entries) await db.updateTable('sessions').set({ last_heartbeat: e.at.getTime() }).where('id', '=', e.id).execute();
  }
}

function encode(r: SessionRecord): SessionsTable {
  return {
    id: r.id,
    execution_id: r.executionId,
    instance_id: r.instanceId,
    owns_instance: r.ownsInstance ? 1 : 0,
    node_id: r.nodeId,
    state: r.state,
    state_reason: r.stateReason,
    process: JSON.stringify(r.process),
    started_at: r.startedAt.getTime(),
    deadline: r.deadline.getTime(),
    last_heartbeat: r.lastHeartbeat.getTime(),
    max_duration_ms: r.maxDurationMs,
    heartbeat_interval_ms: r.heartbeatIntervalMs,
    idle_timeout_ms: r.idleTimeoutMs,
    grace_period_ms: r.gracePeriodMs,
    checkpoint_interval_ms: r.checkpointIntervalMs,
    checkpoints: JSON.stringify(r.checkpoints.map((c) => ({ snapshot_id: c.snapshotId, content_hash: c.contentHash, created_at: c.createdAt.getTime(), size_bytes: c.sizeBytes }))),
    extended_count: r.extendedCount,
    max_extensions: r.maxExtensions,
    auto_extend: r.autoExtend ? 1 : 0,
    exit_code: r.exitCode,
    ended_at: r.endedAt === null ? null : r.endedAt.getTime(),
  };
}

function decode(row: SessionsTable): SessionRecord {
  const checkpoints = JSON.parse(row.checkpoints) as Array<{ snapshot_id: string; content_hash: string; created_at: number; size_bytes: number }>;
  return {
    id: row.id,
    executionId: row.execution_id,
    instanceId: row.instance_id,
    ownsInstance: row.owns_instance === 1,
    nodeId: row.node_id,
    state: row.state as SessionState,
    stateReason: row.state_reason as SessionEndReason | null,
    process: JSON.parse(row.process) as SessionRecord['process'],
    startedAt: new Date(row.started_at),
    deadline: new Date(row.deadline),
    lastHeartbeat: new Date(row.last_heartbeat),
    maxDurationMs: row.max_duration_ms,
    heartbeatIntervalMs: row.heartbeat_interval_ms,
    idleTimeoutMs: row.idle_timeout_ms,
    gracePeriodMs: row.grace_period_ms,
    checkpointIntervalMs: row.checkpoint_interval_ms,
    checkpoints: checkpoints.map((c) => ({ snapshotId: c.snapshot_id, contentHash: c.content_hash, createdAt: new Date(c.created_at), sizeBytes: c.size_bytes })),
    extendedCount: row.extended_count,
    maxExtensions: row.max_extensions,
    autoExtend: row.auto_extend === 1,
    exitCode: row.exit_code,
    endedAt: row.ended_at === null ? null : new Date(row.ended_at),
  };
}
