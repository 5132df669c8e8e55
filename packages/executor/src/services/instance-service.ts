import { FaasError, type CreateInstanceRequest, type Limits } from '@faas/protocol';
import type { InstanceLimits, InstanceRecord } from '../store/types.ts';
import type { MemoryImageSource } from '../runtime/types.ts';
import { checkEnvVars } from '../util/env-vars.ts';
import { newId } from '../util/ids.ts';
import { Mutex } from '../util/mutex.ts';
import type { ServiceDeps } from './service-deps.ts';
import type { InstancePool } from './warm-pool.ts';

/** @see ServiceDeps */
export type InstanceServiceDeps = ServiceDeps;

/** Where a restored or branched instance's files come from. */
export interface InstanceOrigin {
  snapshotId: string;
  /** The snapshot's materialized tree (see SnapshotService). */
  treeDir: string;
  /** The snapshot's memory image, when it has one and the runtime keeps them: resumed, not booted. */
  memoryImage?: MemoryImageSource;
}

/** Hooks other services register to hear of instances ending (to settle their executions). */
export type InstanceEndListener = (instanceId: string, reason: string) => Promise<void> | void;

/** Instance lifecycle: create (allocate an id and a host uid, start), list, get, delete, recover. */
export class InstanceService {
  private readonly allocation = new Mutex();
  private readonly endListeners: InstanceEndListener[] = [];
  private readonly deletedListeners: Array<(instanceId: string) => Promise<void> | void> = [];
  private readonly deleting = new Map<string, Promise<InstanceRecord>>();
  private alive = 0;
  /** Host uids of instances that are not deleted (their files may still exist). */
  private usedUids: Set<number> | undefined;
  /** Set by app.ts: create() takes from it, and evicts from it at capacity. */
  private pool: InstancePool | undefined;

  constructor(private readonly deps: InstanceServiceDeps) {
    deps.runtime.onInstanceExit((id, reason) => void this.markDied(id, reason));
  }

  onInstanceEnd(listener: InstanceEndListener): void {
    this.endListeners.push(listener);
  }

  /**
   * Hooks for what must go with a deleted instance (its SSH keys). Unlike `onInstanceEnd`,
   * which also fires when an instance stops or dies and may come back, these run only once its
   * record says `deleted`.
   */
  onInstanceDeleted(listener: (instanceId: string) => Promise<void> | void): void {
    this.deletedListeners.push(listener);
  }

  /** The warm pool creates take from (set by app.ts). */
  attachPool(pool: InstancePool): void {
    this.pool = pool;
  }

  /** What the pool's refills call: the default limits, recorded `pooled: true`. */
  startPooled(env: string): Promise<InstanceRecord> {
    return this.create({ env }, undefined, { pooled: true });
  }

