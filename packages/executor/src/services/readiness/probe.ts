import type { ProbeType } from '@faas/protocol';
import type { Runtime } from '../../runtime/types.ts';
import type { InstanceRecord } from '../../store/types.ts';
import type { Clock } from '../../util/clock.ts';
import type { ExecutionService } from '../execution-service.ts';

/** What one probe saw in one round. `latencyMs` is measured, unrounded. */
export interface ProbeOutcome {
  type: ProbeType;
  ok: boolean;
  latencyMs: number;
  message: string;
}

/**
 * One probe of a readiness check, bound to its instance. `run` never throws for what it
 * observes (refused, timed out, wrong status): those are failed outcomes. It throws only when
 * checking cannot go on at all (the instance stopped: INSTANCE_NOT_RUNNING), which ends the check.
 * A probe may keep state between rounds (the log probe keeps its read position).
 */
export interface Probe {
  readonly type: ProbeType;
  /** Its own timeout: a run that takes longer has failed. */
  readonly timeoutMs: number;
  run(signal: AbortSignal): Promise<ProbeOutcome>;
}

/** What probes are made from. */
export interface ProbeContext {
  instance: InstanceRecord;
  runtime: Pick<Runtime, 'connect' | 'exec' | 'rootDir'>;
  executions: Pick<ExecutionService, 'get'>;
  clock: Clock;
}

/** Longest `message` a probe reports (output and server text are cut to it). */
export const MAX_MESSAGE_CHARS = 300;

/** `text` on one line, cut to `max` characters with an ellipsis. */
export function shorten(text: string, max = MAX_MESSAGE_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** Measures `fn`, turning what it throws into a failed outcome with the error's message. */
export async function timed(type: ProbeType, clock: Clock, fn: () => Promise<{ ok: boolean; message: string }>): Promise<ProbeOutcome> {
  const started = clock.monotonicMs();
  try {
    const { ok, message } = await fn();
    return { type, ok, latencyMs: clock.monotonicMs() - started, message };
  } catch (err) {
    if (isFatal(err)) throw err;
    return { type, ok: false, latencyMs: clock.monotonicMs() - started, message: shorten((err as Error).message ?? String(err)) };
  }
}

/** Errors that mean checking this instance is over, not that one probe failed. */
export function isFatal(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'INSTANCE_NOT_RUNNING' || code === 'INSTANCE_NOT_FOUND' || code === 'SHUTTING_DOWN';
}

/** Rejects with a timeout error after `ms` unless `work` settles first; `onTimeout` cleans up. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what}: no answer within ${ms} ms (probe timeout)`));
    }, ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
