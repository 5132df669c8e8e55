/**
 * Sessions on the wire: the snake_case shapes of the session routes and events
 * (docs/sessions.md) and their conversion to and from the SDK's camelCase, kept apart from
 * `wire-mapping.ts` so that file stays about executions, instances and snapshots.
 */
import type {
  HeartbeatResponse as WireHeartbeat,
  Session as WireSession,
  SessionCheckpoint as WireSessionCheckpoint,
  SessionEvent as WireSessionEvent,
  StartSessionRequest as WireStartSessionRequest,
} from '@faas/protocol/wire';
import type { LongRunningOptions, LongRunningRequest, SessionCheckpoint, SessionEvent, SessionHeartbeat, SessionInfo } from './session-types.ts';

/** The session event types of the execution's stream. */
export const SESSION_EVENT_TYPES: ReadonlySet<string> = new Set<WireSessionEvent['type']>(['session.warning', 'session.checkpoint', 'session.state']);

/**
 * The heartbeat interval the handle uses when the session does not carry one (the start did not
 * say): a third of the idle timeout, so two heartbeats may be lost before it ends the session.
 */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000;

function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Body of `POST /api/v1/executions/long-running`. */
export function toWireLongRunning(request: LongRunningRequest, options: LongRunningOptions): WireStartSessionRequest {
  return compact({
    code: request.code,
    command: request.command,
    language: request.language,
    env_vars: request.envVars,
    working_dir: request.workingDir,
    instance_id: request.instanceId,
    env: request.env,
    memory_mb: request.memoryMb,
    cpu_cores: request.cpuCores,
    pids_max: request.pidsMax,
    max_duration_ms: options.maxDuration,
    heartbeat_interval_ms: options.heartbeatInterval,
    idle_timeout_ms: options.idleTimeout,
    grace_period_ms: options.gracePeriod,
    checkpoint_interval_ms: options.checkpointInterval,
    max_extensions: options.maxExtensions,
    auto_extend: options.autoExtend,
  });
}

export function fromWireCheckpoint(w: WireSessionCheckpoint): SessionCheckpoint {
  return { id: w.id, contentHash: w.content_hash, createdAt: new Date(w.created_at), sizeBytes: w.size_bytes };
}

export function fromWireSession(w: WireSession): SessionInfo {
  return {
    id: w.id,
    executionId: w.execution_id,
    instanceId: w.instance_id,
    state: w.state,
    stateReason: w.state_reason,
    startedAt: new Date(w.started_at),
    deadline: new Date(w.deadline),
    lastHeartbeat: new Date(w.last_heartbeat),
    heartbeatIntervalMs: w.heartbeat_interval_ms ?? (w.idle_timeout_ms > 0 ? Math.min(DEFAULT_HEARTBEAT_INTERVAL_MS, Math.max(1, Math.floor(w.idle_timeout_ms / 3))) : DEFAULT_HEARTBEAT_INTERVAL_MS),
    idleTimeoutMs: w.idle_timeout_ms,
    gracePeriodMs: w.grace_period_ms,
    checkpointIntervalMs: w.checkpoint_interval_ms > 0 ? w.checkpoint_interval_ms : null,
    checkpoints: (w.checkpoints ?? []).map(fromWireCheckpoint),
    extendedCount: w.extended_count,
    maxExtensions: w.max_extensions,
    autoExtend: w.auto_extend,
    exitCode: w.exit_code ?? null,
  };
}

export function fromWireHeartbeat(w: WireHeartbeat): SessionHeartbeat {
  return { id: w.id, lastHeartbeat: new Date(w.last_heartbeat), deadline: new Date(w.deadline), state: w.state };
}

export function fromWireSessionEvent(w: WireSessionEvent): SessionEvent {
  const base = { seq: w.seq, time: new Date(w.time), sessionId: w.session_id };
  switch (w.type) {
    case 'session.warning':
      return { type: 'session.warning', ...base, reason: w.reason, deadline: new Date(w.deadline), gracePeriodMs: w.grace_period_ms };
    case 'session.checkpoint':
      return { type: 'session.checkpoint', ...base, checkpoint: fromWireCheckpoint(w.checkpoint) };
    case 'session.state':
      return { type: 'session.state', ...base, state: w.state, stateReason: w.state_reason ?? null, deadline: new Date(w.deadline) };
  }
}
