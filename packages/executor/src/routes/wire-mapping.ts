import type { Execution, ExecStarted, Instance } from '@faas/protocol';
import type { ExecutionView } from '../services/execution-service.ts';
import type { InstanceRecord } from '../store/types.ts';

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
  };
}

export function executionToWire({ record: r, stdout, stderr }: ExecutionView): Execution {
  return {
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
