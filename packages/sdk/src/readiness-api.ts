/**
 * Readiness calls behind `checkReadiness` and `waitForReady`. Waiting uses the streaming
 * variant of the route, so every round reaches `onProbe` as it happens.
 */
import { ErrorCode, FaasError } from '@faas/protocol/errors';
import type { ProbeResult as WireProbeResult, ReadinessEvent as WireEvent, ReadinessProbe as WireProbe, ReadinessRequest as WireRequest, ReadinessStatus as WireStatus } from '@faas/protocol/wire';
import { instancePath } from './api-paths.ts';
import { isKnownErrorCode } from './error-mapping.ts';
import type { HttpTransport } from './http-transport.ts';
import type { ProbeResult, ReadinessConfig, ReadinessProbe, ReadinessStatus, WaitForReadyOptions } from './readiness-types.ts';
import { parseSseStream } from './sse-parser.ts';

/** Default of `waitForReady`'s timeout. */
const DEFAULT_WAIT_MS = 30_000;
/** The server ends a wait at its timeout; past it by this much, the client stops listening. */
const CLIENT_GRACE_MS = 15_000;

/**
 * `waitForReady` ended without the instance becoming ready. `readiness` is the final status:
 * `timedOut` or `failed`, with every probe's last failure.
 *
 * @example
 * try { await client.waitForReady(id, { probes }); } catch (e) { if (e instanceof NotReadyError) console.log(e.readiness.probes); }
 */
export class NotReadyError extends FaasError {
  readonly readiness: ReadinessStatus;

  constructor(readiness: ReadinessStatus) {
    super(ErrorCode.NOT_READY, readiness.message, { timed_out: readiness.timedOut, failed: readiness.failed, checks_performed: readiness.checksPerformed });
    this.name = 'NotReadyError';
    this.readiness = readiness;
  }
}

export class ReadinessApi {
  readonly #transport: HttpTransport;

  constructor(transport: HttpTransport) {
    this.#transport = transport;
  }

  /** One check; retried on a dropped connection (probes only look). */
  async check(instanceId: string, config: ReadinessConfig): Promise<ReadinessStatus> {
    const body = toWireRequest(config);
    // A one-shot check takes up to initial delay + (successThreshold - 1) periods + a round.
    const budget = (config.initialDelayMs ?? 0) + ((config.successThreshold ?? 1) - 1) * (config.periodMs ?? 500) + 60_000;
    const wire = await this.#transport.request<WireStatus>({ method: 'POST', path: `${instancePath(instanceId)}/readiness`, body, idempotent: true, timeoutMs: Math.max(this.#transport.timeoutMs, budget) });
    return fromWireStatus(wire);
  }

  async wait(instanceId: string, options: WaitForReadyOptions): Promise<ReadinessStatus> {
    const timeout = options.timeout ?? DEFAULT_WAIT_MS;
    const body: WireRequest = { ...toWireRequest(options), wait: true, wait_timeout_ms: timeout };
    if (options.stopOnFailure !== undefined) body.stop_on_failure = options.stopOnFailure;
    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let clientTimedOut = false;
    const guard = setTimeout(() => {
      clientTimedOut = true;
      controller.abort();
    }, timeout + CLIENT_GRACE_MS);
    try {
      const response = await this.#transport.raw({
        method: 'POST',
        path: `${instancePath(instanceId)}/readiness`,
        headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: controller.signal,
        timeoutMs: this.#transport.timeoutMs,
      });
      if (response.body === null) throw new FaasError(ErrorCode.CONNECTION_FAILED, 'the server sent no stream body');
      for await (const message of parseSseStream(response.body)) {
        const event = JSON.parse(message.data) as WireEvent;
        switch (event.type) {
          case 'probe':
            options.onProbe?.({
              round: event.round,
              time: new Date(event.time),
              ok: event.ok,
              ready: event.ready,
              consecutiveSuccesses: event.consecutive_successes,
              consecutiveFailures: event.consecutive_failures,
              probes: event.probes.map(fromWireProbe),
            });
            break;
          case 'ready':
            return fromWireStatus(event);
          case 'not_ready':
          case 'timeout':
          case 'failed':
            throw new NotReadyError(fromWireStatus(event));
          case 'error':
            throw new FaasError(isKnownErrorCode(event.code) ? event.code : ErrorCode.INTERNAL_ERROR, event.message, { instance_id: instanceId, event_code: event.code });
          default:
            break; // an event type newer than this SDK
        }
      }
      throw new FaasError(ErrorCode.CONNECTION_FAILED, `the readiness stream of instance ${instanceId} ended before its result`, { instance_id: instanceId });
    } catch (error) {
      if (clientTimedOut) throw new FaasError(ErrorCode.CLIENT_TIMEOUT, `no readiness result for instance ${instanceId} within ${timeout + CLIENT_GRACE_MS} ms`, { timeout_ms: timeout });
      if (options.signal?.aborted) throw options.signal.reason;
      if (error instanceof FaasError) throw error;
      throw new FaasError(ErrorCode.CONNECTION_FAILED, `the readiness stream of instance ${instanceId} broke off: ${(error as Error).message}`, { instance_id: instanceId }, { cause: error });
    } finally {
      clearTimeout(guard);
      options.signal?.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }
}

