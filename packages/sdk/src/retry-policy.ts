/**
 * When the SDK sends a request again, and how long it waits first.
 *
 * Only idempotent requests are ever retried (the transport decides that from the request);
 * this module decides which failures are worth a second try: the connection failed, a proxy
 * or the server said it is briefly unavailable (502/503/504), or the server said so with a
 * code (CAPACITY_EXHAUSTED, SHUTTING_DOWN). Everything else, notably any other 4xx, would
 * fail the same way again.
 */
import { isFaasError } from '@faas/protocol/errors';

/**
 * Backoff tuning.
 *
 * @example
 * const policy: BackoffOptions = { baseDelayMs: 100, maxDelayMs: 2000 };
 */
export interface BackoffOptions {
  /** Delay ceiling before the first retry; doubles on each later one. @default 100 */
  baseDelayMs?: number;
  /** No single wait is longer than this. @default 2000 */
  maxDelayMs?: number;
  /** Source of randomness in [0, 1), replaceable in tests. @default Math.random */
  random?: () => number;
}

/** First backoff ceiling in ms. @default 100 @example backoffDelay(0, { baseDelayMs: DEFAULT_RETRY_BASE_DELAY_MS }); */
export const DEFAULT_RETRY_BASE_DELAY_MS = 100;
/** Longest single backoff in ms. @default 2000 @example backoffDelay(30) <= DEFAULT_RETRY_MAX_DELAY_MS; // true */
export const DEFAULT_RETRY_MAX_DELAY_MS = 2_000;

const RETRYABLE_STATUSES = new Set([502, 503, 504]);
const RETRYABLE_CODES = new Set(['CONNECTION_FAILED', 'CAPACITY_EXHAUSTED', 'SHUTTING_DOWN']);

/**
 * Delay before retry number `attempt` (0 for the first retry): "equal jitter", i.e. a random
 * value in [ceiling/2, ceiling] where ceiling = min(max, base * 2^attempt). Half is fixed so
 * retries never bunch up at 0 ms; half is random so many clients do not retry in lockstep.
 *
 * @example
 * backoffDelay(0); // 50..100
 * backoffDelay(10); // 1000..2000
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS;
  const max = options.maxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * True when a failed idempotent request may be sent again unchanged.
 *
 * @example
 * isRetryableFailure(new FaasError('CAPACITY_EXHAUSTED', 'busy')); // true
 */
export function isRetryableFailure(error: unknown): boolean {
  if (!isFaasError(error)) return false;
  return RETRYABLE_CODES.has(error.code) || RETRYABLE_STATUSES.has(error.status);
}

/**
 * Waits `ms`, or rejects with the signal's reason as soon as it aborts.
 *
 * @example
 * await sleep(backoffDelay(attempt), signal);
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
