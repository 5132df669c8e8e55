import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServerProcess, startTestServer, type ServerProcess, type TestServer } from './fixtures/test-server.ts';
import { until } from './fixtures/wait.ts';

/**
 * Long-running sessions end to end (docs/sessions.md): hard cap, idle timeout, grace period,
 * checkpoints, extensions, auto-extend, a SIGKILLed executor and resume, bad input. Durations
 * are hundreds of milliseconds: the tests check the rules, not the wall clock.
 */

const CAP_MS = 10_000;
let server: TestServer;

before(async () => {
  server = await startTestServer({ sessionMaxDurationMs: CAP_MS });
});

after(async () => {
  await server.close();
});

type Res = { status: number; body: any; text: string };
type Req = TestServer['request'];

function assertError(res: Res, status: number, code: string): Record<string, any> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body.error.code, code, res.text);
  return res.body.error.details ?? {};
}

async function startSession(body: Record<string, unknown>, request: Req = server.request): Promise<any> {
  const res = await request('POST', '/api/v1/executions/long-running', body);
  assert.equal(res.status, 201, res.text);
  assert.match(res.body.id, /^sess-/);
  return res.body;
}

async function session(id: string, request: Req = server.request): Promise<any> {
  const res = await request('GET', `/api/v1/executions/${id}/session`);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

async function ended(id: string, timeoutMs = 15_000, request: Req = server.request): Promise<any> {
  return until(`session ${id} to end`, async () => {
    const s = await session(id, request);
    return ['completed', 'failed', 'terminated'].includes(s.state) ? s : undefined;
  }, timeoutMs);
}

/** Every event of a finished execution, from its SSE stream (which ends after the terminal event). */
async function events(executionId: string, request: Req = server.request): Promise<any[]> {
  const res = await request('GET', `/api/v1/executions/${executionId}/events`);
  assert.equal(res.status, 200);
  return res.text
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)));
}

const LOOP = 'while :; do sleep 0.05; done';

