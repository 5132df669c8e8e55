import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { isFaasError } from '@faas/protocol/errors';
import { sendError, sendJson, startFakeServer, startSse, wireExecution, type FakeHandler, type FakeServer } from '../test/fixtures/fake-server.ts';
import { FaaSPlatformClient } from './faas-platform-client.ts';
import { mergeConflicts } from './modes-api.ts';
import { RaceFailedError } from './orchestration.ts';
import type { Pipeline } from './pipeline.ts';

let server: FakeServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(handler: FakeHandler): Promise<{ server: FakeServer; client: FaaSPlatformClient }> {
  server = await startFakeServer(handler);
  return { server, client: new FaaSPlatformClient({ platformUrl: server.url, apiKey: 'k', maxRetries: 0 }) };
}

function path(url: string): string {
  return new URL(url, 'http://x').pathname;
}

/** A request body without the generated id. */
function body(server: FakeServer, index: number): Record<string, unknown> {
  const { id: _id, ...rest } = server.requests[index]?.json as Record<string, unknown>;
  return rest;
}

const TIME = '2026-12-04T16:00:00.000Z';
const wireSnapshot = (id: string) => ({
  id,
  content_hash: 'a'.repeat(64),
  parent_id: 'snap-one',
  parent_hash: 'b'.repeat(64),
  fs_hash: 'c'.repeat(64),
  env_hash: 'd'.repeat(64),
  memory_hash: null,
  size: 1,
  stored_bytes: 1,
  file_count: 1,
  files_read: 1,
  dir_count: 1,
  symlink_count: 0,
  created_at: TIME,
  metadata: {},
  env: 'host',
  env_vars: {},
  source_instance_id: null,
  source_execution_id: null,
  deterministic: true,
  duration_ms: 1,
  merge_parent_ids: ['snap-one', 'snap-two'],
});

describe('execute in every mode', () => {
  test('mode fields go out in snake_case and come back in camelCase', async () => {
    const { server, client } = await setup((_req, res) =>
      sendJson(res, 200, wireExecution({ mode: 'cached', cached: true, cache_latency_ms: 1.5, snapshot_id: null, content_hash: null, base_snapshot_id: 'snap-base' })),
    );
    const result = await client.execute({ code: 'x', mode: 'cached', cacheKey: 'k1', cacheFailures: true });
    assert.deepEqual(body(server, 0), { code: 'x', mode: 'cached', cache_key: 'k1', cache_failures: true });
    assert.equal(result.mode, 'cached');
    assert.equal(result.cached, true);
    assert.equal(result.cacheLatencyMs, 1.5);
    assert.equal(result.snapshotId, null);
    assert.equal(result.contentHash, null);
    assert.equal(result.baseSnapshotId, 'snap-base');
  });

  test('a record without mode fields maps without those keys', async () => {
    const { client } = await setup((_req, res) => sendJson(res, 200, wireExecution()));
    const result = await client.execute({ code: 'x' });
    for (const key of ['mode', 'cached', 'cacheLatencyMs', 'snapshotId', 'contentHash', 'baseSnapshotId']) assert.ok(!(key in result), key);
  });

  test('each convenience method sends its mode and fields', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 200, wireExecution()));
    await client.executeEphemeral('echo 1', { timeoutMs: 5 });
    await client.executeEphemeral({ command: ['true'], env: 'host' });
    await client.executeCached({ code: 'c', cacheKey: 'from-request' });
    await client.executeCached('c', { cacheKey: 'k', cacheFailures: false });
    await client.executeCheckpointed('make', 'host', 'snap-a');
    await client.executeCheckpointed({ code: 'make', env: 'py', checkpoint: 'snap-b', envVars: { A: '1' } });
    await client.executeBranched('ls', 'exec-parent', 'host');
    await client.executeBranched({ command: ['ls'], env: 'py' }, 'snap-c');
    await client.executePersistent('n', { functionId: 'counter' });
    await client.executePersistent({ code: 'n', timeoutMs: 9 }, { instanceId: 'inst-1' });
    assert.deepEqual(
      server.requests.map((_r, i) => body(server, i)),
      [
        { code: 'echo 1', timeout_ms: 5, mode: 'ephemeral' },
        { command: ['true'], env: 'host', mode: 'ephemeral' },
        { code: 'c', mode: 'cached', cache_key: 'from-request' },
        { code: 'c', mode: 'cached', cache_key: 'k', cache_failures: false },
        { code: 'make', mode: 'checkpointed', env: 'host', checkpoint: 'snap-a' },
        { code: 'make', env_vars: { A: '1' }, mode: 'checkpointed', env: 'py', checkpoint: 'snap-b' },
        { code: 'ls', mode: 'branched', branch_from: 'exec-parent', env: 'host' },
        { command: ['ls'], mode: 'branched', branch_from: 'snap-c', env: 'py' },
        { code: 'n', mode: 'persistent', function_id: 'counter' },
        { code: 'n', timeout_ms: 9, mode: 'persistent', instance_id: 'inst-1' },
      ],
    );
    assert.ok(server.requests.every((r) => r.method === 'POST' && path(r.url) === '/api/v1/execute'));
  });
});

