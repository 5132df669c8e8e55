import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaasError } from '@faas/protocol';
import { DeadlineScheduler, type SchedulerTimers } from './deadline-scheduler.ts';
import { autoExtension, canTransition, dueAction, extendedDeadline, finalState, nextDueAt, sessionSettings, type SessionTiming } from './session-model.ts';

/** A clock and timers the test moves by hand. */
class FakeTimers implements SchedulerTimers {
  t = 0;
  private next: { fn: () => void; at: number } | undefined;
  now = () => this.t;
  set = (fn: () => void, ms: number) => (this.next = { fn, at: this.t + ms });
  clear = (h: unknown) => {
    if (h === this.next) this.next = undefined;
  };
  advance(ms: number): void {
    const end = this.t + ms;
    while (this.next !== undefined && this.next.at <= end) {
      const { fn, at } = this.next;
      this.next = undefined;
      this.t = at;
      fn();
    }
    this.t = end;
  }
}

const CAP = 10_000;

function timing(over: Partial<SessionTiming> = {}): SessionTiming & { id: string } {
  return {
    id: 'sess-test',
    startedAt: new Date(0),
    deadline: new Date(1000),
    lastHeartbeat: new Date(0),
    idleTimeoutMs: 0,
    checkpointIntervalMs: 0,
    extendedCount: 0,
    maxExtensions: 0,
    autoExtend: false,
    maxDurationMs: 1000,
    ...over,
  };
}

function codeOf(fn: () => unknown): { code: string; details: Record<string, unknown> } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FaasError);
    return { code: err.code, details: err.details as Record<string, unknown> };
  }
  assert.fail('expected a FaasError');
}

describe('session state machine', () => {
  it('allows the documented transitions and refuses the others', () => {
    assert.ok(canTransition('starting', 'running'));
    assert.ok(canTransition('running', 'checkpointing'));
    assert.ok(canTransition('checkpointing', 'running'));
    assert.ok(canTransition('running', 'expiring'));
    assert.ok(canTransition('expiring', 'terminated'));
    assert.ok(canTransition('terminated', 'running'), 'resume');
    assert.ok(!canTransition('completed', 'running'));
    assert.ok(!canTransition('failed', 'running'));
    assert.ok(!canTransition('expiring', 'running'), 'an ending session cannot come back');
  });

  it('ends completed on exit 0 by itself, failed otherwise, terminated with the reason when faas ended it', () => {
    assert.deepEqual(finalState({ endReason: undefined, exitCode: 0, exitedByItself: true }), { state: 'completed', reason: null });
    assert.deepEqual(finalState({ endReason: undefined, exitCode: 2, exitedByItself: true }), { state: 'failed', reason: null });
    assert.deepEqual(finalState({ endReason: 'idle_timeout', exitCode: 0, exitedByItself: true }), { state: 'terminated', reason: 'idle_timeout' });
  });
});

describe('session settings', () => {
  it('refuses a duration over the server cap with LIMIT_OUT_OF_RANGE', () => {
    const { code, details } = codeOf(() => sessionSettings({ max_duration_ms: CAP + 1 }, CAP));
    assert.equal(code, 'LIMIT_OUT_OF_RANGE');
    assert.equal(details.max, CAP);
  });

  it('refuses negative values and a heartbeat interval longer than the idle timeout', () => {
    assert.equal(codeOf(() => sessionSettings({ max_duration_ms: 100, grace_period_ms: -1 }, CAP)).code, 'VALIDATION_FAILED');
    assert.equal(codeOf(() => sessionSettings({ max_duration_ms: 100, idle_timeout_ms: 100, heartbeat_interval_ms: 200 }, CAP)).code, 'VALIDATION_FAILED');
    assert.equal(codeOf(() => sessionSettings({ max_duration_ms: 100, auto_extend: true }, CAP)).code, 'VALIDATION_FAILED');
  });

  it('applies the defaults: 10 s grace, no idle timeout, no checkpoints, no extensions', () => {
    const s = sessionSettings({ max_duration_ms: 500 }, CAP);
    assert.deepEqual(s, { maxDurationMs: 500, heartbeatIntervalMs: null, idleTimeoutMs: 0, gracePeriodMs: 10_000, checkpointIntervalMs: 0, maxExtensions: 0, autoExtend: false });
  });
});

