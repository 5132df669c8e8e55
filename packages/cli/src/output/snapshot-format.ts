/**
 * Plain-text forms of snapshots, their diffs and lineage, and the store reports, for the
 * `faas snapshot` commands. Pure functions of SDK results, so they are tested without a server.
 */
import type { DiffEntry, GcResult, LineageNode, Snapshot, SnapshotDiff, SnapshotLineage, VerifyResult } from '@faas/sdk';
import { formatAge, formatBytes } from './table.ts';

/** `k=v, k2=v2`, or "" for no labels. @example formatMetadata({ step: 'one' }); // "step=one" */
export function formatMetadata(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([key, value]) => `${key}=${value}`)
    .join(', ');
}

/** One `faas snapshot ls` row: id, parent, instance, size, files, age, labels. */
export function snapshotRow(snapshot: Snapshot, now = new Date()): string[] {
  return [
    snapshot.id,
    snapshot.parentId ?? '-',
    snapshot.sourceInstanceId ?? '-',
    formatBytes(snapshot.size),
    String(snapshot.fileCount),
    formatAge(snapshot.createdAt, now),
    formatMetadata(snapshot.metadata),
  ];
}

/** Headers of the `faas snapshot ls` table. */
export const SNAPSHOT_TABLE_HEADERS = ['ID', 'PARENT', 'INSTANCE', 'SIZE', 'FILES', 'CREATED', 'METADATA'];

/**
 * `faas snapshot show`: one "field  value" line each. Env var values are left out (they may be
 * secrets); `--json` has them.
 *
 * @example
 * formatSnapshot(snapshot); // "id             snap-...\ncontent hash   9f2c...\n..."
 */
export function formatSnapshot(snapshot: Snapshot, now = new Date()): string {
  const lines: Array<[string, string]> = [
    ['id', snapshot.id],
    ['content hash', snapshot.contentHash],
    ['parent', snapshot.parentId ?? '-'],
    ...(snapshot.mergeParentIds.length > 0 ? [['merged from', snapshot.mergeParentIds.join(', ')] as [string, string]] : []),
    ['instance', snapshot.sourceInstanceId ?? '-'],
    ['execution', snapshot.sourceExecutionId ?? '-'],
    ['env', snapshot.env],
    ['env vars', Object.keys(snapshot.envVars).join(', ') || '-'],
    ['size', `${formatBytes(snapshot.size)} in ${snapshot.fileCount} files, ${snapshot.dirCount} dirs, ${snapshot.symlinkCount} symlinks`],
    ['stored', `${formatBytes(snapshot.storedBytes)} new in the blob store`],
    ['capture', `${snapshot.deterministic ? 'frozen' : 'live'}, ${snapshot.durationMs} ms, read ${snapshot.filesRead} of ${snapshot.fileCount} files`],
    ['memory', snapshot.memoryHash === null ? '- (files only: a restore starts its processes afresh)' : `${snapshot.memoryHash} (a running machine: restores continue its processes)`],
    ['created', `${snapshot.createdAt.toISOString()} (${formatAge(snapshot.createdAt, now)})`],
    ['metadata', formatMetadata(snapshot.metadata) || '-'],
  ];
  const width = Math.max(...lines.map(([field]) => field.length));
  return lines.map(([field, value]) => `${field.padEnd(width)}  ${value}\n`).join('');
}

function describeEntry(entry: DiffEntry): string {
  if (entry.type === 'dir') return `${entry.path}/`;
  if (entry.type === 'symlink') return `${entry.path} (symlink)`;
  return `${entry.path} (${formatBytes(entry.size)})`;
}

/**
 * `faas snapshot diff`: `+ path (size)`, `- path`, `M path (changes)`, the env vars that
 * changed, then a summary line.
 *
 * @example
 * formatDiff(diff);
 * // "+ b.txt (4 B)\n- old/\nM a.txt (content)\n1 added, 1 removed, 1 modified (+4 B, -0 B)\n"
 */
export function formatDiff(diff: SnapshotDiff): string {
  const lines = [
    ...diff.added.map((entry) => `+ ${describeEntry(entry)}`),
    ...diff.removed.map((entry) => `- ${entry.path}${entry.type === 'dir' ? '/' : ''}`),
    ...diff.modified.map((change) => `M ${change.path} (${change.changes.join(', ')})`),
  ];
  if (diff.envChanged.length > 0) lines.push(`env: ${diff.envChanged.join(', ')} changed`);
  const { summary } = diff;
  lines.push(`${summary.added} added, ${summary.removed} removed, ${summary.modified} modified (+${formatBytes(summary.bytesAdded)}, -${formatBytes(summary.bytesRemoved)})`);
  return lines.map((line) => `${line}\n`).join('');
}

/**
 * `faas snapshot lineage`: the ancestors from the root down, the snapshot asked about marked
 * with `*`, its descendants below it; each generation indented two more spaces.
 *
 * @example
 * formatLineage(lineage);
 * // "  snap-root  2h ago\n*   snap-this  1h ago  step=two\n      snap-child  5m ago\n"
 */
export function formatLineage(lineage: SnapshotLineage, now = new Date()): string {
  const line = (node: Pick<LineageNode, 'id' | 'createdAt' | 'metadata'>, level: number, marked: boolean): string => {
    const labels = formatMetadata(node.metadata);
    return `${marked ? '*' : ' '} ${'  '.repeat(level)}${node.id}  ${formatAge(node.createdAt, now)}${labels ? `  ${labels}` : ''}\n`;
  };
  const top = lineage.ancestors.length;
  return [
    ...[...lineage.ancestors].reverse().map((node, index) => line(node, index, false)),
    line(lineage.snapshot, top, true),
    ...lineage.descendants.map((node) => line(node, top + node.depth, false)),
  ].join('');
}

/** The problems a verify report lists, one line each (empty when there are none). */
export function verifyProblems(report: VerifyResult): string[] {
  return [
    ...report.corruptBlobs.map((blob) => `corrupt blob ${blob.hash} (${formatBytes(blob.size)}): its content hashes to ${blob.actualHash}`),
    ...report.missingBlobs.map((blob) => `missing blob ${blob.hash} of ${blob.snapshotId}${blob.path ? ` at ${blob.path}` : ' (its root tree)'}`),
  ];
}

/**
 * `faas snapshot verify`: what was checked, then each problem, then stray files (not blobs,
 * left alone).
 *
 * @example
 * formatVerify(report); // "checked 120 blobs and 4 snapshots: ok\n"
 */
export function formatVerify(report: VerifyResult): string {
  const problems = verifyProblems(report);
  const status = report.ok ? 'ok' : `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
  const lines = [`checked ${report.blobsChecked} blobs and ${report.snapshotsChecked} snapshots: ${status}`, ...problems, ...report.strayFiles.map((file) => `stray file ${file} (not a blob; left alone)`)];
  return lines.map((line) => `${line}\n`).join('');
}

/**
 * `faas snapshot gc`: one summary line.
 *
 * @example
 * formatGc(result); // "deleted 3 of 10 blobs (1.5 KiB freed); kept 7; removed 0 temp files and 1 tree\n"
 */
export function formatGc(result: GcResult): string {
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `deleted ${result.blobsDeleted} of ${plural(result.blobsScanned, 'blob')} (${formatBytes(result.freedBytes)} freed); kept ${result.blobsKept}; removed ${plural(result.tempFilesRemoved, 'temp file')} and ${plural(result.treesRemoved, 'tree')}\n`;
}