describe('cache, merge, environments', () => {
  test('invalidateCache and cacheStats', async () => {
    const { server, client } = await setup((req, res) =>
      req.method === 'GET'
        ? sendJson(res, 200, { entries: 2, bytes: 30, max_bytes: 100, ttl_ms: 1000, hits: 5, misses: 3, evictions: 1 })
        : sendJson(res, 200, { removed: 4, remaining: 2 }),
    );
    assert.deepEqual(await client.invalidateCache({ cacheKey: 'k', env: 'host', olderThanMs: 60 }), { removed: 4, remaining: 2 });
    assert.deepEqual(server.requests[0]?.json, { cache_key: 'k', env: 'host', older_than_ms: 60 });
    assert.equal(path(server.requests[0]!.url), '/api/v1/cache/invalidate');
    await client.invalidateCache({ all: true });
    assert.deepEqual(server.requests[1]?.json, { all: true });
    assert.deepEqual(await client.cacheStats(), { entries: 2, bytes: 30, maxBytes: 100, ttlMs: 1000, hits: 5, misses: 3, evictions: 1 });
    assert.equal(path(server.requests[2]!.url), '/api/v1/cache');
  });

  test('mergeBranches sends branch or snapshot ids with the strategy and maps the result', async () => {
    const { server, client } = await setup((_req, res) =>
      sendJson(res, 201, {
        snapshot: wireSnapshot('snap-merged'),
        base_snapshot_id: 'snap-base',
        merged_from: ['snap-one', 'snap-two'],
        resolved_conflicts: [{ path: 'workspace/a', kind: 'content', sides: [{ snapshot_id: 'snap-one', state: 'file' }, { snapshot_id: 'snap-two', state: 'deleted' }], winner: 'snap-two' }],
      }),
    );
    const merged = await client.mergeBranches(['exec-a', 'exec-b'], { strategy: { prefer: 'exec-b' }, metadata: { why: 'x' } });
    assert.deepEqual(server.requests[0]?.json, { branch_ids: ['exec-a', 'exec-b'], strategy: { prefer: 'exec-b' }, metadata: { why: 'x' } });
    assert.equal(path(server.requests[0]!.url), '/api/v1/branches/merge');
    assert.equal(merged.snapshot.id, 'snap-merged');
    assert.deepEqual(merged.snapshot.mergeParentIds, ['snap-one', 'snap-two']);
    assert.equal(merged.baseSnapshotId, 'snap-base');
    assert.deepEqual(merged.mergedFrom, ['snap-one', 'snap-two']);
    assert.deepEqual(merged.resolvedConflicts, [
      { path: 'workspace/a', kind: 'content', sides: [{ snapshotId: 'snap-one', state: 'file' }, { snapshotId: 'snap-two', state: 'deleted' }], winner: 'snap-two' },
    ]);
    await client.mergeBranches(['snap-one', 'snap-two'], { snapshots: true, strategy: 'ours' });
    assert.deepEqual(server.requests[1]?.json, { snapshot_ids: ['snap-one', 'snap-two'], strategy: 'ours' });
  });

  test('a merge conflict is a FaasError whose conflicts mergeConflicts() reads in camelCase', async () => {
    const { client } = await setup((_req, res) =>
      sendError(res, 409, 'MERGE_CONFLICT', '1 conflicting path', {
        base_snapshot_id: 'snap-base',
        conflicts: [{ path: 'workspace/a', path_base64: 'd29ya3NwYWNlL2E=', kind: 'delete_modify', sides: [{ snapshot_id: 'snap-one', state: 'deleted' }, { snapshot_id: 'snap-two', state: 'file 0644 3 bytes h' }] }],
      }),
    );
    const error = await client.mergeBranches(['exec-a', 'exec-b']).then(
      () => assert.fail('no error'),
      (e: unknown) => e,
    );
    assert.ok(isFaasError(error) && error.code === 'MERGE_CONFLICT' && error.status === 409);
    assert.equal(error.details.base_snapshot_id, 'snap-base');
    assert.deepEqual(mergeConflicts(error), [
      { path: 'workspace/a', pathBase64: 'd29ya3NwYWNlL2E=', kind: 'delete_modify', sides: [{ snapshotId: 'snap-one', state: 'deleted' }, { snapshotId: 'snap-two', state: 'file 0644 3 bytes h' }] },
    ]);
    assert.equal(mergeConflicts(new Error('x')), null);
  });

  test('listEnvironments and preWarmEnvironment', async () => {
    const { server, client } = await setup((req, res) =>
      req.method === 'GET'
        ? sendJson(res, 200, { environments: [{ name: 'host', runtime: 'bwrap', description: 'd', contains: [{ name: 'sh', version: null, path: '/bin/sh' }], identity: 'f'.repeat(64), pool: { target: 1, ready: 0, hits: 2, misses: 3 } }] })
        : sendJson(res, 200, { env: 'my env', target: 4, ready: 1, updated_at: TIME }),
    );
    assert.deepEqual(await client.listEnvironments(), [
      { name: 'host', runtime: 'bwrap', description: 'd', contains: [{ name: 'sh', version: null, path: '/bin/sh' }], identity: 'f'.repeat(64), pool: { target: 1, ready: 0, hits: 2, misses: 3 } },
    ]);
    const warm = await client.preWarmEnvironment('my env', 4);
    assert.equal(server.requests[1]?.url, '/api/v1/environments/my%20env/warm');
    assert.deepEqual(server.requests[1]?.json, { count: 4 });
    assert.deepEqual(warm, { env: 'my env', target: 4, ready: 1, updatedAt: new Date(TIME) });
  });
});

