import type { ExitReason } from './executions.ts';

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

export type ExecutionEventType = ExecutionEvent['type'];

/** True for the events after which nothing more comes. */
export function isTerminalEvent(event: ExecutionEvent): boolean {
  return event.type === 'completed' || event.type === 'error';
}
