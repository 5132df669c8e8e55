import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaasError, type ProbeType } from '@faas/protocol';
import type { Probe, ProbeOutcome } from './probe.ts';
import { runReadinessCheck, type CheckOptions, type CheckerTimer, type RoundReport } from './readiness-checker.ts';

/** Virtual time: sleeping advances it at once; probes advance it by their latency. */
class FakeTimer implements CheckerTimer {
  t = 0;
  readonly epoch = Date.parse('2026-01-01T00:00:00Z');
  now = () => new Date(this.epoch + this.t);
  monotonicMs = () => this.t;
  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw signal.reason;
    this.t += ms;
  }
}

/** A probe answering from a script: '+' pass, '-' fail, the last entry repeating; each run takes `latency` virtual ms. */
function scripted(timer: FakeTimer, script: string, options: { type?: ProbeType; latency?: number; timeoutMs?: number; at?: number[] } = {}): Probe {
  let i = 0;
  const type = options.type ?? 'tcp';
  return {
    type,
    timeoutMs: options.timeoutMs ?? 1000,
    async run(): Promise<ProbeOutcome> {
      options.at?.push(timer.t);
      const ok = script[Math.min(i, script.length - 1)] === '+';
      const n = i++;
      timer.t += options.latency ?? 1;
      return { type, ok, latencyMs: options.latency ?? 1, message: `${ok ? 'pass' : 'fail'} ${n}` };
    },
  };
}

const base: CheckOptions = { initialDelayMs: 0, periodMs: 100, timeoutMs: 1000, successThreshold: 1, failureThreshold: 3, wait: true, waitTimeoutMs: 10_000, stopOnFailure: false };

async function check(timer: FakeTimer, probes: Probe[], options: Partial<CheckOptions> = {}) {
  const rounds: RoundReport[] = [];
  const outcome = await runReadinessCheck(probes, { ...base, ...options }, timer, new AbortController().signal, (r) => rounds.push(r));
  return { outcome, rounds };
}

