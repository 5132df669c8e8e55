/**
 * The heartbeat timer of a Session handle, apart from the handle so each reads on its own.
 *
 * Two promises it keeps: it never holds a Node process open (every timer is unref'd; only a
 * request in flight does, briefly), and it never rejects into the void (every failure goes to
 * `onError`, or nowhere).
 */
import { isFaasError } from '@faas/protocol/errors';
import { isRetryableFailure } from './retry-policy.ts';
import type { SessionHeartbeat } from './session-types.ts';

/**
 * What the loop needs from its handle.
 *
 * @example
 * new HeartbeatLoop({ send: (signal) => api.heartbeat(id, { signal, maxRetries: 0 }), intervalMs: () => 30_000, retries: 3, backoffDelay: (n) => 100 * 2 ** n, signal, onBeat, onError });
 */
export interface HeartbeatLoopOptions {
  /** One heartbeat, without transport retries (the loop retries on its own, unref'd, timers). */
  send: (signal: AbortSignal) => Promise<SessionHeartbeat>;
  /** Read at each scheduling: a resume may bring another interval. */
  intervalMs: () => number;
  /** Retries of a failed heartbeat before onError hears of it. */
  retries: number;
  backoffDelay: (attempt: number) => number;
  /** Aborted when the handle closes: ends a heartbeat in flight and its retry waits. */
  signal: AbortSignal;
  onBeat: (beat: SessionHeartbeat) => void;
  onError: (error: unknown) => void;
}

/**
 * The code a session error carries. An SDK older than the session codes keeps the server's
 * code in `details.server_code` (error-mapping.ts); both forms are accepted.
 */
function sessionErrorCode(error: unknown): string | undefined {
  if (!isFaasError(error)) return undefined;
  const serverCode = (error.details as { server_code?: unknown } | undefined)?.server_code;
  return typeof serverCode === 'string' ? serverCode : error.code;
}

/** Node timers have unref; browsers' numeric ids do not (and a page never waits on them). */
export function unref(timer: unknown): void {
  (timer as { unref?: () => void } | undefined)?.unref?.();
}

/** A wait that never holds the process open; it ends early, quietly, when `signal` aborts. */
function unrefDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    unref(timer);
    signal.addEventListener('abort', done, { once: true });
  });
}

export class HeartbeatLoop {
  readonly #options: HeartbeatLoopOptions;
  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: HeartbeatLoopOptions) {
    this.#options = options;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Heartbeats every interval from now on; a no-op while running or once the signal aborted. */
  start(): void {
    if (this.#options.signal.aborted) return;
    this.#running = true;
    if (this.#timer === undefined) this.#schedule();
  }

  /** No more heartbeats (one in flight finishes but schedules nothing). Safe to call twice. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (!this.#running) return;
    const timer = setTimeout(() => {
      if (this.#timer !== timer) return;
      this.#timer = undefined;
      void this.#beat().finally(() => {
        // A stop during the beat cleared #running; a start during it set a timer already.
        if (this.#running && this.#timer === undefined) this.#schedule();
      });
    }, this.#options.intervalMs());
    unref(timer);
    this.#timer = timer;
  }

  /** One heartbeat with its retries. Never rejects. */
  async #beat(): Promise<void> {
    const { signal } = this.#options;
    for (let attempt = 0; ; attempt++) {
      try {
        this.#options.onBeat(await this.#options.send(signal));
        return;
      } catch (error) {
        if (signal.aborted || !this.#running) return;
        const code = sessionErrorCode(error);
        if (code === 'SESSION_NOT_ACTIVE') {
          // The session ended (the stream or a status read says how): nothing left to keep alive, no error.
          this.stop();
          return;
        }
        if (code === 'SESSION_NOT_FOUND') {
          this.stop();
          this.#options.onError(error);
          return;
        }
        const retryable = isRetryableFailure(error) || (isFaasError(error) && error.status >= 500);
        if (!retryable || attempt >= this.#options.retries) {
          this.#options.onError(error);
          return;
        }
        await unrefDelay(this.#options.backoffDelay(attempt), signal);
        if (signal.aborted || !this.#running) return;
      }
    }
  }
}
