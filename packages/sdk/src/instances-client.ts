import type { Instance as WireInstance, InstanceList as WireInstanceList } from '@faas/protocol/wire';
import { instancePath } from './api-paths.ts';
import { ExecutionHandle } from './execution-handle.ts';
import type { ExecRequest, ExecutionResult } from './execution-types.ts';
import type { ExecutionsApi } from './executions-api.ts';
import { Instance } from './instance-handle.ts';
import type { CreateInstanceOptions, ListInstancesOptions } from './instance-types.ts';
import { fromWireInstance, toWireCreateInstance } from './wire-mapping.ts';
import type { InstanceResourceApis } from './instance-subclients.ts';

/**
 * `client.instances`: long-lived instances that keep their files and processes between
 * executions.
 *
 * @example
 * const instance = await client.instances.create();
 * await client.instances.exec(instance.id, { command: ['touch', 'marker'] });
 * const all = await client.instances.list({ limit: 20 });
 * await client.instances.delete(instance.id);
 */
export class InstancesClient {
  readonly #api: ExecutionsApi;
  #resources: InstanceResourceApis | undefined;

  /** @internal Created by FaaSPlatformClient. */
  constructor(api: ExecutionsApi) {
    this.#api = api;
  }

  /**
   * Creates and starts an instance; resolves once it is running. Not retried on a dropped
   * connection: that could create a second one.
   *
   * @example
   * const instance = await client.instances.create({ limits: { memoryMb: 256, pidsMax: 64 } });
   */
  async create(options: CreateInstanceOptions = {}): Promise<Instance> {
    const wire = await this.#api.transport.request<WireInstance>({
      method: 'POST',
      path: '/api/v1/instances',
      body: toWireCreateInstance(options),
    });
    return this.#wrap(wire);
  }

  /**
   * Reads one instance (deleted ones too). Unknown id: FaasError INSTANCE_NOT_FOUND.
   *
   * @example
   * const instance = await client.instances.get('inst-8q3k2m9x7c1v');
   */
  async get(id: string): Promise<Instance> {
    const wire = await this.#api.transport.request<WireInstance>({ method: 'GET', path: instancePath(id) });
    return this.#wrap(wire);
  }

  /**
   * Lists instances, newest first; deleted ones only with `state: 'deleted'`.
   *
   * @example
   * const running = await client.instances.list({ state: 'running' });
   */
  async list(options: ListInstancesOptions = {}): Promise<Instance[]> {
    const wire = await this.#api.transport.request<WireInstanceList>({
      method: 'GET',
      path: '/api/v1/instances',
      query: { state: options.state, limit: options.limit },
    });
    return wire.instances.map((instance) => this.#wrap(instance));
  }

  /**
   * Deletes an instance, ending its processes and removing its files. Idempotent: deleting a
   * deleted instance answers the same.
   *
   * @example
   * const gone = await client.instances.delete(id);
   * gone.state; // "deleted"
   */
  async delete(id: string): Promise<Instance> {
    const wire = await this.#api.transport.request<WireInstance>({ method: 'DELETE', path: instancePath(id) });
    return this.#wrap(wire);
  }

  /**
   * Runs a command in an instance and resolves with its finished result.
   *
   * @example
   * const result = await client.instances.exec(id, { code: 'echo $HOME', envVars: { HOME: '/tmp' } });
   */
  exec(id: string, request: ExecRequest): Promise<ExecutionResult> {
    return this.#api.exec(id, request);
  }

  /**
   * Starts a command in an instance in the background; resolves with its handle at once.
   *
   * @example
   * const handle = await client.instances.start(id, { command: ['sleep', '60'] });
   * await handle.kill();
   */
  async start(id: string, request: ExecRequest): Promise<ExecutionHandle> {
    const started = await this.#api.startExec(id, request);
    return new ExecutionHandle(this.#api, started.id, started.instanceId);
  }

  /** @internal The APIs behind an Instance's sub-clients (set by FaaSPlatformClient once it made them). */
  attachResources(resources: InstanceResourceApis): void {
    this.#resources = resources;
  }

  /** @internal */
  get resources(): InstanceResourceApis {
    if (this.#resources === undefined) throw new Error('InstancesClient used before FaaSPlatformClient attached its resources');
    return this.#resources;
  }

  #wrap(wire: WireInstance): Instance {
    return new Instance(this, fromWireInstance(wire));
  }
}