describe('parallelMap', () => {
  test('branches every item from the base snapshot, keeps input order and the concurrency bound', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const { server, client } = await setup(async (req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const { code } = req.json as { code: string };
      await new Promise((r) => setTimeout(r, code === 'item 0' ? 60 : 5));
      inFlight--;
      sendJson(res, 200, wireExecution({ stdout: code }));
    });
    const items = [0, 1, 2, 3, 4, 5];
    const results = await client.parallelMap(items, (i) => ({ code: `item ${i}` }), 'snap-base', { concurrency: 2 });
    assert.deepEqual(results.map((r) => r.stdout), items.map((i) => `item ${i}`));
    assert.equal(maxInFlight, 2);
    for (let i = 0; i < items.length; i++) assert.deepEqual({ ...body(server, i), code: undefined }, { code: undefined, mode: 'branched', branch_from: 'snap-base' });
  });

  test('without a base the request goes as it is; the default concurrency is 8', async () => {
    let maxInFlight = 0;
    let inFlight = 0;
    // Requests are held until 8 are in flight (then 50 ms more, time for a 9th to show up), or
    // 2 s: the count does not depend on how fast this machine answers.
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    const giveUp = setTimeout(release, 2000);
    const { server, client } = await setup(async (_req, res) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      if (inFlight === 8) setTimeout(release, 50);
      await released;
      inFlight--;
      sendJson(res, 200, wireExecution());
    });
    await client.parallelMap(Array.from({ length: 12 }, (_, i) => i), async (i) => ({ command: ['echo', String(i)] }));
    clearTimeout(giveUp);
    assert.equal(maxInFlight, 8);
    assert.deepEqual(body(server, 0), { command: ['echo', '0'] });
  });

  test('rejects with the first error, or with settle reports each item', async () => {
    const handler: FakeHandler = (req, res) => ((req.json as { code: string }).code === 'bad' ? sendError(res, 503, 'CAPACITY_EXHAUSTED', 'full') : sendJson(res, 200, wireExecution({ exit_code: 1 })));
    const { client } = await setup(handler);
    await assert.rejects(client.parallelMap(['ok', 'bad', 'ok'], (code) => ({ code })), (e: unknown) => isFaasError(e) && e.code === 'CAPACITY_EXHAUSTED');
    const outcomes = await client.parallelMap(['ok', 'bad', 'ok'], (code) => ({ code }), { settle: true });
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.equal(outcomes[0]?.status === 'fulfilled' && outcomes[0].value.exitCode, 1, 'a non-zero exit is a result');
    await assert.rejects(client.parallelMap([1], () => ({ code: 'x' }), { concurrency: 0 }), (e: unknown) => isFaasError(e) && e.code === 'VALIDATION_FAILED');
  });
});

