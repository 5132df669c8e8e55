import type { Logger } from 'pino';
import { FaasError, type ReadinessRequest } from '@faas/protocol';
import type { Runtime } from '../../runtime/types.ts';
import type { Clock } from '../../util/clock.ts';
import type { ExecutionService } from '../execution-service.ts';
import type { InstanceService } from '../instance-service.ts';
import { commandProbe } from './command-probe.ts';
import { fileProbe } from './file-probe.ts';
import { httpProbe } from './http-probe.ts';
import { logProbe } from './log-probe.ts';
import { parseReadinessRequest, type ProbeSpec, type ReadinessConfig } from './probe-config.ts';
import type { Probe, ProbeContext } from './probe.ts';
import { runReadinessCheck, systemTimer, type CheckerTimer, type ReadinessOutcome, type RoundReport } from './readiness-checker.ts';
import { tcpProbe } from './tcp-probe.ts';

export interface ReadinessServiceDeps {
  instances: Pick<InstanceService, 'requireRunning'>;
  executions: Pick<ExecutionService, 'get'>;
  runtime: Pick<Runtime, 'connect' | 'exec' | 'rootDir'>;
  clock: Clock;
  logger: Logger;
  /** @default the system clock with setTimeout */
  timer?: CheckerTimer;
}

/** A validated check, bound to a running instance, not started yet. */
export interface PreparedCheck {
  instanceId: string;
  config: ReadinessConfig;
  probes: Probe[];
}

/**
 * Readiness checks of instances (docs/readiness.md). Checking is split in two so that a route
 * can refuse a bad request with a plain error before it starts streaming: `prepare` validates
 * and throws; `run` checks, and fails only when checking cannot go on (the instance stopped,
 * the server shuts down, the caller went away).
 */
export class ReadinessService {
  readonly #deps: ReadinessServiceDeps;
  readonly #timer: CheckerTimer;
  /** Checks under way, to end them when their instance ends or the server stops. */
  readonly #active = new Map<AbortController, string>();
  #closed = false;

  constructor(deps: ReadinessServiceDeps) {
    this.#deps = deps;
    this.#timer = deps.timer ?? systemTimer(deps.clock);
  }

  /**
   * Validates the request (INVALID_PROBE, EXECUTION_NOT_FOUND for a log probe's unknown
   * execution) against a running instance (INSTANCE_NOT_FOUND, INSTANCE_NOT_RUNNING).
   */
  async prepare(instanceId: string, request: ReadinessRequest): Promise<PreparedCheck> {
    const config = parseReadinessRequest(request);
    const instance = await this.#deps.instances.requireRunning(instanceId);
    for (const [index, spec] of config.probes.entries()) {
      if (spec.type !== 'log') continue;
      // Throws EXECUTION_NOT_FOUND; another instance's execution is this request's mistake.
      const view = await this.#deps.executions.get(spec.executionId);
      if (view.record.instanceId !== instanceId) {
        throw new FaasError('INVALID_PROBE', `probe ${index} (log): execution ${spec.executionId} ran in instance ${view.record.instanceId}, not in ${instanceId}`, {
          index,
          type: 'log',
          field: 'execution_id',
          errors: [{ path: `/probes/${index}/execution_id`, message: `is an execution of another instance` }],
        });
      }
    }
    const ctx: ProbeContext = { instance, runtime: this.#deps.runtime, executions: this.#deps.executions, clock: this.#deps.clock };
    return { instanceId, config, probes: config.probes.map((spec) => makeProbe(spec, ctx)) };
  }

  /**
   * Runs the check. `onRound` is called after every round (for the streaming variant). Rejects
   * with INSTANCE_NOT_RUNNING when the instance ends meanwhile, SHUTTING_DOWN when the server
   * stops, or the signal's reason when the caller aborts.
   */
  async run(check: PreparedCheck, options: { signal?: AbortSignal; onRound?: (round: RoundReport) => void } = {}): Promise<ReadinessOutcome> {
    if (this.#closed) throw new FaasError('SHUTTING_DOWN', 'the server is shutting down');
    const own = new AbortController();
    const signal = options.signal === undefined ? own.signal : AbortSignal.any([own.signal, options.signal]);
    this.#active.set(own, check.instanceId);
    try {
      return await runReadinessCheck(check.probes, check.config, this.#timer, signal, options.onRound);
    } finally {
      this.#active.delete(own);
    }
  }

  /** The instance stopped, died or was deleted: its checks end with INSTANCE_NOT_RUNNING. */
  instanceEnded(instanceId: string, reason: string): void {
    for (const [controller, id] of this.#active) {
      if (id === instanceId) controller.abort(new FaasError('INSTANCE_NOT_RUNNING', `instance ${instanceId} ended while its readiness was checked (${reason})`, { instance_id: instanceId }));
    }
  }

  /** Ends every check under way with SHUTTING_DOWN and takes no new ones. */
  close(): void {
    this.#closed = true;
    for (const controller of this.#active.keys()) controller.abort(new FaasError('SHUTTING_DOWN', 'the server is shutting down'));
  }
}

function makeProbe(spec: ProbeSpec, ctx: ProbeContext): Probe {
  switch (spec.type) {
    case 'http':
      return httpProbe(spec, ctx);
    case 'tcp':
      return tcpProbe(spec, ctx);
    case 'command':
      return commandProbe(spec, ctx);
    case 'file':
      return fileProbe(spec, ctx);
    case 'log':
      return logProbe(spec, ctx);
  }
}
