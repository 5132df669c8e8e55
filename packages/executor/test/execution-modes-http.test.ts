import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServerProcess, startTestServer, type TestServer } from './fixtures/test-server.ts';
import { until } from './fixtures/wait.ts';

/** End-to-end: POST /api/v1/execute in each mode, and what each mode promises not to do. */

let server: TestServer;

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server.close();
});

type Res = { status: number; body: any; text: string };

function assertError(res: Res, status: number, code: string): Record<string, unknown> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body.error.code, code, res.text);
  return res.body.error.details ?? {};
}

async function execute(body: Record<string, unknown>, request = server.request): Promise<any> {
  const res = await request('POST', '/api/v1/execute', body);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

describe('ephemeral', () => {
  it('is the default: a fresh instance, destroyed after; nothing persists', async () => {
    const first = await execute({ code: 'echo kept > /workspace/f; cat /workspace/f' });
    assert.equal(first.mode, 'ephemeral');
    assert.equal(first.stdout, 'kept\n');
    const second = await execute({ code: 'cat /workspace/f 2>&1; echo $?' });
    assert.match(second.stdout, /No such file[\s\S]*\n1\n$/);
    assert.notEqual(first.instance_id, second.instance_id);
    // Destroyed right after the answer (not before it: the result does not wait for the cleanup).
    await until('the ephemeral instance to be deleted', async () => ((await server.request('GET', `/api/v1/instances/${first.instance_id}`)).body.state === 'deleted' ? true : undefined));
  });
});

describe('cached', () => {
  const run = (extra: Record<string, unknown> = {}) => execute({ mode: 'cached', code: 'echo "$X $(cat)"; date +%s%N', env_vars: { X: 'x' }, stdin: 'in', ...extra });

  it('a repeat returns the stored result (not a rerun), with the original duration and its own latency', async () => {
    const miss = await run({ cache_key: 'basic' });
    assert.equal(miss.cached, false);
    const hit = await run({ cache_key: 'basic' });
    assert.equal(hit.cached, true);
    assert.equal(hit.stdout, miss.stdout, 'a rerun would print another time');
    assert.equal(hit.id, miss.id);
    assert.equal(hit.duration_ms, miss.duration_ms);
    assert.equal(typeof hit.cache_latency_ms, 'number');
    assert.ok(hit.cache_latency_ms < 50, `cache latency ${hit.cache_latency_ms} ms`);
  });

  it('any change of a key input misses', async () => {
    const base = { cache_key: 'inputs' };
    const first = await run(base);
    assert.equal((await run(base)).cached, true);
    const variants: Array<[string, Record<string, unknown>]> = [
      ['code', { ...base, code: 'echo "$X $(cat)"; date +%s%N; true' }],
      ['env var value', { ...base, env_vars: { X: 'y' } }],
      ['env var added', { ...base, env_vars: { X: 'x', Z: '' } }],
      ['stdin', { ...base, stdin: 'in2' }],
      ['stdin absent', { ...base, stdin: undefined }],
      ['working dir', { ...base, working_dir: '/tmp' }],
      ['cache key', { cache_key: 'inputs2' }],
      ['no cache key', {}],
      ['memory limit', { ...base, memory_mb: 300 }],
      ['timeout', { ...base, timeout_ms: 12_345 }],
    ];
    for (const [what, body] of variants) {
      const r = await run(body);
      assert.equal(r.cached, false, `${what} hit the cache`);
      assert.notEqual(r.stdout, first.stdout, `${what}: same output as the first run`);
    }
  });

  it('failures are not cached unless asked; invalidate empties the cache', async () => {
    const fail = { mode: 'cached', code: 'date +%s%N; exit 3', cache_key: 'fail' };
    assert.equal((await execute(fail)).exit_code, 3);
    assert.equal((await execute(fail)).cached, false);
    const asked = { ...fail, cache_failures: true };
    await execute(asked);
    const hit = await execute(asked);
    assert.equal(hit.cached, true);
    assert.equal(hit.exit_code, 3);
    const inv = await server.request('POST', '/api/v1/cache/invalidate', { cache_key: 'fail' });
    assert.equal(inv.status, 200, inv.text);
    assert.ok(inv.body.removed >= 1);
    assert.equal((await execute(asked)).cached, false);
    const all = await server.request('POST', '/api/v1/cache/invalidate', { all: true });
    assert.equal(all.status, 200, all.text);
    assert.equal(all.body.remaining, 0);
  });
});

describe('checkpointed', () => {
  it('snapshots the state each run leaves, and a chain of runs builds on it exactly', async () => {
    const first = await execute({ mode: 'checkpointed', code: 'mkdir -p /workspace/chain && echo one > /workspace/chain/log && chmod 640 /workspace/chain/log' });
    assert.match(first.snapshot_id, /^snap-/);
    assert.match(first.content_hash, /^[0-9a-f]{64}$/);
    assert.equal(first.base_snapshot_id, null);
    const second = await execute({ mode: 'checkpointed', checkpoint: first.snapshot_id, code: 'echo two >> /workspace/chain/log; cat /workspace/chain/log; stat -c %a /workspace/chain/log' });
    assert.equal(second.stdout, 'one\ntwo\n640\n');
    assert.equal(second.base_snapshot_id, first.snapshot_id);
    const got = (await server.request('GET', `/api/v1/executions/${second.id}`)).body;
    assert.equal(got.mode, 'checkpointed');
    assert.equal(got.snapshot_id, second.snapshot_id);
    const snap2 = (await server.request('GET', `/api/v1/snapshots/${second.snapshot_id}`)).body;
    assert.equal(snap2.parent_id, first.snapshot_id, 'the chain records its parent');
    assert.equal(snap2.source_execution_id, second.id);
    const third = await execute({ mode: 'checkpointed', checkpoint: second.content_hash, code: 'cat /workspace/chain/log' });
    assert.equal(third.stdout, 'one\ntwo\n');
    // The checkpoint itself never changed.
    const again = await execute({ mode: 'checkpointed', checkpoint: first.snapshot_id, code: 'cat /workspace/chain/log' });
    assert.equal(again.stdout, 'one\n');
  });
});

describe('branched', () => {
  it('runs concurrently on copies of a snapshot, never changing it, each leaving its own child snapshot', async () => {
    const parent = await execute({ mode: 'checkpointed', code: 'echo base > /workspace/state' });
    const started = Date.now();
    const runs = await Promise.all(
      Array.from({ length: 5 }, (_, i) => execute({ mode: 'branched', branch_from: parent.snapshot_id, code: `cat /workspace/state; echo b${i} > /workspace/state; sleep 1; cat /workspace/state` })),
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 4500, `5 branched runs of 1 s took ${elapsed} ms: not concurrent`);
    runs.forEach((r, i) => {
      assert.equal(r.stdout, `base\nb${i}\n`);
      assert.equal(r.base_snapshot_id, parent.snapshot_id);
      assert.match(r.snapshot_id, /^snap-/);
    });
    for (const r of runs) assert.equal((await server.request('GET', `/api/v1/snapshots/${r.snapshot_id}`)).body.parent_id, parent.snapshot_id);
    const check = await execute({ mode: 'branched', branch_from: parent.snapshot_id, code: 'cat /workspace/state' });
    assert.equal(check.stdout, 'base\n');
    // branch_from may name the execution that left the snapshot.
    const byExecution = await execute({ mode: 'branched', branch_from: runs[2].id, code: 'cat /workspace/state' });
    assert.equal(byExecution.stdout, 'b2\n');
    assert.equal(byExecution.base_snapshot_id, runs[2].snapshot_id);
  });

  it('bad branch sources get clear errors', async () => {
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'branched', code: 'true' }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'branched', branch_from: 'snap-zzzzzzzzzzzzzzzz', code: 'true' }), 404, 'SNAPSHOT_NOT_FOUND');
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'branched', branch_from: 'exec-unknown-one', code: 'true' }), 404, 'EXECUTION_NOT_FOUND');
    const plain = await execute({ code: 'true' });
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'branched', branch_from: plain.id, code: 'true' }), 404, 'NO_SNAPSHOT_FOR_EXECUTION');
  });
});

