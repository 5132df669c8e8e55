import { FaasError, type ExecModeName, type Execution, type ExecuteRequest } from '@faas/protocol';
import type { Logger } from 'pino';
import type { InstanceRecord, SnapshotRecord, Store } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';
import { newId } from '../util/ids.ts';
import { Mutex } from '../util/mutex.ts';
import { requestHash, type ExecutionService, type ExecutionView } from './execution-service.ts';
import type { InstanceService } from './instance-service.ts';
import type { Metrics } from './metrics.ts';
import { ResultCache } from './result-cache.ts';
// The cache keeps results in their wire form, so a hit is answered without any mapping.
import { executionToWire } from '../routes/wire-mapping.ts';
import type { SnapshotService } from './snapshot-service.ts';

export interface ExecuteServiceDeps {
  store: Store;
  instances: InstanceService;
  executions: ExecutionService;
  snapshots: SnapshotService;
  cache: ResultCache;
  /** What an environment provides, as a hash (part of every cache key). */
  environmentIdentity: (env: string) => string;
  runtimeName: string;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

/** What a mode adds to the execution's result. */
export interface ModeOutcome {
  mode: ExecModeName;
  cached?: boolean;
  /** checkpointed, branched: the snapshot the run left (null when taking it failed). */
  snapshot?: SnapshotRecord | null;
  /** checkpointed, branched: the snapshot the run started from. */
  base?: SnapshotRecord | null;
}

export interface ExecuteResult {
  view: ExecutionView;
  outcome: ModeOutcome;
}

/** A run started, or a stored result answered at once (cached mode). */
export type ExecuteStart =
  | { kind: 'run'; id: string; instanceId: string; finished: Promise<ExecuteResult> }
  | { kind: 'cached'; execution: Execution; latencyMs: number };

const MODE_FIELDS: Record<string, ExecModeName> = {
  cache_key: 'cached',
  cache_failures: 'cached',
  checkpoint: 'checkpointed',
  branch_from: 'branched',
  instance_id: 'persistent',
  function_id: 'persistent',
};

/**
 * `POST /execute` in its five modes (docs/execution-modes.md): ephemeral (a fresh instance,
 * destroyed after), cached (a stored result when the same run was done before), checkpointed
 * (the state the run leaves is snapshotted; optionally it starts from a snapshot), branched (a
 * copy-on-write copy of a snapshot, snapshotted after), persistent (a long-lived instance named
 * by id or function id). With a client-chosen id a call is idempotent.
 */
export class ExecuteService {
  private readonly pendingDeletes = new Set<Promise<unknown>>();
  private readonly inFlight = new Map<string, Promise<{ instanceId: string; outcome: Promise<ModeOutcome> }>>();
  /** Identical cached-mode misses run once; the others wait and take the stored result. */
  private readonly cacheFills = new Map<string, Promise<unknown>>();
  private readonly functionLocks = new Map<string, Mutex>();

  constructor(private readonly deps: ExecuteServiceDeps) {}

  async start(request: ExecuteRequest): Promise<ExecuteStart> {
    const requestStarted = this.deps.clock.monotonicMs();
    const mode = request.mode ?? 'ephemeral';
    this.checkModeFields(request, mode);
    const id = request.id ?? newId('exec');
    const existing = await this.existing(id, request);
    if (existing) return existing;
    const pending = this.inFlight.get(id);
    if (pending) {
      // The same id arrived twice at once: the second waits for the first.
      await pending.catch(() => undefined);
      const again = await this.existing(id, request);
      if (again) return again;
    }

    let cacheKey: string | undefined;
    if (mode === 'cached') {
      cacheKey = this.cacheKeyOf(request);
      const hit = await this.cacheHit(cacheKey, requestStarted);
      if (hit) return hit;
      const filling = this.cacheFills.get(cacheKey);
      if (filling) {
        await filling.catch(() => undefined);
        const after = await this.cacheHit(cacheKey, requestStarted);
        if (after) return after;
      }
    }

    const launched = this.launch(id, request, mode, requestStarted);
    this.inFlight.set(id, launched);
    let instanceId: string;
    let outcome: Promise<ModeOutcome>;
    try {
      ({ instanceId, outcome } = await launched);
    } finally {
      this.inFlight.delete(id);
    }
    const finished = this.finished(id, outcome, requestStarted);
    if (cacheKey !== undefined) {
      const key = cacheKey;
      const fill = finished.then((r) => this.fillCache(key, request, r));
      this.cacheFills.set(key, fill);
      void fill.catch((err: unknown) => this.deps.logger.error({ err, execution: id }, 'storing a cached result failed')).finally(() => this.cacheFills.delete(key));
    }
    return { kind: 'run', id, instanceId, finished };
  }