  /**
   * Creates and starts an instance. With `from`, its files start as a snapshot's materialized
   * tree (restore and branches); the caller keeps the tree alive until this returns.
   */
  async create(request: CreateInstanceRequest, from?: InstanceOrigin, options: { functionId?: string; /** internal: a pool refill */ pooled?: boolean } = {}): Promise<InstanceRecord> {
    const { store, runtime, clock, metrics, config } = this.deps;
    // A plain create with the default limits takes a ready pooled instance: no runtime start.
    const acquireStarted = clock.monotonicMs();
    if (this.pool !== undefined && from === undefined && options.pooled !== true) {
      const taken = await this.takePooled(request, options.functionId);
      if (taken !== undefined) {
        metrics.instanceAcquire.observe({ source: 'warm' }, (clock.monotonicMs() - acquireStarted) / 1000);
        return taken;
      }
      this.pool.recordMiss(request.env ?? 'host');
    }
    const env = request.env ?? 'host';
    if (!runtime.environments.includes(env)) {
      throw new FaasError('ENVIRONMENT_NOT_FOUND', `no environment named ${JSON.stringify(env)}`, { env, available: [...runtime.environments] });
    }
    const envVars = checkEnvVars(request.env_vars);
    const limits = this.resolveLimits(request.limits ?? {});
    const record = await this.allocation.run(async () => {
      // A client's create at capacity evicts a pooled instance rather than fail.
      const victim = options.pooled !== true && this.alive >= config.maxInstances ? this.pool?.evictOne() : undefined;
      if (victim !== undefined) await this.delete(victim, 'pool_evicted');
      if (this.alive >= config.maxInstances) {
        throw new FaasError('CAPACITY_EXHAUSTED', `the server runs its maximum of ${config.maxInstances} instances; delete some or retry later`, { max_instances: config.maxInstances });
      }
      const rec: InstanceRecord = {
        id: request.id ?? newId('inst'),
        state: 'starting',
        stateReason: null,
        env,
        runtime: runtime.name,
        envVars,
        limits,
        metadata: request.metadata ?? {},
        hostUid: await this.freeHostUid(),
        nodeId: config.nodeId,
        createdAt: clock.now(),
        startedAt: null,
        stoppedAt: null,
        startDurationMs: null,
        sourceSnapshotId: from?.snapshotId ?? null,
        lastSnapshotId: null,
        functionId: options.functionId ?? null,
        pooled: options.pooled === true,
      };
      try {
        await store.instances.insert(rec);
      } catch (err) {
        this.usedUids?.delete(rec.hostUid); // e.g. ID_CONFLICT: the uid was never used
        throw err;
      }
      this.alive++;
      return rec;
    });
    try {
      const started = await runtime.startInstance({ id: record.id, env, hostUid: record.hostUid, limits, ...(from ? { baseTree: from.treeDir } : {}), ...(from?.memoryImage ? { memoryImage: from.memoryImage } : {}) });
      metrics.instancesCreated.inc();
      metrics.instancesRunning.inc();
      metrics.instanceStart.observe(started.startDurationMs / 1000);
      const running = await store.instances.update(record.id, { state: 'running', startedAt: clock.now(), startDurationMs: Math.round(started.startDurationMs) });
      if (options.pooled !== true) metrics.instanceAcquire.observe({ source: 'cold' }, (clock.monotonicMs() - acquireStarted) / 1000);
      return running;
    } catch (err) {
      this.alive--;
      metrics.instancesFailed.inc();
      const reason = `start_failed: ${(err as Error).message}`;
      await store.instances.update(record.id, { state: 'failed', stateReason: reason.slice(0, 1000), stoppedAt: clock.now() });
      throw err;
    }
  }

  /**
   * Starts a stopped instance again on its kept files (persistent mode, after an executor
   * restart). `baseTree`: the materialized tree of the snapshot it was made from, if any.
   * A running instance is returned as it is.
   */
  async restart(id: string, baseTree?: string): Promise<InstanceRecord> {
    const { store, runtime, clock, metrics, config } = this.deps;
    const record = await this.allocation.run(async () => {
      const rec = await this.record(id);
      if (rec.state === 'running') return rec;
      if (rec.state !== 'stopped' || this.deleting.has(id)) {
        throw new FaasError('INSTANCE_NOT_RUNNING', `instance ${id} is ${rec.state} and cannot be started again`, { instance_id: id, state: rec.state });
      }
      if (this.alive >= config.maxInstances) {
        throw new FaasError('CAPACITY_EXHAUSTED', `the server runs its maximum of ${config.maxInstances} instances; delete some or retry later`, { max_instances: config.maxInstances });
      }
      this.alive++;
      return store.instances.update(id, { state: 'starting', stateReason: null });
    });
    if (record.state === 'running') return record;
    try {
      const started = await runtime.startInstance({ id, env: record.env, hostUid: record.hostUid, limits: record.limits, ...(baseTree !== undefined ? { baseTree } : {}) });
      metrics.instancesRunning.inc();
      metrics.instanceStart.observe(started.startDurationMs / 1000);
      return await store.instances.update(id, { state: 'running', startedAt: clock.now(), stoppedAt: null, startDurationMs: Math.round(started.startDurationMs) });
    } catch (err) {
      this.alive--;
      // Its files are still there: it stays stopped, saying why it could not start.
      await store.instances.update(id, { state: 'stopped', stateReason: `restart_failed: ${(err as Error).message}`.slice(0, 1000) });
      throw err;
    }
  }

  /** The live (not deleted) instance with this persistent-mode name, if any. */
  async byFunctionId(functionId: string): Promise<InstanceRecord | undefined> {
    const [record] = await this.deps.store.instances.list({ functionId, states: ['starting', 'running', 'stopped', 'failed'], limit: 1 });
    return record;
  }

