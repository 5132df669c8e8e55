import type { Health as WireHealth, MetricsSummary as WireMetricsSummary } from '@faas/protocol/wire';
import { resolveClientOptions, type FaaSPlatformClientOptions } from './client-options.ts';
import type { StreamExecutionOptions } from './event-stream.ts';
import { ExecutionHandle } from './execution-handle.ts';
import type { ExecuteRequest, ExecutionEvent, ExecutionResult, KillOptions } from './execution-types.ts';
import { ExecutionsApi, type WaitOptions } from './executions-api.ts';
import { HttpTransport } from './http-transport.ts';
import type { HealthStatus, MetricsSummary } from './instance-types.ts';
import type { Instance } from './instance-handle.ts';
import { InstancesClient } from './instances-client.ts';
import type {
  CacheFilter,
  CacheStats,
  Environment,
  InvalidateCacheResult,
  MergeOptions,
  MergeResult,
  ParallelMapFn,
  ParallelMapOptions,
  ParallelMapOutcome,
  RaceOptions,
  WarmResult,
} from './mode-types.ts';
import { ModesApi } from './modes-api.ts';
import { parallelMap, race } from './orchestration.ts';
import { PipelineBuilder, type PipelineStart } from './pipeline.ts';
import type {
  BranchList,
  CreateBranchOptions,
  CreateSnapshotOptions,
  DeleteSnapshotOptions,
  GcOptions,
  GcResult,
  ListSnapshotsOptions,
  RestoreSnapshotOptions,
  Snapshot,
  SnapshotDiff,
  SnapshotLineage,
  SnapshotTarget,
  VerifyResult,
} from './snapshot-types.ts';
import { SnapshotsApi } from './snapshots-api.ts';
import { SshApi } from './ssh-api.ts';
import { PortsApi } from './ports-api.ts';
import type { ExposedPort, ExposePortOptions, PortFetchInit } from './port-types.ts';
import { ReadinessApi } from './readiness-api.ts';
import { Session } from './session-handle.ts';
import type { LongRunningOptions, LongRunningRequest, ResumeSessionOptions, SessionCallbacks, SessionCheckpoint, SessionHeartbeat, SessionInfo } from './session-types.ts';
import { SessionsApi } from './sessions-api.ts';
import type { ReadinessConfig, ReadinessStatus, WaitForReadyOptions } from './readiness-types.ts';
import type { RotateSSHKeyOptions, SshAccessKey, SshAuditEvent, SshAuditOptions, SshKey } from './ssh-types.ts';
import { fromWireHealth, fromWireMetrics } from './wire-mapping.ts';
import { registerTransport } from './client-internals.ts';

/**
 * Options of `executeWithCallbacks`: live output callbacks plus how long to wait.
 *
 * @example
 * await client.executeWithCallbacks({ code: 'make' }, { onStdout: (t) => console.log(t), timeout: 600_000 });
 */
export interface ExecuteWithCallbacksOptions extends WaitOptions {
  /** Called once the execution was accepted, with its id (for logs, or to kill it). */
  onStart?: (executionId: string) => void;
}

/**
 * Options of `executeEphemeral`: everything of an ExecuteRequest except what to run.
 *
 * @example
 * await client.executeEphemeral('print(42)', { language: 'python', timeoutMs: 5000 });
 */
export type ExecuteEphemeralOptions = Omit<ExecuteRequest, 'code' | 'command'>;

/**
 * The cache fields of `executeCached`.
 *
 * @example
 * await client.executeCached({ command: ['./build.sh'] }, { cacheKey: 'inputs-v3', cacheFailures: true });
 */
export interface CacheOptions {
  /** An extra key input, e.g. a version of the data the command reads. */
  cacheKey?: string;
  /** Also cache non-zero exit codes. @default false */
  cacheFailures?: boolean;
}

/**
 * Which long-lived instance `executePersistent` runs in: one named by a stable function id
 * (created on first use), or an existing instance.
 *
 * @example
 * await client.executePersistent({ code: 'cat counter' }, { functionId: 'counter' });
 */
export type PersistentTarget = { functionId: string } | { instanceId: string };

/** A string is shell code, an object a full request. */
function toRequest(codeOrRequest: string | ExecuteRequest): ExecuteRequest {
  return typeof codeOrRequest === 'string' ? { code: codeOrRequest } : codeOrRequest;
}

