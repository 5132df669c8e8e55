import type { Clock } from '../../util/clock.ts';
import type { ReadinessSettings } from './probe-config.ts';
import { isFatal, withTimeout, type Probe, type ProbeOutcome } from './probe.ts';
import { ReadinessTracker } from './readiness-tracker.ts';

/** Time as the checker sees it; tests give it a fake one whose sleep advances virtual time. */
export interface CheckerTimer extends Clock {
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export interface ProbeReport extends ProbeOutcome {
  /** This probe's most recent failure in this check (this round's or an earlier one's). */
  lastFailure: string | null;
}

export interface RoundReport {
  round: number;
  /** When the round ended. */
  time: Date;
  /** Every probe passed. */
  ok: boolean;
  ready: boolean;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  probes: ProbeReport[];
}

/** How a check ended: ready, not ready (a one-shot check), wait timed out, or failed (stop_on_failure). */
export type ReadinessEnd = 'ready' | 'not_ready' | 'timeout' | 'failed';

export interface ReadinessOutcome {
  end: ReadinessEnd;
  ready: boolean;
  checksPerformed: number;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  lastCheck: Date | null;
  probes: ProbeReport[];
  message: string;
  timedOut: boolean;
  failed: boolean;
  elapsedMs: number;
}

export interface CheckOptions extends ReadinessSettings {
  /** Keep checking until ready (or timeout / failed); false: a one-shot check. */
  wait: boolean;
  waitTimeoutMs: number;
  stopOnFailure: boolean;
}

/** A probe that does not enforce its timeout itself still fails this long after it. */
const TIMEOUT_GRACE_MS = 100;

/**
 * Runs rounds of `probes` with Kubernetes' meanings (see ReadinessTracker and docs/readiness.md).
 *
 * - The first round starts `initialDelayMs` after the call. Rounds start `periodMs` apart,
 *   start to start; a round that takes longer than the period is followed at once (rounds never
 *   overlap). In a round every probe runs concurrently, each bounded by its own timeout.
 * - One-shot (`wait: false`): as many rounds as `successThreshold` asks for, `periodMs` apart,
 *   stopping at the first failing round. Ready when they all passed: the least evidence the
 *   thresholds accept. With the default threshold of 1 that is a single round.
 * - Waiting: rounds until ready (`end: 'ready'`); or, with `stopOnFailure`, until
 *   `failureThreshold` consecutive rounds failed (`'failed'`); or until `waitTimeoutMs` after
 *   the call (`'timeout'`; a round under way then is finished first, so the answer may come up
 *   to one probe timeout late). No round starts after the deadline.
 *
 * A probe throwing a fatal error (the instance stopped) rejects the whole check with it; so
 * does aborting `signal`.
 */
export async function runReadinessCheck(
  probes: readonly Probe[],
  options: CheckOptions,
  timer: CheckerTimer,
  signal: AbortSignal,
  onRound?: (round: RoundReport) => void,
): Promise<ReadinessOutcome> {
  const started = timer.monotonicMs();
  const deadline = options.wait ? started + options.waitTimeoutMs : Number.POSITIVE_INFINITY;
  const tracker = new ReadinessTracker(options.successThreshold, options.failureThreshold);
  const lastFailure: (string | null)[] = probes.map(() => null);
  let last: ProbeReport[] = [];
  let lastCheck: Date | null = null;

  const finish = (end: ReadinessEnd): ReadinessOutcome => ({
    end,
    ready: tracker.ready,
    checksPerformed: tracker.checksPerformed,
    consecutiveSuccesses: tracker.consecutiveSuccesses,
    consecutiveFailures: tracker.consecutiveFailures,
    lastCheck,
    probes: last.length > 0 ? last : probes.map((p) => ({ type: p.type, ok: false, latencyMs: 0, message: 'not checked', lastFailure: null })),
    message: describe(end, tracker, last, options, timer.monotonicMs() - started),
    timedOut: end === 'timeout',
    failed: end === 'failed',
    elapsedMs: timer.monotonicMs() - started,
  });

  if (options.initialDelayMs > 0) await timer.sleep(Math.min(options.initialDelayMs, deadline - started), signal);
  if (timer.monotonicMs() >= deadline) return finish('timeout');
  for (;;) {
    const roundStart = timer.monotonicMs();
    const outcomes = await Promise.all(probes.map((probe) => runOne(probe, signal)));
    if (signal.aborted) throw signal.reason;
    const passed = outcomes.every((o) => o.ok);
    tracker.record(passed);
    lastCheck = timer.now();
    last = outcomes.map((o, i) => {
      if (!o.ok) lastFailure[i] = o.message;
      return { ...o, lastFailure: lastFailure[i]! };
    });
    onRound?.({
      round: tracker.checksPerformed,
      time: lastCheck,
      ok: passed,
      ready: tracker.ready,
      consecutiveSuccesses: tracker.consecutiveSuccesses,
      consecutiveFailures: tracker.consecutiveFailures,
      probes: last,
    });
    if (tracker.ready) return finish('ready');
    if (!options.wait) {
      if (!passed) return finish('not_ready');
    } else if (options.stopOnFailure && tracker.failed) {
      return finish('failed');
    }
    const next = Math.max(roundStart + options.periodMs, timer.monotonicMs());
    if (next >= deadline) {
      // Nothing can change before the deadline: answer at it, not earlier. A timer may fire a
      // fraction of a millisecond early by the monotonic clock: sleep again until it is reached.
      while (timer.monotonicMs() < deadline) await timer.sleep(Math.max(1, Math.ceil(deadline - timer.monotonicMs())), signal);
      return finish('timeout');
    }
    await timer.sleep(Math.max(0, next - timer.monotonicMs()), signal);
  }
}

async function runOne(probe: Probe, signal: AbortSignal): Promise<ProbeOutcome> {
  const limit = probe.timeoutMs + TIMEOUT_GRACE_MS;
  try {
    return await withTimeout(probe.run(signal), limit, `${probe.type} probe`, () => undefined);
  } catch (err) {
    if (isFatal(err)) throw err;
    return { type: probe.type, ok: false, latencyMs: limit, message: (err as Error).message };
  }
}

function describe(end: ReadinessEnd, tracker: ReadinessTracker, last: readonly ProbeReport[], options: CheckOptions, elapsedMs: number): string {
  const checks = `${tracker.checksPerformed} ${tracker.checksPerformed === 1 ? 'check' : 'checks'}`;
  const failures = () =>
    last
      .map((p, i) => (p.ok ? (p.lastFailure === null ? undefined : `#${i} ${p.type} (passed last; failed before: ${p.lastFailure})`) : `#${i} ${p.type}: ${p.message}`))
      .filter((s) => s !== undefined)
      .join('; ');
  switch (end) {
    case 'ready':
      return options.successThreshold === 1 ? `ready after ${checks}: every probe passed` : `ready after ${checks}: ${tracker.consecutiveSuccesses} consecutive rounds passed (success_threshold ${options.successThreshold})`;
    case 'not_ready':
      return `not ready: ${failures()}`;
    case 'failed':
      return `failed: ${tracker.consecutiveFailures} consecutive rounds failed (failure_threshold ${options.failureThreshold}): ${failures()}`;
    case 'timeout': {
      const why = tracker.checksPerformed === 0 ? 'no round ran (the initial delay took the whole wait)' : failures() || `${tracker.consecutiveSuccesses} of ${options.successThreshold} consecutive passing rounds`;
      return `not ready after ${Math.round(elapsedMs)} ms (${checks}): ${why}`;
    }
  }
}

/** The real timer: the system clock and setTimeout. */
export function systemTimer(clock: Clock): CheckerTimer {
  return {
    now: () => clock.now(),
    monotonicMs: () => clock.monotonicMs(),
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        const onAbort = () => {
          clearTimeout(t);
          reject(signal.reason);
        };
        const t = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, ms);
        signal.addEventListener('abort', onAbort, { once: true });
      }),
  };
}
