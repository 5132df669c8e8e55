import { FaasError, type SessionEndReason, type SessionState, type StartSessionRequest } from '@faas/protocol';
import type { SessionRecord } from '../../store/types.ts';

/**
 * The session state machine and its timing rules, free of I/O so they can be tested with a fake
 * clock. Times are epoch milliseconds.
 *
 *   starting ─▶ running ⇄ checkpointing
 *                  │            │
 *                  ▼            ▼
 *               expiring ─▶ terminated
 *   running / checkpointing / expiring ─▶ completed | failed | terminated (the process ended)
 *   terminated ─▶ running (resume)
 */

/** Sessions in these states have a process (or are about to) and take heartbeats. */
export const ACTIVE_STATES: readonly SessionState[] = ['starting', 'running', 'checkpointing', 'expiring'];
export const FINAL_STATES: readonly SessionState[] = ['completed', 'failed', 'terminated'];

const TRANSITIONS: Record<SessionState, readonly SessionState[]> = {
  starting: ['running', 'completed', 'failed', 'terminated'],
  running: ['checkpointing', 'expiring', 'completed', 'failed', 'terminated'],
  checkpointing: ['running', 'expiring', 'completed', 'failed', 'terminated'],
  expiring: ['completed', 'failed', 'terminated'],
  completed: [],
  failed: [],
  // resume
  terminated: ['running'],
};

export function isActive(state: SessionState): boolean {
  return ACTIVE_STATES.includes(state);
}

export function canTransition(from: SessionState, to: SessionState): boolean {
  return from === to || TRANSITIONS[from].includes(to);
}

/** Throws INTERNAL_ERROR on a transition the machine does not have (a bug, not a client error). */
export function assertTransition(from: SessionState, to: SessionState): void {
  if (!canTransition(from, to)) throw new FaasError('INTERNAL_ERROR', `session state ${from} cannot become ${to}`, { from, to });
}

/** The settings of a session, checked, with defaults applied. */
export interface SessionSettings {
  maxDurationMs: number;
  heartbeatIntervalMs: number | null;
  idleTimeoutMs: number;
  gracePeriodMs: number;
  checkpointIntervalMs: number;
  maxExtensions: number;
  autoExtend: boolean;
}

export const DEFAULT_GRACE_PERIOD_MS = 10_000;

/** Checks the timing fields of a start request against the server cap (LIMIT_OUT_OF_RANGE / VALIDATION_FAILED). */
export function sessionSettings(request: Pick<StartSessionRequest, 'max_duration_ms' | 'heartbeat_interval_ms' | 'idle_timeout_ms' | 'grace_period_ms' | 'checkpoint_interval_ms' | 'max_extensions' | 'auto_extend'>, capMs: number): SessionSettings {
  const { max_duration_ms: maxDurationMs } = request;
  if (!Number.isInteger(maxDurationMs) || maxDurationMs < 1 || maxDurationMs > capMs) {
    throw new FaasError('LIMIT_OUT_OF_RANGE', `max_duration_ms must be between 1 and the server's cap of ${capMs}, got ${maxDurationMs}`, { limit: 'max_duration_ms', value: maxDurationMs, min: 1, max: capMs });
  }
  const nonNegative = (name: string, value: number | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < 0) throw new FaasError('VALIDATION_FAILED', `${name} must be a non-negative integer, got ${value}`, { field: name, value });
    return value;
  };
  const settings: SessionSettings = {
    maxDurationMs,
    heartbeatIntervalMs: request.heartbeat_interval_ms ?? null,
    idleTimeoutMs: nonNegative('idle_timeout_ms', request.idle_timeout_ms, 0),
    gracePeriodMs: nonNegative('grace_period_ms', request.grace_period_ms, DEFAULT_GRACE_PERIOD_MS),
    checkpointIntervalMs: nonNegative('checkpoint_interval_ms', request.checkpoint_interval_ms, 0),
    maxExtensions: nonNegative('max_extensions', request.max_extensions, 0),
    autoExtend: request.auto_extend ?? false,
  };
  if (settings.heartbeatIntervalMs !== null && settings.idleTimeoutMs > 0 && settings.heartbeatIntervalMs > settings.idleTimeoutMs) {
    throw new FaasError('VALIDATION_FAILED', `heartbeat_interval_ms (${settings.heartbeatIntervalMs}) must not exceed idle_timeout_ms (${settings.idleTimeoutMs}): the session would end between two heartbeats`, { field: 'heartbeat_interval_ms' });
  }
  if (settings.autoExtend && settings.maxExtensions === 0) {
    throw new FaasError('VALIDATION_FAILED', 'auto_extend needs max_extensions of at least 1', { field: 'max_extensions' });
  }
  return settings;
}