describe('persistent', () => {
  it('a function id names one long-lived instance whose files and background processes last between requests', async () => {
    const first = await execute({ mode: 'persistent', function_id: 'counter-fn', code: 'echo 1 > /workspace/n; (sleep 300 &) ; echo started' });
    const second = await execute({ mode: 'persistent', function_id: 'counter-fn', code: 'cat /workspace/n; pgrep -c -f "^sleep 300$"' });
    assert.equal(second.instance_id, first.instance_id);
    assert.equal(second.stdout, '1\n1\n');
    const byId = await execute({ mode: 'persistent', instance_id: first.instance_id, code: 'cat /workspace/n' });
    assert.equal(byId.stdout, '1\n');
    assert.equal((await server.request('GET', `/api/v1/instances/${first.instance_id}`)).body.state, 'running');
    const other = await execute({ mode: 'persistent', function_id: 'other-fn', code: 'cat /workspace/n 2>/dev/null || echo none' });
    assert.equal(other.stdout, 'none\n');
  });

  it('bad input', async () => {
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'persistent', code: 'true' }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'persistent', function_id: 'a', instance_id: 'inst-x', code: 'true' }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'persistent', instance_id: 'inst-nope-nope', code: 'true' }), 404, 'INSTANCE_NOT_FOUND');
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'persistent', function_id: 'Bad Name', code: 'true' }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'ephemeral', function_id: 'x', code: 'true' }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'cached', checkpoint: 'snap-x', code: 'true' }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/execute', { mode: 'speedy', code: 'true' }), 400, 'VALIDATION_FAILED');
  });

  it("a function's files survive an executor restart (its processes do not)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'faas-persist-'));
    const apiKey = 'test_persistent_restart_key';
    let proc = await startServerProcess({ dataDir, apiKey });
    try {
      const first = await execute({ mode: 'persistent', function_id: 'durable', code: 'echo survived > /workspace/f' }, proc.request);
      await proc.stop('SIGKILL');
      proc = await startServerProcess({ dataDir, apiKey });
      assert.equal((await proc.request('GET', `/api/v1/instances/${first.instance_id}`)).body.state, 'stopped');
      const after = await execute({ mode: 'persistent', function_id: 'durable', code: 'cat /workspace/f' }, proc.request);
      assert.equal(after.instance_id, first.instance_id);
      assert.equal(after.stdout, 'survived\n');
      assert.equal((await proc.request('GET', `/api/v1/instances/${first.instance_id}`)).body.state, 'running');
    } finally {
      await proc.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
