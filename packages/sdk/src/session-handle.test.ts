import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { isFaasError } from '@faas/protocol/errors';
import { FaaSPlatformClient } from './faas-platform-client.ts';
import type { Session } from './session-handle.ts';
import type { SessionCheckpoint, SessionState } from './session-types.ts';

const TIME = '2026-12-04T16:00:00.000Z';
const DEADLINE = '2026-12-04T18:00:00.000Z';

interface Call {
  method: string;
  path: string;
  body: unknown;
}

type Answer = (call: Call) => Response | Promise<Response>;

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function error(status: number, code: string, details: Record<string, unknown> = {}): Response {
  return json({ error: { code, message: `${code} (test)`, details } }, status);
}

function sse(events: object[]): Response {
  const text = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('');
  return new Response(text, { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

function wireSession(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'sess-1',
    execution_id: 'exec-1',
    instance_id: 'inst-1',
    state: 'running',
    state_reason: null,
    started_at: TIME,
    deadline: DEADLINE,
    last_heartbeat: TIME,
    heartbeat_interval_ms: 1000,
    idle_timeout_ms: 5000,
    grace_period_ms: 500,
    checkpoint_interval_ms: 0,
    checkpoints: [],
    extended_count: 0,
    max_extensions: 3,
    auto_extend: false,
    exit_code: null,
    ...overrides,
  };
}

function heartbeatAnswer(state: SessionState = 'running'): Response {
  return json({ id: 'sess-1', last_heartbeat: TIME, deadline: DEADLINE, state });
}

/** A client on a scripted fetch: `answer` gets every call except the start, which answers a running session. */
function setup(answer: Answer): { client: FaaSPlatformClient; calls: Call[]; heartbeats: () => number } {
  const calls: Call[] = [];
  const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const call: Call = { method: init?.method ?? 'GET', path: `${url.pathname}${url.search}`, body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined };
    calls.push(call);
    if (call.path === '/api/v1/executions/long-running') return json(wireSession(), 201);
    return answer(call);
  };
  const client = new FaaSPlatformClient({ platformUrl: 'http://faas.test', apiKey: 'k', fetch: fetchFn as typeof fetch, maxRetries: 0 });
  return { client, calls, heartbeats: () => calls.filter((c) => c.path.endsWith('/heartbeat')).length };
}

/** Lets pending promise chains (fetch answers, their mapping) run; setImmediate is not mocked. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('Session heartbeats', () => {
  let session: Session | undefined;
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
  });
  afterEach(() => {
    session?.close();
    session = undefined;
    mock.timers.reset();
  });

  test('heartbeats every heartbeat interval, and close() stops them without stopping the session', async () => {
    const { client, calls, heartbeats } = setup((call) => (call.path.endsWith('/heartbeat') ? heartbeatAnswer() : error(500, 'INTERNAL_ERROR')));
    session = await client.startLongRunningExecution({ command: ['sleep', '100'] }, { maxDuration: 7_200_000, heartbeatInterval: 1000 });
    assert.equal(session.heartbeating, true);
    mock.timers.tick(999);
    await settle();
    assert.equal(heartbeats(), 0);
    mock.timers.tick(1);
    await settle();
    assert.equal(heartbeats(), 1);
    mock.timers.tick(1000);
    await settle();
    mock.timers.tick(1000);
    await settle();
    assert.equal(heartbeats(), 3);
    assert.deepEqual(calls.filter((c) => c.path.endsWith('/heartbeat')).map((c) => `${c.method} ${c.path}`), Array(3).fill('POST /api/v1/executions/sess-1/heartbeat'));
    session.close();
    assert.equal(session.heartbeating, false);
    mock.timers.tick(10_000);
    await settle();
    assert.equal(heartbeats(), 3);
    assert.equal(calls.some((c) => c.path.endsWith('/stop')), false, 'close() does not stop the session');
  });

  test('stops heartbeating once a heartbeat says the session ended, or the server refuses it as not active', async () => {
    let answer: Response | (() => Response) = () => heartbeatAnswer('terminated');
    const errors: unknown[] = [];
    const { client, heartbeats } = setup(() => (typeof answer === 'function' ? answer() : answer));
    session = await client.startLongRunningExecution({ code: 'sleep 100' }, { maxDuration: 60_000, onError: (e) => errors.push(e) });
    mock.timers.tick(1000);
    await settle();
    assert.equal(heartbeats(), 1);
    assert.equal(session.state, 'terminated');
    assert.equal(session.heartbeating, false);
    mock.timers.tick(5000);
    await settle();
    assert.equal(heartbeats(), 1);

    answer = () => error(409, 'SESSION_NOT_ACTIVE');
    const other = await client.startLongRunningExecution({ code: 'sleep 100' }, { maxDuration: 60_000, onError: (e) => errors.push(e) });
    mock.timers.tick(1000);
    await settle();
    assert.equal(heartbeats(), 2);
    assert.equal(other.heartbeating, false);
    mock.timers.tick(5000);
    await settle();
    assert.equal(heartbeats(), 2);
    assert.deepEqual(errors, [], 'the end of a session is not an error');
    other.close();
  });

  test('retries a failed heartbeat, then reports it through onError and keeps heartbeating; no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      let failing = true;
      const errors: unknown[] = [];
      const { client, heartbeats } = setup(() => (failing ? error(503, 'SHUTTING_DOWN') : heartbeatAnswer()));
      session = await client.startLongRunningExecution({ code: 'sleep 100' }, { maxDuration: 60_000, heartbeatRetries: 2, onError: (e) => errors.push(e) });
      mock.timers.tick(1000);
      await settle();
      assert.equal(heartbeats(), 1);
      for (let i = 0; i < 4; i++) {
        mock.timers.tick(300); // longer than any backoff of the first retries
        await settle();
      }
      assert.equal(heartbeats(), 3, 'the first attempt and two retries');
      assert.equal(errors.length, 1);
      assert.ok(isFaasError(errors[0]) && errors[0].code === 'SHUTTING_DOWN' && errors[0].status === 503);
      assert.equal(session.heartbeating, true, 'a passing outage does not end heartbeating');
      failing = false;
      mock.timers.tick(1000);
      await settle();
      assert.equal(heartbeats(), 4);
      assert.equal(errors.length, 1);

      // Without an onError listener, a failure goes nowhere: never an unhandled rejection.
      failing = true;
      const quiet = await client.startLongRunningExecution({ code: 'sleep 100' }, { maxDuration: 60_000, heartbeatRetries: 0 });
      session.close();
      mock.timers.tick(1000);
      await settle();
      assert.equal(quiet.heartbeating, true);
      quiet.close();
      await settle();
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('an unknown session stops heartbeating and is reported', async () => {
    const errors: unknown[] = [];
    const { client, heartbeats } = setup(() => error(404, 'SESSION_NOT_FOUND'));
    session = await client.startLongRunningExecution({ code: 'true' }, { maxDuration: 60_000, onError: (e) => errors.push(e) });
    mock.timers.tick(1000);
    await settle();
    mock.timers.tick(5000);
    await settle();
    assert.equal(heartbeats(), 1, 'a 404 is not retried');
    assert.equal(session.heartbeating, false);
    assert.equal(errors.length, 1);
    assert.equal(isFaasError(errors[0]) && errors[0].status, 404);
  });

  test('without a heartbeat interval from the start, heartbeats come every third of the idle timeout', async () => {
    const { client, heartbeats } = setup((call) => (call.path.endsWith('/session') ? json(wireSession({ heartbeat_interval_ms: null, idle_timeout_ms: 3000 })) : heartbeatAnswer()));
    session = await client.session('sess-1');
    assert.equal(session.info.heartbeatIntervalMs, 1000);
    mock.timers.tick(999);
    await settle();
    assert.equal(heartbeats(), 0);
    mock.timers.tick(1);
    await settle();
    assert.equal(heartbeats(), 1);
  });

  test('heartbeat: false sends none; the flat sendHeartbeat sends one', async () => {
    const { client, heartbeats } = setup(() => heartbeatAnswer());
    session = await client.startLongRunningExecution({ code: 'true' }, { maxDuration: 60_000, heartbeat: false });
    mock.timers.tick(10_000);
    await settle();
    assert.equal(heartbeats(), 0);
    const beat = await client.sendHeartbeat('sess-1');
    assert.equal(heartbeats(), 1);
    assert.ok(beat.lastHeartbeat instanceof Date && beat.deadline.toISOString() === DEADLINE);
  });
});

describe('Session calls', () => {
  test('the start sends the session settings in snake_case and maps the session to camelCase', async () => {
    const { client, calls } = setup(() => heartbeatAnswer());
    const session = await client.startLongRunningExecution(
      { command: ['python3', 'train.py'], instanceId: 'inst-1', envVars: { A: '1' } },
      { maxDuration: 7_200_000, heartbeatInterval: 30_000, idleTimeout: 300_000, gracePeriod: 10_000, checkpointInterval: 600_000, maxExtensions: 2, autoExtend: true, heartbeat: false },
    );
    assert.deepEqual(calls[0], {
      method: 'POST',
      path: '/api/v1/executions/long-running',
      body: {
        command: ['python3', 'train.py'],
        env_vars: { A: '1' },
        instance_id: 'inst-1',
        max_duration_ms: 7_200_000,
        heartbeat_interval_ms: 30_000,
        idle_timeout_ms: 300_000,
        grace_period_ms: 10_000,
        checkpoint_interval_ms: 600_000,
        max_extensions: 2,
        auto_extend: true,
      },
    });
    assert.equal(session.id, 'sess-1');
    assert.equal(session.executionId, 'exec-1');
    assert.equal(session.instanceId, 'inst-1');
    assert.equal(session.deadline.toISOString(), DEADLINE);
    assert.equal(session.info.heartbeatIntervalMs, 1000);
    assert.equal(JSON.parse(JSON.stringify(session)).id, 'sess-1');
  });

  test('extend sends duration_ms and takes the new deadline; a refusal keeps its code, status and reason', async () => {
    const newDeadline = '2026-12-04T18:30:00.000Z';
    let refuse = false;
    const { client, calls } = setup(() =>
      refuse ? error(409, 'SESSION_EXTENSION_REFUSED', { reason: 'max_extensions' }) : json(wireSession({ deadline: newDeadline, extended_count: 1 })),
    );
    const session = await client.startLongRunningExecution({ code: 'true' }, { maxDuration: 60_000, heartbeat: false });
    const extended = await session.extend(1_800_000);
    assert.deepEqual(calls.at(-1), { method: 'POST', path: '/api/v1/executions/sess-1/extend', body: { duration_ms: 1_800_000 } });
    assert.equal(extended.extendedCount, 1);
    assert.equal(session.deadline.toISOString(), newDeadline);
    const flat = await client.extendSession('exec-1', 60_000);
    assert.equal(calls.at(-1)?.path, '/api/v1/executions/exec-1/extend');
    assert.equal(flat.deadline.toISOString(), newDeadline);
    refuse = true;
    const count = calls.length;
    await assert.rejects(session.extend(60_000), (e: unknown) => {
      assert.ok(isFaasError(e));
      assert.equal(e.status, 409);
      const code = (e.details as { server_code?: string }).server_code ?? e.code;
      assert.equal(code, 'SESSION_EXTENSION_REFUSED');
      assert.equal((e.details as { reason?: string }).reason, 'max_extensions');
      return true;
    });
    assert.equal(calls.length, count + 1, 'an extension is never repeated');
  });

  test('checkpoint, status, stop and resume call their routes and map the answers', async () => {
    const checkpoint = { id: 'snap-1', content_hash: 'a'.repeat(64), created_at: TIME, size_bytes: 4096 };
    const { client, calls } = setup((call) => {
      if (call.path.endsWith('/checkpoint')) return json(checkpoint, 201);
      if (call.path.endsWith('/stop')) return json(wireSession({ state: 'terminated', state_reason: 'stopped', checkpoints: [checkpoint] }));
      if (call.path.endsWith('/resume')) return json(wireSession({ execution_id: 'exec-2', checkpoints: [checkpoint] }));
      return json(wireSession({ checkpoints: [checkpoint] }));
    });
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const session = await client.startLongRunningExecution({ code: 'true' }, { maxDuration: 60_000 });
      const taken: SessionCheckpoint = await session.checkpoint();
      assert.deepEqual(taken, { id: 'snap-1', contentHash: 'a'.repeat(64), createdAt: new Date(TIME), sizeBytes: 4096 });
      assert.equal(session.info.checkpoints.length, 1);
      const status = await session.status();
      assert.equal(status.checkpoints[0]?.sizeBytes, 4096);
      assert.equal(calls.at(-1)?.path, '/api/v1/executions/sess-1/session');
      const stopped = await session.stop();
      assert.equal(stopped.stateReason, 'stopped');
      assert.equal(session.heartbeating, false, 'a stopped session needs no heartbeats');
      const resumed = await session.resume();
      assert.equal(resumed.executionId, 'exec-2');
      assert.equal(session.executionId, 'exec-2');
      assert.equal(session.heartbeating, true, 'a resumed session is heartbeaten again');
      session.close();
      assert.deepEqual(
        calls.slice(1).map((c) => `${c.method} ${c.path}`),
        ['POST /api/v1/executions/sess-1/checkpoint', 'GET /api/v1/executions/sess-1/session', 'POST /api/v1/executions/sess-1/stop', 'POST /api/v1/executions/sess-1/resume'],
      );
      assert.equal((await client.checkpointSession('sess-1')).id, 'snap-1');
      assert.equal((await client.getSession('sess-1')).id, 'sess-1');
      assert.equal((await client.stopSession('sess-1')).state, 'terminated');
      assert.equal((await client.resumeSession('sess-1')).executionId, 'exec-2');
    } finally {
      mock.timers.reset();
    }
  });
});

describe('Session events', () => {
  const stream = [
    { type: 'output', seq: 1, time: TIME, stream: 'stdout', data: 'one\n' },
    { type: 'session.checkpoint', seq: 2, time: TIME, session_id: 'sess-1', checkpoint: { id: 'snap-1', content_hash: 'b'.repeat(64), created_at: TIME, size_bytes: 10 } },
    { type: 'output', seq: 3, time: TIME, stream: 'stderr', data: 'warn\n' },
    { type: 'session.something_new', seq: 4, time: TIME, whatever: true },
    { type: 'session.warning', seq: 5, time: TIME, session_id: 'sess-1', reason: 'max_duration', deadline: DEADLINE, grace_period_ms: 500 },
    { type: 'session.state', seq: 6, time: TIME, state: 'expiring', state_reason: 'max_duration', session_id: 'sess-1', deadline: DEADLINE },
    { type: 'session.state', seq: 7, time: TIME, state: 'terminated', state_reason: 'max_duration', session_id: 'sess-1', deadline: DEADLINE },
    { type: 'completed', seq: 8, time: TIME, exit_code: null, exit_reason: 'killed', signal: 'SIGTERM', duration_ms: 100, output_truncated: false },
  ];

  test('callbacks see output and session events in order, unknown types are skipped, wait() resolves with the final session', async () => {
    let reads = 0;
    const { client, calls } = setup((call) => {
      if (call.path.startsWith('/api/v1/executions/exec-1/events')) return sse(stream);
      // The record lags behind the stream once: the wait reads it again.
      reads++;
      return json(wireSession(reads === 1 ? { state: 'expiring' } : { state: 'terminated', state_reason: 'max_duration', checkpoints: [stream[1]!.checkpoint] }));
    });
    const seen: string[] = [];
    const session = await client.startLongRunningExecution(
      { code: 'sleep 100' },
      {
        maxDuration: 60_000,
        heartbeatInterval: 3_600_000,
        onStdout: (text) => seen.push(`stdout ${text.trim()}`),
        onStderr: (text) => seen.push(`stderr ${text.trim()}`),
        onCheckpoint: (c) => seen.push(`checkpoint ${c.id} ${c.sizeBytes}`),
        onWarning: (w) => seen.push(`warning ${w.reason} ${w.gracePeriodMs} ${w.deadline.toISOString()}`),
        onStateChange: (state, reason) => seen.push(`state ${state} ${reason}`),
      },
    );
    const outputs: string[] = [];
    session.onOutput((event) => outputs.push(event.stream));
    const final = await session.wait();
    assert.deepEqual(seen, [
      'stdout one',
      'checkpoint snap-1 10',
      'stderr warn',
      `warning max_duration 500 ${DEADLINE}`,
      'state expiring max_duration',
      'state terminated max_duration',
    ]);
    assert.deepEqual(outputs, ['stdout', 'stderr']);
    assert.equal(final.state, 'terminated');
    assert.equal(final.stateReason, 'max_duration');
    assert.equal(session.heartbeating, false, 'an ended session is not heartbeaten');
    assert.equal(calls.filter((c) => c.path.includes('/events')).length, 1, 'callbacks and wait share one stream');
    assert.equal(new URL(calls.find((c) => c.path.includes('/events'))!.path, 'http://x').searchParams.get('after'), '0');
    assert.equal(reads, 2);
    assert.equal(await session.wait(), final, 'a later wait resolves at once');
    session.close();
  });

  test('a throwing callback goes to onError and does not end the others', async () => {
    const { client } = setup((call) => (call.path.includes('/events') ? sse(stream) : json(wireSession({ state: 'terminated', state_reason: 'max_duration' }))));
    const errors: unknown[] = [];
    const states: string[] = [];
    const session = await client.startLongRunningExecution({ code: 'true' }, { maxDuration: 60_000, heartbeat: false, onError: (e) => errors.push(e) });
    session.onStdout(() => {
      throw new Error('bad callback');
    });
    session.onStateChange((state) => states.push(state));
    await session.wait();
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as Error).message, 'bad callback');
    assert.deepEqual(states, ['expiring', 'terminated']);
  });

  test('close() ends a pending wait with an AbortError; wait() honours its timeout', async () => {
    // A stream that never ends.
    const { client } = setup((call) =>
      call.path.includes('/events') ? new Response(new ReadableStream({ start() {} }), { status: 200, headers: { 'content-type': 'text/event-stream' } }) : json(wireSession()),
    );
    const session = await client.startLongRunningExecution({ code: 'sleep 100' }, { maxDuration: 60_000, heartbeat: false });
    await assert.rejects(session.wait({ timeout: 50 }), (e: unknown) => isFaasError(e) && e.code === 'CLIENT_TIMEOUT');
    const pending = session.wait();
    session.close();
    await assert.rejects(pending, (e: unknown) => e instanceof Error && e.name === 'AbortError');
    await assert.rejects(session.wait(), (e: unknown) => e instanceof Error && e.name === 'AbortError');
  });
});
