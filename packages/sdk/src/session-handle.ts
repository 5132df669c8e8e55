/**
 * The handle on a long-running session: it heartbeats by itself, follows the execution's
 * stream for its callbacks and `wait()`, and wraps the session calls.
 *
 * Two things run in the background, and neither may keep a process alive on its own or throw
 * where nobody listens: the heartbeat timer (unref'd; failures go to `onError`) and, while
 * someone wants events, one stream follower shared by every callback and `wait()`.
 */
import { ErrorCode, FaasError } from '@faas/protocol/errors';
import type { StreamExecutionOptions } from './event-stream.ts';
import type { ExecutionStreamEvent } from './execution-types.ts';
import { HeartbeatLoop } from './heartbeat-loop.ts';
import { sleep } from './retry-policy.ts';
import type { SessionsApi } from './sessions-api.ts';
import {
  isFinalSessionState,
  type SessionCallbacks,
  type SessionCheckpoint,
  type SessionHeartbeat,
  type ResumeSessionOptions,
  type SessionInfo,
  type SessionState,
  type SessionWaitOptions,
} from './session-types.ts';

/** Heartbeat retries before `onError` hears of a failure. @default 3 @example startLongRunningExecution(r, { maxDuration, heartbeatRetries: DEFAULT_HEARTBEAT_RETRIES }); */
export const DEFAULT_HEARTBEAT_RETRIES = 3;
/** How often the session record is read again after the execution ended while it is not final yet. */
const FINAL_RECORD_ATTEMPTS = 10;
/** Stream callbacks: registering one of these starts the follower; `onError` alone does not. */
const STREAM_CALLBACKS = ['onOutput', 'onStdout', 'onStderr', 'onWarning', 'onCheckpoint', 'onStateChange'] as const;

/** Handle settings that are not session settings. */
export interface SessionHandleOptions {
  /** @default true */
  heartbeat?: boolean;
  /** @default DEFAULT_HEARTBEAT_RETRIES */
  heartbeatRetries?: number;
}

function closedError(): Error {
  return new DOMException('the session handle was closed', 'AbortError');
}

/**
 * A long-running session (docs/sessions.md), from `client.startLongRunningExecution()` or
 * `client.session(id)`. It heartbeats every `heartbeatIntervalMs` on a timer that does not keep
 * the process alive, until `close()`, `stop()` or the end of the session; `resume()` starts it
 * again. Callbacks see the execution's output from its start and each session event once.
 *
 * @example
 * const session = await client.startLongRunningExecution({ command: ['python3', 'train.py'] }, {
 *   maxDuration: 4 * 3_600_000,
 *   heartbeatInterval: 30_000,
 *   idleTimeout: 300_000,
 *   checkpointInterval: 600_000,
 *   onStdout: (text) => process.stdout.write(text),
 *   onWarning: (w) => console.warn(`ending (${w.reason}) by ${w.deadline.toISOString()}`),
 *   onError: (error) => console.error('heartbeat failed', error),
 * });
 * const final = await session.wait();
 * console.log(final.state, final.stateReason, final.exitCode);
 */
export class Session {
  /** The session id (`sess-...`), the same across a resume. */
  readonly id: string;
  readonly #api: SessionsApi;
  readonly #listeners = new Set<SessionCallbacks>();
  readonly #heartbeatEnabled: boolean;
  readonly #heartbeats: HeartbeatLoop;
  #info: SessionInfo;
  #closed = false;
  /** Aborted by close(): ends the follower, a pending heartbeat and its retry waits. */
  readonly #closing = new AbortController();
  #following: Promise<SessionInfo> | undefined;
  /** The execution #following follows: a resume starts a new execution, hence a new follower. */
  #followingExecution: string | undefined;