/** A fake server for races: `win*` codes finish with 0, `fail*` with 1, others run until killed. */
function raceHandler(): FakeHandler {
  const codes = new Map<string, string>();
  const killed = new Set<string>();
  return (req, res) => {
    const p = path(req.url);
    if (p === '/api/v1/execute') {
      const { id, code } = req.json as { id: string; code: string };
      codes.set(id, code);
      return sendJson(res, 202, { id, instance_id: `inst-${id}`, status: 'running', events_url: '', stream_url: '' });
    }
    const id = decodeURIComponent(p.split('/')[4] ?? '');
    const code = codes.get(id) ?? '';
    const finished = code.startsWith('win') ? wireExecution({ id, stdout: code }) : code.startsWith('fail') ? wireExecution({ id, exit_code: 1 }) : undefined;
    if (p.endsWith('/kill')) {
      if (finished || killed.has(id)) return sendError(res, 409, 'EXECUTION_FINISHED', 'over');
      killed.add(id);
      return sendJson(res, 200, wireExecution({ id, exit_code: null, exit_reason: 'killed', signal: 'SIGKILL' }));
    }
    if (p.endsWith('/events')) return startSse(res); // never ends: a running execution
    return sendJson(res, 200, finished ?? wireExecution({ id, status: 'running', exit_code: null, exit_reason: null, finished_at: null, last_seq: 0 }));
  };
}

