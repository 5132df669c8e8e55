import type { ExitReason } from './executions.ts';
import type { SessionCheckpoint, SessionEndReason, SessionState } from './sessions.ts';

/**
 * Events of an execution, in the order they were appended to its durable log. `seq` starts at 1
 * and has no gaps; a client that reconnects with `after = last seq it saw` gets exactly the rest.
 * Carried as SSE (`event: <type>`, `id: <seq>`, `data: <json>`) and as WebSocket text messages.
 */
export type ExecutionEvent = OutputEvent | ProgressEvent | CompletedEvent | ErrorEvent;

export interface OutputEvent {
  type: 'output';
  seq: number;
  time: string;
  stream: 'stdout' | 'stderr';
  /** UTF-8 text, or base64 when `encoding` is "base64" (the chunk was not valid UTF-8). */
  data: string;
  encoding?: 'base64';
}

export interface ProgressEvent {
  type: 'progress';
  seq: number;
  time: string;
  /** 0-100 */
  progress: number;
  message?: string;
}

export interface CompletedEvent {
  type: 'completed';
  seq: number;
  time: string;
  exit_code: number | null;
  exit_reason: ExitReason;
  signal: string | null;
  duration_ms: number;
  output_truncated: boolean;
}

/** A failure once streaming has begun: the stream carries it instead of breaking off. */
export interface ErrorEvent {
  type: 'error';
  seq: number;
  time: string;
  code: string;
  message: string;
}

/**
 * Events a long-running session adds to its execution's stream (docs/sessions.md). They share
 * the envelope and the seq numbering of the execution's own events; clients that do not know
 * them skip them. None of them ends a stream.
 */
export type SessionEvent = SessionWarningEvent | SessionCheckpointEvent | SessionStateEvent;

/** The session is about to be ended: SIGTERM follows (after a final checkpoint), SIGKILL after `grace_period_ms`. */
export interface SessionWarningEvent {
  type: 'session.warning';
  seq: number;
  time: string;
  session_id: string;
  reason: SessionEndReason;
  deadline: string;
  grace_period_ms: number;
}

/** A checkpoint of the session's instance was taken. */
export interface SessionCheckpointEvent {
  type: 'session.checkpoint';
  seq: number;
  time: string;
  session_id: string;
  checkpoint: SessionCheckpoint;
}

/** The session changed state. */
export interface SessionStateEvent {
  type: 'session.state';
  seq: number;
  time: string;
  session_id: string;
  state: SessionState;
  state_reason: SessionEndReason | null;
  deadline: string;
}

/**
 * Everything an execution's stream carries: its own events and, for a session's execution, the
 * session's. `ExecutionEvent` stays the process events alone so clients that switch over it
 * exhaustively keep compiling.
 */
export type ExecutionStreamEvent = ExecutionEvent | SessionEvent;

export type ExecutionEventType = ExecutionStreamEvent['type'];

/** True for the events after which nothing more comes. */
export function isTerminalEvent(event: ExecutionStreamEvent): boolean {
  return event.type === 'completed' || event.type === 'error';
}
