/**
 * The one place where the SDK's camelCase shapes meet the snake_case wire. Every request body
 * is built here and every response body is read here, so a renamed wire field is one edit.
 *
 * Request builders copy only the fields the caller set: the server rejects unknown fields, and
 * `undefined` members vanish in JSON anyway, so nothing else is sent.
 */
import type {
  CacheStats as WireCacheStats,
  CreateBranchesRequest as WireCreateBranchesRequest,
  CreateInstanceRequest as WireCreateInstanceRequest,
  ExecRequest as WireExecRequest,
  ExecStarted as WireExecStarted,
  ExecuteRequest as WireExecuteRequest,
  Execution as WireExecution,
  ExecutionEvent as WireExecutionEvent,
  GcResult as WireGcResult,
  Health as WireHealth,
  Environment as WireEnvironment,
  InvalidateCacheRequest as WireInvalidateCacheRequest,
  Instance as WireInstance,
  KillRequest as WireKillRequest,
  Limits as WireLimits,
  Lineage as WireLineage,
  MergeConflict as WireMergeConflict,
  MergeRequest as WireMergeRequest,
  MergeResult as WireMergeResult,
  MetricsSummary as WireMetricsSummary,
  RestoreSnapshotRequest as WireRestoreSnapshotRequest,
  Snapshot as WireSnapshot,
  SnapshotDiff as WireSnapshotDiff,
  VerifyResult as WireVerifyResult,
} from '@faas/protocol/wire';
import type { ExecRequest, ExecuteRequest, ExecutionEvent, ExecutionResult, ExecutionStarted, KillOptions } from './execution-types.ts';
import type { CreateInstanceOptions, HealthStatus, InstanceInfo, InstanceLimits, MetricsSummary } from './instance-types.ts';
import type { CacheFilter, CacheStats, Environment, MergeConflict, MergeOptions, MergeResult, WarmResult } from './mode-types.ts';
import type { CreateBranchOptions, GcResult, LineageNode, RestoreSnapshotOptions, Snapshot, SnapshotDiff, SnapshotLineage, VerifyResult } from './snapshot-types.ts';

/** Drops undefined members so a body holds exactly what the caller set. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function toDate(value: string): Date {
  return new Date(value);
}

function toDateOrNull(value: string | null | undefined): Date | null {
  return value === null || value === undefined ? null : new Date(value);
}

/** Body of `POST /api/v1/instances/:id/exec`. */
export function toWireExecRequest(request: ExecRequest, background?: boolean): WireExecRequest {
  return compact({
    id: request.id,
    code: request.code,
    command: request.command,
    language: request.language,
    env_vars: request.envVars,
    working_dir: request.workingDir,
    stdin: request.stdin,
    timeout_ms: request.timeoutMs,
    background,
  });
}

/** Body of `POST /api/v1/execute`. */
export function toWireExecuteRequest(request: ExecuteRequest, background?: boolean): WireExecuteRequest {
  return compact({
    ...toWireExecRequest(request, background),
    mode: request.mode,
    cache_key: request.cacheKey,
    cache_failures: request.cacheFailures,
    checkpoint: request.checkpoint,
    branch_from: request.branchFrom,
    instance_id: request.instanceId,
    function_id: request.functionId,
    env: request.env,
    memory_mb: request.memoryMb,
    cpu_cores: request.cpuCores,
    pids_max: request.pidsMax,
  });
}

function toWireLimits(limits: Partial<InstanceLimits> | undefined): WireLimits | undefined {
  return limits ? compact({ memory_mb: limits.memoryMb, cpu_cores: limits.cpuCores, pids_max: limits.pidsMax }) : undefined;
}

/** Body of `POST /api/v1/instances`. */
export function toWireCreateInstance(options: CreateInstanceOptions): WireCreateInstanceRequest {
  return compact({ id: options.id, env: options.env, env_vars: options.envVars, limits: toWireLimits(options.limits), metadata: options.metadata });
}

/** Body of `POST /api/v1/snapshots/:ref/restore`. */
export function toWireRestoreSnapshot(options: RestoreSnapshotOptions): WireRestoreSnapshotRequest {
  return compact({ id: options.id, limits: toWireLimits(options.limits), metadata: options.metadata });
}

/** Body of `POST /api/v1/branches`. */
export function toWireCreateBranches(snapshotId: string, options: CreateBranchOptions): WireCreateBranchesRequest {
  return compact({ snapshot_id: snapshotId, count: options.count, limits: toWireLimits(options.limits), metadata: options.metadata });
}

/** Body of `POST /api/v1/executions/:id/kill`. */
export function toWireKill(options: KillOptions): WireKillRequest {
  return compact({ signal: options.signal, grace_ms: options.graceMs });
}

/** Body of `POST /api/v1/cache/invalidate`. */
export function toWireInvalidateCache(filter: CacheFilter): WireInvalidateCacheRequest {
  return compact({ all: filter.all, cache_key: filter.cacheKey, env: filter.env, older_than_ms: filter.olderThanMs });
}

