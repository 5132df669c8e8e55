import type { StreamExecutionOptions } from './event-stream.ts';
import type { ExecutionEvent, ExecutionResult, KillOptions } from './execution-types.ts';
import type { ExecutionsApi, WaitOptions } from './executions-api.ts';

/**
 * A handle on an execution running in the background (STYLE point 10): wait for it, kill it,
 * or follow its events. Holding one costs nothing; every method is one or a few requests.
 *
 * @example
 * const handle = await instance.start({ command: ['sh', '-c', 'sleep 1; echo done'] });
 * for await (const event of handle.events()) if (event.type === 'output') console.log(event.data);
 * const result = await handle.wait();
 */
export class ExecutionHandle {
  /** The execution id. */
  readonly id: string;
  /** The instance it runs in. */
  readonly instanceId: string;
  readonly #api: ExecutionsApi;

  /** @internal Created by the client; use `instance.start()` or `client.executeInBackground()`. */
  constructor(api: ExecutionsApi, id: string, instanceId: string) {
    this.#api = api;
    this.id = id;
    this.instanceId = instanceId;
  }

  /**
   * Resolves with the finished result once the execution ended. With callbacks, they first
   * receive all of its output from the beginning, live.
   *
   * @example
   * const result = await handle.wait({ onStdout: (text) => process.stdout.write(text) });
   */
  wait(options?: WaitOptions): Promise<ExecutionResult> {
    return this.#api.wait(this.id, options);
  }

  /**
   * Ends the execution and resolves with its final result.
   *
   * @default { signal: 'SIGKILL' }
   * @example
   * await handle.kill({ signal: 'SIGTERM', graceMs: 2000 });
   */
  kill(options?: KillOptions): Promise<ExecutionResult> {
    return this.#api.kill(this.id, options);
  }

  /**
   * The execution's events from `after` on, until it completes; reconnects on a dropped
   * connection without repeating or losing an event.
   *
   * @example
   * for await (const event of handle.events({ after: 0 })) console.log(event.type);
   */
  events(options?: StreamExecutionOptions): AsyncIterable<ExecutionEvent> {
    return this.#api.stream(this.id, options);
  }

  /**
   * The execution's current record (status running while it runs).
   *
   * @example
   * const { progress } = await handle.refresh();
   */
  refresh(): Promise<ExecutionResult> {
    return this.#api.get(this.id);
  }

  /** @example JSON.stringify(handle); // '{"id":"exec-...","instanceId":"inst-..."}' */
  toJSON(): { id: string; instanceId: string } {
    return { id: this.id, instanceId: this.instanceId };
  }
}
