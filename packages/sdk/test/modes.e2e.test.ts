/**
 * The SDK's execution modes, cache, merges, environments and orchestration helpers against a
 * real executor.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { until } from '../../executor/test/fixtures/wait.ts';
import { FaaSPlatformClient, isFaasError, mergeConflicts, RaceFailedError, type ExecutionResult } from '../src/index.ts';

let server: Awaited<ReturnType<typeof startTestServer>>;
let client: FaaSPlatformClient;

before(async () => {
  server = await startTestServer();
  client = new FaaSPlatformClient({ platformUrl: server.url, apiKey: server.apiKey });
});

after(async () => {
  await server?.close();
});

function ok(result: ExecutionResult): ExecutionResult {
  assert.equal(result.exitCode, 0, result.stderr);
  return result;
}

/** Host pids whose command line mentions `needle` (an instance id: bwrap binds its dirs by path). */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

describe('convenience methods per mode', () => {
  test('executeEphemeral: a fresh instance each time, deleted after', async () => {
    const first = ok(await client.executeEphemeral('echo kept > /workspace/f; cat /workspace/f'));
    assert.equal(first.mode, 'ephemeral');
    assert.equal(first.stdout, 'kept\n');
    const second = await client.executeEphemeral({ code: 'test -e /workspace/f && echo there || echo gone' });
    assert.equal(second.stdout, 'gone\n');
    // The answer may come just before the instance is torn down.
    await until('the instance deleted', async () => ((await client.instances.get(first.instanceId)).state === 'deleted' ? true : undefined));
  });

  test('executeCached: a repeat is the stored result; invalidateCache and cacheStats', async () => {
    const request = { code: 'date +%s%N' };
    const miss = ok(await client.executeCached(request, { cacheKey: 'sdk-e2e' }));
    assert.equal(miss.cached, false);
    const hit = await client.executeCached(request, { cacheKey: 'sdk-e2e' });
    assert.equal(hit.cached, true);
    assert.equal(hit.id, miss.id);
    assert.equal(hit.stdout, miss.stdout);
    assert.equal(typeof hit.cacheLatencyMs, 'number');
    const stats = await client.cacheStats();
    assert.ok(stats.entries >= 1 && stats.hits >= 1 && stats.misses >= 1, JSON.stringify(stats));
    assert.ok(stats.maxBytes > 0 && stats.ttlMs > 0);
    const failing = await client.executeCached('exit 3', { cacheKey: 'sdk-e2e-fail', cacheFailures: true });
    assert.equal(failing.exitCode, 3);
    assert.equal((await client.executeCached('exit 3', { cacheKey: 'sdk-e2e-fail', cacheFailures: true })).cached, true);
    const removed = await client.invalidateCache({ cacheKey: 'sdk-e2e' });
    assert.equal(removed.removed, 1);
    assert.equal((await client.executeCached(request, { cacheKey: 'sdk-e2e' })).cached, false);
    const all = await client.invalidateCache({ all: true });
    assert.equal(all.remaining, 0);
  });

  test('executeCheckpointed: each run snapshots, the next restores it (code, env, checkpoint)', async () => {
    const one = ok(await client.executeCheckpointed('echo one > /workspace/log', 'host'));
    assert.match(one.snapshotId ?? '', /^snap-/);
    assert.match(one.contentHash ?? '', /^[0-9a-f]{64}$/);
    assert.equal(one.baseSnapshotId, null);
    const two = ok(await client.executeCheckpointed('echo two >> /workspace/log; cat /workspace/log', 'host', one.snapshotId!));
    assert.equal(two.stdout, 'one\ntwo\n');
    assert.equal(two.baseSnapshotId, one.snapshotId);
    const again = ok(await client.executeCheckpointed({ code: 'cat /workspace/log', checkpoint: one.contentHash! }));
    assert.equal(again.stdout, 'one\n');
    assert.equal(again.mode, 'checkpointed');
  });

  test('executeBranched: a copy of a snapshot or of an execution\'s, the source never changes', async () => {
    const base = ok(await client.executeCheckpointed('echo base > /workspace/state'));
    const branch = ok(await client.executeBranched('cat /workspace/state; echo changed > /workspace/state', base.snapshotId!, 'host'));
    assert.equal(branch.stdout, 'base\n');
    assert.equal(branch.mode, 'branched');
    assert.equal(branch.baseSnapshotId, base.snapshotId);
    assert.equal(ok(await client.executeBranched({ code: 'cat /workspace/state' }, base.id)).stdout, 'base\n');
    assert.equal(ok(await client.executeBranched('cat /workspace/state', branch.id)).stdout, 'changed\n');
    await assert.rejects(client.executeBranched('true', 'snap-zzzzzzzzzzzzzzzz'), (e: unknown) => isFaasError(e) && e.code === 'SNAPSHOT_NOT_FOUND');
  });

  test('executePersistent: a function id names one instance that lasts; an instance id reaches it too', async () => {
    const first = ok(await client.executePersistent('echo 1 > /workspace/n', { functionId: 'sdk-counter' }));
    const second = ok(await client.executePersistent({ code: 'cat /workspace/n' }, { functionId: 'sdk-counter' }));
    assert.equal(second.instanceId, first.instanceId);
    assert.equal(second.stdout, '1\n');
    assert.equal(second.mode, 'persistent');
    assert.equal(ok(await client.executePersistent('cat /workspace/n', { instanceId: first.instanceId })).stdout, '1\n');
    await client.instances.delete(first.instanceId);
  });
});

