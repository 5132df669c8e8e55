import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Snapshot, SnapshotDiff, VerifyResult } from '@faas/sdk';
import { formatDiff, formatGc, formatLineage, formatSnapshot, formatVerify, snapshotRow, verifyProblems } from './snapshot-format.ts';
import { formatBytes } from './table.ts';

const NOW = new Date('2026-12-04T12:00:00Z');
const ago = (ms: number): Date => new Date(NOW.getTime() - ms);

function snapshot(overrides: Partial<Snapshot> = {}): Snapshot {
  return {
    id: 'snap-b',
    contentHash: 'c'.repeat(64),
    parentId: 'snap-a',
    parentHash: 'a'.repeat(64),
    fsHash: 'f'.repeat(64),
    envHash: 'e'.repeat(64),
    memoryHash: null,
    size: 2048,
    storedBytes: 100,
    fileCount: 3,
    filesRead: 3,
    dirCount: 2,
    symlinkCount: 1,
    createdAt: ago(90_000),
    metadata: { step: 'two' },
    env: 'host',
    envVars: { TOKEN: 'secret' },
    sourceInstanceId: 'inst-1',
    sourceExecutionId: null,
    deterministic: true,
    durationMs: 12.5,
    mergeParentIds: [],
    ...overrides,
  };
}

describe('formatBytes', () => {
  test('exact bytes below 1 KiB, one decimal above', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
  });
});

describe('snapshot formats', () => {
  test('a table row and the show form; show names env vars without their values', () => {
    assert.deepEqual(snapshotRow(snapshot(), NOW), ['snap-b', 'snap-a', 'inst-1', '2.0 KiB', '3', '1m ago', 'step=two']);
    const shown = formatSnapshot(snapshot(), NOW);
    assert.match(shown, /^id {12}snap-b$/m);
    assert.match(shown, /^env vars {6}TOKEN$/m);
    assert.match(shown, /^size {10}2\.0 KiB in 3 files, 2 dirs, 1 symlinks$/m);
    assert.doesNotMatch(shown, /secret/);
    assert.match(formatSnapshot(snapshot({ parentId: null, metadata: {} }), NOW), /^parent {8}-$/m);
    assert.match(shown, /^memory {8}- \(files only/m);
    assert.match(formatSnapshot(snapshot({ memoryHash: 'd'.repeat(64) }), NOW), /^memory {8}d{64} \(a running machine/m);
  });

  test('a diff: + with size, - , M with what changed, env, summary', () => {
    const diff: SnapshotDiff = {
      from: 'snap-a',
      to: 'snap-b',
      added: [{ path: 'w/new', type: 'dir', size: 0 }, { path: 'w/new/f', type: 'file', size: 2048 }, { path: 'w/l', type: 'symlink', size: 3 }],
      removed: [{ path: 'w/old', type: 'file', size: 5 }],
      modified: [{ path: 'w/a', type: 'file', oldType: 'file', oldSize: 1, size: 2, changes: ['content', 'mode'] }],
      envChanged: ['A', 'B'],
      summary: { added: 3, removed: 1, modified: 1, bytesAdded: 2051, bytesRemoved: 5 },
    };
    assert.equal(
      formatDiff(diff),
      '+ w/new/\n+ w/new/f (2.0 KiB)\n+ w/l (symlink)\n- w/old\nM w/a (content, mode)\nenv: A, B changed\n3 added, 1 removed, 1 modified (+2.0 KiB, -5 B)\n',
    );
  });

  test('a lineage: root at the left, the snapshot marked, descendants by depth', () => {
    const node = (id: string, depth: number, parentId: string | null, metadata: Record<string, string> = {}) => ({ id, contentHash: 'x', parentId, depth, createdAt: ago(5_000), metadata });
    const text = formatLineage(
      {
        snapshot: snapshot({ id: 'snap-mid', createdAt: ago(5_000), metadata: {} }),
        ancestors: [node('snap-parent', -1, 'snap-root'), node('snap-root', -2, null, { k: 'v' })],
        descendants: [node('snap-child', 1, 'snap-mid'), node('snap-grandchild', 2, 'snap-child'), node('snap-child2', 1, 'snap-mid')],
      },
      NOW,
    );
    assert.equal(
      text,
      [
        '  snap-root  5s ago  k=v',
        '    snap-parent  5s ago',
        '*     snap-mid  5s ago',
        '        snap-child  5s ago',
        '          snap-grandchild  5s ago',
        '        snap-child2  5s ago',
        '',
      ].join('\n'),
    );
  });

  test('verify lists each problem; stray files are noted but are not problems', () => {
    const report: VerifyResult = {
      ok: false,
      blobsChecked: 10,
      corruptBlobs: [{ hash: 'h1', actualHash: 'h2', size: 4 }],
      strayFiles: ['tmp/x'],
      snapshotsChecked: 2,
      missingBlobs: [{ snapshotId: 'snap-a', hash: 'h3', path: 'w/f' }, { snapshotId: 'snap-b', hash: 'h4', path: '' }],
    };
    assert.equal(verifyProblems(report).length, 3);
    assert.equal(
      formatVerify(report),
      'checked 10 blobs and 2 snapshots: 3 problems\ncorrupt blob h1 (4 B): its content hashes to h2\nmissing blob h3 of snap-a at w/f\nmissing blob h4 of snap-b (its root tree)\nstray file tmp/x (not a blob; left alone)\n',
    );
    assert.equal(formatVerify({ ...report, ok: true, corruptBlobs: [], missingBlobs: [], strayFiles: [] }), 'checked 10 blobs and 2 snapshots: ok\n');
  });

  test('gc: one line', () => {
    assert.equal(
      formatGc({ blobsScanned: 10, blobsDeleted: 3, freedBytes: 1536, blobsKept: 7, tempFilesRemoved: 1, treesRemoved: 2 }),
      'deleted 3 of 10 blobs (1.5 KiB freed); kept 7; removed 1 temp file and 2 trees\n',
    );
  });
});