  /** Waits for instances of finished executions to be destroyed (shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pendingDeletes]);
  }

  private checkModeFields(request: ExecuteRequest, mode: ExecModeName): void {
    for (const [field, owner] of Object.entries(MODE_FIELDS)) {
      if ((request as Record<string, unknown>)[field] !== undefined && owner !== mode) {
        throw new FaasError('VALIDATION_FAILED', `${field} belongs to mode "${owner}", not "${mode}"`, { field, mode });
      }
    }
    if (mode === 'branched' && request.branch_from === undefined) {
      throw new FaasError('VALIDATION_FAILED', 'mode "branched" needs branch_from: a snapshot id or hash, or an execution that left a snapshot', { field: 'branch_from' });
    }
    if (mode === 'persistent') {
      if ((request.instance_id === undefined) === (request.function_id === undefined)) {
        throw new FaasError('VALIDATION_FAILED', 'mode "persistent" needs exactly one of instance_id and function_id', { fields: ['instance_id', 'function_id'] });
      }
      if (request.instance_id !== undefined) {
        for (const field of ['env', 'memory_mb', 'cpu_cores', 'pids_max'] as const) {
          if (request[field] !== undefined) throw new FaasError('VALIDATION_FAILED', `${field} cannot be given for an existing instance (instance_id)`, { field });
        }
      }
    }
  }

  /** Creates or finds the instance the mode runs in, starts the process, and arranges what follows it. */
  private async launch(id: string, request: ExecuteRequest, mode: ExecModeName, requestStarted: number): Promise<{ instanceId: string; outcome: Promise<ModeOutcome> }> {
    const { instances, executions, snapshots, logger } = this.deps;
    // A request that cannot run must not cost an instance.
    executions.validate(request);
    const limits = { memory_mb: request.memory_mb, cpu_cores: request.cpu_cores, pids_max: request.pids_max };

    if (mode === 'persistent') {
      const instance = await this.persistentInstance(request);
      const { done } = await executions.start(instance, { ...request, id }, { ephemeral: false, requestStarted, mode });
      return { instanceId: instance.id, outcome: done.then(() => ({ mode })) };
    }

    let base: SnapshotRecord | undefined;
    const ref = mode === 'checkpointed' ? request.checkpoint : mode === 'branched' ? request.branch_from : undefined;
    if (ref !== undefined) {
      base = await snapshots.resolve(ref);
      if (request.env !== undefined && request.env !== base.env) {
        throw new FaasError('VALIDATION_FAILED', `snapshot ${base.id} is of environment ${JSON.stringify(base.env)}, not ${JSON.stringify(request.env)}`, { field: 'env', snapshot_env: base.env });
      }
    }
    const instance = base !== undefined ? await snapshots.restore(base.id, { limits }) : await instances.create({ env: request.env, limits });
    let done: Promise<unknown>;
    try {
      ({ done } = await executions.start(instance, { ...request, id }, { ephemeral: true, requestStarted, mode }));
    } catch (err) {
      this.destroy(instance.id);
      throw err;
    }
    const keepsState = mode === 'checkpointed' || mode === 'branched';
    const outcome = done.then(async (): Promise<ModeOutcome> => {
      if (!keepsState) return { mode };
      try {
        const snapshot = await snapshots.create({ executionId: id, metadata: { mode, execution_id: id } });
        return { mode, snapshot, base: base ?? null };
      } catch (err) {
        logger.error({ err, execution: id, instance: instance.id }, 'snapshot after the run failed');
        return { mode, snapshot: null, base: base ?? null };
      }
    });
    void outcome.finally(() => this.destroy(instance.id));
    logger.debug({ execution: id, instance: instance.id, mode }, 'execution started');
    return { instanceId: instance.id, outcome };
  }

