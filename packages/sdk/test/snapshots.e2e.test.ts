/**
 * The SDK's snapshot and branch calls against a real executor (real capture, restore,
 * copy-on-write branches, blob store).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { FaaSPlatformClient, isFaasError, type Instance, type Snapshot } from '../src/index.ts';

let server: Awaited<ReturnType<typeof startTestServer>>;
let client: FaaSPlatformClient;

before(async () => {
  server = await startTestServer();
  client = new FaaSPlatformClient({ platformUrl: server.url, apiKey: server.apiKey });
});

after(async () => {
  await server?.close();
});

function isCode(code: string, status: number) {
  return (error: unknown): boolean => isFaasError(error) && error.code === code && error.status === status;
}

async function sh(instance: Instance, code: string): Promise<string> {
  const result = await instance.exec({ code });
  assert.equal(result.exitCode, 0, result.stderr);
  return result.stdout;
}

describe('snapshots through the SDK', () => {
  let source: Instance;
  let first: Snapshot;
  let second: Snapshot;
  let restored: Instance;
  let branches: Instance[];

  before(async () => {
    source = await client.instances.create({ envVars: { STAGE: 'one' } });
    await sh(source, 'echo one > a.txt && mkdir -p dir && echo gone > dir/old.txt');
  });

  after(async () => {
    await source?.delete();
  });

  test('createSnapshot of an instance records what it captured', async () => {
    first = await client.createSnapshot(source.id, { step: 'one' });
    assert.match(first.id, /^snap-[0-9a-z]{16}$/);
    assert.match(first.contentHash, /^[0-9a-f]{64}$/);
    assert.equal(first.parentId, null);
    assert.equal(first.sourceInstanceId, source.id);
    assert.equal(first.sourceExecutionId, null);
    assert.deepEqual(first.metadata, { step: 'one' });
    assert.equal(first.deterministic, true);
    assert.deepEqual(first.envVars, { STAGE: 'one' });
    assert.ok(first.fileCount >= 2, `fileCount ${first.fileCount}`);
    assert.ok(first.createdAt instanceof Date);
  });

  test('createSnapshot of an execution (exec- id, live) snapshots the instance it ran in, with the last snapshot as parent', async () => {
    const run = await source.exec({ code: 'echo two >> a.txt && echo new > b.txt && rm dir/old.txt' });
    assert.equal(run.exitCode, 0, run.stderr);
    second = await client.createSnapshot(run.id, undefined, { deterministic: false });
    assert.equal(second.sourceExecutionId, run.id);
    assert.equal(second.sourceInstanceId, source.id);
    assert.equal(second.parentId, first.id);
    assert.equal(second.parentHash, first.contentHash);
    assert.equal(second.deterministic, false);
  });

  test('a client-chosen execution id is found as a string (after the instance guess) and as { executionId }', async () => {
    const instance = await client.instances.create();
    try {
      const run = await instance.exec({ id: `my-run-${Date.now()}`, code: 'echo x > x.txt' });
      const byString = await client.createSnapshot(run.id);
      assert.equal(byString.sourceExecutionId, run.id);
      const byObject = await client.createSnapshot({ executionId: run.id });
      assert.equal(byObject.sourceExecutionId, run.id);
      assert.equal(byObject.parentId, byString.id);
      const byInstance = await client.createSnapshot({ instanceId: instance.id });
      assert.equal(byInstance.sourceExecutionId, null);
      await client.deleteSnapshot(byString.id, { cascade: true });
    } finally {
      await instance.delete();
    }
  });

  test('getSnapshot finds a snapshot by id and by content hash', async () => {
    assert.equal((await client.getSnapshot(first.id)).contentHash, first.contentHash);
    assert.equal((await client.getSnapshot(first.contentHash)).id, first.id);
  });

  test('listSnapshots filters by instance and by parent', async () => {
    const ofSource = await client.listSnapshots({ instanceId: source.id });
    assert.deepEqual(ofSource.map((s) => s.id), [second.id, first.id]);
    assert.deepEqual((await client.listSnapshots({ parentId: first.id })).map((s) => s.id), [second.id]);
    assert.ok((await client.listSnapshots({ parentId: 'none' })).some((s) => s.id === first.id));
    assert.equal((await client.listSnapshots({ limit: 1 })).length, 1);
  });

  test('diffSnapshots lists added, removed and modified paths with a summary', async () => {
    const diff = await client.diffSnapshots(first.id, second.contentHash);
    assert.equal(diff.from, first.id);
    assert.equal(diff.to, second.id);
    // Paths are relative to the instance's root.
    assert.deepEqual(diff.added, [{ path: 'workspace/b.txt', type: 'file', size: 4 }]);
    assert.deepEqual(diff.removed, [{ path: 'workspace/dir/old.txt', type: 'file', size: 5 }]);
    const changed = diff.modified.find((m) => m.path === 'workspace/a.txt');
    assert.ok(changed, JSON.stringify(diff.modified));
    assert.deepEqual(changed.changes, ['content']);
    assert.equal(changed.oldSize, 4);
    assert.equal(changed.size, 8);
    assert.equal(diff.summary.added, diff.added.length);
    assert.equal(diff.summary.modified, diff.modified.length);
    assert.deepEqual(diff.envChanged, []);
  });

  test('restoreSnapshot gives a running instance handle with the snapshot\'s files and env', async () => {
    restored = await client.restoreSnapshot(second.id, { metadata: { from: 'test' } });
    assert.equal(restored.state, 'running');
    assert.equal(restored.sourceSnapshotId, second.id);
    assert.deepEqual(restored.metadata, { from: 'test' });
    assert.equal(await sh(restored, 'cat a.txt b.txt; echo $STAGE; test -e dir/old.txt || echo no-old'), 'one\ntwo\nnew\none\nno-old\n');
  });

  test('createBranch makes independent instances; listBranches finds them', async () => {
    branches = await client.createBranch(second.id, { count: 2, metadata: { branch: 'yes' } });
    assert.equal(branches.length, 2);
    const [left, right] = branches as [Instance, Instance];
    assert.notEqual(left.id, right.id);
    assert.equal(left.sourceSnapshotId, second.id);
    await sh(left, 'echo left > a.txt');
    assert.equal(await sh(right, 'cat a.txt'), 'one\ntwo\n');
    const listed = await client.listBranches(second.contentHash);
    assert.equal(listed.snapshotId, second.id);
    assert.deepEqual(new Set(listed.branches.map((b) => b.id)), new Set([restored.id, left.id, right.id]));
    assert.ok((await client.listBranches()).branches.some((b) => b.id === left.id));
  });

  test('snapshotLineage shows ancestors and descendants', async () => {
    const child = await client.createSnapshot(branches[0]!.id, { step: 'branched' });
    assert.equal(child.parentId, second.id);
    const lineage = await client.snapshotLineage(second.id);
    assert.equal(lineage.snapshot.id, second.id);
    assert.deepEqual(lineage.ancestors.map((n) => [n.id, n.depth]), [[first.id, -1]]);
    assert.deepEqual(lineage.descendants.map((n) => [n.id, n.depth, n.parentId]), [[child.id, 1, second.id]]);
    assert.ok(lineage.descendants[0]!.createdAt instanceof Date);
    const fromRoot = await client.snapshotLineage(first.id);
    assert.deepEqual(fromRoot.descendants.map((n) => n.depth), [1, 2]);
  });

  test('verifySnapshots finds the store intact', async () => {
    const report = await client.verifySnapshots();
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.ok(report.blobsChecked > 0);
    assert.ok(report.snapshotsChecked >= 3);
    assert.deepEqual(report.corruptBlobs, []);
    assert.deepEqual(report.missingBlobs, []);
  });

  test('errors: SNAPSHOT_NOT_FOUND 404, INVALID_HASH 400, SNAPSHOT_IN_USE 409', async () => {
    await assert.rejects(client.getSnapshot('snap-0000000000000000'), isCode('SNAPSHOT_NOT_FOUND', 404));
    await assert.rejects(client.getSnapshot('0'.repeat(64)), isCode('SNAPSHOT_NOT_FOUND', 404));
    await assert.rejects(client.restoreSnapshot('snap-0000000000000000'), isCode('SNAPSHOT_NOT_FOUND', 404));
    await assert.rejects(client.getSnapshot('not-a-snapshot'), isCode('INVALID_HASH', 400));
    await assert.rejects(client.diffSnapshots(first.id, 'ABC'), isCode('INVALID_HASH', 400));
    await assert.rejects(client.deleteSnapshot(first.id), (error: unknown) => {
      assert.ok(isCode('SNAPSHOT_IN_USE', 409)(error), String(error));
      assert.deepEqual((error as { details: { children: string[] } }).details.children, [second.id]);
      return true;
    });
    await assert.rejects(client.createSnapshot('inst-does-not-exist'), isCode('INSTANCE_NOT_FOUND', 404));
    // The snapshot is still there after the refusal.
    assert.equal((await client.getSnapshot(first.id)).id, first.id);
  });

  test('deleteSnapshot with cascade removes descendants and the instances made from them; gcSnapshots frees their blobs', async () => {
    const deleted = await client.deleteSnapshot(first.id, { cascade: true });
    assert.equal(deleted.length, 3);
    assert.equal(deleted.at(-1), first.id);
    assert.ok(deleted.includes(second.id));
    for (const branch of [restored, ...branches]) assert.equal((await branch.refresh()).state, 'deleted');
    await assert.rejects(client.getSnapshot(second.id), isCode('SNAPSHOT_NOT_FOUND', 404));
    assert.deepEqual((await client.listBranches()).branches.filter((b) => b.sourceSnapshotId === second.id), []);

    const gc = await client.gcSnapshots({ graceMs: 0 });
    assert.ok(gc.blobsScanned > 0);
    assert.ok(gc.blobsDeleted > 0, JSON.stringify(gc));
    assert.ok(gc.freedBytes > 0);
    assert.equal(typeof gc.treesRemoved, 'number');
    assert.equal((await client.verifySnapshots()).ok, true);
  });
});