/** Body of `POST /api/v1/branches/merge`: the ids as branch (execution) ids, or as snapshots. */
export function toWireMerge(ids: string[], options: MergeOptions): WireMergeRequest {
  return compact({
    branch_ids: options.snapshots ? undefined : ids,
    snapshot_ids: options.snapshots ? ids : undefined,
    strategy: options.strategy,
    metadata: options.metadata,
  });
}

export function fromWireExecution(wire: WireExecution): ExecutionResult {
  return {
    id: wire.id,
    instanceId: wire.instance_id,
    status: wire.status,
    command: wire.command,
    workingDir: wire.working_dir,
    exitCode: wire.exit_code,
    exitReason: wire.exit_reason,
    signal: wire.signal,
    stdout: wire.stdout,
    stderr: wire.stderr,
    stdoutBytes: wire.stdout_bytes,
    stderrBytes: wire.stderr_bytes,
    outputTruncated: wire.output_truncated,
    progress: wire.progress,
    lastSeq: wire.last_seq,
    startedAt: toDate(wire.started_at),
    finishedAt: toDateOrNull(wire.finished_at),
    durationMs: wire.duration_ms,
    // The mode fields only when the server sent them, so older answers map as before.
    ...compact({
      mode: wire.mode,
      cached: wire.cached,
      cacheLatencyMs: wire.cache_latency_ms,
      snapshotId: wire.snapshot_id,
      contentHash: wire.content_hash,
      baseSnapshotId: wire.base_snapshot_id,
    }),
  };
}

export function fromWireExecStarted(wire: WireExecStarted): ExecutionStarted {
  return { id: wire.id, instanceId: wire.instance_id, status: wire.status, eventsUrl: wire.events_url, streamUrl: wire.stream_url };
}

export function fromWireInstance(wire: WireInstance): InstanceInfo {
  return {
    id: wire.id,
    state: wire.state,
    stateReason: wire.state_reason,
    env: wire.env,
    runtime: wire.runtime,
    envVars: wire.env_vars,
    limits: { memoryMb: wire.limits.memory_mb, cpuCores: wire.limits.cpu_cores, pidsMax: wire.limits.pids_max },
    metadata: wire.metadata,
    createdAt: toDate(wire.created_at),
    startedAt: toDateOrNull(wire.started_at),
    stoppedAt: toDateOrNull(wire.stopped_at),
    startDurationMs: wire.start_duration_ms,
    // Absent from servers older than snapshots.
    sourceSnapshotId: wire.source_snapshot_id ?? null,
  };
}

export function fromWireSnapshot(wire: WireSnapshot): Snapshot {
  return {
    id: wire.id,
    contentHash: wire.content_hash,
    parentId: wire.parent_id,
    parentHash: wire.parent_hash,
    fsHash: wire.fs_hash,
    envHash: wire.env_hash,
    memoryHash: wire.memory_hash,
    size: wire.size,
    storedBytes: wire.stored_bytes,
    fileCount: wire.file_count,
    filesRead: wire.files_read,
    dirCount: wire.dir_count,
    symlinkCount: wire.symlink_count,
    createdAt: toDate(wire.created_at),
    metadata: wire.metadata,
    env: wire.env,
    envVars: wire.env_vars,
    sourceInstanceId: wire.source_instance_id,
    sourceExecutionId: wire.source_execution_id,
    deterministic: wire.deterministic,
    durationMs: wire.duration_ms,
    // Absent from servers older than merges.
    mergeParentIds: wire.merge_parent_ids ?? [],
  };
}

export function fromWireLineage(wire: WireLineage): SnapshotLineage {
  const node = (n: WireLineage['ancestors'][number]): LineageNode => ({
    id: n.id,
    contentHash: n.content_hash,
    parentId: n.parent_id,
    depth: n.depth,
    createdAt: toDate(n.created_at),
    metadata: n.metadata,
  });
  return { snapshot: fromWireSnapshot(wire.snapshot), ancestors: wire.ancestors.map(node), descendants: wire.descendants.map(node) };
}

export function fromWireSnapshotDiff(wire: WireSnapshotDiff): SnapshotDiff {
  const entry = (e: WireSnapshotDiff['added'][number]) => compact({ path: e.path, pathBase64: e.path_base64, type: e.type, size: e.size });
  return {
    from: wire.from,
    to: wire.to,
    added: wire.added.map(entry),
    removed: wire.removed.map(entry),
    modified: wire.modified.map((m) =>
      compact({ path: m.path, pathBase64: m.path_base64, type: m.type, oldType: m.old_type, oldSize: m.old_size, size: m.size, changes: m.changes }),
    ),
    envChanged: wire.env_changed,
    summary: {
      added: wire.summary.added,
      removed: wire.summary.removed,
      modified: wire.summary.modified,
      bytesAdded: wire.summary.bytes_added,
      bytesRemoved: wire.summary.bytes_removed,
    },
  };
}

