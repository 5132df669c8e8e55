import type { Health as WireHealth, MetricsSummary as WireMetricsSummary } from '@faas/protocol/wire';
import { resolveClientOptions, type FaaSPlatformClientOptions } from './client-options.ts';
import type { StreamExecutionOptions } from './event-stream.ts';
import { ExecutionHandle } from './execution-handle.ts';
import type { ExecuteRequest, ExecutionEvent, ExecutionResult, KillOptions } from './execution-types.ts';
import { ExecutionsApi, type WaitOptions } from './executions-api.ts';
import { HttpTransport } from './http-transport.ts';
import type { HealthStatus, MetricsSummary } from './instance-types.ts';
import { InstancesClient } from './instances-client.ts';
import { fromWireHealth, fromWireMetrics } from './wire-mapping.ts';

/**
 * Options of `executeWithCallbacks`: live output callbacks plus how long to wait.
 *
 * @example
 * await client.executeWithCallbacks({ code: 'make' }, { onStdout: (t) => console.log(t), timeout: 600_000 });
 */
export interface ExecuteWithCallbacksOptions extends WaitOptions {
  /** Called once the execution was accepted, with its id (for logs, or to kill it). */
  onStart?: (executionId: string) => void;
}

/**
 * Options of `executeEphemeral`: everything of an ExecuteRequest except what to run.
 *
 * @example
 * await client.executeEphemeral('print(42)', { language: 'python', timeoutMs: 5000 });
 */
export type ExecuteEphemeralOptions = Omit<ExecuteRequest, 'code' | 'command'>;

/**
 * The faas client. Flat methods for one-shot executions and for following or killing any
 * execution; `instances` for long-lived instances. Every call goes through one transport:
 * bearer auth, client timeouts, FaasError on failure, retries only where repeating is safe.
 *
 * @example
 * import { FaaSPlatformClient } from '@faas/sdk';
 * const client = new FaaSPlatformClient(); // FAAS_URL / FAAS_API_KEY, else http://127.0.0.1:8080
 * const result = await client.execute({ code: 'echo hello' });
 * console.log(result.stdout, result.exitCode);
 */
export class FaaSPlatformClient {
  /** The server base URL in use. */
  readonly platformUrl: string;
  /** Long-lived instances. */
  readonly instances: InstancesClient;
  readonly #api: ExecutionsApi;

  /**
   * @example
   * new FaaSPlatformClient({ platformUrl: 'http://127.0.0.1:8080', apiKey: process.env.MY_KEY, maxRetries: 5 });
   */
  constructor(options: FaaSPlatformClientOptions = {}) {
    const resolved = resolveClientOptions(options);
    const transport = new HttpTransport({
      baseUrl: resolved.platformUrl,
      apiKey: resolved.apiKey,
      timeoutMs: resolved.timeout,
      maxRetries: resolved.maxRetries,
      fetch: resolved.fetch,
    });
    this.platformUrl = transport.baseUrl;
    this.#api = new ExecutionsApi(transport);
    this.instances = new InstancesClient(this.#api);
  }

  /**
   * Runs a one-shot execution in a fresh instance and resolves with the finished result. The
   * request always carries an id (one is generated when you give none), so a dropped
   * connection is retried without running the code twice.
   *
   * @example
   * const { stdout, exitCode } = await client.execute({ command: ['uname', '-a'], timeoutMs: 5000 });
   */
  execute(request: ExecuteRequest): Promise<ExecutionResult> {
    return this.#api.execute(request);
  }

  /**
   * Runs source code once; sugar for `execute({ code, ...options })`.
   *
   * @example
   * const result = await client.executeEphemeral('echo $((6 * 7))');
   */
  executeEphemeral(code: string, options: ExecuteEphemeralOptions = {}): Promise<ExecutionResult> {
    return this.#api.execute({ ...options, code });
  }

  /**
   * Runs a one-shot execution in the background, calls the callbacks with its output as it
   * happens (in order, each chunk once), and resolves with the complete result. An execution
   * that could not finish normally rejects with a FaasError carrying the stream's error code.
   *
   * @example
   * const result = await client.executeWithCallbacks(
   *   { code: 'for i in 1 2 3; do echo $i; sleep 1; done' },
   *   { onStdout: (text) => process.stdout.write(text), onStderr: (text) => process.stderr.write(text) },
   * );
   */
  async executeWithCallbacks(request: ExecuteRequest, options: ExecuteWithCallbacksOptions = {}): Promise<ExecutionResult> {
    const { onStart, ...waitOptions } = options;
    const started = await this.#api.startExecute(request);
    onStart?.(started.id);
    return this.#api.wait(started.id, waitOptions);
  }

  /**
   * Starts a one-shot execution in the background and resolves with its handle at once.
   *
   * @example
   * const handle = await client.executeInBackground({ code: 'sleep 30' });
   * await handle.kill();
   */
  async executeInBackground(request: ExecuteRequest): Promise<ExecutionHandle> {
    const started = await this.#api.startExecute(request);
    return new ExecutionHandle(this.#api, started.id, started.instanceId);
  }

  /**
   * The events of an execution from `after` on, until it completes. A dropped connection is
   * reopened from the last event seen (up to `maxRetries` times in a row), so each event
   * arrives exactly once; aborting the signal ends the loop without an error.
   *
   * @example
   * for await (const event of client.streamExecution(id)) {
   *   if (event.type === 'output') process.stdout.write(event.bytes);
   *   if (event.type === 'completed') console.log('exit', event.exitCode);
   * }
   */
  streamExecution(executionId: string, options: StreamExecutionOptions = {}): AsyncIterable<ExecutionEvent> {
    return this.#api.stream(executionId, options);
  }

  /**
   * Reads an execution (status running while it runs).
   *
   * @example
   * const { status, stdout } = await client.getExecution('exec-2b6x0q1f9s8d');
   */
  getExecution(executionId: string): Promise<ExecutionResult> {
    return this.#api.get(executionId);
  }

  /**
   * A handle on an existing execution, to wait for it, kill it or follow its events.
   *
   * @example
   * const result = await client.execution('exec-2b6x0q1f9s8d', 'inst-8q3k2m9x7c1v').wait();
   */
  execution(executionId: string, instanceId = ''): ExecutionHandle {
    return new ExecutionHandle(this.#api, executionId, instanceId);
  }

  /**
   * Ends a running execution and resolves with its final result. Already finished: FaasError
   * EXECUTION_FINISHED.
   *
   * @default { signal: 'SIGKILL' }
   * @example
   * await client.killExecution(id, { signal: 'SIGTERM', graceMs: 3000 });
   */
  killExecution(executionId: string, options: KillOptions = {}): Promise<ExecutionResult> {
    return this.#api.kill(executionId, options);
  }

  /**
   * The server's health, version and runtime capabilities (`GET /health`, no key needed).
   *
   * @example
   * const { version, capabilities } = await client.health();
   */
  async health(): Promise<HealthStatus> {
    return fromWireHealth(await this.#api.transport.request<WireHealth>({ method: 'GET', path: '/health' }));
  }

  /**
   * Counts and measured latency percentiles (`GET /api/v1/metrics`).
   *
   * @example
   * const { latencyMs } = await client.metrics();
   * console.log(latencyMs.executeTotal.p50);
   */
  async metrics(): Promise<MetricsSummary> {
    return fromWireMetrics(await this.#api.transport.request<WireMetricsSummary>({ method: 'GET', path: '/api/v1/metrics' }));
  }
}