  /** A ready pooled instance handed out (pooled: false, the request's env vars and metadata), or undefined. */
  private async takePooled(request: CreateInstanceRequest, functionId: string | undefined): Promise<InstanceRecord | undefined> {
    const env = request.env ?? 'host';
    if (request.id !== undefined || !this.deps.runtime.environments.includes(env)) return undefined;
    const envVars = checkEnvVars(request.env_vars);
    const limits = this.resolveLimits(request.limits ?? {});
    const { defaults } = this.deps.config;
    if (limits.memoryMb !== defaults.memoryMb || limits.cpuCores !== defaults.cpuCores || limits.pidsMax !== defaults.pidsMax) return undefined;
    const id = this.pool?.take(env);
    if (id === undefined) return undefined;
    const current = await this.deps.store.instances.get(id);
    if (current?.state !== 'running' || this.deleting.has(id)) {
      this.pool?.discard(id);
      return undefined;
    }
    try {
      return await this.deps.store.instances.update(id, { pooled: false, envVars, metadata: request.metadata ?? {}, ...(functionId !== undefined ? { functionId } : {}) });
    } catch (err) {
      this.pool?.discard(id);
      throw err;
    }
  }

  /** An instance as clients see it: warm-pool instances not handed out yet do not exist for them. */
  async get(id: string): Promise<InstanceRecord> {
    const record = await this.record(id);
    if (record.pooled) throw new FaasError('INSTANCE_NOT_FOUND', `no instance with id ${id}`, { instance_id: id });
    return record;
  }

  /** Any instance record, pooled ones included (for the service's own bookkeeping). */
  private async record(id: string): Promise<InstanceRecord> {
    const record = await this.deps.store.instances.get(id);
    if (record === undefined) throw new FaasError('INSTANCE_NOT_FOUND', `no instance with id ${id}`, { instance_id: id });
    return record;
  }

  async requireRunning(id: string): Promise<InstanceRecord> {
    const record = await this.get(id);
    if (record.state !== 'running' || this.deleting.has(id)) {
      throw new FaasError('INSTANCE_NOT_RUNNING', `instance ${id} is ${this.deleting.has(id) ? 'being deleted' : record.state}${record.stateReason ? ` (${record.stateReason})` : ''}`, { instance_id: id, state: record.state });
    }
    return record;
  }

  list(filter: { states?: InstanceRecord['state'][]; limit?: number }): Promise<InstanceRecord[]> {
    const states = filter.states ?? ['starting', 'running', 'stopped', 'failed'];
    return this.deps.store.instances.list({ states, limit: filter.limit, pooled: false }); // pooled ones are not the clients'
  }

  /** Ends every process, removes files, marks the record deleted. Idempotent; concurrent calls share one deletion. */
  delete(id: string, reason = 'deleted'): Promise<InstanceRecord> {
    const pending = this.deleting.get(id);
    if (pending) return pending;
    const work = this.doDelete(id, reason).finally(() => this.deleting.delete(id));
    this.deleting.set(id, work);
    return work;
  }

  /**
   * At start-up: every instance this node ran is gone with the old process. Ephemeral ones
   * (per the predicate) are deleted; others are marked stopped with their files kept.
   */
  async recover(isEphemeral: (instanceId: string) => Promise<boolean>): Promise<{ stopped: string[]; deleted: string[] }> {
    const { store, runtime, clock, logger, config } = this.deps;
    const orphans = await store.instances.list({ states: ['starting', 'running'], nodeId: config.nodeId, limit: 100_000 });
    const stopped: string[] = [];
    const deleted: string[] = [];
    for (const rec of orphans) {
      if (rec.state === 'starting' || rec.pooled || (await isEphemeral(rec.id))) {
        await store.instances.update(rec.id, { state: 'deleted', stateReason: 'executor_restart', stoppedAt: clock.now() });
        deleted.push(rec.id);
      } else {
        await store.instances.update(rec.id, { state: 'stopped', stateReason: 'executor_restart', stoppedAt: clock.now() });
        stopped.push(rec.id);
      }
    }
    const keep = new Set((await store.instances.list({ states: ['stopped'], nodeId: config.nodeId, limit: 100_000 })).map((r) => r.id));
    const report = await runtime.recover(keep);
    logger.info({ ...report, stopped: stopped.length, deleted: deleted.length }, 'recovered from previous run');
    return { stopped, deleted };
  }

