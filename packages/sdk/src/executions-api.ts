/**
 * The execution calls every public surface shares: the flat client methods, the instance
 * sub-client and the handles all end up here, so each wire call is written once.
 */
import { ErrorCode, FaasError } from '@faas/protocol/errors';
import type { ExecStarted as WireExecStarted, Execution as WireExecution } from '@faas/protocol/wire';
import { executionPath, instancePath } from './api-paths.ts';
import { isKnownErrorCode } from './error-mapping.ts';
import { streamExecutionEvents, type StreamExecutionOptions } from './event-stream.ts';
import { generateExecutionId } from './execution-id.ts';
import type { ExecRequest, ExecuteRequest, ExecutionEvent, ExecutionResult, ExecutionStarted, KillOptions, OutputEvent } from './execution-types.ts';
import type { HttpTransport } from './http-transport.ts';
import { sleep } from './retry-policy.ts';
import { fromWireExecStarted, fromWireExecution, toWireExecRequest, toWireExecuteRequest, toWireKill } from './wire-mapping.ts';

/**
 * What to do while waiting for an execution. With any callback set, the output is replayed
 * from the first event, so the callbacks see all of it, in order.
 *
 * @example
 * await handle.wait({ onStdout: (text) => console.log(text), timeout: 60_000 });
 */
export interface WaitOptions {
  /** Called for each stdout chunk with its text and the full event (`event.bytes` = raw bytes). */
  onStdout?: (data: string, event: OutputEvent) => void;
  /** Called for each stderr chunk with its text and the full event. */
  onStderr?: (data: string, event: OutputEvent) => void;
  /** Called for each progress report (0-100). */
  onProgress?: (progress: number, message: string | undefined) => void;
  /**
   * Give up waiting after this many ms with CLIENT_TIMEOUT. The execution keeps running on the
   * server (it is bounded by its own `timeoutMs`); kill it if that is what you want.
   * @default no limit
   */
  timeout?: number;
  /** Abort the wait; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Extra time a waiting call gets over the execution's own timeout, for start-up and teardown. */
const WAIT_MARGIN_MS = 10_000;
/** How often the final record is fetched again while it still says running (see fetchFinal). */
const FINAL_RECORD_ATTEMPTS = 10;

export class ExecutionsApi {
  readonly transport: HttpTransport;

  constructor(transport: HttpTransport) {
    this.transport = transport;
  }

  /** Client timeout for a call that waits for an execution: its own timeout plus a margin, or none. */
  waitingTimeout(executionTimeoutMs: number | undefined): number | null {
    return executionTimeoutMs === undefined ? null : Math.max(this.transport.timeoutMs, executionTimeoutMs + WAIT_MARGIN_MS);
  }

  async execute(request: ExecuteRequest): Promise<ExecutionResult> {
    const body = toWireExecuteRequest({ ...request, id: request.id ?? generateExecutionId() });
    const wire = await this.transport.request<WireExecution>({
      method: 'POST',
      path: '/api/v1/execute',
      body,
      idempotent: true, // it carries an id
      timeoutMs: this.waitingTimeout(request.timeoutMs),
    });
    return fromWireExecution(wire);
  }

  /** Starts a one-shot execution in the background; resolves with its id at once. */
  async startExecute(request: ExecuteRequest): Promise<ExecutionStarted> {
    const body = toWireExecuteRequest({ ...request, id: request.id ?? generateExecutionId() }, true);
    const wire = await this.transport.request<WireExecStarted>({ method: 'POST', path: '/api/v1/execute', body, idempotent: true });
    return fromWireExecStarted(wire);
  }

  async exec(instanceId: string, request: ExecRequest): Promise<ExecutionResult> {
    const wire = await this.transport.request<WireExecution>({
      method: 'POST',
      path: `${instancePath(instanceId)}/exec`,
      body: toWireExecRequest(request),
      timeoutMs: this.waitingTimeout(request.timeoutMs),
    });
    return fromWireExecution(wire);
  }

  async startExec(instanceId: string, request: ExecRequest): Promise<ExecutionStarted> {
    const wire = await this.transport.request<WireExecStarted>({
      method: 'POST',
      path: `${instancePath(instanceId)}/exec`,
      body: toWireExecRequest(request, true),
    });
    return fromWireExecStarted(wire);
  }

  async get(executionId: string, signal?: AbortSignal): Promise<ExecutionResult> {
    const wire = await this.transport.request<WireExecution>({ method: 'GET', path: executionPath(executionId), signal });
    return fromWireExecution(wire);
  }

  async kill(executionId: string, options: KillOptions = {}): Promise<ExecutionResult> {
    const wire = await this.transport.request<WireExecution>({
      method: 'POST',
      path: `${executionPath(executionId)}/kill`,
      body: toWireKill(options),
      idempotent: true, // killing twice ends the same execution
      timeoutMs: options.graceMs === undefined ? undefined : this.waitingTimeout(options.graceMs),
    });
    return fromWireExecution(wire);
  }

  stream(executionId: string, options: StreamExecutionOptions = {}): AsyncGenerator<ExecutionEvent, void, undefined> {
    return streamExecutionEvents(this.transport, executionId, options);
  }

  /**
   * Waits for the end of an execution by following its event stream (no polling), then
   * resolves with the final record. An `error` event (e.g. EXECUTION_INTERRUPTED) rejects with
   * a FaasError of that code.
   */
  async wait(executionId: string, options: WaitOptions = {}): Promise<ExecutionResult> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(options.signal?.reason);
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      options.timeout === undefined
        ? undefined
        : setTimeout(() => {
            controller.abort(new FaasError(ErrorCode.CLIENT_TIMEOUT, `execution ${executionId} did not finish within ${options.timeout} ms`, { execution_id: executionId, timeout_ms: options.timeout }));
          }, options.timeout);
    const { signal } = controller;
    try {
      const withCallbacks = options.onStdout !== undefined || options.onStderr !== undefined || options.onProgress !== undefined;
      let after = 0;
      if (!withCallbacks) {
        // Nobody wants the output: skip the replay and follow only what comes after now.
        const current = await this.get(executionId, signal);
        if (current.status !== 'running') return current;
        after = current.lastSeq;
      }
      for await (const event of this.stream(executionId, { after, signal })) {
        if (event.type === 'output') {
          (event.stream === 'stdout' ? options.onStdout : options.onStderr)?.(event.data, event);
        } else if (event.type === 'progress') {
          options.onProgress?.(event.progress, event.message);
        } else if (event.type === 'error') {
          const code = isKnownErrorCode(event.code) ? event.code : ErrorCode.INTERNAL_ERROR;
          throw new FaasError(code, event.message, { execution_id: executionId, event_code: event.code });
        } else {
          return await this.#fetchFinal(executionId, signal);
        }
      }
      // The stream only ends without a terminal event when it was aborted.
      throw signal.aborted ? signal.reason : new FaasError(ErrorCode.CONNECTION_FAILED, `the event stream of execution ${executionId} ended early`);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * The record after the `completed` event. The API does not promise that the record is
   * updated before the event is streamed, so a record still saying running is fetched again
   * after a short backoff a bounded number of times.
   */
  async #fetchFinal(executionId: string, signal: AbortSignal): Promise<ExecutionResult> {
    let result = await this.get(executionId, signal);
    for (let attempt = 0; result.status === 'running' && attempt < FINAL_RECORD_ATTEMPTS; attempt++) {
      await sleep(this.transport.backoffDelay(attempt), signal);
      result = await this.get(executionId, signal);
    }
    return result;
  }
}
