import { FaasError, type ExecuteRequest } from '@faas/protocol';
import type { Logger } from 'pino';
import type { Store } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';
import { newId } from '../util/ids.ts';
import { requestHash, type ExecutionService, type ExecutionView } from './execution-service.ts';
import type { InstanceService } from './instance-service.ts';
import type { Metrics } from './metrics.ts';

export interface ExecuteServiceDeps {
  store: Store;
  instances: InstanceService;
  executions: ExecutionService;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

/**
 * `POST /execute`: one execution in a fresh instance that is destroyed when it ends. With a
 * client-chosen id the call is idempotent: a retry with the same body gets the same execution.
 */
export class ExecuteService {
  private readonly pendingDeletes = new Set<Promise<unknown>>();
  private readonly inFlight = new Map<string, Promise<{ id: string }>>();

  constructor(private readonly deps: ExecuteServiceDeps) {}

  /** Starts the execution; returns its id and a promise of the finished view. */
  async start(request: ExecuteRequest): Promise<{ id: string; finished: Promise<ExecutionView> }> {
    const mode = request.mode ?? 'ephemeral';
    if (mode !== 'ephemeral') {
      throw new FaasError('MODE_NOT_SUPPORTED', `mode "${mode}" is not available on this server yet; use "ephemeral"`, { mode, supported: ['ephemeral'] });
    }
    const requestStarted = this.deps.clock.monotonicMs();
    const id = request.id ?? newId('exec');
    const existing = await this.existing(id, request);
    if (existing) return existing;
    const inFlight = this.inFlight.get(id);
    if (inFlight) {
      // The same id arrived twice at once: the second waits for the first.
      await inFlight;
      return (await this.existing(id, request))!;
    }
    const started = this.launch(id, request, requestStarted);
    this.inFlight.set(id, started);
    try {
      await started;
    } finally {
      this.inFlight.delete(id);
    }
    return { id, finished: this.finished(id, requestStarted) };
  }

  /** Waits for instances of finished executions to be destroyed (shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pendingDeletes]);
  }

  private async launch(id: string, request: ExecuteRequest, requestStarted: number): Promise<{ id: string }> {
    const { instances, executions, logger } = this.deps;
    // A request that cannot run must not cost an instance.
    executions.validate(request);
    const instance = await instances.create({
      env: request.env,
      limits: { memory_mb: request.memory_mb, cpu_cores: request.cpu_cores, pids_max: request.pids_max },
    });
    try {
      const { done } = await executions.start(instance, { ...request, id }, { ephemeral: true, requestStarted });
      void done.finally(() => this.destroy(instance.id));
    } catch (err) {
      this.destroy(instance.id);
      throw err;
    }
    logger.debug({ execution: id, instance: instance.id }, 'ephemeral execution started');
    return { id };
  }

  private destroy(instanceId: string): void {
    const work = this.deps.instances.delete(instanceId, 'ephemeral_finished').catch((err: unknown) => this.deps.logger.error({ err, instance: instanceId }, 'destroying an ephemeral instance failed'));
    this.pendingDeletes.add(work);
    void work.finally(() => this.pendingDeletes.delete(work));
  }

  private async finished(id: string, requestStarted: number): Promise<ExecutionView> {
    const view = await this.deps.executions.wait(id);
    this.deps.metrics.executeTotal.observe((this.deps.clock.monotonicMs() - requestStarted) / 1000);
    return view;
  }

  private async existing(id: string, request: ExecuteRequest): Promise<{ id: string; finished: Promise<ExecutionView> } | undefined> {
    const record = await this.deps.store.executions.get(id);
    if (record === undefined) return undefined;
    if (record.requestHash !== requestHash({ ...request, id })) {
      throw new FaasError('ID_CONFLICT', `execution id ${id} is already used by a different request`, { id });
    }
    return { id, finished: this.deps.executions.wait(id) };
  }
}