  /** persistent: the named instance, started again if an executor restart stopped it, or (function id) created on first use. */
  private async persistentInstance(request: ExecuteRequest): Promise<InstanceRecord> {
    const { instances, snapshots } = this.deps;
    if (request.instance_id !== undefined) {
      const instance = await instances.get(request.instance_id);
      return instance.state === 'stopped' ? snapshots.restartInstance(instance) : instances.requireRunning(instance.id);
    }
    const functionId = request.function_id!;
    let lock = this.functionLocks.get(functionId);
    if (lock === undefined) this.functionLocks.set(functionId, (lock = new Mutex()));
    return lock.run(async () => {
      const found = await instances.byFunctionId(functionId);
      if (found === undefined) {
        return instances.create({ env: request.env, limits: { memory_mb: request.memory_mb, cpu_cores: request.cpu_cores, pids_max: request.pids_max }, metadata: { function_id: functionId } }, undefined, { functionId });
      }
      if (found.state === 'stopped') return snapshots.restartInstance(found);
      if (found.state !== 'running') {
        throw new FaasError('INSTANCE_NOT_RUNNING', `the instance of function ${functionId} (${found.id}) is ${found.state}${found.stateReason ? ` (${found.stateReason})` : ''}; delete it to start afresh`, { instance_id: found.id, state: found.state, function_id: functionId });
      }
      return found;
    });
  }

  private cacheKeyOf(request: ExecuteRequest): string {
    const { argv, workingDir, envVars, timeoutMs } = this.deps.executions.validate(request);
    const env = request.env ?? 'host';
    const limits = this.deps.instances.resolveLimits({ memory_mb: request.memory_mb, cpu_cores: request.cpu_cores, pids_max: request.pids_max });
    return ResultCache.keyOf({
      env,
      environmentIdentity: this.deps.environmentIdentity(env),
      runtime: this.deps.runtimeName,
      argv,
      envVars,
      workingDir,
      stdin: request.stdin,
      timeoutMs,
      limits: { memory_mb: limits.memoryMb, cpu_cores: limits.cpuCores, pids_max: limits.pidsMax },
      cacheKey: request.cache_key,
      cacheFailures: request.cache_failures === true,
    });
  }

  private async cacheHit(key: string, requestStarted: number): Promise<ExecuteStart | undefined> {
    const hit = await this.deps.cache.lookup(key);
    if (hit === undefined) return undefined;
    const latencyMs = Math.round((this.deps.clock.monotonicMs() - requestStarted) * 1000) / 1000;
    return { kind: 'cached', execution: { ...(hit.result as Execution), mode: 'cached', cached: true, cache_latency_ms: latencyMs }, latencyMs };
  }

  private async fillCache(key: string, request: ExecuteRequest, result: ExecuteResult): Promise<void> {
    const wire = { ...executionToWire(result.view), mode: 'cached' as const, cached: false };
    if (!this.deps.cache.isCacheable(wire, request.cache_failures === true)) return;
    await this.deps.cache.store(key, { env: request.env ?? 'host', cacheKey: request.cache_key ?? null, executionId: wire.id }, wire);
  }

  private destroy(instanceId: string): void {
    const work = this.deps.instances.delete(instanceId, 'ephemeral_finished').catch((err: unknown) => this.deps.logger.error({ err, instance: instanceId }, 'destroying an ephemeral instance failed'));
    this.pendingDeletes.add(work);
    void work.finally(() => this.pendingDeletes.delete(work));
  }

  private async finished(id: string, outcome: Promise<ModeOutcome>, requestStarted: number): Promise<ExecuteResult> {
    const resolved = await outcome;
    const view = await this.deps.executions.wait(id);
    this.deps.metrics.executeTotal.observe((this.deps.clock.monotonicMs() - requestStarted) / 1000);
    return { view, outcome: resolved };
  }

  private async existing(id: string, request: ExecuteRequest): Promise<ExecuteStart | undefined> {
    const record = await this.deps.store.executions.get(id);
    if (record === undefined) return undefined;
    if (record.requestHash !== requestHash({ ...request, id })) {
      throw new FaasError('ID_CONFLICT', `execution id ${id} is already used by a different request`, { id });
    }
    const finished = this.deps.executions.wait(id).then(async (view): Promise<ExecuteResult> => {
      const [snapshot] = await this.deps.store.snapshots.listByExecution(id);
      return { view, outcome: { mode: record.mode, ...(snapshot ? { snapshot } : {}) } };
    });
    return { kind: 'run', id, instanceId: record.instanceId, finished };
  }
}