describe('session timing', () => {
  it('is due at the earliest of deadline, idle timeout and next checkpoint', () => {
    assert.equal(nextDueAt(timing(), null), 1000);
    assert.equal(nextDueAt(timing({ idleTimeoutMs: 300 }), null), 300);
    assert.equal(nextDueAt(timing({ idleTimeoutMs: 300 }), 200), 200);
  });

  it('puts the hard deadline before the idle timeout before a checkpoint', () => {
    const t = timing({ idleTimeoutMs: 300 });
    assert.equal(dueAction(t, 100, 50), undefined);
    assert.deepEqual(dueAction(t, 100, 150), { kind: 'checkpoint' });
    assert.deepEqual(dueAction(t, 100, 300), { kind: 'idle' });
    assert.deepEqual(dueAction(t, 100, 1000), { kind: 'deadline' });
  });

  it('a heartbeat moves the idle timeout, never the deadline', () => {
    const t = timing({ idleTimeoutMs: 300, lastHeartbeat: new Date(250) });
    assert.equal(dueAction(t, null, 300), undefined);
    assert.deepEqual(dueAction(t, null, 550), { kind: 'idle' });
    assert.equal(t.deadline.getTime(), 1000);
  });

  it('extends within max_extensions and the cap, and says which one refused', () => {
    assert.equal(extendedDeadline(timing({ maxExtensions: 1 }), 500, CAP).getTime(), 1500);
    const used = codeOf(() => extendedDeadline(timing({ maxExtensions: 1, extendedCount: 1 }), 500, CAP));
    assert.equal(used.code, 'SESSION_EXTENSION_REFUSED');
    assert.equal(used.details.reason, 'max_extensions');
    const cap = codeOf(() => extendedDeadline(timing({ maxExtensions: 5 }), CAP, CAP));
    assert.equal(cap.code, 'SESSION_EXTENSION_REFUSED');
    assert.equal(cap.details.reason, 'cap');
  });

  it('auto-extends by the original duration while extensions remain', () => {
    assert.equal(autoExtension(timing({ autoExtend: true, maxExtensions: 2 }), CAP)?.getTime(), 2000);
    assert.equal(autoExtension(timing({ autoExtend: true, maxExtensions: 2, extendedCount: 2 }), CAP), undefined);
    assert.equal(autoExtension(timing({ autoExtend: false, maxExtensions: 2 }), CAP), undefined);
  });
});

describe('deadline scheduler (fake clock)', () => {
  it('fires keys in time order with one timer, and a rescheduled key only at its new time', () => {
    const timers = new FakeTimers();
    const fired: Array<[string, number]> = [];
    const s = new DeadlineScheduler(timers, (key, now) => fired.push([key, now]));
    s.schedule('a', 300);
    s.schedule('b', 100);
    s.schedule('c', 200);
    s.schedule('a', 50); // moved earlier
    s.schedule('c', 400); // moved later
    timers.advance(1000);
    assert.deepEqual(fired, [['a', 50], ['b', 100], ['c', 400]]);
    assert.equal(s.size, 0);
  });

  it('does not fire a cancelled key, and re-arms past the longest single wait', () => {
    const timers = new FakeTimers();
    const fired: string[] = [];
    const s = new DeadlineScheduler(timers, (key) => fired.push(key));
    s.schedule('x', 100);
    s.cancel('x');
    s.schedule('far', 150_000);
    timers.advance(149_999);
    assert.deepEqual(fired, []);
    timers.advance(1);
    assert.deepEqual(fired, ['far']);
  });

  it('handles a thousand keys', () => {
    const timers = new FakeTimers();
    const fired: number[] = [];
    const s = new DeadlineScheduler(timers, (key) => fired.push(Number(key)));
    for (let i = 999; i >= 0; i--) s.schedule(String(i), 1000 + i);
    timers.advance(3000);
    assert.deepEqual(fired, [...Array(1000).keys()]);
  });
});