export function fromWireVerify(wire: WireVerifyResult): VerifyResult {
  return {
    ok: wire.ok,
    blobsChecked: wire.blobs_checked,
    corruptBlobs: wire.corrupt_blobs.map((c) => ({ hash: c.hash, actualHash: c.actual_hash, size: c.size })),
    strayFiles: wire.stray_files,
    snapshotsChecked: wire.snapshots_checked,
    missingBlobs: wire.missing_blobs.map((m) => ({ snapshotId: m.snapshot_id, hash: m.hash, path: m.path })),
  };
}

export function fromWireGc(wire: WireGcResult): GcResult {
  return {
    blobsScanned: wire.blobs_scanned,
    blobsDeleted: wire.blobs_deleted,
    freedBytes: wire.freed_bytes,
    blobsKept: wire.blobs_kept,
    tempFilesRemoved: wire.temp_files_removed,
    treesRemoved: wire.trees_removed,
  };
}

export function fromWireCacheStats(wire: WireCacheStats): CacheStats {
  return {
    entries: wire.entries,
    bytes: wire.bytes,
    maxBytes: wire.max_bytes,
    ttlMs: wire.ttl_ms,
    hits: wire.hits,
    misses: wire.misses,
    evictions: wire.evictions,
  };
}

export function fromWireMergeConflict(wire: WireMergeConflict): MergeConflict {
  return compact({
    path: wire.path,
    pathBase64: wire.path_base64,
    kind: wire.kind,
    sides: wire.sides.map((side) => ({ snapshotId: side.snapshot_id, state: side.state })),
    winner: wire.winner,
  });
}

export function fromWireMergeResult(wire: WireMergeResult): MergeResult {
  return {
    snapshot: fromWireSnapshot(wire.snapshot),
    baseSnapshotId: wire.base_snapshot_id,
    mergedFrom: wire.merged_from,
    resolvedConflicts: wire.resolved_conflicts.map(fromWireMergeConflict),
  };
}

export function fromWireEnvironment(wire: WireEnvironment): Environment {
  return {
    name: wire.name,
    runtime: wire.runtime,
    description: wire.description,
    contains: wire.contains.map((tool) => ({ name: tool.name, version: tool.version, path: tool.path })),
    identity: wire.identity,
    pool: { target: wire.pool.target, ready: wire.pool.ready, hits: wire.pool.hits, misses: wire.pool.misses },
  };
}

export function fromWireWarm(wire: { env: string; target: number; ready: number; updated_at: string }): WarmResult {
  return { env: wire.env, target: wire.target, ready: wire.ready, updatedAt: toDate(wire.updated_at) };
}

/** base64 to bytes with `atob`, which browsers and Node 16+ both have (no Buffer). */
function decodeBase64(data: string): Uint8Array {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const utf8Encoder = new TextEncoder();

export function fromWireEvent(wire: WireExecutionEvent): ExecutionEvent {
  const base = { seq: wire.seq, time: toDate(wire.time) };
  switch (wire.type) {
    case 'output': {
      if (wire.encoding === 'base64') {
        const bytes = decodeBase64(wire.data);
        // Not valid UTF-8 by construction: `data` is the lossy reading, `bytes` the truth.
        return { type: 'output', ...base, stream: wire.stream, data: new TextDecoder('utf-8').decode(bytes), bytes };
      }
      return { type: 'output', ...base, stream: wire.stream, data: wire.data, bytes: utf8Encoder.encode(wire.data) };
    }
    case 'progress':
      return wire.message === undefined
        ? { type: 'progress', ...base, progress: wire.progress }
        : { type: 'progress', ...base, progress: wire.progress, message: wire.message };
    case 'completed':
      return {
        type: 'completed',
        ...base,
        exitCode: wire.exit_code,
        exitReason: wire.exit_reason,
        signal: wire.signal,
        durationMs: wire.duration_ms,
        outputTruncated: wire.output_truncated,
      };
    case 'error':
      return { type: 'error', ...base, code: wire.code, message: wire.message };
  }
}

export function fromWireHealth(wire: WireHealth): HealthStatus {
  return {
    status: wire.status,
    version: wire.version,
    runtime: wire.runtime,
    capabilities: {
      memorySnapshots: wire.capabilities.memory_snapshots,
      network: wire.capabilities.network,
      pty: wire.capabilities.pty,
      limits: wire.capabilities.limits,
    },
    uptimeMs: wire.uptime_ms,
  };
}

export function fromWireMetrics(wire: WireMetricsSummary): MetricsSummary {
  return {
    uptimeMs: wire.uptime_ms,
    instances: { running: wire.instances.running, createdTotal: wire.instances.created_total, failedTotal: wire.instances.failed_total },
    executions: {
      running: wire.executions.running,
      startedTotal: wire.executions.started_total,
      byExitReason: wire.executions.by_exit_reason,
    },
    latencyMs: {
      instanceStart: wire.latency_ms.instance_start,
      execStart: wire.latency_ms.exec_start,
      executeTotal: wire.latency_ms.execute_total,
    },
  };
}