describe('race', () => {
  test('resolves with the winner after killing every loser with SIGKILL', async () => {
    const { server, client } = await setup(raceHandler());
    const winner = await client.race([{ code: 'slow 1' }, { code: 'win' }, { code: 'slow 2' }]);
    assert.equal(winner.stdout, 'win');
    const started = server.requests.filter((r) => path(r.url) === '/api/v1/execute');
    assert.ok(started.every((r) => (r.json as { background?: boolean }).background === true));
    const ids = started.map((r) => (r.json as { id: string; code: string }));
    const kills = server.requests.filter((r) => r.url.endsWith('/kill'));
    assert.deepEqual(kills.map((r) => decodeURIComponent(path(r.url).split('/')[4]!)).sort(), ids.filter((b) => b.code.startsWith('slow')).map((b) => b.id).sort());
    assert.ok(kills.every((r) => (r.json as { signal: string }).signal === 'SIGKILL'));
  });

  test('when nobody succeeds it rejects with a RaceFailedError listing each entrant', async () => {
    const { client } = await setup(raceHandler());
    const error = await client.race([{ code: 'fail 1' }, { code: 'fail 2' }]).then(
      () => assert.fail('no error'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof RaceFailedError && isFaasError(error));
    assert.deepEqual(error.failures.map((f) => f.result?.exitCode), [1, 1]);
    assert.equal((error.details.failures as unknown[]).length, 2);
    assert.equal(error.errors.length, 2);
  });

  test('a timeout kills every entrant and rejects with CLIENT_TIMEOUT', async () => {
    const { server, client } = await setup(raceHandler());
    await assert.rejects(client.race([{ code: 'slow a' }, { code: 'slow b' }], { timeout: 200 }), (e: unknown) => isFaasError(e) && e.code === 'CLIENT_TIMEOUT');
    assert.equal(server.requests.filter((r) => r.url.endsWith('/kill')).length, 2);
  });
});

describe('from(env) chains', () => {
  test('exec, snapshot, branch(3), exec: one checkpointed run, then three branched runs of its snapshot', async () => {
    let n = 0;
    const { server, client } = await setup((req, res) => {
      const { mode } = req.json as { mode: string };
      n++;
      sendJson(res, 200, wireExecution({ id: `exec-${n}`, mode, snapshot_id: `snap-${n}`, stdout: (req.json as { code: string }).code }));
    });
    const result = await client
      .from('py')
      .exec('echo hi > /workspace/f', { timeoutMs: 100 })
      .snapshot()
      .branch(3)
      .exec((i) => `run ${i}`)
      .run();
    assert.equal(result.ok, true);
    assert.deepEqual(body(server, 0), { code: 'echo hi > /workspace/f', timeout_ms: 100, env: 'py', mode: 'checkpointed' });
    assert.deepEqual([1, 2, 3].map((i) => body(server, i)).sort((a, b) => String(a.code).localeCompare(String(b.code))), [0, 1, 2].map((i) => ({ code: `run ${i}`, env: 'py', mode: 'branched', branch_from: 'snap-1' })));
    assert.deepEqual(result.steps.map((s) => [s.mode, s.snapshot, s.results.length]), [['checkpointed', true, 1], ['branched', false, 3]]);
    assert.deepEqual(result.steps[1]!.results.map((r) => r.stdout), ['run 0', 'run 1', 'run 2']);
    assert.deepEqual(result.snapshotIds, ['snap-1', 'snap-1', 'snap-1'], 'unkept branch runs do not move the lines');
  });

  test('an exec not kept runs ephemeral and does not carry over; a failing step ends the chain', async () => {
    const { server, client } = await setup((req, res) => sendJson(res, 200, wireExecution({ exit_code: (req.json as { code: string }).code === 'fail' ? 2 : 0 })));
    const result = await client.from('host').exec(['true']).exec('fail').exec('never').run();
    assert.equal(result.ok, false);
    assert.equal(result.steps.length, 2);
    assert.equal(server.requests.length, 2);
    assert.deepEqual(body(server, 0), { command: ['true'], env: 'host', mode: 'ephemeral' });
  });

  test('misuse is a VALIDATION_FAILED before anything runs', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 200, wireExecution()));
    const invalid = (e: unknown): boolean => isFaasError(e) && e.code === 'VALIDATION_FAILED';
    assert.throws(() => (client.from('host') as unknown as Pipeline).snapshot(), invalid);
    assert.throws(() => client.from('host').exec('x').branch(0), invalid);
    await assert.rejects((client.from('host').exec('x').branch(2) as unknown as Pipeline).run(), invalid);
    await assert.rejects(client.from('host').exec('x').snapshot().branch(8).exec('y').snapshot().branch(9).exec('z').run(), invalid);
    assert.equal(server.requests.length, 0);
  });
});