/**
 * The faas client. Flat methods for one-shot executions and for following or killing any
 * execution, and for snapshots and branches; `instances` for long-lived instances. Every call goes through one transport:
 * bearer auth, client timeouts, FaasError on failure, retries only where repeating is safe.
 *
 * @example
 * import { FaaSPlatformClient } from '@faas/sdk';
 * const client = new FaaSPlatformClient(); // FAAS_URL / FAAS_API_KEY, else http://127.0.0.1:8080
 * const result = await client.execute({ code: 'echo hello' });
 * console.log(result.stdout, result.exitCode);
 */
export class FaaSPlatformClient {
  /** The server base URL in use. */
  readonly platformUrl: string;
  /** Long-lived instances. */
  readonly instances: InstancesClient;
  readonly #api: ExecutionsApi;
  readonly #snapshots: SnapshotsApi;
  readonly #modes: ModesApi;
  readonly #ssh: SshApi;
  readonly #ports: PortsApi;
  readonly #readiness: ReadinessApi;
  readonly #sessions: SessionsApi;

  /**
   * @example
   * new FaaSPlatformClient({ platformUrl: 'http://127.0.0.1:8080', apiKey: process.env.MY_KEY, maxRetries: 5 });
   */
  constructor(options: FaaSPlatformClientOptions = {}) {
    const resolved = resolveClientOptions(options);
    const transport = new HttpTransport({
      baseUrl: resolved.platformUrl,
      apiKey: resolved.apiKey,
      timeoutMs: resolved.timeout,
      maxRetries: resolved.maxRetries,
      fetch: resolved.fetch,
    });
    this.platformUrl = transport.baseUrl;
    registerTransport(this, transport);
    this.#api = new ExecutionsApi(transport);
    this.instances = new InstancesClient(this.#api);
    this.#snapshots = new SnapshotsApi(transport, this.instances);
    this.#modes = new ModesApi(transport);
    this.#ssh = new SshApi(transport);
    this.#ports = new PortsApi(transport, resolved.fetch);
    this.#readiness = new ReadinessApi(transport);
    this.#sessions = new SessionsApi(transport);
    this.instances.attachResources({
      ssh: this.#ssh,
      ports: this.#ports,
      readiness: this.#readiness,
      startSession: (request, options) => this.startLongRunningExecution(request, options),
    });
  }

  /**
   * Runs a one-shot execution in the instance its mode says (a fresh one by default) and
   * resolves with the finished result, including what the mode adds (`mode`, `cached`,
   * `snapshotId`, ...). The request always carries an id (one is generated when you give
   * none), so a dropped connection is retried without running the code twice. A cached hit
   * answers with the stored execution: its original `id`, and `cached: true`.
   *
   * @example
   * const { stdout, exitCode } = await client.execute({ command: ['uname', '-a'], timeoutMs: 5000 });
   * const { snapshotId } = await client.execute({ code: 'make', mode: 'checkpointed' });
   */
  execute(request: ExecuteRequest): Promise<ExecutionResult> {
    return this.#api.execute(request);
  }

  /**
   * Runs once in a fresh instance that is destroyed afterwards (mode `ephemeral`). A string is
   * shell code, with the other fields in `options`; or pass a full request.
   *
   * @example
   * const result = await client.executeEphemeral('echo $((6 * 7))');
   * await client.executeEphemeral({ command: ['python3', '-V'], timeoutMs: 5000 });
   */
  executeEphemeral(codeOrRequest: string | ExecuteRequest, options: ExecuteEphemeralOptions = {}): Promise<ExecutionResult> {
    return this.#api.execute({ ...options, ...toRequest(codeOrRequest), mode: 'ephemeral' });
  }

  /**
   * Runs in mode `cached`: the first run's result is stored, and a later request with exactly
   * the same inputs (code, env vars, stdin, limits, env, `cacheKey`, ...) gets it back with
   * `cached: true` and its original id, without running anything. Only exit code 0 is stored
   * unless `cacheFailures`.
   *
   * @example
   * const first = await client.executeCached({ code: 'sha256sum big.iso' }, { cacheKey: 'iso-v2' });
   * const again = await client.executeCached({ code: 'sha256sum big.iso' }, { cacheKey: 'iso-v2' });
   * again.cached; // true
   */
  executeCached(codeOrRequest: string | ExecuteRequest, options: CacheOptions = {}): Promise<ExecutionResult> {
    const request = toRequest(codeOrRequest);
    return this.#api.execute({ ...request, mode: 'cached', cacheKey: options.cacheKey ?? request.cacheKey, cacheFailures: options.cacheFailures ?? request.cacheFailures });
  }

  /**
   * Runs in mode `checkpointed`: in a fresh instance of `env`, first restored from
   * `checkpoint` when given, and snapshotted after; `snapshotId` of the result is the state it
   * left (pass it as the next checkpoint to build a chain). A request object may carry
   * `env` and `checkpoint` itself; the arguments win when given.
   *
   * @example
   * const one = await client.executeCheckpointed('pip install -r requirements.txt', 'host');
   * const two = await client.executeCheckpointed('pytest', 'host', one.snapshotId!);
   */
  executeCheckpointed(codeOrRequest: string | ExecuteRequest, env?: string, checkpoint?: string): Promise<ExecutionResult> {
    const request = toRequest(codeOrRequest);
    return this.#api.execute({ ...request, mode: 'checkpointed', env: env ?? request.env, checkpoint: checkpoint ?? request.checkpoint });
  }

  /**
   * Runs in mode `branched`: on a copy-on-write copy of a snapshot (id or content hash) or of
   * the snapshot an execution left, which never changes; the result's `snapshotId` is the
   * branch's own state after the run. Any number may run at once from one snapshot.
   *
   * @example
   * const base = await client.executeCheckpointed('git clone https://example.org/repo /workspace/repo');
   * const runs = await Promise.all(['a', 'b'].map((v) => client.executeBranched(`cd repo && ./try ${v}`, base.snapshotId!)));
   */
  executeBranched(codeOrRequest: string | ExecuteRequest, branchFrom: string, env?: string): Promise<ExecutionResult> {
    const request = toRequest(codeOrRequest);
    return this.#api.execute({ ...request, mode: 'branched', branchFrom, env: env ?? request.env });
  }

  /**
   * Runs in mode `persistent`: in the long-lived instance of a function id (created on first
   * use) or in an existing instance. Files and background processes last between requests.
   *
   * @example
   * await client.executePersistent({ code: 'echo 1 >> /workspace/n' }, { functionId: 'counter' });
   * const { stdout } = await client.executePersistent('wc -l < /workspace/n', { functionId: 'counter' });
   */
  executePersistent(codeOrRequest: string | ExecuteRequest, target: PersistentTarget): Promise<ExecutionResult> {
    const request = toRequest(codeOrRequest);
    return this.#api.execute({
      ...request,
      mode: 'persistent',
      functionId: 'functionId' in target ? target.functionId : undefined,
      instanceId: 'instanceId' in target ? target.instanceId : undefined,
    });
  }

  /**
   * Runs `fn(item)`'s request for every item, each in its own instance: with `baseSnapshot`,
   * on its own branch of it (mode `branched`, so each sees the snapshot's state and none sees
   * another's changes), else as sent (ephemeral by default). At most `concurrency` (default 8)
   * run at once; results come in input order. The first error rejects, unless `settle: true`,
   * which resolves with one `{status, value | reason}` per item. A non-zero exit code is a
   * result, not an error.
   *
   * @example
   * const results = await client.parallelMap(['a', 'b', 'c'], (name) => ({ code: `grep -c ${name} data.txt` }), base.snapshotId!);
   * const outcomes = await client.parallelMap(urls, (url) => ({ command: ['curl', '-sf', url] }), { settle: true, concurrency: 4 });
   */
  parallelMap<T>(items: readonly T[], fn: ParallelMapFn<T>, options: ParallelMapOptions & { settle: true }): Promise<ParallelMapOutcome[]>;
  parallelMap<T>(items: readonly T[], fn: ParallelMapFn<T>, baseSnapshot: string, options: ParallelMapOptions & { settle: true }): Promise<ParallelMapOutcome[]>;
  parallelMap<T>(items: readonly T[], fn: ParallelMapFn<T>, baseSnapshotOrOptions?: string | ParallelMapOptions, options?: ParallelMapOptions): Promise<ExecutionResult[]>;
  async parallelMap<T>(
    items: readonly T[],
    fn: ParallelMapFn<T>,
    baseSnapshotOrOptions?: string | ParallelMapOptions,
    options: ParallelMapOptions = {},
  ): Promise<ExecutionResult[] | ParallelMapOutcome[]> {
    const merged: ParallelMapOptions = typeof baseSnapshotOrOptions === 'string' ? { ...options, baseSnapshot: baseSnapshotOrOptions } : { ...baseSnapshotOrOptions, ...options };
    const outcomes = await parallelMap(this.#api, items, fn, merged);
    if (merged.settle) return outcomes;
    return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<ExecutionResult>).value);
  }

  /**
   * Starts every request at once in the background and resolves with the first that
   * succeeds (ends with exit code 0); every other one is killed (SIGKILL) and over before the
   * promise settles, so none is left running. When none succeeds it rejects with a
   * `RaceFailedError` (a FaasError) whose `failures` say what became of each. The result is
   * the record of a background execution: it carries no mode fields.
   *
   * @example
   * const fastest = await client.race([{ code: 'curl -sf mirror-a/file' }, { code: 'curl -sf mirror-b/file' }]);
   */
  race(requests: readonly ExecuteRequest[], options: RaceOptions = {}): Promise<ExecutionResult> {
    return race(this.#api, requests, options);
  }

  /**
   * A chain of runs in an environment, built fluently and executed by `.run()`: state carries
   * over through `.snapshot()`, and `.branch(n)` fans out into n copies (see {@link Pipeline}).
   *
   * @example
   * const { steps } = await client
   *   .from('host')
   *   .exec('echo hi > /workspace/f')   // runs checkpointed
   *   .snapshot()
   *   .branch(3)
   *   .exec((i) => `cat /workspace/f && echo ${i} > /workspace/g`) // 3 branched runs of the snapshot
   *   .run();
   * steps[1].results.length; // 3
   */
  from(env: string): PipelineStart {
    return new PipelineBuilder(this.#api, env);
  }

  /**
   * Drops cached results: `{ all: true }`, or those matching every condition given.
   *
   * @example
   * const { removed } = await client.invalidateCache({ cacheKey: 'iso-v2' });
   */
  invalidateCache(filter: CacheFilter): Promise<InvalidateCacheResult> {
    return this.#modes.invalidateCache(filter);
  }

  /**
   * The result cache's size, bounds and counters.
   *
   * @example
   * const { entries, hits, misses } = await client.cacheStats();
   */
  cacheStats(): Promise<CacheStats> {
    return this.#modes.cacheStats();
  }

  /**
   * Three-way merges two or more branches into a new snapshot. The ids are executions of
   * branched (or checkpointed) runs, or with `snapshots: true` snapshot ids or content hashes.
   * Paths changed differently are conflicts: with the default strategy `fail`, FaasError
   * MERGE_CONFLICT (read them with `mergeConflicts(error)`; nothing is written); `ours`,
   * `theirs` or `{ prefer }` settle them. Inputs with no common ancestor: MERGE_UNRELATED.
   *
   * @example
   * const { snapshot } = await client.mergeBranches([runA.id, runB.id], { strategy: 'theirs' });
   * await client.executeBranched('ls /workspace', snapshot.id);
   */
  mergeBranches(ids: string[], options: MergeOptions = {}): Promise<MergeResult> {
    return this.#modes.merge(ids, options);
  }

  /**
   * The environments: what each contains, its identity and its warm pool.
   *
   * @example
   * const names = (await client.listEnvironments()).map((e) => e.name);
   */
  listEnvironments(): Promise<Environment[]> {
    return this.#modes.listEnvironments();
  }

  /**
   * Sets how many instances of an environment are kept started ahead of demand (0 drains the
   * pool). Resolves at once; the pool fills in the background.
   *
   * @example
   * await client.preWarmEnvironment('host', 4);
   */
  preWarmEnvironment(name: string, count: number): Promise<WarmResult> {
    return this.#modes.warm(name, count);
  }

  /**
   * Runs a one-shot execution in the background, calls the callbacks with its output as it
   * happens (in order, each chunk once), and resolves with the complete result. An execution
   * that could not finish normally rejects with a FaasError carrying the stream's error code.
   *
   * @example
   * const result = await client.executeWithCallbacks(
   *   { code: 'for i in 1 2 3; do echo $i; sleep 1; done' },
   *   { onStdout: (text) => process.stdout.write(text), onStderr: (text) => process.stderr.write(text) },
   * );
   */
  async executeWithCallbacks(request: ExecuteRequest, options: ExecuteWithCallbacksOptions = {}): Promise<ExecutionResult> {
    const { onStart, ...waitOptions } = options;
    const started = await this.#api.startExecute(request);
    onStart?.(started.id);
    return this.#api.wait(started.id, waitOptions);
  }

  /**
   * Starts a one-shot execution in the background and resolves with its handle at once.
   *
   * @example
   * const handle = await client.executeInBackground({ code: 'sleep 30' });
   * await handle.kill();
   */
  async executeInBackground(request: ExecuteRequest): Promise<ExecutionHandle> {
    const started = await this.#api.startExecute(request);
    return new ExecutionHandle(this.#api, started.id, started.instanceId);
  }

  /**
   * The events of an execution from `after` on, until it completes. A dropped connection is
   * reopened from the last event seen (up to `maxRetries` times in a row), so each event
   * arrives exactly once; aborting the signal ends the loop without an error.
   *
   * @example
   * for await (const event of client.streamExecution(id)) {
   *   if (event.type === 'output') process.stdout.write(event.bytes);
   *   if (event.type === 'completed') console.log('exit', event.exitCode);
   * }
   */
  streamExecution(executionId: string, options: StreamExecutionOptions = {}): AsyncIterable<ExecutionEvent> {
    return this.#api.stream(executionId, options);
  }

  /**
   * Reads an execution (status running while it runs).
   *
   * @example
   * const { status, stdout } = await client.getExecution('exec-2b6x0q1f9s8d');
   */
  getExecution(executionId: string): Promise<ExecutionResult> {
    return this.#api.get(executionId);
  }

  /**
   * A handle on an existing execution, to wait for it, kill it or follow its events.
   *
   * @example
   * const result = await client.execution('exec-2b6x0q1f9s8d', 'inst-8q3k2m9x7c1v').wait();
   */
  execution(executionId: string, instanceId = ''): ExecutionHandle {
    return new ExecutionHandle(this.#api, executionId, instanceId);
  }

  /**
   * Ends a running execution and resolves with its final result. Already finished: FaasError
   * EXECUTION_FINISHED.
   *
   * @default { signal: 'SIGKILL' }
   * @example
   * await client.killExecution(id, { signal: 'SIGTERM', graceMs: 3000 });
   */
  killExecution(executionId: string, options: KillOptions = {}): Promise<ExecutionResult> {
    return this.#api.kill(executionId, options);
  }

  /**
   * The server's health, version and runtime capabilities (`GET /health`, no key needed).
   *
   * @example
   * const { version, capabilities } = await client.health();
   */
  async health(): Promise<HealthStatus> {
    return fromWireHealth(await this.#api.transport.request<WireHealth>({ method: 'GET', path: '/health' }));
  }

  /**
   * Counts and measured latency percentiles (`GET /api/v1/metrics`).
   *
   * @example
   * const { latencyMs } = await client.metrics();
   * console.log(latencyMs.executeTotal.p50);
   */
  async metrics(): Promise<MetricsSummary> {
    return fromWireMetrics(await this.#api.transport.request<WireMetricsSummary>({ method: 'GET', path: '/api/v1/metrics' }));
  }

  /**
   * Snapshots an instance's files and env (`POST /api/v1/snapshots`). The target is an
   * instance, or an execution (for the instance it ran in). A plain string starting with
   * `exec-` (every generated execution id) is sent as an execution id, anything else as an
   * instance id; when nothing of the guessed kind exists, the other kind is tried (and when
   * neither exists, the guess's INSTANCE_NOT_FOUND or EXECUTION_NOT_FOUND is thrown). Client-chosen
   * ids can have any form, so pass `{ executionId }` or `{ instanceId }` to say which it is. Not
   * retried on a dropped connection: that could take a second snapshot.
   *
   * @example
   * const snapshot = await client.createSnapshot(instance.id, { step: 'deps installed' });
   * const live = await client.createSnapshot({ executionId: 'my-build' }, undefined, { deterministic: false });
   */
  createSnapshot(target: SnapshotTarget, metadata?: Record<string, string>, options: CreateSnapshotOptions = {}): Promise<Snapshot> {
    return this.#snapshots.create(target, metadata, options);
  }

  /**
   * Reads a snapshot by id (`snap-...`) or content hash (64 lowercase hex). Unknown:
   * SNAPSHOT_NOT_FOUND; neither form: INVALID_HASH.
   *
   * @example
   * const snapshot = await client.getSnapshot('snap-0a1b2c3d4e5f6g7h');
   */
  getSnapshot(ref: string): Promise<Snapshot> {
    return this.#snapshots.get(ref);
  }

  /**
   * Lists snapshots, newest first.
   *
   * @example
   * const children = await client.listSnapshots({ parentId: snapshot.id });
   * const ofInstance = await client.listSnapshots({ instanceId: instance.id, limit: 10 });
   */
  listSnapshots(options: ListSnapshotsOptions = {}): Promise<Snapshot[]> {
    return this.#snapshots.list(options);
  }

  /**
   * Deletes a snapshot and resolves with the ids deleted, descendants first. With children or
   * live instances made from it: SNAPSHOT_IN_USE, unless `cascade` (which deletes those
   * instances and every descendant too).
   *
   * @example
   * const deleted = await client.deleteSnapshot(snapshot.id, { cascade: true });
   */
  deleteSnapshot(ref: string, options: DeleteSnapshotOptions = {}): Promise<string[]> {
    return this.#snapshots.delete(ref, options);
  }

  /**
   * A new running instance with the snapshot's files and env. Its next snapshot has this one
   * as parent.
   *
   * @example
   * const instance = await client.restoreSnapshot(snapshot.id);
   * await instance.exec({ code: 'ls /workspace' });
   */
  restoreSnapshot(ref: string, options: RestoreSnapshotOptions = {}): Promise<Instance> {
    return this.#snapshots.restore(ref, options);
  }

  /**
   * `count` independent copy-on-write instances from one snapshot, all or none.
   *
   * @example
   * const branches = await client.createBranch(snapshot.id, { count: 3 });
   * await Promise.all(branches.map((b, i) => b.exec({ code: `./try-variant ${i}` })));
   */
  createBranch(snapshotId: string, options: CreateBranchOptions = {}): Promise<Instance[]> {
    return this.#snapshots.branch(snapshotId, options);
  }

  /**
   * Instances (not deleted) made from a snapshot, or from any snapshot without one.
   *
   * @example
   * const { branches } = await client.listBranches(snapshot.id);
   */
  listBranches(snapshotId?: string): Promise<BranchList> {
    return this.#snapshots.listBranches(snapshotId);
  }

  /**
   * A snapshot with its ancestors (parent first) and descendants (depth-first).
   *
   * @example
   * const { ancestors } = await client.snapshotLineage(snapshot.id);
   * const root = ancestors.at(-1);
   */
  snapshotLineage(ref: string): Promise<SnapshotLineage> {
    return this.#snapshots.lineage(ref);
  }

  /**
   * Paths added, removed and modified from one snapshot to another, and env vars changed.
   *
   * @example
   * const { added, modified } = await client.diffSnapshots(before.id, after.id);
   */
  diffSnapshots(from: string, to: string): Promise<SnapshotDiff> {
    return this.#snapshots.diff(from, to);
  }

  /**
   * Re-hashes every blob of the store and checks every snapshot is complete. Reads the whole
   * store: on a large one, give the client a longer `timeout`.
   *
   * @example
   * const report = await client.verifySnapshots();
   * if (!report.ok) throw new Error(`${report.corruptBlobs.length} corrupt blobs`);
   */
  verifySnapshots(): Promise<VerifyResult> {
    return this.#snapshots.verify();
  }

  /**
   * Removes blobs and materialized trees no snapshot references (those younger than the grace
   * period stay).
   *
   * @example
   * const { blobsDeleted, freedBytes } = await client.gcSnapshots({ graceMs: 0 });
   */
  gcSnapshots(options: GcOptions = {}): Promise<GcResult> {
    return this.#snapshots.gc(options);
  }

  /**
   * Issues a new SSH key for an instance (`POST .../ssh/rotate`) and resolves with it, its
   * private key (unless you brought your own public key) and the gateway's connection info. The
   * key it replaces stays valid for `overlapMs` (default 0: revoked at once). Not retried on a
   * dropped connection: that could issue a second key.
   *
   * @example
   * const key = await client.rotateSSHKey(instance.id);
   * await writeFile('id_faas', key.privateKey!, { mode: 0o600 });
   * console.log(key.connection?.command); // ssh -i <key file> -p 2222 inst-...@127.0.0.1
   * await client.rotateSSHKey(instance.id, { publicKey: myPub, expiresInMs: 86_400_000 });
   */
  rotateSSHKey(instanceId: string, options: RotateSSHKeyOptions = {}): Promise<SshAccessKey> {
    return this.#ssh.rotate(instanceId, options);
  }

  /**
   * The instance's current (newest live) SSH key with its private key, when the server made it,
   * and connection info. No live key: FaasError SSH_KEY_NOT_FOUND (rotate to issue one).
   *
   * @example
   * const { privateKey, connection } = await client.getSSHKey(instance.id);
   */
  getSSHKey(instanceId: string): Promise<SshAccessKey> {
    return this.#ssh.current(instanceId);
  }

  /**
   * Every SSH key of an instance, newest first, with its state (live, expired, revoked); never
   * with private keys.
   *
   * @example
   * const live = (await client.listSSHKeys(instance.id)).filter((k) => k.state === 'live');
   */
  listSSHKeys(instanceId: string): Promise<SshKey[]> {
    return this.#ssh.list(instanceId);
  }

  /**
   * Revokes an SSH key now; the gateway refuses it from then on. Unknown key: SSH_KEY_NOT_FOUND.
   *
   * @example
   * await client.revokeSSHKey(instance.id, key.id);
   */
  revokeSSHKey(instanceId: string, keyId: string): Promise<SshKey> {
    return this.#ssh.revoke(instanceId, keyId);
  }

  /**
   * The instance's SSH audit trail, oldest first: keys issued, rotated, revoked, expired, and
   * every login attempt with its fingerprint and client address.
   *
   * @example
   * const failures = (await client.sshAudit(instance.id)).filter((e) => e.event === 'login_failed');
   */
  sshAudit(instanceId: string, options: SshAuditOptions = {}): Promise<SshAuditEvent[]> {
    return this.#ssh.audit(instanceId, options);
  }

  /**
   * Checks readiness probes now (docs/readiness.md) and resolves with the status, ready or not.
   * With `successThreshold` n > 1 it runs up to n rounds `periodMs` apart, stopping at the first
   * failing one. A bad probe: FaasError INVALID_PROBE (details name the probe and field).
   *
   * @example
   * const { ready, probes } = await client.checkReadiness(instance.id, { probes: [{ type: 'tcp', port: 5432 }] });
   */
  checkReadiness(instanceId: string, config: ReadinessConfig): Promise<ReadinessStatus> {
    return this.#readiness.check(instanceId, config);
  }

  /**
   * Checks the probes every `periodMs` until they all pass in `successThreshold` consecutive
   * rounds, and resolves with the status. Rejects with `NotReadyError` (code NOT_READY, the final
   * status with every probe's last failure in `readiness`) on `timeout`, or with `stopOnFailure`
   * after `failureThreshold` consecutive failing rounds. `onProbe` sees every round as it ends.
   *
   * @default { timeout: 30000, periodMs: 500, probeTimeoutMs: 1000, successThreshold: 1, failureThreshold: 3 }
   * @example
   * const server = await instance.exec({ code: 'python3 -m http.server 8000', background: true });
   * await client.waitForReady(instance.id, {
   *   probes: [{ type: 'http', port: 8000, path: '/' }],
   *   timeout: 30_000,
   *   periodMs: 100,
   *   onProbe: (round) => console.log(round.round, round.probes.map((p) => p.message)),
   * });
   */
  waitForReady(instanceId: string, options: WaitForReadyOptions): Promise<ReadinessStatus> {
    return this.#readiness.wait(instanceId, options);
  }

  /**
   * Exposes a port of an instance at a public URL (`<server>/p/<instance>/<port>/`) reachable
   * without the API key; with `token`, only with that access token. The token is in this answer
   * only. A port exposed already: FaasError PORT_ALREADY_EXPOSED (un-expose it to change the token).
   *
   * @example
   * const { url, token } = await client.exposePort(instance.id, 8000, { token: true });
   * console.log(`${url}?faas_token=${token}`); // a link for a browser: the token becomes a cookie
   */
  exposePort(instanceId: string, port: number, options: ExposePortOptions = {}): Promise<ExposedPort> {
    return this.#ports.expose(instanceId, port, options);
  }

  /**
   * Un-exposes a port: its public URL answers 404 from then on (the API-key proxy still reaches
   * it). Not exposed: FaasError PORT_NOT_EXPOSED.
   *
   * @example
   * await client.unexposePort(instance.id, 8000);
   */
  unexposePort(instanceId: string, port: number): Promise<void> {
    return this.#ports.unexpose(instanceId, port);
  }

  /**
   * The exposed ports of an instance, by port (without their tokens).
   *
   * @example
   * for (const p of await client.listPorts(instance.id)) console.log(p.port, p.url, p.tokenRequired);
   */
  listPorts(instanceId: string): Promise<ExposedPort[]> {
    return this.#ports.list(instanceId);
  }

  /**
   * `fetch` to a service inside an instance: through the API-key proxy (any port of a running
   * instance), or with `portToken` through the exposed port's public URL. Resolves with the
   * service's Response whatever its status; the server's own failures (INSTANCE_NOT_FOUND,
   * PORT_UNREACHABLE, UPSTREAM_TIMEOUT, PORT_TOKEN_INVALID, ...) throw FaasError. Bodies stream
   * both ways; there is no client timeout (pass a `signal`).
   *
   * @example
   * const res = await client.portFetch(instance.id, 8000, '/health');
   * const items = await (await client.portFetch(instance.id, 8000, '/items?limit=5')).json();
   * await client.portFetch(instance.id, 8000, '/upload', { method: 'POST', body: bytes });
   */
  portFetch(instanceId: string, port: number, path: string, init: PortFetchInit = {}): Promise<Response> {
    return this.#ports.fetch(instanceId, port, path, init);
  }

  /**
   * Starts a long-running session (docs/sessions.md): the command runs for up to
   * `maxDuration` ms, in a fresh instance or `request.instanceId`, and ends early when no
   * heartbeat came for `idleTimeout`. Resolves with a `Session` handle that heartbeats by itself
   * (on a timer that does not keep the process alive) until closed or the session ended; the
   * callbacks in `options` see the output from the start and every session event. Not retried
   * on a dropped connection: that could start a second session.
   *
   * @example
   * const session = await client.startLongRunningExecution(
   *   { command: ['python3', 'train.py'] },
   *   { maxDuration: 8 * 3_600_000, heartbeatInterval: 30_000, idleTimeout: 300_000, checkpointInterval: 600_000, onStdout: (t) => process.stdout.write(t) },
   * );
   * session.onWarning((w) => console.warn(`ending: ${w.reason}`));
   * const final = await session.wait();
   */
  async startLongRunningExecution(request: LongRunningRequest, options: LongRunningOptions): Promise<Session> {
    const { heartbeat, heartbeatRetries, onOutput, onStdout, onStderr, onWarning, onCheckpoint, onStateChange, onError } = options;
    const info = await this.#sessions.start(request, options);
    return new Session(this.#sessions, info, { onOutput, onStdout, onStderr, onWarning, onCheckpoint, onStateChange, onError }, { heartbeat, heartbeatRetries });
  }

  /**
   * A handle on an existing session (by session or execution id), read from the server. It
   * heartbeats by itself unless `heartbeat: false`, like the handle of a start.
   *
   * @example
   * const session = await client.session('sess-0a1b2c3d4e5f6g7h', { onStdout: (t) => process.stdout.write(t) });
   */
  async session(id: string, options: SessionCallbacks & { heartbeat?: boolean; heartbeatRetries?: number } = {}): Promise<Session> {
    const { heartbeat, heartbeatRetries, ...callbacks } = options;
    return new Session(this.#sessions, await this.#sessions.get(id), callbacks, { heartbeat, heartbeatRetries });
  }

  /**
   * One heartbeat for a session (by session or execution id); resolves with its deadline and
   * state. Unknown: SESSION_NOT_FOUND; ended: SESSION_NOT_ACTIVE.
   *
   * @example
   * const { deadline } = await client.sendHeartbeat('sess-0a1b2c3d4e5f6g7h');
   */
  sendHeartbeat(id: string): Promise<SessionHeartbeat> {
    return this.#sessions.heartbeat(id);
  }

  /**
   * Moves a session's deadline `ms` later and resolves with the session. Past the server's cap
   * or `maxExtensions`: SESSION_EXTENSION_REFUSED (`details.reason` says which).
   *
   * @example
   * const { deadline, extendedCount } = await client.extendSession(session.id, 30 * 60_000);
   */
  extendSession(id: string, ms: number): Promise<SessionInfo> {
    return this.#sessions.extend(id, ms);
  }

  /**
   * Reads a session: state, deadline, last heartbeat, checkpoints.
   *
   * @example
   * const { state, deadline } = await client.getSession('sess-0a1b2c3d4e5f6g7h');
   */
  getSession(id: string): Promise<SessionInfo> {
    return this.#sessions.get(id);
  }

  /**
   * Ends a session now (warning, SIGTERM, SIGKILL after the grace period, final checkpoint).
   *
   * @example
   * const { stateReason } = await client.stopSession(session.id); // 'stopped'
   */
  stopSession(id: string): Promise<SessionInfo> {
    return this.#sessions.stop(id);
  }

  /**
   * Starts an ended session again from its latest checkpoint, under the same session id and
   * deadline (a new execution). Env var values are not stored: pass them again if it needs them.
   *
   * @example
   * const { executionId } = await client.resumeSession('sess-0a1b2c3d4e5f6g7h');
   */
  resumeSession(id: string, options: ResumeSessionOptions = {}): Promise<SessionInfo> {
    return this.#sessions.resume(id, options);
  }

  /**
   * Takes a checkpoint of a session's instance now.
   *
   * @example
   * const { id, contentHash } = await client.checkpointSession(session.id);
   */
  checkpointSession(id: string): Promise<SessionCheckpoint> {
    return this.#sessions.checkpoint(id);
  }
}
