/**
 * Fan-out helpers built on one-shot executions: `parallelMap` (one execution per item, each on
 * its own branch of a snapshot) and `race` (the first to succeed wins, the others are killed).
 */
import { ErrorCode, FaasError, isFaasError } from '@faas/protocol/errors';
import type { ExecuteRequest, ExecutionResult, ExecutionStarted } from './execution-types.ts';
import type { ExecutionsApi } from './executions-api.ts';
import type { ParallelMapFn, ParallelMapOptions, ParallelMapOutcome, RaceOptions } from './mode-types.ts';

/** Executions parallelMap keeps in flight when not told. */
export const DEFAULT_PARALLEL_MAP_CONCURRENCY = 8;

/** Whether an execution counts as a success: it ended by itself with exit code 0. */
export function succeeded(result: Pick<ExecutionResult, 'status' | 'exitReason' | 'exitCode'>): boolean {
  return result.status === 'completed' && result.exitReason === 'exited' && result.exitCode === 0;
}

/**
 * Runs `fn(item)`'s request for every item, at most `concurrency` at once, and resolves with
 * the outcomes in input order. With a base snapshot, each runs branched from it.
 */
export async function parallelMap<T>(api: ExecutionsApi, items: readonly T[], fn: ParallelMapFn<T>, options: ParallelMapOptions): Promise<ParallelMapOutcome[]> {
  const concurrency = options.concurrency ?? DEFAULT_PARALLEL_MAP_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new FaasError(ErrorCode.VALIDATION_FAILED, `concurrency must be a whole number of at least 1, got ${concurrency}`, { concurrency });
  }
  const { baseSnapshot, settle = false, signal } = options;
  const outcomes: ParallelMapOutcome[] = new Array(items.length);
  let next = 0;
  let failed = false;
  let rejectEarly: (error: unknown) => void = () => undefined;
  const early = new Promise<never>((_resolve, reject) => {
    rejectEarly = reject;
  });
  early.catch(() => undefined); // only awaited when not settling

  const runOne = async (index: number): Promise<void> => {
    try {
      const request = await fn(items[index] as T, index);
      const full: ExecuteRequest = baseSnapshot === undefined ? request : { ...request, mode: 'branched', branchFrom: baseSnapshot };
      outcomes[index] = { status: 'fulfilled', value: await api.execute(full) };
    } catch (reason) {
      outcomes[index] = { status: 'rejected', reason };
      if (!settle && !failed) {
        failed = true;
        rejectEarly(reason);
      }
    }
  };
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      if (signal?.aborted) throw signal.reason;
      await runOne(next++);
    }
  };
  const workers = Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  await (settle ? workers : Promise.race([workers, early]));
  return outcomes;
}

/**
 * The error of a race nobody won: every entrant failed to start, failed, or exited non-zero.
 * `failures` holds one entry per request, in order: the finished result of an execution that
 * ran, or the error that ended it.
 *
 * @example
 * try { await client.race(requests); } catch (error) {
 *   if (error instanceof RaceFailedError) for (const f of error.failures) console.log(f.result?.exitCode ?? f.error);
 * }
 */
export class RaceFailedError extends FaasError {
  readonly failures: Array<{ result?: ExecutionResult; error?: unknown }>;

  constructor(failures: Array<{ result?: ExecutionResult; error?: unknown }>) {
    const summary = failures.map((f, i) => `#${i}: ${f.result ? describeEnd(f.result) : describeError(f.error)}`).join('; ');
    super(
      // Each entrant's own code is in details.failures.
      ErrorCode.RACE_FAILED,
      `no execution of the race succeeded: ${summary}`,
      {
        failures: failures.map((f) =>
          f.result
            ? { execution_id: f.result.id, exit_reason: f.result.exitReason, exit_code: f.result.exitCode, status: f.result.status }
            : { error: describeError(f.error), code: isFaasError(f.error) ? f.error.code : undefined },
        ),
      },
    );
    this.name = 'RaceFailedError';
    this.failures = failures;
  }

  /** The errors, in the style of AggregateError: an error or a result per entrant. */
  get errors(): unknown[] {
    return this.failures.map((f) => f.error ?? f.result);
  }
}

function describeEnd(result: ExecutionResult): string {
  if (result.status === 'interrupted') return `${result.id} interrupted`;
  return result.exitReason === 'exited' ? `${result.id} exited ${result.exitCode}` : `${result.id} ${result.exitReason}`;
}

function describeError(error: unknown): string {
  if (isFaasError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** A finished loser's result, or an error, as the failure of one entrant. */
class EntrantFailure extends Error {
  readonly result: ExecutionResult;
  constructor(result: ExecutionResult) {
    super(describeEnd(result));
    this.result = result;
  }
}

/**
 * Starts every request in the background, resolves with the first to succeed (exit code 0)
 * once every other one is killed (SIGKILL) and over, so no process of a loser is left.
 */
export async function race(api: ExecutionsApi, requests: readonly ExecuteRequest[], options: RaceOptions): Promise<ExecutionResult> {
  if (requests.length === 0) throw new FaasError(ErrorCode.VALIDATION_FAILED, 'race needs at least one request', {});
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    options.timeout === undefined
      ? undefined
      : setTimeout(() => controller.abort(new FaasError(ErrorCode.CLIENT_TIMEOUT, `no execution of the race succeeded within ${options.timeout} ms`, { timeout_ms: options.timeout })), options.timeout);
  const { signal } = controller;
  const starts: Array<Promise<ExecutionStarted>> = requests.map((request) => api.startExecute(request));
  const entrants = starts.map(async (start) => {
    const started = await start;
    const result = await api.wait(started.id, { signal });
    if (succeeded(result)) return result;
    throw new EntrantFailure(result);
  });
  let winner: ExecutionResult | undefined;
  try {
    winner = await Promise.any(entrants);
    return winner;
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    const reasons = error instanceof AggregateError ? error.errors : [error];
    throw new RaceFailedError(reasons.map((reason) => (reason instanceof EntrantFailure ? { result: reason.result } : { error: reason })));
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    controller.abort(); // stops following the losers
    // Every entrant that started, except the winner, is killed; kill answers once it is over.
    const started = await Promise.allSettled(starts);
    await Promise.all(
      started.map(async (outcome) => {
        if (outcome.status !== 'fulfilled' || outcome.value.id === winner?.id) return;
        try {
          await api.kill(outcome.value.id, { signal: 'SIGKILL' });
        } catch (error) {
          // Already over (it lost by failing, or ended meanwhile): nothing to kill.
          if (!isFaasError(error) || (error.code !== ErrorCode.EXECUTION_FINISHED && error.code !== ErrorCode.EXECUTION_NOT_FOUND)) throw error;
        }
      }),
    );
  }
}
