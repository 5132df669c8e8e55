import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { isFaasError } from '@faas/protocol/errors';
import { resetConnection, sendError, sendJson, startFakeServer, wireInstance, type FakeHandler, type FakeServer } from '../test/fixtures/fake-server.ts';
import { FaaSPlatformClient } from './faas-platform-client.ts';
import { targetKind } from './snapshots-api.ts';

let server: FakeServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(handler: FakeHandler): Promise<{ server: FakeServer; client: FaaSPlatformClient }> {
  server = await startFakeServer(handler);
  return { server, client: new FaaSPlatformClient({ platformUrl: server.url, apiKey: 'k', maxRetries: 2 }) };
}

const TIME = '2026-12-04T16:00:00.000Z';
const HASH = 'a'.repeat(64);

function wireSnapshot(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'snap-0000000000000001',
    content_hash: HASH,
    parent_id: null,
    parent_hash: null,
    fs_hash: 'b'.repeat(64),
    env_hash: 'c'.repeat(64),
    memory_hash: null,
    size: 12,
    stored_bytes: 40,
    file_count: 2,
    files_read: 2,
    dir_count: 1,
    symlink_count: 0,
    created_at: TIME,
    metadata: { step: 'one' },
    env: 'host',
    env_vars: { A: '1' },
    source_instance_id: 'inst-test',
    source_execution_id: null,
    deterministic: true,
    duration_ms: 3.5,
    ...overrides,
  };
}

describe('targetKind', () => {
  test('exec- strings are executions, other strings instances, objects say what they are', () => {
    assert.equal(targetKind('exec-2b6x0q1f9s8d'), 'execution_id');
    assert.equal(targetKind('inst-8q3k2m9x7c1v'), 'instance_id');
    assert.equal(targetKind('my-build'), 'instance_id');
    assert.equal(targetKind({ executionId: 'my-build' }), 'execution_id');
    assert.equal(targetKind({ instanceId: 'exec-named-instance' }), 'instance_id');
  });
});

describe('createSnapshot', () => {
  test('sends the guessed field with metadata and deterministic, and maps the answer to camelCase', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 201, wireSnapshot()));
    const snapshot = await client.createSnapshot('exec-2b6x0q1f9s8d', { step: 'one' }, { deterministic: false });
    assert.deepEqual(server.requests[0]?.json, { execution_id: 'exec-2b6x0q1f9s8d', metadata: { step: 'one' }, deterministic: false });
    assert.equal(snapshot.contentHash, HASH);
    assert.equal(snapshot.sourceInstanceId, 'inst-test');
    assert.equal(snapshot.durationMs, 3.5);
    assert.ok(snapshot.createdAt instanceof Date);
  });

  test('a string that names no instance is tried as an execution', async () => {
    const { server, client } = await setup((_req, res, index) =>
      index === 0 ? sendError(res, 404, 'INSTANCE_NOT_FOUND', 'no instance my-build') : sendJson(res, 201, wireSnapshot({ source_execution_id: 'my-build' })),
    );
    const snapshot = await client.createSnapshot('my-build');
    assert.deepEqual(server.requests.map((r) => r.json), [{ instance_id: 'my-build' }, { execution_id: 'my-build' }]);
    assert.equal(snapshot.sourceExecutionId, 'my-build');
  });

  test('when neither kind exists, the error of the first guess is thrown', async () => {
    const { client } = await setup((_req, res, index) =>
      index === 0 ? sendError(res, 404, 'INSTANCE_NOT_FOUND', 'no instance nope') : sendError(res, 404, 'EXECUTION_NOT_FOUND', 'no execution nope'),
    );
    await assert.rejects(client.createSnapshot('nope'), (error: unknown) => isFaasError(error) && error.code === 'INSTANCE_NOT_FOUND');
  });

  test('an explicit kind is never guessed again, and a failed POST is not retried', async () => {
    const { server, client } = await setup((_req, res) => sendError(res, 404, 'EXECUTION_NOT_FOUND', 'no execution x'));
    await assert.rejects(client.createSnapshot({ executionId: 'inst-x' }), (error: unknown) => isFaasError(error) && error.code === 'EXECUTION_NOT_FOUND');
    assert.deepEqual(server.requests.map((r) => r.json), [{ execution_id: 'inst-x' }]);
  });
});

