/**
 * The execution event stream over SSE, with reattachment.
 *
 * The server keeps every event in a durable log numbered 1, 2, 3, ... and answers
 * `GET /events?after=N` with exactly the events after N. So when a connection drops before the
 * terminal event, reconnecting with `after = last seq delivered` loses nothing and repeats
 * nothing; a seq at or below the last one delivered is dropped anyway, as a guard.
 *
 * One exception to "events are log entries": when the server's stream itself fails, it sends
 * an `error` event carrying the last seq again (it is not in the log). That is treated as a
 * dropped connection whose reason is known: reconnect, and report that code if it persists.
 */
import { ErrorCode, FaasError, isFaasError } from '@faas/protocol/errors';
import type { ExecutionEvent as WireExecutionEvent, ExecutionStreamEvent as WireStreamEvent, Execution as WireExecution, SessionEvent as WireSessionEvent } from '@faas/protocol/wire';
import { executionPath } from './api-paths.ts';
import { isKnownErrorCode } from './error-mapping.ts';
import type { ExecutionEvent, ExecutionStreamEvent } from './execution-types.ts';
import type { HttpTransport, OpenStream } from './http-transport.ts';
import { sleep } from './retry-policy.ts';
import { SESSION_EVENT_TYPES, fromWireSessionEvent } from './session-wire-mapping.ts';
import { parseSseStream } from './sse-parser.ts';
import { fromWireEvent } from './wire-mapping.ts';

/**
 * Options of `client.streamExecution()` and `handle.events()`.
 *
 * @example
 * const controller = new AbortController();
 * for await (const event of client.streamExecution(id, { after: 10, signal: controller.signal })) { ... }
 */
export interface StreamExecutionOptions {
  /** Only events with a seq greater than this. @default 0 (from the first event) */
  after?: number;
  /** Ends the iteration quietly (no error) and closes the connection. */
  signal?: AbortSignal;
}

const EXECUTION_EVENT_TYPES = new Set(['output', 'progress', 'completed', 'error']);

function parseWireEvent(data: string, executionId: string): WireStreamEvent {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch (cause) {
    throw new FaasError(ErrorCode.INTERNAL_ERROR, `execution ${executionId}: an event is not JSON`, { data: data.slice(0, 500) }, { cause });
  }
  const event = value as { seq?: unknown; type?: unknown };
  if (typeof value !== 'object' || value === null || typeof event.seq !== 'number' || typeof event.type !== 'string') {
    throw new FaasError(ErrorCode.INTERNAL_ERROR, `execution ${executionId}: an event lacks seq or type`, { data: data.slice(0, 500) });
  }
  return value as WireStreamEvent;
}

/**
 * A stream that ends with nothing in it may just mean there is nothing after `after`: the
 * execution finished and its terminal event is at or before it. One read of the record tells
 * that apart from a broken connection; if the read fails, the caller reconnects as usual.
 */
async function finishedAtOrBefore(transport: HttpTransport, executionId: string, seq: number, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    const record = await transport.request<WireExecution>({ method: 'GET', path: executionPath(executionId), signal, maxRetries: 0 });
    return record.status !== 'running' && record.last_seq <= seq;
  } catch {
    return false;
  }
}

/**
 * Yields the events of an execution from `after` on, until its `completed` or `error` event.
 * A connection that breaks (or ends) before that is reopened with `after = last seq`, up to
 * `transport.maxRetries` times in a row; the count starts over whenever a connection delivered
 * events, so a long stream survives occasional drops. Asked for events after the terminal one,
 * it yields nothing and ends. Aborting the signal ends the iteration without an error.
 *
 * @example
 * for await (const event of streamExecutionEvents(transport, 'exec-1')) console.log(event.seq, event.type);
 */
export function streamExecutionEvents(transport: HttpTransport, executionId: string, options: StreamExecutionOptions = {}): AsyncGenerator<ExecutionEvent, void, undefined> {
  // Without session events, nothing but ExecutionEvents is yielded.
  return streamEvents(transport, executionId, options, false) as AsyncGenerator<ExecutionEvent, void, undefined>;
}

/**
 * As streamExecutionEvents, with the `session.*` events of a long-running session's execution
 * too (for the Session handle; plain execution streams keep their event types).
 *
 * @example
 * for await (const event of streamSessionEvents(transport, 'exec-1')) if (event.type === 'session.warning') console.warn(event.reason);
 */
export function streamSessionEvents(transport: HttpTransport, executionId: string, options: StreamExecutionOptions = {}): AsyncGenerator<ExecutionStreamEvent, void, undefined> {
  return streamEvents(transport, executionId, options, true);
}

async function* streamEvents(
  transport: HttpTransport,
  executionId: string,
  options: StreamExecutionOptions,
  withSessionEvents: boolean,
): AsyncGenerator<ExecutionStreamEvent, void, undefined> {
  const { signal } = options;
  const path = `${executionPath(executionId)}/events`;
  let lastSeq = options.after ?? 0;
  let failuresInARow = 0;
  for (;;) {
    let stream: OpenStream;
    try {
      stream = await transport.openStream({ method: 'GET', path, query: { after: lastSeq }, signal });
    } catch (error) {
      if (signal?.aborted) return;
      throw error;
    }
    let delivered = false;
    let breakCause: unknown;
    let streamError: FaasError | undefined;
    try {
      for await (const message of parseSseStream(stream.body)) {
        if (message.data === '') continue;
        const wire = parseWireEvent(message.data, executionId);
        if (wire.type === 'error' && wire.seq <= lastSeq) {
          // Not a logged event: the server's stream failed (it reuses the last seq for that).
          // Reconnecting may well work; if it never does, this is the error worth reporting.
          streamError = new FaasError(isKnownErrorCode(wire.code) ? wire.code : ErrorCode.INTERNAL_ERROR, wire.message, { execution_id: executionId, event_code: wire.code });
          break;
        }
        if (wire.seq <= lastSeq) continue;
        lastSeq = wire.seq;
        delivered = true;
        // An event type newer than this SDK (or not asked for) is skipped, not fatal; its seq still counts.
        if (SESSION_EVENT_TYPES.has(wire.type)) {
          if (withSessionEvents) yield fromWireSessionEvent(wire as WireSessionEvent);
          continue;
        }
        if (!EXECUTION_EVENT_TYPES.has(wire.type)) continue;
        yield fromWireEvent(wire as WireExecutionEvent);
        if (wire.type === 'completed' || wire.type === 'error') return;
      }
    } catch (error) {
      if (signal?.aborted) return;
      // Our own FaasErrors (a malformed event) would recur on reconnect; a read failure is a drop.
      if (isFaasError(error)) throw error;
      breakCause = error;
    } finally {
      stream.close();
    }
    if (signal?.aborted) return;
    if (!delivered && (await finishedAtOrBefore(transport, executionId, lastSeq, signal))) return;
    failuresInARow = delivered ? 1 : failuresInARow + 1;
    if (failuresInARow > transport.maxRetries) {
      if (streamError) throw streamError;
      throw new FaasError(
        ErrorCode.CONNECTION_FAILED,
        `the event stream of execution ${executionId} broke off before the execution finished (after seq ${lastSeq})`,
        { execution_id: executionId, last_seq: lastSeq },
        breakCause === undefined ? undefined : { cause: breakCause },
      );
    }
    try {
      await sleep(transport.backoffDelay(failuresInARow - 1), signal);
    } catch {
      return; // aborted while waiting to reconnect
    }
  }
}
