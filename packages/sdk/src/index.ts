/**
 * @faas/sdk: the TypeScript client of a faas server. Works in Node 20+ and in browsers (fetch,
 * AbortController, ReadableStream, TextDecoder only).
 *
 * @example
 * import { FaaSPlatformClient, isFaasError } from '@faas/sdk';
 * const client = new FaaSPlatformClient();
 * try {
 *   const result = await client.execute({ code: 'echo hi' });
 * } catch (error) {
 *   if (isFaasError(error) && error.code === 'CAPACITY_EXHAUSTED') { ... }
 * }
 */
export {
  FaaSPlatformClient,
  type CacheOptions,
  type ExecuteEphemeralOptions,
  type ExecuteWithCallbacksOptions,
  type PersistentTarget,
} from './faas-platform-client.ts';
export { mergeConflicts } from './modes-api.ts';
export { DEFAULT_PARALLEL_MAP_CONCURRENCY, RaceFailedError, succeeded } from './orchestration.ts';
export type { BranchedPipeline, Pipeline, PipelineCommand, PipelineResult, PipelineStart, PipelineStep, PipelineStepInput, PipelineStepOptions } from './pipeline.ts';
export type {
  CacheFilter,
  CacheStats,
  Environment,
  InvalidateCacheResult,
  MergeConflict,
  MergeOptions,
  MergeResult,
  MergeStrategy,
  ParallelMapFn,
  ParallelMapOptions,
  ParallelMapOutcome,
  PoolStats,
  RaceOptions,
  WarmResult,
} from './mode-types.ts';
export { DEFAULT_PLATFORM_URL, resolveClientOptions, type FaaSPlatformClientOptions, type ResolvedClientOptions } from './client-options.ts';
export { InstancesClient } from './instances-client.ts';
export { Instance } from './instance-handle.ts';
export { InstancePorts, InstanceReadiness, InstanceSessions, InstanceSsh } from './instance-subclients.ts';
export { ExecutionHandle } from './execution-handle.ts';
export { DEFAULT_HEARTBEAT_RETRIES, Session } from './session-handle.ts';
export { FINAL_SESSION_STATES, isFinalSessionState } from './session-types.ts';
export type {
  LongRunningOptions,
  LongRunningRequest,
  ResumeSessionOptions,
  SessionCallbacks,
  SessionCheckpoint,
  SessionCheckpointEvent,
  SessionEvent,
  SessionHeartbeat,
  SessionInfo,
  SessionState,
  SessionStateEvent,
  SessionStateReason,
  SessionWaitOptions,
  SessionWarningEvent,
} from './session-types.ts';
export type { WaitOptions } from './executions-api.ts';
export type { StreamExecutionOptions } from './event-stream.ts';
export { generateExecutionId } from './execution-id.ts';
export { DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS } from './http-transport.ts';
export { parseSseStream, SseParser, type SseMessage } from './sse-parser.ts';
export type {
  CompletedEvent,
  ErrorEvent,
  ExecRequest,
  ExecuteRequest,
  ExecutionEvent,
  ExecutionMode,
  ExecutionResult,
  ExecutionStarted,
  ExecutionStatus,
  ExecutionStreamEvent,
  ExitReason,
  KillOptions,
  KillSignal,
  Language,
  OutputEvent,
  ProgressEvent,
} from './execution-types.ts';
export type {
  CreateInstanceOptions,
  HealthStatus,
  InstanceInfo,
  InstanceLimits,
  InstanceState,
  ListInstancesOptions,
  MetricsSummary,
  Percentiles,
  RuntimeCapabilities,
} from './instance-types.ts';
export type {
  BranchList,
  CreateBranchOptions,
  CreateSnapshotOptions,
  DeleteSnapshotOptions,
  DiffChange,
  DiffEntry,
  EntryType,
  GcOptions,
  GcResult,
  LineageNode,
  ListSnapshotsOptions,
  RestoreSnapshotOptions,
  Snapshot,
  SnapshotDiff,
  SnapshotLineage,
  SnapshotTarget,
  VerifyResult,
} from './snapshot-types.ts';
export type { ExposedPort, ExposePortOptions, PortFetchInit } from './port-types.ts';
export type { RotateSSHKeyOptions, SshAccessKey, SshAuditEvent, SshAuditEventName, SshAuditOptions, SshConnection, SshKey, SshKeyAlgorithm, SshKeyState } from './ssh-types.ts';
export { NotReadyError } from './readiness-api.ts';
export type { CommandProbe, FileProbe, HttpProbe, LogProbe, ProbeResult, ReadinessConfig, ReadinessProbe, ReadinessRound, ReadinessStatus, TcpProbe, WaitForReadyOptions } from './readiness-types.ts';
export { ErrorCode, FaasError, isFaasError } from '@faas/protocol/errors';