describe('the other snapshot calls', () => {
  test('listSnapshots sends the filters as snake_case query parameters', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 200, { snapshots: [wireSnapshot()] }));
    const list = await client.listSnapshots({ parentId: 'none', instanceId: 'inst-1', limit: 5 });
    assert.equal(server.requests[0]?.url, '/api/v1/snapshots?parent_id=none&instance_id=inst-1&limit=5');
    assert.equal(list[0]?.id, 'snap-0000000000000001');
  });

  test('deleteSnapshot sends cascade only when asked and is not retried after a reset', async () => {
    const { server, client } = await setup((_req, res, index) => (index === 0 ? sendJson(res, 200, { deleted: ['snap-b', 'snap-a'] }) : resetConnection(res)));
    assert.deepEqual(await client.deleteSnapshot('snap-a', { cascade: true }), ['snap-b', 'snap-a']);
    assert.equal(server.requests[0]?.url, '/api/v1/snapshots/snap-a?cascade=true');
    await assert.rejects(client.deleteSnapshot('snap-a'), (error: unknown) => isFaasError(error) && error.code === 'CONNECTION_FAILED');
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[1]?.url, '/api/v1/snapshots/snap-a');
  });

  test('restoreSnapshot and createBranch send limits in snake_case and return instance handles', async () => {
    const { server, client } = await setup((req, res) =>
      req.url.endsWith('/restore')
        ? sendJson(res, 201, wireInstance({ source_snapshot_id: 'snap-a' }))
        : sendJson(res, 201, { snapshot_id: 'snap-a', branches: [wireInstance({ id: 'inst-1', source_snapshot_id: 'snap-a' }), wireInstance({ id: 'inst-2', source_snapshot_id: 'snap-a' })] }),
    );
    const restored = await client.restoreSnapshot('snap-a', { id: 'mine', limits: { memoryMb: 64 } });
    assert.deepEqual(server.requests[0]?.json, { id: 'mine', limits: { memory_mb: 64 } });
    assert.equal(restored.sourceSnapshotId, 'snap-a');
    assert.equal(typeof restored.exec, 'function');
    const branches = await client.createBranch('snap-a', { count: 2, metadata: { k: 'v' } });
    assert.deepEqual(server.requests[1]?.json, { snapshot_id: 'snap-a', count: 2, metadata: { k: 'v' } });
    assert.deepEqual(branches.map((b) => b.id), ['inst-1', 'inst-2']);
  });

  test('diff, verify and gc map their answers', async () => {
    const { server, client } = await setup((req, res) => {
      if (req.url.startsWith('/api/v1/snapshots/diff')) {
        sendJson(res, 200, {
          from: 'snap-a',
          to: 'snap-b',
          added: [{ path: 'new', type: 'file', size: 3 }],
          removed: [],
          modified: [{ path: 'f', type: 'file', old_type: 'file', old_size: 1, size: 2, changes: ['content'] }],
          env_changed: ['A'],
          summary: { added: 1, removed: 0, modified: 1, bytes_added: 3, bytes_removed: 0 },
        });
      } else if (req.url.endsWith('/verify')) {
        sendJson(res, 200, { ok: false, blobs_checked: 3, corrupt_blobs: [{ hash: 'h', actual_hash: 'x', size: 1 }], stray_files: [], snapshots_checked: 1, missing_blobs: [] });
      } else {
        sendJson(res, 200, { blobs_scanned: 4, blobs_deleted: 1, freed_bytes: 10, blobs_kept: 3, temp_files_removed: 0, trees_removed: 1 });
      }
    });
    const diff = await client.diffSnapshots('snap-a', 'snap-b');
    assert.equal(server.requests[0]?.url, '/api/v1/snapshots/diff?from=snap-a&to=snap-b');
    assert.deepEqual(diff.modified, [{ path: 'f', type: 'file', oldType: 'file', oldSize: 1, size: 2, changes: ['content'] }]);
    assert.deepEqual(diff.summary, { added: 1, removed: 0, modified: 1, bytesAdded: 3, bytesRemoved: 0 });
    assert.deepEqual(diff.envChanged, ['A']);
    const report = await client.verifySnapshots();
    assert.deepEqual(report.corruptBlobs, [{ hash: 'h', actualHash: 'x', size: 1 }]);
    assert.equal(report.ok, false);
    const gc = await client.gcSnapshots({ graceMs: 0 });
    assert.deepEqual(server.requests[2]?.json, { grace_ms: 0 });
    assert.deepEqual(gc, { blobsScanned: 4, blobsDeleted: 1, freedBytes: 10, blobsKept: 3, tempFilesRemoved: 0, treesRemoved: 1 });
  });

  test('a ref is percent-encoded into the path', async () => {
    const { server, client } = await setup((_req, res) => sendError(res, 400, 'INVALID_HASH', 'bad'));
    await assert.rejects(client.getSnapshot('../instances'), (error: unknown) => isFaasError(error) && error.code === 'INVALID_HASH' && error.status === 400);
    assert.equal(server.requests[0]?.url, '/api/v1/snapshots/..%2Finstances');
  });
});