  /**
   * On shutdown: every running instance is stopped (ephemeral ones deleted), its record saying
   * so, so the next start finds nothing to recover.
   */
  async shutdown(isEphemeral: (instanceId: string) => Promise<boolean>): Promise<void> {
    const { store, runtime, clock, config, metrics, logger } = this.deps;
    const live = await store.instances.list({ states: ['starting', 'running'], nodeId: config.nodeId, limit: 100_000 });
    await Promise.all(
      live.map(async (rec) => {
        try {
          if (await isEphemeral(rec.id)) {
            await this.delete(rec.id, 'executor_shutdown');
            return;
          }
          for (const l of this.endListeners) await l(rec.id, 'executor_shutdown');
          await runtime.stopInstance(rec.id);
          this.alive--;
          metrics.instancesRunning.dec();
          await store.instances.update(rec.id, { state: 'stopped', stateReason: 'executor_shutdown', stoppedAt: clock.now() });
        } catch (err) {
          logger.error({ err, instance: rec.id }, 'stopping an instance on shutdown failed');
        }
      }),
    );
  }

  private async doDelete(id: string, reason: string): Promise<InstanceRecord> {
    const { store, runtime, clock, metrics } = this.deps;
    const record = await this.record(id);
    if (record.state === 'deleted') return record;
    const wasAlive = record.state === 'running' || record.state === 'starting';
    for (const l of this.endListeners) await l(id, reason);
    await runtime.destroyInstance(id);
    if (wasAlive) {
      this.alive--;
      metrics.instancesRunning.dec();
    }
    const deleted = await store.instances.update(id, { state: 'deleted', stateReason: reason, stoppedAt: record.stoppedAt ?? clock.now() });
    this.usedUids?.delete(record.hostUid);
    for (const l of this.deletedListeners) await l(id);
    return deleted;
  }

  private async markDied(id: string, reason: string): Promise<void> {
    const { store, clock, metrics, logger } = this.deps;
    try {
      const record = await store.instances.get(id);
      if (record === undefined || record.state !== 'running' || this.deleting.has(id)) return;
      this.alive--;
      metrics.instancesRunning.dec();
      metrics.instancesFailed.inc();
      await store.instances.update(id, { state: 'failed', stateReason: reason.slice(0, 1000), stoppedAt: clock.now() });
      for (const l of this.endListeners) await l(id, reason);
    } catch (err) {
      logger.error({ err, instance: id }, 'recording the death of an instance failed');
    }
  }

  /** The limits a request gets: its own where given, else the defaults; LIMIT_OUT_OF_RANGE past the maxima. */
  resolveLimits(requested: Limits): InstanceLimits {
    const { defaults, maxima } = this.deps.config;
    const limits: InstanceLimits = {
      memoryMb: requested.memory_mb ?? defaults.memoryMb,
      cpuCores: requested.cpu_cores ?? defaults.cpuCores,
      pidsMax: requested.pids_max ?? defaults.pidsMax,
    };
    const check = (name: string, value: number, min: number, max: number) => {
      if (value < min || value > max) throw new FaasError('LIMIT_OUT_OF_RANGE', `${name} must be between ${min} and ${max}, got ${value}`, { limit: name, value, min, max });
    };
    check('memory_mb', limits.memoryMb, 16, maxima.memoryMb);
    check('cpu_cores', limits.cpuCores, 0.01, maxima.cpuCores);
    check('pids_max', limits.pidsMax, 8, maxima.pidsMax);
    return limits;
  }

  /** Called under the allocation mutex. The set is read from the store once, then kept here. */
  private async freeHostUid(): Promise<number> {
    const { uidBase, uidCount } = this.deps.config;
    this.usedUids ??= new Set(await this.deps.store.instances.usedHostUids());
    for (let uid = uidBase; uid < uidBase + uidCount; uid++) {
      if (!this.usedUids.has(uid)) {
        this.usedUids.add(uid);
        return uid;
      }
    }
    throw new FaasError('CAPACITY_EXHAUSTED', `all ${uidCount} sandbox uids are held by instances; delete some`, {});
  }
}
