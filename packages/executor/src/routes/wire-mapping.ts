import type { Execution, ExecStarted, Instance, Lineage as WireLineage, LineageNode, Snapshot, SnapshotDiff } from '@faas/protocol';
import type { Lineage, SnapshotDiffResult } from '../services/snapshot-service.ts';
import type { DiffPath } from '../snapshots/tree-diff.ts';
import { wirePath } from '../snapshots/wire-path.ts';
import type { InstanceRecord, SnapshotRecord } from '../store/types.ts';
import type { ExecutionView } from '../services/execution-service.ts';

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

export function instanceToWire(r: InstanceRecord): Instance {
  return {
    id: r.id,
    state: r.state,
    state_reason: r.stateReason,
    env: r.env,
    runtime: r.runtime,
    env_vars: r.envVars,
    limits: { memory_mb: r.limits.memoryMb, cpu_cores: r.limits.cpuCores, pids_max: r.limits.pidsMax },
    metadata: r.metadata,
    created_at: r.createdAt.toISOString(),
    started_at: iso(r.startedAt),
    stopped_at: iso(r.stoppedAt),
    start_duration_ms: r.startDurationMs,
    source_snapshot_id: r.sourceSnapshotId,
  };
}

export function executionToWire({ record: r, stdout, stderr }: ExecutionView): Execution {
  return {
    mode: r.mode,
    id: r.id,
    instance_id: r.instanceId,
    status: r.status,
    command: r.command,
    working_dir: r.workingDir,
    exit_code: r.exitCode,
    exit_reason: r.exitReason,
    signal: r.signal,
    stdout,
    stderr,
    stdout_bytes: r.stdoutBytes,
    stderr_bytes: r.stderrBytes,
    output_truncated: r.outputTruncated,
    progress: r.progress,
    last_seq: r.lastSeq,
    started_at: r.startedAt.toISOString(),
    finished_at: iso(r.finishedAt),
    duration_ms: r.durationMs,
  };
}

export function startedToWire(id: string, instanceId: string): ExecStarted {
  return {
    id,
    instance_id: instanceId,
    status: 'running',
    events_url: `/api/v1/executions/${id}/events`,
    stream_url: `/api/v1/stream/${id}`,
  };
}

export function snapshotToWire(r: SnapshotRecord): Snapshot {
  return {
    id: r.id,
    content_hash: r.contentHash,
    parent_id: r.parentId,
    parent_hash: r.parentHash,
    fs_hash: r.fsHash,
    env_hash: r.envHash,
    memory_hash: r.memoryHash,
    size: r.size,
    stored_bytes: r.storedBytes,
    file_count: r.fileCount,
    files_read: r.filesRead,
    dir_count: r.dirCount,
    symlink_count: r.symlinkCount,
    created_at: r.createdAt.toISOString(),
    metadata: r.metadata,
    env: r.env,
    env_vars: r.envVars,
    source_instance_id: r.sourceInstanceId,
    source_execution_id: r.sourceExecutionId,
    deterministic: r.deterministic,
    merge_parent_ids: r.mergeParentIds,
    duration_ms: r.durationMs,
  };
}

function lineageNode({ record: r, depth }: { record: SnapshotRecord; depth: number }): LineageNode {
  return { id: r.id, content_hash: r.contentHash, parent_id: r.parentId, depth, created_at: r.createdAt.toISOString(), metadata: r.metadata };
}

export function lineageToWire(l: Lineage): WireLineage {
  return { snapshot: snapshotToWire(l.snapshot), ancestors: l.ancestors.map(lineageNode), descendants: l.descendants.map(lineageNode) };
}


export function diffToWire(d: SnapshotDiffResult): SnapshotDiff {
  const entry = (e: DiffPath) => ({ ...wirePath(e.path), type: e.type, size: e.size });
  const sum = (list: DiffPath[]): number => list.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  return {
    from: d.from.id,
    to: d.to.id,
    added: d.added.map(entry),
    removed: d.removed.map(entry),
    modified: d.modified.map((m) => ({ ...wirePath(m.path), type: m.type, old_type: m.oldType, old_size: m.oldSize, size: m.size, changes: m.changes })),
    env_changed: d.envChanged,
    summary: { added: d.added.length, removed: d.removed.length, modified: d.modified.length, bytes_added: sum(d.added), bytes_removed: sum(d.removed) },
  };
}