describe('parallelMap', () => {
  test('5 items, each on its own branch of the base: each sees the base, none sees another\'s write', async () => {
    const base = ok(await client.executeCheckpointed('echo base > /workspace/state'));
    const items = ['a', 'b', 'c', 'd', 'e'];
    const results = await client.parallelMap(
      items,
      (item) => ({ code: `cat /workspace/state; echo ${item} > /workspace/state; touch /workspace/mine-${item}; sleep 0.5; cat /workspace/state; ls /workspace | grep mine- | tr '\\n' ' '` }),
      base.snapshotId!,
    );
    results.forEach((result, i) => {
      ok(result);
      assert.equal(result.stdout, `base\n${items[i]}\nmine-${items[i]} `);
      assert.equal(result.baseSnapshotId, base.snapshotId);
    });
    assert.equal(new Set(results.map((r) => r.instanceId)).size, 5);
    // The base itself never changed.
    assert.equal(ok(await client.executeBranched('cat /workspace/state; ls /workspace', base.snapshotId!)).stdout, 'base\nstate\n');
  });

  test('settle reports per-item errors in order; without a base each runs ephemeral', async () => {
    const outcomes = await client.parallelMap([0, 1, 2], (i) => (i === 1 ? { code: 'true', env: 'no-such-env' } : { code: `echo ${i}` }), { settle: true, concurrency: 2 });
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.equal(outcomes[2]?.status === 'fulfilled' && outcomes[2].value.stdout, '2\n');
    assert.equal(outcomes[0]?.status === 'fulfilled' && outcomes[0].value.mode, 'ephemeral');
    const rejected = outcomes[1];
    assert.ok(rejected?.status === 'rejected' && isFaasError(rejected.reason) && rejected.reason.code === 'ENVIRONMENT_NOT_FOUND');
    await assert.rejects(client.parallelMap([0, 1], (i) => ({ code: 'true', env: i === 1 ? 'no-such-env' : 'host' })), (e: unknown) => isFaasError(e) && e.code === 'ENVIRONMENT_NOT_FOUND');
  });
});

