/**
 * The SDK's Session handle against a real executor, with short durations: heartbeats keep a
 * session alive past its idle timeout, a closed handle lets it end by idle timeout, the hard
 * cap warns before it ends, extensions move the deadline until refused, stop and resume.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FaaSPlatformClient, isFaasError, type SessionInfo, type SessionWarningEvent } from '../src/index.ts';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';

let server: Awaited<ReturnType<typeof startTestServer>>;
let client: FaaSPlatformClient;

before(async () => {
  server = await startTestServer({ sshPort: null });
  client = new FaaSPlatformClient({ platformUrl: server.url, apiKey: server.apiKey });
});

after(async () => {
  await server?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads the session until `done` says so, or fails after `timeoutMs`. */
async function until(id: string, done: (s: SessionInfo) => boolean, timeoutMs = 10_000): Promise<SessionInfo> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await client.getSession(id);
    if (done(s)) return s;
    if (Date.now() > end) assert.fail(`session ${id} is still ${s.state} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

describe('Session handle (e2e)', () => {
  test('heartbeats keep a session alive past its idle timeout; a closed handle lets it end by idle timeout', async () => {
    const session = await client.startLongRunningExecution({ command: ['sleep', '60'] }, { maxDuration: 60_000, idleTimeout: 2000, heartbeatInterval: 250, gracePeriod: 200 });
    try {
      assert.match(session.id, /^sess-/);
      assert.equal(session.heartbeating, true);
      await sleep(4500); // more than two idle timeouts
      const alive = await session.status();
      assert.equal(alive.state, 'running');
      assert.ok(Date.now() - alive.lastHeartbeat.getTime() < 2000, `last heartbeat ${alive.lastHeartbeat.toISOString()} is recent`);
      session.close();
      assert.equal(session.heartbeating, false);
      const ended = await until(session.id, (s) => s.state === 'terminated');
      assert.equal(ended.stateReason, 'idle_timeout');
      assert.ok(ended.checkpoints.length >= 1, 'a final checkpoint before the termination');
    } finally {
      session.close();
    }
  });

  test('the hard cap sends a warning before it ends the session; wait() resolves with the final session', async () => {
    const warnings: SessionWarningEvent[] = [];
    const states: string[] = [];
    let stdout = '';
    const session = await client.startLongRunningExecution(
      { code: 'echo started; sleep 60' },
      {
        maxDuration: 1500,
        gracePeriod: 300,
        heartbeatInterval: 300,
        onStdout: (text) => (stdout += text),
        onWarning: (w) => warnings.push(w),
        onStateChange: (state) => states.push(state),
      },
    );
    const final = await session.wait({ timeout: 20_000 });
    assert.equal(final.state, 'terminated');
    assert.equal(final.stateReason, 'max_duration');
    assert.equal(final.deadline.getTime(), session.info.startedAt.getTime() + 1500, 'the deadline never moved');
    assert.equal(stdout, 'started\n');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.reason, 'max_duration');
    assert.equal(warnings[0]!.gracePeriodMs, 300);
    assert.ok(states.includes('terminated'), states.join());
    assert.equal(session.heartbeating, false, 'an ended session is not heartbeaten');
    assert.ok(final.checkpoints.length >= 1);
  });

  test('a command that exits by itself: failed with its exit code; an on-demand checkpoint is a restorable snapshot', async () => {
    const checkpoints: string[] = [];
    const session = await client.startLongRunningExecution(
      { code: 'echo data > /workspace/f; sleep 3; exit 3' },
      { maxDuration: 60_000, onCheckpoint: (c) => checkpoints.push(c.id) },
    );
    await sleep(300);
    const checkpoint = await session.checkpoint();
    assert.match(checkpoint.id, /^snap-/);
    assert.match(checkpoint.contentHash, /^[0-9a-f]{64}$/);
    const final = await session.wait({ timeout: 20_000 });
    assert.equal(final.state, 'failed');
    assert.equal(final.exitCode, 3);
    assert.ok(checkpoints.includes(checkpoint.id), 'the on-demand checkpoint came as an event too');
    assert.equal((await client.getSnapshot(checkpoint.id)).id, checkpoint.id);
  });

  test('extend moves the deadline, then is refused past max extensions; stop, resume under the same id, heartbeat errors', async () => {
    const session = await client.startLongRunningExecution({ command: ['sleep', '60'] }, { maxDuration: 30_000, maxExtensions: 1, heartbeatInterval: 500 });
    try {
      const before = session.deadline.getTime();
      const extended = await session.extend(5000);
      assert.equal(extended.deadline.getTime(), before + 5000);
      assert.equal(extended.extendedCount, 1);
      assert.equal(session.deadline.getTime(), before + 5000);
      const refused = await client.extendSession(session.id, 5000).then(
        () => assert.fail('a second extension was accepted'),
        (e: unknown) => e,
      );
      assert.ok(isFaasError(refused));
      assert.equal(refused.code, 'SESSION_EXTENSION_REFUSED');
      assert.equal((refused.details as { reason?: string }).reason, 'max_extensions');

      const stopped = await session.stop();
      assert.equal(stopped.state, 'terminated');
      assert.equal(stopped.stateReason, 'stopped');
      assert.equal(session.heartbeating, false);
      await assert.rejects(client.sendHeartbeat(session.id), { code: 'SESSION_NOT_ACTIVE' });

      const resumed = await session.resume();
      assert.equal(resumed.id, session.id);
      assert.notEqual(resumed.executionId, stopped.executionId);
      assert.equal(resumed.deadline.getTime(), before + 5000, 'a resume keeps the deadline');
      assert.equal(session.heartbeating, true);
      const beat = await client.sendHeartbeat(resumed.executionId);
      assert.equal(beat.id, session.id, 'an execution id names its session too');
      await session.stop();
    } finally {
      session.close();
    }
    await assert.rejects(client.sendHeartbeat('sess-doesnotexist0'), { code: 'SESSION_NOT_FOUND', status: 404 });
  });
});
