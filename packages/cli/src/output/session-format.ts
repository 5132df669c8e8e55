/**
 * Plain-text forms of sessions for the `faas session` commands, and the exit code of a
 * followed session. Pure functions of SDK results, so they are tested without a server.
 */
import type { SessionEvent, SessionInfo } from '@faas/sdk';
import { formatAge, formatBytes } from './table.ts';

/** @default 124, as timeout(1): the hard cap or the idle timeout ended the session */
export const SESSION_TIMEOUT_EXIT_CODE = 124;

/**
 * A span for people, to the second, largest unit first: "2h 5m 3s", "45s"; under a second in
 * milliseconds ("200ms"), as short test settings are.
 *
 * @example
 * formatSpan(7_503_000); // "2h 5m 3s"
 */
export function formatSpan(ms: number): string {
  if (ms >= 0 && ms < 1000) return `${Math.round(ms)}ms`;
  let seconds = Math.max(0, Math.round(ms / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  if (seconds > 0 || parts.length === 0) parts.push(`${seconds}s`);
  return parts.join(' ');
}

/**
 * A deadline with what remains: "2026-12-04T18:00:00.000Z (in 1h 59m 30s)", or "(passed 3s ago)".
 *
 * @example
 * formatDeadline(session.deadline);
 */
export function formatDeadline(deadline: Date, now = new Date()): string {
  const left = deadline.getTime() - now.getTime();
  return `${deadline.toISOString()} (${left >= 0 ? `in ${formatSpan(left)}` : `passed ${formatSpan(-left)} ago`})`;
}

/**
 * `faas session status`: the session field by field, then its checkpoints, oldest first.
 *
 * @example
 * process.stdout.write(formatSession(await client.getSession(id)));
 */
export function formatSession(s: SessionInfo, now = new Date()): string {
  const lines: Array<[string, string]> = [
    ['session', s.id],
    ['state', s.stateReason === null ? s.state : `${s.state} (${s.stateReason})`],
    ['execution', s.executionId],
    ['instance', s.instanceId],
    ['started', `${s.startedAt.toISOString()} (${formatAge(s.startedAt, now)})`],
    ['deadline', formatDeadline(s.deadline, now)],
    ['last heartbeat', `${s.lastHeartbeat.toISOString()} (${formatAge(s.lastHeartbeat, now)}), every ${formatSpan(s.heartbeatIntervalMs)}`],
    ['idle timeout', s.idleTimeoutMs > 0 ? formatSpan(s.idleTimeoutMs) : 'none'],
    ['grace period', formatSpan(s.gracePeriodMs)],
    ['extensions', `${s.extendedCount} of ${s.maxExtensions}${s.autoExtend ? ', auto-extend' : ''}`],
    ['checkpoints', `${s.checkpoints.length}${s.checkpointIntervalMs === null ? '' : `, every ${formatSpan(s.checkpointIntervalMs)}`}`],
    ...s.checkpoints.map((c): [string, string] => ['', `${c.id}  ${c.createdAt.toISOString()}  ${formatBytes(c.sizeBytes)}`]),
    ['exit code', s.exitCode === null ? '-' : String(s.exitCode)],
  ];
  const width = Math.max(...lines.map(([field]) => field.length));
  return lines.map(([field, value]) => `${field.padEnd(width)}  ${value}\n`).join('');
}

/**
 * One stderr line for a session event while `faas session start --follow` runs.
 *
 * @example
 * describeSessionEvent(event); // "faas: session warning: max_duration; SIGTERM now, SIGKILL after 10s"
 */
export function describeSessionEvent(event: SessionEvent): string {
  switch (event.type) {
    case 'session.warning':
      return `faas: session warning: ${event.reason}; SIGTERM now, SIGKILL after ${formatSpan(event.gracePeriodMs)}`;
    case 'session.checkpoint':
      return `faas: session checkpoint ${event.checkpoint.id} (${formatBytes(event.checkpoint.sizeBytes)})`;
    case 'session.state':
      return `faas: session ${event.state}${event.stateReason === null ? '' : ` (${event.stateReason})`}, deadline ${event.deadline.toISOString()}`;
  }
}

/**
 * The CLI's exit code for an ended session, and a line saying why when faas ended it: the
 * command's own code when it exited by itself; 124 when the hard cap or the idle timeout
 * ended it (as timeout(1)); 1 for any other end.
 *
 * @example
 * sessionExitStatus(final); // { code: 0 } for a command that exited 0
 */
export function sessionExitStatus(s: Pick<SessionInfo, 'state' | 'stateReason' | 'exitCode' | 'id'>): { code: number; message?: string } {
  if (s.state === 'completed' || s.state === 'failed') {
    return s.exitCode === null ? { code: 1, message: `faas: session ${s.id} ${s.state} without an exit code` } : { code: s.exitCode };
  }
  const reason = s.stateReason ?? 'unknown reason';
  const message = `faas: session ${s.id} ${s.state}: ${reason}`;
  if (s.state !== 'terminated') return { code: 1, message: `faas: session ${s.id} is still ${s.state}` };
  return { code: s.stateReason === 'max_duration' || s.stateReason === 'idle_timeout' ? SESSION_TIMEOUT_EXIT_CODE : 1, message };
}