describe('race', () => {
  test('the fast one wins within seconds; the losers are killed and their instances deleted, no process left', async () => {
    const tag = Date.now().toString(36);
    const requests = [
      { id: `race-slow-1-${tag}`, code: 'sleep 30' },
      { id: `race-fast-${tag}`, code: 'sleep 0.3; echo fast' },
      { id: `race-slow-2-${tag}`, code: 'sleep 30' },
    ];
    const started = Date.now();
    const winner = await client.race(requests);
    const elapsed = Date.now() - started;
    assert.equal(winner.id, `race-fast-${tag}`);
    assert.equal(winner.stdout, 'fast\n');
    assert.ok(elapsed < 5000, `race took ${elapsed} ms`);
    for (const loser of [requests[0]!, requests[2]!]) {
      const record = await client.getExecution(loser.id);
      assert.equal(record.status, 'completed');
      assert.equal(record.exitReason, 'killed');
      assert.equal(record.signal, 'SIGKILL');
      await until(`instance of ${loser.id} deleted`, async () => ((await client.instances.get(record.instanceId)).state === 'deleted' ? true : undefined));
      assert.deepEqual(processesMentioning(record.instanceId), [], `processes of ${record.instanceId}`);
    }
  });

  test('all failing rejects with a RaceFailedError listing each', async () => {
    const error = await client.race([{ code: 'exit 1' }, { code: 'exit 2' }]).then(
      () => assert.fail('no error'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof RaceFailedError && isFaasError(error));
    assert.deepEqual(error.failures.map((f) => f.result?.exitCode), [1, 2]);
  });
});

describe('from(env) chains', () => {
  test('exec, snapshot, branch(3), exec: the branches all see the kept state and not each other', async () => {
    const result = await client
      .from('host')
      .exec('echo hi > /workspace/f')
      .snapshot()
      .branch(3)
      .exec((i) => `cat /workspace/f; ls /workspace; echo ${i} > /workspace/g${i}`)
      .snapshot()
      .exec('ls /workspace | tr "\\n" " "')
      .run();
    assert.equal(result.ok, true);
    assert.deepEqual(result.steps.map((s) => [s.mode, s.results.length]), [['checkpointed', 1], ['branched', 3], ['branched', 3]]);
    const [first, branches, last] = result.steps;
    assert.ok(first!.results[0]!.snapshotId);
    for (const r of branches!.results) {
      assert.equal(r.stdout, 'hi\nf\n');
      assert.equal(r.baseSnapshotId, first!.results[0]!.snapshotId);
    }
    assert.deepEqual(last!.results.map((r) => r.stdout), ['f g0 ', 'f g1 ', 'f g2 ']);
    assert.deepEqual(result.snapshotIds, branches!.results.map((r) => r.snapshotId));
  });

  test('a failing step ends the chain with ok false', async () => {
    const result = await client.from('host').exec('exit 4').exec('echo never').run();
    assert.equal(result.ok, false);
    assert.equal(result.steps.length, 1);
    assert.equal(result.steps[0]!.results[0]!.exitCode, 4);
  });
});

describe('mergeBranches', () => {
  test('merges non-overlapping changes; a conflict is MERGE_CONFLICT with typed conflicts; a strategy settles it', async () => {
    const base = ok(await client.executeCheckpointed('cd /workspace && echo a0 > a && echo b0 > b'));
    const one = ok(await client.executeBranched('cd /workspace && echo a1 > a', base.snapshotId!));
    const two = ok(await client.executeBranched('cd /workspace && echo new > c', base.snapshotId!));
    const merged = await client.mergeBranches([one.id, two.id], { metadata: { why: 'sdk' } });
    assert.equal(merged.baseSnapshotId, base.snapshotId);
    assert.deepEqual(merged.mergedFrom, [one.snapshotId, two.snapshotId]);
    assert.deepEqual(merged.snapshot.mergeParentIds, [one.snapshotId, two.snapshotId]);
    assert.deepEqual(merged.snapshot.metadata, { why: 'sdk' });
    assert.equal(ok(await client.executeBranched('cd /workspace && cat a b c', merged.snapshot.id)).stdout, 'a1\nb0\nnew\n');

    const three = ok(await client.executeBranched('cd /workspace && echo a3 > a', base.snapshotId!));
    const error = await client.mergeBranches([one.snapshotId!, three.snapshotId!], { snapshots: true }).then(
      () => assert.fail('no conflict'),
      (e: unknown) => e,
    );
    assert.ok(isFaasError(error) && error.code === 'MERGE_CONFLICT' && error.status === 409);
    assert.deepEqual(mergeConflicts(error), [
      { path: 'workspace/a', kind: 'content', sides: [{ snapshotId: one.snapshotId!, state: mergeConflicts(error)![0]!.sides[0]!.state }, { snapshotId: three.snapshotId!, state: mergeConflicts(error)![0]!.sides[1]!.state }] },
    ]);
    const theirs = await client.mergeBranches([one.id, three.id], { strategy: 'theirs' });
    assert.deepEqual(theirs.resolvedConflicts.map((c) => [c.path, c.winner]), [['workspace/a', three.snapshotId]]);
    assert.equal(ok(await client.executeBranched('cat /workspace/a', theirs.snapshot.id)).stdout, 'a3\n');
    const prefer = await client.mergeBranches([one.id, three.id], { strategy: { prefer: one.id } });
    assert.equal(ok(await client.executeBranched('cat /workspace/a', prefer.snapshot.id)).stdout, 'a1\n');
  });

  test('unrelated snapshots: MERGE_UNRELATED', async () => {
    const x = ok(await client.executeCheckpointed('echo x > /workspace/x'));
    const y = ok(await client.executeCheckpointed('echo y > /workspace/y'));
    await assert.rejects(client.mergeBranches([x.snapshotId!, y.snapshotId!], { snapshots: true }), (e: unknown) => isFaasError(e) && e.code === 'MERGE_UNRELATED' && e.status === 422);
  });
});

describe('environments', () => {
  test('listEnvironments shows host with its tools and pool; preWarmEnvironment fills and drains it', async () => {
    const envs = await client.listEnvironments();
    const host = envs.find((e) => e.name === 'host');
    assert.ok(host);
    assert.equal(host.runtime, 'bwrap');
    assert.match(host.identity, /^[0-9a-f]{64}$/);
    assert.ok(host.contains.some((t) => t.name === 'sh'));
    const warm = await client.preWarmEnvironment('host', 2);
    assert.equal(warm.env, 'host');
    assert.equal(warm.target, 2);
    assert.ok(warm.updatedAt instanceof Date);
    await until('2 ready', async () => ((await client.listEnvironments()).find((e) => e.name === 'host')!.pool.ready === 2 ? true : undefined), 20_000);
    const drained = await client.preWarmEnvironment('host', 0);
    assert.equal(drained.ready, 0);
    await assert.rejects(client.preWarmEnvironment('nope', 1), (e: unknown) => isFaasError(e) && e.code === 'ENVIRONMENT_NOT_FOUND');
  });
});