describe('runReadinessCheck', () => {
  it('one-shot: a single round with success_threshold 1', async () => {
    const timer = new FakeTimer();
    const { outcome } = await check(timer, [scripted(timer, '+')], { wait: false });
    assert.equal(outcome.end, 'ready');
    assert.equal(outcome.checksPerformed, 1);
    const failing = await check(new FakeTimer(), [scripted(timer, '-')], { wait: false });
    assert.equal(failing.outcome.end, 'not_ready');
    assert.equal(failing.outcome.ready, false);
    assert.equal(failing.outcome.checksPerformed, 1);
    assert.equal(failing.outcome.timedOut, false);
  });

  it('one-shot: success_threshold rounds, period apart, stopping at the first failure', async () => {
    const timer = new FakeTimer();
    const at: number[] = [];
    const { outcome } = await check(timer, [scripted(timer, '+', { at })], { wait: false, successThreshold: 3 });
    assert.equal(outcome.end, 'ready');
    assert.deepEqual(at, [0, 100, 200]);
    const t2 = new FakeTimer();
    const second = await check(t2, [scripted(t2, '+-+')], { wait: false, successThreshold: 3 });
    assert.equal(second.outcome.end, 'not_ready');
    assert.equal(second.outcome.checksPerformed, 2);
  });

  it('a round passes only when every probe passes in it', async () => {
    const timer = new FakeTimer();
    const { outcome, rounds } = await check(timer, [scripted(timer, '+'), scripted(timer, '--+')]);
    assert.deepEqual(rounds.map((r) => r.ok), [false, false, true]);
    assert.equal(outcome.end, 'ready');
    assert.equal(outcome.checksPerformed, 3);
  });

  it('runs the probes of a round concurrently', async () => {
    const timer = new FakeTimer();
    const started: number[] = [];
    let inFlight = 0;
    let most = 0;
    const slow = (): Probe => ({
      type: 'tcp',
      timeoutMs: 1000,
      async run() {
        started.push(timer.t);
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        return { type: 'tcp', ok: true, latencyMs: 0, message: 'ok' };
      },
    });
    await check(timer, [slow(), slow(), slow()]);
    assert.equal(most, 3);
  });

  it('honours initial_delay_ms before the first round, then starts rounds period_ms apart (start to start)', async () => {
    const timer = new FakeTimer();
    const at: number[] = [];
    const { rounds } = await check(timer, [scripted(timer, '---+', { at, latency: 30 })], { initialDelayMs: 250 });
    assert.deepEqual(at, [250, 350, 450, 550]);
    assert.equal(rounds.at(-1)!.time.getTime() - timer.epoch, 580);
  });

  it('a round longer than the period is followed at once, never overlapped', async () => {
    const timer = new FakeTimer();
    const at: number[] = [];
    await check(timer, [scripted(timer, '--+', { at, latency: 130 })], { periodMs: 100 });
    assert.deepEqual(at, [0, 130, 260]);
  });

  it('waiting: ready after success_threshold consecutive passing rounds; a failure resets the count', async () => {
    const timer = new FakeTimer();
    const { outcome, rounds } = await check(timer, [scripted(timer, '++-+++-')], { successThreshold: 3 });
    assert.deepEqual(rounds.map((r) => r.consecutiveSuccesses), [1, 2, 0, 1, 2, 3]);
    assert.deepEqual(rounds.map((r) => r.consecutiveFailures), [0, 0, 1, 0, 0, 0]);
    assert.deepEqual(rounds.map((r) => r.ready), [false, false, false, false, false, true]);
    assert.equal(outcome.end, 'ready');
    assert.equal(outcome.consecutiveSuccesses, 3);
  });

  it('waiting with stop_on_failure: ends as failed after failure_threshold consecutive failures, not before', async () => {
    const timer = new FakeTimer();
    const { outcome } = await check(timer, [scripted(timer, '--+---')], { stopOnFailure: true, failureThreshold: 3, successThreshold: 2 });
    assert.equal(outcome.end, 'failed');
    assert.equal(outcome.failed, true);
    assert.equal(outcome.checksPerformed, 6);
    assert.match(outcome.message, /3 consecutive rounds failed \(failure_threshold 3\)/);
  });

  it('waiting without stop_on_failure keeps going past failure_threshold until the timeout', async () => {
    const timer = new FakeTimer();
    const { outcome } = await check(timer, [scripted(timer, '-')], { failureThreshold: 1, waitTimeoutMs: 1000 });
    assert.equal(outcome.end, 'timeout');
    assert.equal(outcome.checksPerformed, 10);
    assert.equal(outcome.elapsedMs, 1000);
  });

  it('timeout returns every probe\'s last failure, also of a probe that passed in the last round', async () => {
    const timer = new FakeTimer();
    const { outcome } = await check(timer, [scripted(timer, '-+'), scripted(timer, '-'), scripted(timer, '+')], { waitTimeoutMs: 450 });
    assert.equal(outcome.timedOut, true);
    assert.equal(outcome.ready, false);
    assert.deepEqual(outcome.probes.map((p) => [p.ok, p.lastFailure]), [
      [true, 'fail 0'],
      [false, 'fail 4'],
      [true, null],
    ]);
    assert.match(outcome.message, /#0 tcp \(passed last; failed before: fail 0\); #1 tcp: fail 4/);
  });

  it('an initial delay longer than the wait ends in a timeout with no round run', async () => {
    const timer = new FakeTimer();
    const { outcome } = await check(timer, [scripted(timer, '+')], { initialDelayMs: 5000, waitTimeoutMs: 1000 });
    assert.equal(outcome.end, 'timeout');
    assert.equal(outcome.checksPerformed, 0);
    assert.equal(timer.t, 1000);
  });

  it('a probe that ignores its timeout fails once it passed (with a small grace)', async () => {
    const timer = new FakeTimer();
    const hung: Probe = { type: 'file', timeoutMs: 20, run: () => new Promise(() => undefined) };
    const outcome = await runReadinessCheck([hung], { ...base, wait: false }, timer, new AbortController().signal);
    assert.equal(outcome.end, 'not_ready');
    assert.match(outcome.probes[0]!.message, /probe timeout/);
  });

  it('a fatal probe error (the instance stopped) ends the check with it', async () => {
    const timer = new FakeTimer();
    const fatal: Probe = {
      type: 'tcp',
      timeoutMs: 100,
      run: async () => {
        throw new FaasError('INSTANCE_NOT_RUNNING', 'instance x is stopped');
      },
    };
    await assert.rejects(check(timer, [fatal]), { code: 'INSTANCE_NOT_RUNNING' });
  });

  it('aborting the signal ends a wait with its reason', async () => {
    const timer = new FakeTimer();
    const controller = new AbortController();
    const probe = scripted(timer, '-');
    const reason = new FaasError('SHUTTING_DOWN', 'stop');
    const done = runReadinessCheck([probe], base, timer, controller.signal, (r) => r.round === 3 && controller.abort(reason));
    await assert.rejects(done, { code: 'SHUTTING_DOWN' });
  });
});
