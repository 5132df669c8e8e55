/**
 * `faas exec` in every mode, `faas cache`, `faas merge` and `faas env` against a real
 * executor, spawned as a user would run them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { runFaas, type Run } from './fixtures/run-cli.ts';


let server: Awaited<ReturnType<typeof startTestServer>>;

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server?.close();
});

function faas(args: string[]): Promise<Run> {
  return runFaas(server, args);
}

/** Runs and expects exit 0. */
async function ok(args: string[]): Promise<Run> {
  const run = await faas(args);
  assert.equal(run.code, 0, `faas ${args.join(' ')}: ${run.stderr}`);
  return run;
}

function snapshotIdOf(run: Run): string {
  const id = /^snapshot (snap-[0-9a-z]{16})$/m.exec(run.stderr)?.[1];
  assert.ok(id, run.stderr);
  return id;
}

describe('faas exec --mode', () => {
  test('checkpointed prints the snapshot id; --checkpoint and --branch-from start from it; exit codes pass through', async () => {
    const first = await ok(['exec', '--mode', 'checkpointed', '--print-snapshot-id', '--', 'echo one > /workspace/f; echo made']);
    assert.equal(first.stdout, 'made\n');
    const snap = snapshotIdOf(first);
    const chained = await ok(['exec', '--checkpoint', snap, '--print-snapshot-id', '--', 'echo two >> /workspace/f; cat /workspace/f']);
    assert.equal(chained.stdout, 'one\ntwo\n');
    assert.notEqual(snapshotIdOf(chained), snap);
    const branched = await faas(['exec', '--branch-from', snap, '--', 'cat /workspace/f; echo err >&2; exit 3']);
    assert.equal(branched.code, 3);
    assert.equal(branched.stdout, 'one\n');
    assert.equal(branched.stderr, 'err\n');
    const json = await ok(['exec', '--mode', 'branched', '--branch-from', snap, '--json', '--', 'true']);
    const record = JSON.parse(json.stdout) as { mode: string; baseSnapshotId: string; snapshotId: string };
    assert.equal(record.mode, 'branched');
    assert.equal(record.baseSnapshotId, snap);
    assert.match(record.snapshotId, /^snap-/);
  });

  test('cached: the repeat is the stored result; --print-id says so', async () => {
    const first = await ok(['exec', '--cache-key', 'cli-e2e', '--print-id', '--', 'date +%s%N']);
    const second = await ok(['exec', '--cache-key', 'cli-e2e', '--print-id', '--', 'date +%s%N']);
    assert.equal(second.stdout, first.stdout);
    const id = /^execution (\S+)$/m.exec(first.stderr)?.[1];
    assert.ok(id, first.stderr);
    assert.match(second.stderr, new RegExp(`^execution ${id} \\(cached\\)$`, 'm'));
    const failing = await faas(['exec', '--mode', 'cached', '--cache-failures', '--', 'exit 4']);
    assert.equal(failing.code, 4);
  });

  test('persistent: --function keeps files between runs; --instance reaches the same instance', async () => {
    await ok(['exec', '--function', 'cli-fn', '--', 'echo kept > /workspace/k']);
    const again = await ok(['exec', '--mode', 'persistent', '--function', 'cli-fn', '--json', '--', 'cat', '/workspace/k']);
    const record = JSON.parse(again.stdout) as { stdout: string; instanceId: string };
    assert.equal(record.stdout, 'kept\n');
    const byInstance = await ok(['exec', '--instance', record.instanceId, '--', 'cat', '/workspace/k']);
    assert.equal(byInstance.stdout, 'kept\n');
  });

  test('options of another mode exit 2; a server refusal exits 1', async () => {
    const mixed = await faas(['exec', '--mode', 'ephemeral', '--cache-key', 'k', '--', 'true']);
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /--cache-key is an option of mode cached/);
    const bad = await faas(['exec', '--mode', 'speedy', '--', 'true']);
    assert.equal(bad.code, 2);
    const missing = await faas(['exec', '--mode', 'branched', '--', 'true']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: VALIDATION_FAILED: /);
    const unknown = await faas(['exec', '--branch-from', 'snap-zzzzzzzzzzzzzzzz', '--', 'true']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: SNAPSHOT_NOT_FOUND: /);
  });
});