describe('sessions: start and bad input', () => {
  it('answers 201 with the whole session object and ends completed (exit 0) or failed (non-zero) by itself', async () => {
    const s = await startSession({ code: 'echo hi', max_duration_ms: 5000 });
    for (const field of ['id', 'execution_id', 'instance_id', 'state', 'state_reason', 'started_at', 'deadline', 'last_heartbeat', 'heartbeat_interval_ms', 'idle_timeout_ms', 'grace_period_ms', 'checkpoint_interval_ms', 'checkpoints', 'extended_count', 'max_extensions', 'auto_extend', 'exit_code']) {
      assert.ok(field in s, `missing ${field}`);
    }
    assert.equal(Date.parse(s.deadline) - Date.parse(s.started_at), 5000);
    const done = await ended(s.id);
    assert.equal(done.state, 'completed');
    assert.equal(done.exit_code, 0);
    assert.equal(done.deadline, s.deadline);
    const failed = await ended((await startSession({ code: 'exit 3', max_duration_ms: 5000 })).id);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.exit_code, 3);
    // :id is the session id or its execution id
    assert.equal((await session(s.execution_id)).id, s.id);
  });

  it('refuses a duration over the cap, negative values and a missing duration, with clear codes', async () => {
    const over = assertError(await server.request('POST', '/api/v1/executions/long-running', { code: 'true', max_duration_ms: CAP_MS + 1 }), 400, 'LIMIT_OUT_OF_RANGE');
    assert.equal(over.limit, 'max_duration_ms');
    assert.equal(over.max, CAP_MS);
    assertError(await server.request('POST', '/api/v1/executions/long-running', { code: 'true', max_duration_ms: 1000, idle_timeout_ms: -5 }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/executions/long-running', { code: 'true', max_duration_ms: -1 }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/executions/long-running', { code: 'true' }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/executions/long-running', { code: 'true', max_duration_ms: 1000, timeout_ms: 5 }), 400, 'VALIDATION_FAILED');
  });

  it('answers SESSION_NOT_FOUND for an unknown id and SESSION_NOT_ACTIVE for a heartbeat or extension of a finished session', async () => {
    assertError(await server.request('POST', '/api/v1/executions/sess-nosuchsession00/heartbeat'), 404, 'SESSION_NOT_FOUND');
    assertError(await server.request('GET', '/api/v1/executions/exec-nosuchexec/session'), 404, 'SESSION_NOT_FOUND');
    const s = await ended((await startSession({ code: 'true', max_duration_ms: 5000 })).id);
    const d = assertError(await server.request('POST', `/api/v1/executions/${s.id}/heartbeat`), 409, 'SESSION_NOT_ACTIVE');
    assert.equal(d.state, 'completed');
    assertError(await server.request('POST', `/api/v1/executions/${s.id}/extend`, { duration_ms: 100 }), 409, 'SESSION_NOT_ACTIVE');
  });
});

describe('sessions: ending', () => {
  it('ends at the hard cap with reason max_duration, a warning first and a final checkpoint', async () => {
    const s = await startSession({ code: LOOP, max_duration_ms: 700, grace_period_ms: 300 });
    const done = await ended(s.id);
    assert.equal(done.state, 'terminated');
    assert.equal(done.state_reason, 'max_duration');
    assert.equal(done.deadline, s.deadline, 'the deadline never moves without an extension');
    assert.equal(done.checkpoints.length, 1, 'a final checkpoint');
    const log = await events(s.execution_id);
    const types = log.map((e) => e.type);
    const warning = log.find((e) => e.type === 'session.warning');
    assert.ok(warning, types.join(','));
    assert.deepEqual({ reason: warning.reason, deadline: warning.deadline, grace: warning.grace_period_ms }, { reason: 'max_duration', deadline: s.deadline, grace: 300 });
    const order = ['session.warning', 'session.checkpoint', 'completed'].map((t) => types.indexOf(t));
    assert.deepEqual([...order].sort((a, b) => a - b), order, `events out of order: ${types.join(',')}`);
    const final = log.filter((e) => e.type === 'session.state').at(-1);
    assert.equal(final.state, 'terminated');
    assert.equal(final.state_reason, 'max_duration');
    assert.ok(types.indexOf('completed') > log.indexOf(final));
    // seq has no gaps: session events share the execution's numbering
    assert.deepEqual(log.map((e) => e.seq), log.map((_, i) => i + 1));
  });

  it('heartbeats keep a session alive past its idle timeout; missing them ends it (idle_timeout)', async () => {
    const s = await startSession({ code: LOOP, max_duration_ms: 9000, idle_timeout_ms: 500, heartbeat_interval_ms: 100, grace_period_ms: 200 });
    const started = Date.now();
    while (Date.now() - started < 1500) {
      const hb = await server.request('POST', `/api/v1/executions/${s.id}/heartbeat`);
      assert.equal(hb.status, 200, hb.text);
      assert.deepEqual(Object.keys(hb.body).sort(), ['deadline', 'id', 'last_heartbeat', 'state']);
      assert.equal(hb.body.deadline, s.deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await session(s.id)).state, 'running', 'alive three idle timeouts later');
    const stoppedAt = Date.now();
    const done = await ended(s.id);
    assert.equal(done.state, 'terminated');
    assert.equal(done.state_reason, 'idle_timeout');
    assert.ok(Date.now() - stoppedAt >= 400, 'not before the idle timeout');
  });

  it('gives a process that traps SIGTERM the full grace period before SIGKILL', async () => {
    const s = await startSession({ code: `trap '' TERM; ${LOOP}`, language: 'bash', max_duration_ms: 9000, grace_period_ms: 800 });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    const res = await server.request('POST', `/api/v1/executions/${s.id}/stop`);
    assert.equal(res.status, 200, res.text);
    assert.ok(Date.now() - t0 >= 800, `ended after ${Date.now() - t0} ms, before the grace period`);
    assert.equal(res.body.state, 'terminated');
    assert.equal(res.body.state_reason, 'stopped');
    const exec = (await server.request('GET', `/api/v1/executions/${s.execution_id}`)).body;
    assert.equal(exec.signal, 'SIGKILL');
  });

  it('lets a process that handles SIGTERM finish its cleanup inside the grace period', async () => {
    const s = await startSession({ code: `trap 'echo got term; sleep 0.5; echo cleaned; exit 0' TERM; ${LOOP}`, language: 'bash', max_duration_ms: 9000, grace_period_ms: 5000 });
    await new Promise((r) => setTimeout(r, 200));
    const res = await server.request('POST', `/api/v1/executions/${s.id}/stop`);
    assert.equal(res.body.state, 'terminated');
    const exec = (await server.request('GET', `/api/v1/executions/${s.execution_id}`)).body;
    assert.match(exec.stdout, /got term\ncleaned\n/);
    assert.equal(exec.exit_code, 0);
    const types = (await events(s.execution_id)).map((e) => e.type);
    assert.ok(types.indexOf('session.warning') < types.indexOf('completed'));
  });
});

describe('sessions: checkpoints', () => {
  it('takes checkpoints on schedule, chained by parent, and each restorable', async () => {
    const s = await startSession({ code: `echo before > /workspace/marker; ${LOOP}`, max_duration_ms: 9000, checkpoint_interval_ms: 300, grace_period_ms: 200 });
    const live = await until('two scheduled checkpoints', async () => {
      const cur = await session(s.id);
      return cur.checkpoints.length >= 2 ? cur : undefined;
    });
    const manual = await server.request('POST', `/api/v1/executions/${s.id}/checkpoint`);
    assert.equal(manual.status, 200, manual.text);
    assert.deepEqual(Object.keys(manual.body).sort(), ['content_hash', 'created_at', 'id', 'size_bytes']);
    const stopped = (await server.request('POST', `/api/v1/executions/${s.id}/stop`)).body;
    const chain = stopped.checkpoints;
    assert.ok(chain.length >= 4, `scheduled + manual + final: ${chain.length}`);
    assert.ok(chain.some((c: any) => c.id === manual.body.id));
    assert.deepEqual(chain.slice(0, 2), live.checkpoints.slice(0, 2));
    for (let i = 1; i < chain.length; i++) {
      const snap = (await server.request('GET', `/api/v1/snapshots/${chain[i].id}`)).body;
      assert.equal(snap.parent_id, chain[i - 1].id, `checkpoint ${i} chains to the one before`);
    }
    const restored = await server.request('POST', `/api/v1/snapshots/${chain[0].id}/restore`, {});
    assert.equal(restored.status, 201, restored.text);
    const cat = await server.request('POST', `/api/v1/instances/${restored.body.id}/exec`, { command: ['cat', '/workspace/marker'] });
    assert.equal(cat.body.stdout, 'before\n');
    await server.request('DELETE', `/api/v1/instances/${restored.body.id}`);
    const log = await events(s.execution_id);
    assert.ok(log.filter((e) => e.type === 'session.checkpoint').length >= chain.length - 1);
  });
});

describe('sessions: extensions', () => {
  it('moves the deadline by an extension and refuses past max_extensions, deadline unchanged', async () => {
    const s = await startSession({ code: LOOP, max_duration_ms: 3000, max_extensions: 1, grace_period_ms: 100 });
    const ext = await server.request('POST', `/api/v1/executions/${s.id}/extend`, { duration_ms: 1000 });
    assert.equal(ext.status, 200, ext.text);
    assert.equal(Date.parse(ext.body.deadline), Date.parse(s.deadline) + 1000);
    assert.equal(ext.body.extended_count, 1);
    const refused = assertError(await server.request('POST', `/api/v1/executions/${s.id}/extend`, { duration_ms: 1000 }), 409, 'SESSION_EXTENSION_REFUSED');
    assert.equal(refused.reason, 'max_extensions');
    assert.equal((await session(s.id)).deadline, ext.body.deadline);
    await server.request('POST', `/api/v1/executions/${s.id}/stop`);
  });

  it('refuses an extension past the cap (started_at + the server maximum)', async () => {
    const s = await startSession({ code: LOOP, max_duration_ms: 9000, max_extensions: 5, grace_period_ms: 100 });
    const refused = assertError(await server.request('POST', `/api/v1/executions/${s.id}/extend`, { duration_ms: 2000 }), 409, 'SESSION_EXTENSION_REFUSED');
    assert.equal(refused.reason, 'cap');
    assert.equal((await session(s.id)).deadline, s.deadline);
    assertError(await server.request('POST', `/api/v1/executions/${s.id}/extend`, { duration_ms: -1 }), 400, 'VALIDATION_FAILED');
    await server.request('POST', `/api/v1/executions/${s.id}/stop`);
  });

  it('auto-extends by the original duration while extensions remain, then ends at the hard cap', async () => {
    const s = await startSession({ code: LOOP, max_duration_ms: 400, auto_extend: true, max_extensions: 2, grace_period_ms: 100 });
    const done = await ended(s.id);
    assert.equal(done.state_reason, 'max_duration');
    assert.equal(done.extended_count, 2);
    assert.equal(Date.parse(done.deadline), Date.parse(s.started_at) + 1200);
    const deadlines = (await events(s.execution_id)).filter((e) => e.type === 'session.state').map((e) => e.deadline);
    assert.ok(new Set(deadlines).size >= 3, `each extension is announced: ${deadlines.join(',')}`);
  });
});

describe('sessions: executor restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'faas-sessions-restart-'));
  const apiKey = `test_${randomBytes(12).toString('hex')}`;
  let proc: ServerProcess | undefined;

  after(async () => {
    await proc?.stop('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps the session, its output and checkpoints across a SIGKILL, deadline unchanged, and resumes it under the same id', async () => {
    proc = await startServerProcess({ dataDir, apiKey });
    const s = await startSession({ code: `echo state > /workspace/marker; echo started; ${LOOP}`, max_duration_ms: 60_000, checkpoint_interval_ms: 200, grace_period_ms: 200 }, proc.request);
    const before = await until('a checkpoint', async () => {
      const cur = await session(s.id, proc!.request);
      return cur.checkpoints.length >= 1 ? cur : undefined;
    });
    await proc.stop('SIGKILL');
    proc = await startServerProcess({ dataDir, apiKey });
    const after = await session(s.id, proc.request);
    assert.equal(after.state, 'terminated');
    assert.equal(after.state_reason, 'executor_restart');
    assert.equal(after.deadline, s.deadline);
    assert.deepEqual(after.checkpoints.slice(0, before.checkpoints.length), before.checkpoints);
    const exec = (await proc.request('GET', `/api/v1/executions/${s.execution_id}`)).body;
    assert.equal(exec.status, 'interrupted');
    assert.equal(exec.stdout, 'started\n');
    const hb = assertError(await proc.request('POST', `/api/v1/executions/${s.id}/heartbeat`), 409, 'SESSION_NOT_ACTIVE');
    assert.equal(hb.state_reason, 'executor_restart');

    const resumed = await proc.request('POST', `/api/v1/executions/${s.id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.id, s.id);
    assert.equal(resumed.body.state, 'running');
    assert.equal(resumed.body.deadline, s.deadline);
    assert.notEqual(resumed.body.execution_id, s.execution_id);
    assert.notEqual(resumed.body.instance_id, s.instance_id);
    // the old execution id still names the session
    assert.equal((await session(s.execution_id, proc.request)).execution_id, resumed.body.execution_id);
    const cat = await proc.request('POST', `/api/v1/instances/${resumed.body.instance_id}/exec`, { command: ['cat', '/workspace/marker'] });
    assert.equal(cat.body.stdout, 'state\n', 'the files come back from the checkpoint');
    assert.equal((await proc.request('POST', `/api/v1/executions/${s.id}/heartbeat`)).status, 200);
    assertError(await proc.request('POST', `/api/v1/executions/${s.id}/resume`), 409, 'SESSION_NOT_RESUMABLE');
    const stopped = (await proc.request('POST', `/api/v1/executions/${s.id}/stop`)).body;
    assert.equal(stopped.state_reason, 'stopped');
  });
});
