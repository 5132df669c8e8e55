import type { ExecutionHandle } from './execution-handle.ts';
import type { ExecRequest, ExecutionResult } from './execution-types.ts';
import type { InstanceInfo, InstanceLimits, InstanceState } from './instance-types.ts';
import type { InstancesClient } from './instances-client.ts';
import { InstancePorts, InstanceReadiness, InstanceSessions, InstanceSsh } from './instance-subclients.ts';

/**
 * A long-lived instance: its data as last read from the server, plus methods that act on it.
 * `refresh()` and `delete()` update the data in place.
 *
 * @example
 * const instance = await client.instances.create({ envVars: { GREETING: 'hi' } });
 * const result = await instance.exec({ code: 'echo $GREETING > f; cat f' });
 * await instance.delete();
 */
export class Instance implements InstanceInfo {
  id!: string;
  state!: InstanceState;
  stateReason!: string | null;
  env!: string;
  runtime!: string;
  envVars!: Record<string, string>;
  limits!: InstanceLimits;
  metadata!: Record<string, string>;
  createdAt!: Date;
  startedAt!: Date | null;
  stoppedAt!: Date | null;
  startDurationMs!: number | null;
  sourceSnapshotId!: string | null;
  readonly #instances: InstancesClient;
  #ssh: InstanceSsh | undefined;
  #ports: InstancePorts | undefined;
  #readiness: InstanceReadiness | undefined;
  #sessions: InstanceSessions | undefined;

  /** @internal Created by `client.instances`. */
  constructor(instances: InstancesClient, info: InstanceInfo) {
    this.#instances = instances;
    this.#assign(info);
  }

  /**
   * Runs a command in this instance and resolves with its finished result.
   *
   * @example
   * const { stdout } = await instance.exec({ command: ['ls', '/workspace'] });
   */
  exec(request: ExecRequest): Promise<ExecutionResult> {
    return this.#instances.exec(this.id, request);
  }

  /**
   * Starts a command in the background and resolves with its handle at once.
   *
   * @example
   * const server = await instance.start({ code: 'python3 -m http.server 8000' });
   * await server.kill();
   */
  start(request: ExecRequest): Promise<ExecutionHandle> {
    return this.#instances.start(this.id, request);
  }

  /** Its SSH keys: rotate, current, list, revoke, audit. */
  get ssh(): InstanceSsh {
    return (this.#ssh ??= new InstanceSsh(this.#instances.resources, this.id));
  }

  /** Its ports: expose, unexpose, list, fetch through the proxy. */
  get ports(): InstancePorts {
    return (this.#ports ??= new InstancePorts(this.#instances.resources, this.id));
  }

  /** Readiness probes against it: check, waitForReady. */
  get readiness(): InstanceReadiness {
    return (this.#readiness ??= new InstanceReadiness(this.#instances.resources, this.id));
  }

  /** Long-running sessions in it. */
  get sessions(): InstanceSessions {
    return (this.#sessions ??= new InstanceSessions(this.#instances.resources, this.id));
  }

  /**
   * Reads the instance again and updates this object.
   *
   * @example
   * if ((await instance.refresh()).state !== 'running') console.warn(instance.stateReason);
   */
  async refresh(): Promise<this> {
    this.#assign((await this.#instances.get(this.id)).toJSON());
    return this;
  }

  /**
   * Deletes the instance (idempotent) and updates this object to the deleted state.
   *
   * @example
   * await instance.delete();
   * instance.state; // "deleted"
   */
  async delete(): Promise<this> {
    this.#assign((await this.#instances.delete(this.id)).toJSON());
    return this;
  }

  /**
   * The plain data, without methods (also what JSON.stringify writes).
   *
   * @example
   * const info: InstanceInfo = instance.toJSON();
   */
  toJSON(): InstanceInfo {
    return {
      id: this.id,
      state: this.state,
      stateReason: this.stateReason,
      env: this.env,
      runtime: this.runtime,
      envVars: this.envVars,
      limits: this.limits,
      metadata: this.metadata,
      createdAt: this.createdAt,
      startedAt: this.startedAt,
      stoppedAt: this.stoppedAt,
      startDurationMs: this.startDurationMs,
      sourceSnapshotId: this.sourceSnapshotId,
    };
  }

  #assign(info: InstanceInfo): void {
    this.id = info.id;
    this.state = info.state;
    this.stateReason = info.stateReason;
    this.env = info.env;
    this.runtime = info.runtime;
    this.envVars = info.envVars;
    this.limits = info.limits;
    this.metadata = info.metadata;
    this.createdAt = info.createdAt;
    this.startedAt = info.startedAt;
    this.stoppedAt = info.stoppedAt;
    this.startDurationMs = info.startDurationMs;
    this.sourceSnapshotId = info.sourceSnapshotId;
  }
}