  /** @internal Created by the client; use `client.startLongRunningExecution()` or `client.session(id)`. */
  constructor(api: SessionsApi, info: SessionInfo, callbacks: SessionCallbacks = {}, options: SessionHandleOptions = {}) {
    this.#api = api;
    this.id = info.id;
    this.#info = info;
    this.#heartbeatEnabled = options.heartbeat ?? true;
    this.#heartbeats = new HeartbeatLoop({
      send: (signal) => api.heartbeat(this.id, { signal, maxRetries: 0 }),
      intervalMs: () => this.#info.heartbeatIntervalMs,
      retries: options.heartbeatRetries ?? DEFAULT_HEARTBEAT_RETRIES,
      backoffDelay: (attempt) => api.transport.backoffDelay(attempt),
      signal: this.#closing.signal,
      onBeat: (beat) => this.#seeHeartbeat(beat),
      onError: (error) => this.#report(error),
    });
    this.on(callbacks);
    this.#startHeartbeats();
  }

  /** The latest session record this handle saw (from the start, a call, a heartbeat or an event). */
  get info(): SessionInfo {
    return this.#info;
  }

  /** The execution running the command now (a resume starts a new one). */
  get executionId(): string {
    return this.#info.executionId;
  }

  get instanceId(): string {
    return this.#info.instanceId;
  }

  /** The latest known deadline. */
  get deadline(): Date {
    return this.#info.deadline;
  }

  /** The latest known state. */
  get state(): SessionState {
    return this.#info.state;
  }

  /** True while the handle heartbeats on its own. */
  get heartbeating(): boolean {
    return this.#heartbeats.running;
  }

  /**
   * Adds callbacks; resolves nothing, returns the function that removes them. Stream callbacks
   * added right after the start see everything from the execution's first event; added later,
   * they see what comes from then on.
   *
   * @example
   * const off = session.on({ onCheckpoint: (c) => console.log('checkpoint', c.id) });
   * off();
   */
  on(callbacks: SessionCallbacks): () => void {
    const entry = { ...callbacks };
    this.#listeners.add(entry);
    if (!this.#closed && STREAM_CALLBACKS.some((name) => entry[name] !== undefined)) this.#follow();
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** @example session.onOutput((event) => (event.stream === 'stdout' ? process.stdout : process.stderr).write(event.bytes)); */
  onOutput(callback: NonNullable<SessionCallbacks['onOutput']>): () => void {
    return this.on({ onOutput: callback });
  }

  /** @example session.onStdout((text) => process.stdout.write(text)); */
  onStdout(callback: NonNullable<SessionCallbacks['onStdout']>): () => void {
    return this.on({ onStdout: callback });
  }

  /** @example session.onStderr((text) => process.stderr.write(text)); */
  onStderr(callback: NonNullable<SessionCallbacks['onStderr']>): () => void {
    return this.on({ onStderr: callback });
  }

  /** @example session.onWarning((w) => console.warn(`${w.reason}: SIGKILL in ${w.gracePeriodMs} ms`)); */
  onWarning(callback: NonNullable<SessionCallbacks['onWarning']>): () => void {
    return this.on({ onWarning: callback });
  }

  /** @example session.onCheckpoint((checkpoint) => console.log(checkpoint.id, checkpoint.sizeBytes)); */
  onCheckpoint(callback: NonNullable<SessionCallbacks['onCheckpoint']>): () => void {
    return this.on({ onCheckpoint: callback });
  }

  /** @example session.onStateChange((state, reason) => console.log(state, reason ?? '')); */
  onStateChange(callback: NonNullable<SessionCallbacks['onStateChange']>): () => void {
    return this.on({ onStateChange: callback });
  }

  /** @example session.onError((error) => console.error('session handle:', error)); */
  onError(callback: NonNullable<SessionCallbacks['onError']>): () => void {
    return this.on({ onError: callback });
  }

  /**
   * One heartbeat now (the handle also sends them by itself). Ended: SESSION_NOT_ACTIVE.
   *
   * @example
   * const { deadline } = await session.heartbeat();
   */
  async heartbeat(): Promise<SessionHeartbeat> {
    const beat = await this.#api.heartbeat(this.id);
    this.#seeHeartbeat(beat);
    return beat;
  }

  /**
   * Moves the deadline `ms` later and resolves with the session. Past the server's cap or
   * `maxExtensions`: SESSION_EXTENSION_REFUSED (`details.reason` says which).
   *
   * @example
   * const { deadline } = await session.extend(30 * 60_000);
   */
  async extend(ms: number): Promise<SessionInfo> {
    return this.#see(await this.#api.extend(this.id, ms));
  }

  /**
   * Takes a checkpoint (a snapshot of the instance) now.
   *
   * @example
   * const { id } = await session.checkpoint();
   * await client.restoreSnapshot(id);
   */
  async checkpoint(): Promise<SessionCheckpoint> {
    const checkpoint = await this.#api.checkpoint(this.id);
    this.#info = { ...this.#info, checkpoints: [...this.#info.checkpoints, checkpoint] };
    return checkpoint;
  }

  /**
   * The session as the server has it now.
   *
   * @example
   * const { state, deadline, lastHeartbeat } = await session.status();
   */
  async status(): Promise<SessionInfo> {
    return this.#see(await this.#api.get(this.id));
  }

  /**
   * Ends the session (warning, SIGTERM, SIGKILL after the grace period; a final checkpoint)
   * and resolves with it; heartbeating stops.
   *
   * @example
   * const { state, stateReason } = await session.stop(); // terminated, stopped
   */
  async stop(): Promise<SessionInfo> {
    return this.#see(await this.#api.stop(this.id));
  }

  /**
   * Starts an ended session again from its latest checkpoint, under the same id (a new
   * execution), and heartbeats again unless the handle was closed.
   *
   * @example
   * if (session.state === 'terminated') await session.resume();
   */
  async resume(options: ResumeSessionOptions = {}): Promise<SessionInfo> {
    const info = this.#see(await this.#api.resume(this.id, options));
    // The old execution's follower is over: callbacks follow the new one.
    if (!this.#closed && [...this.#listeners].some((l) => STREAM_CALLBACKS.some((name) => l[name] !== undefined))) this.#follow();
    this.#startHeartbeats();
    return info;
  }

  /**
   * Resolves with the final session once the execution ended (completed by itself, or ended
   * by the server: see `state` and `stateReason`). Rejects with CLIENT_TIMEOUT after `timeout`
   * (the session runs on), with the signal's reason, or with an AbortError when the handle is
   * closed meanwhile.
   *
   * @example
   * const { state, exitCode } = await session.wait();
   */
  wait(options: SessionWaitOptions = {}): Promise<SessionInfo> {
    if (this.#closed) return Promise.reject(closedError());
    const following = this.#follow();
    const closing = this.#closing.signal;
    return new Promise<SessionInfo>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        closing.removeEventListener('abort', onClose);
      };
      const onAbort = (): void => {
        finish();
        reject(options.signal?.reason);
      };
      // close() answers at once, whatever the stream is doing.
      const onClose = (): void => {
        finish();
        reject(closing.reason);
      };
      closing.addEventListener('abort', onClose, { once: true });
      const timer =
        options.timeout === undefined
          ? undefined
          : setTimeout(() => {
              finish();
              reject(new FaasError(ErrorCode.CLIENT_TIMEOUT, `session ${this.id} did not end within ${options.timeout} ms`, { session_id: this.id, timeout_ms: options.timeout }));
            }, options.timeout);
      if (options.signal?.aborted) {
        onAbort();
        return;
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      following.then(
        (info) => {
          finish();
          resolve(info);
        },
        (error: unknown) => {
          finish();
          reject(error);
        },
      );
    });
  }

  /**
   * The current execution's events (output, progress, `session.*`, the end), from `after` on.
   *
   * @example
   * for await (const event of session.events()) if (event.type === 'session.warning') break;
   */
  events(options?: StreamExecutionOptions): AsyncIterable<ExecutionStreamEvent> {
    return this.#api.events(this.executionId, options);
  }

  /**
   * Stops heartbeating and following events; the session itself runs on (and ends by idle
   * timeout unless something else heartbeats). A pending `wait()` rejects with an AbortError.
   * Safe to call twice.
   *
   * @example
   * session.close(); // let the process exit; the session stays reachable as client.session(id)
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopHeartbeats();
    this.#closing.abort(closedError());
  }

  /** @example JSON.stringify(session); // the latest session record */
  toJSON(): SessionInfo {
    return this.#info;
  }

  /** Records a newer session record and stops heartbeating once it says the session ended. */
  #see(info: SessionInfo): SessionInfo {
    this.#info = info;
    if (isFinalSessionState(info.state)) this.#stopHeartbeats();
    return info;
  }

  #seeHeartbeat(beat: SessionHeartbeat): void {
    this.#info = { ...this.#info, lastHeartbeat: beat.lastHeartbeat, deadline: beat.deadline, state: beat.state };
    if (isFinalSessionState(beat.state)) this.#stopHeartbeats();
  }

  #startHeartbeats(): void {
    if (this.#heartbeatEnabled && !this.#closed && !isFinalSessionState(this.#info.state)) this.#heartbeats.start();
  }

  #stopHeartbeats(): void {
    this.#heartbeats.stop();
  }

  #report(error: unknown): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener.onError?.(error);
      } catch {
        // A throwing error callback must not turn into an unhandled rejection either.
      }
    }
  }

  /** The shared follower of the current execution; started on demand. */
  #follow(): Promise<SessionInfo> {
    if (this.#following === undefined || this.#followingExecution !== this.executionId) {
      const executionId = this.executionId;
      this.#followingExecution = executionId;
      const following = this.#runFollower(executionId);
      this.#following = following;
      following.catch((error: unknown) => {
        // Whoever waits gets the rejection; the callbacks hear of it through onError.
        if (this.#following === following) this.#following = undefined;
        if (!this.#closing.signal.aborted) this.#report(error);
      });
    }
    return this.#following;
  }

  async #runFollower(executionId: string): Promise<SessionInfo> {
    const signal = this.#closing.signal;
    for await (const event of this.#api.events(executionId, { after: 0, signal })) {
      this.#dispatch(event);
      if (event.type === 'completed' || event.type === 'error') return await this.#finalRecord(signal);
    }
    // The stream ends without its terminal event only when aborted (close()).
    throw signal.aborted ? signal.reason : new FaasError(ErrorCode.CONNECTION_FAILED, `the event stream of session ${this.id} ended early`, { session_id: this.id });
  }

  /**
   * The session after its execution's end. The execution's end is logged before the session
   * record says final (the final checkpoint comes in between), so a record still live is read
   * again after a short backoff, a bounded number of times.
   */
  async #finalRecord(signal: AbortSignal): Promise<SessionInfo> {
    let info = await this.#api.get(this.id, signal);
    for (let attempt = 0; !isFinalSessionState(info.state) && attempt < FINAL_RECORD_ATTEMPTS; attempt++) {
      // A plain (ref'd) timer: someone may be waiting for this, and an unref'd one would let the process exit under them.
      await sleep(this.#api.transport.backoffDelay(attempt), signal);
      info = await this.#api.get(this.id, signal);
    }
    return this.#see(info);
  }

  #dispatch(event: ExecutionStreamEvent): void {
    if (event.type === 'session.state') {
      this.#info = { ...this.#info, state: event.state, stateReason: event.stateReason, deadline: event.deadline };
      if (isFinalSessionState(event.state)) this.#stopHeartbeats();
    } else if (event.type === 'session.warning') {
      this.#info = { ...this.#info, deadline: event.deadline };
    } else if (event.type === 'session.checkpoint') {
      if (!this.#info.checkpoints.some((c) => c.id === event.checkpoint.id)) this.#info = { ...this.#info, checkpoints: [...this.#info.checkpoints, event.checkpoint] };
    }
    for (const listener of [...this.#listeners]) {
      try {
        switch (event.type) {
          case 'output':
            listener.onOutput?.(event);
            (event.stream === 'stdout' ? listener.onStdout : listener.onStderr)?.(event.data, event);
            break;
          case 'session.warning':
            listener.onWarning?.(event);
            break;
          case 'session.checkpoint':
            listener.onCheckpoint?.(event.checkpoint, event);
            break;
          case 'session.state':
            listener.onStateChange?.(event.state, event.stateReason, event);
            break;
          default:
            break;
        }
      } catch (error) {
        // A throwing callback must not end the follower (and with it every other callback and wait()).
        this.#report(error);
      }
    }
  }
}
