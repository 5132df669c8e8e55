import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SessionInfo } from '@faas/sdk';
import { describeSessionEvent, formatDeadline, formatSession, formatSpan, sessionExitStatus } from './session-format.ts';

const NOW = new Date('2026-12-04T16:00:00.000Z');

function session(overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id: 'sess-1',
    executionId: 'exec-1',
    instanceId: 'inst-1',
    state: 'running',
    stateReason: null,
    startedAt: new Date('2026-12-04T15:59:00.000Z'),
    deadline: new Date('2026-12-04T17:59:30.000Z'),
    lastHeartbeat: new Date('2026-12-04T15:59:57.000Z'),
    heartbeatIntervalMs: 30_000,
    idleTimeoutMs: 300_000,
    gracePeriodMs: 10_000,
    checkpointIntervalMs: 600_000,
    checkpoints: [{ id: 'snap-1', contentHash: 'a'.repeat(64), createdAt: new Date('2026-12-04T15:59:30.000Z'), sizeBytes: 2048 }],
    extendedCount: 1,
    maxExtensions: 3,
    autoExtend: false,
    exitCode: null,
    ...overrides,
  };
}

describe('session output', () => {
  test('spans read largest unit first, under a second in ms', () => {
    assert.equal(formatSpan(7_503_000), '2h 5m 3s');
    assert.equal(formatSpan(45_000), '45s');
    assert.equal(formatSpan(3_600_000), '1h');
    assert.equal(formatSpan(200), '200ms');
    assert.equal(formatSpan(90_061_000), '1d 1h 1m 1s');
  });

  test('a deadline shows what remains, or how long ago it passed', () => {
    assert.equal(formatDeadline(new Date('2026-12-04T17:59:30.000Z'), NOW), '2026-12-04T17:59:30.000Z (in 1h 59m 30s)');
    assert.equal(formatDeadline(new Date('2026-12-04T15:59:57.000Z'), NOW), '2026-12-04T15:59:57.000Z (passed 3s ago)');
  });

  test('status shows state, deadline, heartbeat, extensions and each checkpoint', () => {
    const text = formatSession(session(), NOW);
    assert.match(text, /^state +running$/m);
    assert.match(text, /^deadline +2026-12-04T17:59:30\.000Z \(in 1h 59m 30s\)$/m);
    assert.match(text, /^last heartbeat +2026-12-04T15:59:57\.000Z \(3s ago\), every 30s$/m);
    assert.match(text, /^idle timeout +5m$/m);
    assert.match(text, /^extensions +1 of 3$/m);
    assert.match(text, /^checkpoints +1, every 10m$/m);
    assert.match(text, /^ +snap-1  2026-12-04T15:59:30\.000Z  2\.0 KiB$/m);
    assert.match(formatSession(session({ state: 'terminated', stateReason: 'idle_timeout', idleTimeoutMs: 0 }), NOW), /^state +terminated \(idle_timeout\)$/m);
  });

  test('exit codes: the command\'s own, 124 for the hard cap or idle timeout, 1 otherwise with the reason', () => {
    assert.deepEqual(sessionExitStatus(session({ state: 'completed', exitCode: 0 })), { code: 0 });
    assert.deepEqual(sessionExitStatus(session({ state: 'failed', exitCode: 7 })), { code: 7 });
    assert.deepEqual(sessionExitStatus(session({ state: 'terminated', stateReason: 'max_duration' })), { code: 124, message: 'faas: session sess-1 terminated: max_duration' });
    assert.equal(sessionExitStatus(session({ state: 'terminated', stateReason: 'idle_timeout' })).code, 124);
    assert.deepEqual(sessionExitStatus(session({ state: 'terminated', stateReason: 'stopped' })), { code: 1, message: 'faas: session sess-1 terminated: stopped' });
  });

  test('session events become one line each', () => {
    const base = { seq: 1, time: NOW, sessionId: 'sess-1' };
    assert.equal(describeSessionEvent({ ...base, type: 'session.warning', reason: 'idle_timeout', deadline: NOW, gracePeriodMs: 10_000 }), 'faas: session warning: idle_timeout; SIGTERM now, SIGKILL after 10s');
    assert.equal(
      describeSessionEvent({ ...base, type: 'session.checkpoint', checkpoint: { id: 'snap-2', contentHash: 'b'.repeat(64), createdAt: NOW, sizeBytes: 512 } }),
      'faas: session checkpoint snap-2 (512 B)',
    );
    assert.equal(describeSessionEvent({ ...base, type: 'session.state', state: 'expiring', stateReason: 'max_duration', deadline: NOW }), 'faas: session expiring (max_duration), deadline 2026-12-04T16:00:00.000Z');
  });
});