describe('faas cache', () => {
  test('stats, invalidate --key and --all; no condition exits 2', async () => {
    await ok(['exec', '--cache-key', 'cli-cache', '--', 'echo x']);
    const stats = JSON.parse((await ok(['cache', 'stats', '--json'])).stdout) as { entries: number; maxBytes: number };
    assert.ok(stats.entries >= 1 && stats.maxBytes > 0);
    assert.match((await ok(['cache', 'stats'])).stdout, /^entries\s+\d+\nsize\s+/);
    assert.match((await ok(['cache', 'invalidate', '--key', 'cli-cache'])).stdout, /^removed 1, \d+ remaining\n$/);
    assert.equal((await ok(['cache', 'invalidate', '--all'])).stdout, `removed ${stats.entries - 1}, 0 remaining\n`);
    const none = await faas(['cache', 'invalidate']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--all, --key, --env or --older-than/);
  });
});

describe('faas merge', () => {
  test('merges branches into a snapshot; a conflict lists each path and exits 1; strategies settle it', async () => {
    const base = snapshotIdOf(await ok(['exec', '--mode', 'checkpointed', '--print-snapshot-id', '--', 'cd /workspace && echo a0 > a && echo b0 > b']));
    const branch = async (code: string): Promise<string> => (JSON.parse((await ok(['exec', '--branch-from', base, '--json', '--', code])).stdout) as { id: string }).id;
    const one = await branch('echo a1 > /workspace/a');
    const two = await branch('echo new > /workspace/c');
    const merged = await ok(['merge', one, two]);
    const mergedId = merged.stdout.trim();
    assert.match(mergedId, /^snap-[0-9a-z]{16}$/);
    assert.equal((await ok(['exec', '--branch-from', mergedId, '--', 'cd /workspace && cat a b c'])).stdout, 'a1\nb0\nnew\n');

    const three = await branch('echo a3 > /workspace/a');
    const conflict = await faas(['merge', one, three]);
    assert.equal(conflict.code, 1);
    assert.match(conflict.stdout, /^workspace\/a \(content\)\n  snap-\S+  file .*\n  snap-\S+  file .*\n$/);
    assert.match(conflict.stderr, /1 conflicting path; nothing was merged/);
    const theirs = await ok(['merge', one, three, '--strategy', 'theirs']);
    assert.match(theirs.stderr, /resolved 1 conflict/);
    assert.equal((await ok(['exec', '--branch-from', theirs.stdout.trim(), '--', 'cat', '/workspace/a'])).stdout, 'a3\n');
    const prefer = await ok(['merge', one, three, '--strategy', `prefer:${one}`, '--json']);
    const result = JSON.parse(prefer.stdout) as { snapshot: { id: string; mergeParentIds: string[] } };
    assert.equal(result.snapshot.mergeParentIds.length, 2);
    // Snapshot refs are recognised, or forced with --snapshots.
    const [s1, s2] = result.snapshot.mergeParentIds as [string, string];
    assert.match((await ok(['merge', s1, s2, '--strategy', 'ours'])).stdout, /^snap-/);
    assert.match((await ok(['merge', '--snapshots', s1, s2, '--strategy', 'ours'])).stdout, /^snap-/);
    const badStrategy = await faas(['merge', one, two, '--strategy', 'mine']);
    assert.equal(badStrategy.code, 2);
  });
});

describe('faas env', () => {
  test('ls shows host; warm sets its pool; an unknown environment exits 1', async () => {
    const listed = await ok(['env', 'ls']);
    assert.match(listed.stdout, /^NAME\s+RUNTIME\s+READY\/TARGET\s+HITS\/MISSES\s+IDENTITY\s+CONTAINS\n/);
    assert.match(listed.stdout, /^host\s+bwrap\s+\d+\/\d+/m);
    const json = JSON.parse((await ok(['env', 'ls', '--json'])).stdout) as Array<{ name: string; identity: string }>;
    assert.match(json.find((e) => e.name === 'host')?.identity ?? '', /^[0-9a-f]{64}$/);
    assert.match((await ok(['env', 'warm', 'host', '1'])).stdout, /^host: [01] of 1 ready/);
    assert.equal((await ok(['env', 'warm', 'host', '0'])).stdout, 'host: 0 of 0 ready\n');
    const unknown = await faas(['env', 'warm', 'nope', '1']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: ENVIRONMENT_NOT_FOUND: /);
    assert.equal((await faas(['env', 'warm', 'host', 'x'])).code, 2);
  });
});