function toWireRequest(config: ReadinessConfig): WireRequest {
  const body: WireRequest = { probes: config.probes.map(toWireProbe) };
  if (config.initialDelayMs !== undefined) body.initial_delay_ms = config.initialDelayMs;
  if (config.periodMs !== undefined) body.period_ms = config.periodMs;
  if (config.probeTimeoutMs !== undefined) body.timeout_ms = config.probeTimeoutMs;
  if (config.successThreshold !== undefined) body.success_threshold = config.successThreshold;
  if (config.failureThreshold !== undefined) body.failure_threshold = config.failureThreshold;
  return body;
}

function toWireProbe(probe: ReadinessProbe): WireProbe {
  const wire: WireProbe = { type: probe.type };
  if (probe.timeoutMs !== undefined) wire.timeout_ms = probe.timeoutMs;
  switch (probe.type) {
    case 'http':
      wire.port = probe.port;
      if (probe.path !== undefined) wire.path = probe.path;
      if (probe.host !== undefined) wire.host = probe.host;
      if (probe.expectedStatus !== undefined) wire.expected_status = probe.expectedStatus;
      if (probe.expectedBody !== undefined) wire.expected_body = probe.expectedBody;
      break;
    case 'tcp':
      wire.port = probe.port;
      if (probe.host !== undefined) wire.host = probe.host;
      break;
    case 'command':
      if (probe.command !== undefined) wire.command = probe.command;
      if (probe.code !== undefined) wire.code = probe.code;
      break;
    case 'file':
      wire.path = probe.path;
      if (probe.nonEmpty !== undefined) wire.non_empty = probe.nonEmpty;
      break;
    case 'log':
      wire.execution_id = probe.executionId;
      if (probe.pattern instanceof RegExp && probe.pattern.flags !== '') {
        throw new FaasError(ErrorCode.VALIDATION_FAILED, `log probe patterns are sent without flags; /${probe.pattern.source}/${probe.pattern.flags} has some`, { flags: probe.pattern.flags });
      }
      wire.pattern = probe.pattern instanceof RegExp ? probe.pattern.source : probe.pattern;
      if (probe.stream !== undefined) wire.stream = probe.stream;
      break;
    default:
      // A type newer than this SDK: sent as given, the server judges it.
      return { ...(probe as object), type: (probe as { type: string }).type } as WireProbe;
  }
  return wire;
}

function fromWireProbe(w: WireProbeResult): ProbeResult {
  return { type: w.type as ProbeResult['type'], ok: w.ok, latencyMs: w.latency_ms, message: w.message, lastFailure: w.last_failure };
}

function fromWireStatus(w: WireStatus): ReadinessStatus {
  return {
    ready: w.ready,
    checksPerformed: w.checks_performed,
    consecutiveSuccesses: w.consecutive_successes,
    consecutiveFailures: w.consecutive_failures,
    lastCheck: w.last_check === null ? null : new Date(w.last_check),
    probes: w.probes.map(fromWireProbe),
    message: w.message,
    timedOut: w.timed_out,
    failed: w.failed,
    elapsedMs: w.elapsed_ms,
  };
}
