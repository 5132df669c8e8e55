/**
 * The session calls behind the flat client methods and the `Session` handle, each wire call
 * written once. `:id` in every path is the session id or the id of its execution.
 */
import { executionPath } from './api-paths.ts';
import type { HttpTransport } from './http-transport.ts';
import type { LongRunningOptions, LongRunningRequest, ResumeSessionOptions, SessionCheckpoint, SessionHeartbeat, SessionInfo } from './session-types.ts';
import type { HeartbeatResponse as WireHeartbeat, Session as WireSession, SessionCheckpoint as WireSessionCheckpoint } from '@faas/protocol/wire';
import { streamSessionEvents, type StreamExecutionOptions } from './event-stream.ts';
import type { ExecutionStreamEvent } from './execution-types.ts';
import { fromWireCheckpoint, fromWireHeartbeat, fromWireSession, toWireLongRunning } from './session-wire-mapping.ts';

/** Per-call settings the handle passes down (it does its own heartbeat retries). */
export interface SessionCallOptions {
  signal?: AbortSignal;
  maxRetries?: number;
}

export class SessionsApi {
  readonly transport: HttpTransport;

  constructor(transport: HttpTransport) {
    this.transport = transport;
  }

  /** Not retried on a dropped connection: the request carries no id, a retry would start a second session. */
  async start(request: LongRunningRequest, options: LongRunningOptions): Promise<SessionInfo> {
    const body = toWireLongRunning(request, options);
    return fromWireSession(await this.transport.request<WireSession>({ method: 'POST', path: '/api/v1/executions/long-running', body }));
  }

  /** A heartbeat twice is one heartbeat a little later: safe to repeat. */
  async heartbeat(id: string, options: SessionCallOptions = {}): Promise<SessionHeartbeat> {
    const wire = await this.transport.request<WireHeartbeat>({ method: 'POST', path: `${executionPath(id)}/heartbeat`, idempotent: true, ...options });
    return fromWireHeartbeat(wire);
  }

  /** Not retried: a repeat would extend twice. */
  async extend(id: string, durationMs: number): Promise<SessionInfo> {
    return fromWireSession(await this.transport.request<WireSession>({ method: 'POST', path: `${executionPath(id)}/extend`, body: { duration_ms: durationMs } }));
  }

  /** Not retried: a repeat would take a second checkpoint. */
  async checkpoint(id: string): Promise<SessionCheckpoint> {
    return fromWireCheckpoint(await this.transport.request<WireSessionCheckpoint>({ method: 'POST', path: `${executionPath(id)}/checkpoint` }));
  }

  async get(id: string, signal?: AbortSignal): Promise<SessionInfo> {
    return fromWireSession(await this.transport.request<WireSession>({ method: 'GET', path: `${executionPath(id)}/session`, signal }));
  }

  /** Not retried: after a lost answer the repeat would be refused with SESSION_NOT_ACTIVE, hiding the stop that worked. */
  async stop(id: string): Promise<SessionInfo> {
    return fromWireSession(await this.transport.request<WireSession>({ method: 'POST', path: `${executionPath(id)}/stop` }));
  }

  /** Not retried: a repeat would resume twice (or be refused for a session that runs again). */
  async resume(id: string, options: ResumeSessionOptions = {}): Promise<SessionInfo> {
    const body = options.envVars === undefined ? {} : { env_vars: options.envVars };
    return fromWireSession(await this.transport.request<WireSession>({ method: 'POST', path: `${executionPath(id)}/resume`, body }));
  }

  /** The execution's events with the session's among them. */
  events(executionId: string, options: StreamExecutionOptions = {}): AsyncGenerator<ExecutionStreamEvent, void, undefined> {
    return streamSessionEvents(this.transport, executionId, options);
  }
}