/** What the timing of a live session needs. */
export type SessionTiming = Pick<SessionRecord, 'startedAt' | 'deadline' | 'lastHeartbeat' | 'idleTimeoutMs' | 'checkpointIntervalMs' | 'extendedCount' | 'maxExtensions' | 'autoExtend' | 'maxDurationMs'>;

/** What is due for a live session at `now`, most urgent first. */
export type DueAction = { kind: 'deadline' } | { kind: 'idle' } | { kind: 'checkpoint' };

/** When something next happens to the session (epoch ms), given when its next checkpoint is due (null: none). */
export function nextDueAt(s: SessionTiming, nextCheckpointAt: number | null): number {
  let at = s.deadline.getTime();
  if (s.idleTimeoutMs > 0) at = Math.min(at, s.lastHeartbeat.getTime() + s.idleTimeoutMs);
  if (nextCheckpointAt !== null) at = Math.min(at, nextCheckpointAt);
  return at;
}

/** What is due at `now`: the hard deadline before the idle timeout before a scheduled checkpoint. */
export function dueAction(s: SessionTiming, nextCheckpointAt: number | null, now: number): DueAction | undefined {
  if (now >= s.deadline.getTime()) return { kind: 'deadline' };
  if (s.idleTimeoutMs > 0 && now >= s.lastHeartbeat.getTime() + s.idleTimeoutMs) return { kind: 'idle' };
  if (nextCheckpointAt !== null && now >= nextCheckpointAt) return { kind: 'checkpoint' };
  return undefined;
}

/** The latest deadline any extension may reach: started_at + the server cap. */
export function capOf(s: Pick<SessionRecord, 'startedAt'>, capMs: number): number {
  return s.startedAt.getTime() + capMs;
}

/** The deadline after extending by `durationMs`, or SESSION_EXTENSION_REFUSED (reason max_extensions | cap). */
export function extendedDeadline(s: SessionTiming & { id: string }, durationMs: number, capMs: number): Date {
  if (!Number.isInteger(durationMs) || durationMs < 1) throw new FaasError('VALIDATION_FAILED', `duration_ms must be a positive integer, got ${durationMs}`, { field: 'duration_ms' });
  const base = { session_id: s.id, deadline: s.deadline.toISOString(), extended_count: s.extendedCount, max_extensions: s.maxExtensions };
  if (s.extendedCount >= s.maxExtensions) {
    throw new FaasError('SESSION_EXTENSION_REFUSED', `session ${s.id} used all of its ${s.maxExtensions} extensions`, { ...base, reason: 'max_extensions' });
  }
  const next = s.deadline.getTime() + durationMs;
  const cap = capOf(s, capMs);
  if (next > cap) {
    throw new FaasError('SESSION_EXTENSION_REFUSED', `extending session ${s.id} by ${durationMs} ms would pass the server's cap (${new Date(cap).toISOString()}: started_at + ${capMs} ms)`, { ...base, reason: 'cap', cap: new Date(cap).toISOString() });
  }
  return new Date(next);
}

/** At the deadline: the auto-extended deadline, or undefined when the session must end. */
export function autoExtension(s: SessionTiming & { id: string }, capMs: number): Date | undefined {
  if (!s.autoExtend) return undefined;
  try {
    return extendedDeadline(s, s.maxDurationMs, capMs);
  } catch {
    return undefined;
  }
}

/** How a session ends once its process has: by itself (completed/failed), or by faas (terminated with the reason). */
export function finalState(input: { endReason: SessionEndReason | undefined; exitCode: number | null; exitedByItself: boolean }): { state: SessionState; reason: SessionEndReason | null } {
  if (input.endReason !== undefined) return { state: 'terminated', reason: input.endReason };
  if (input.exitedByItself && input.exitCode === 0) return { state: 'completed', reason: null };
  return { state: 'failed', reason: null };
}
