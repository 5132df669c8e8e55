/**
 * The snapshot and branch calls behind the flat client methods, each wire call written once.
 */
import { ErrorCode, isFaasError } from '@faas/protocol/errors';
import type {
  BranchList as WireBranchList,
  DeleteSnapshotResult as WireDeleteSnapshotResult,
  GcResult as WireGcResult,
  Instance as WireInstance,
  Lineage as WireLineage,
  Snapshot as WireSnapshot,
  SnapshotDiff as WireSnapshotDiff,
  SnapshotList as WireSnapshotList,
  VerifyResult as WireVerifyResult,
} from '@faas/protocol/wire';
import { snapshotPath } from './api-paths.ts';
import type { HttpTransport } from './http-transport.ts';
import { Instance } from './instance-handle.ts';
import type { InstancesClient } from './instances-client.ts';
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
import {
  fromWireGc,
  fromWireInstance,
  fromWireLineage,
  fromWireSnapshot,
  fromWireSnapshotDiff,
  fromWireVerify,
  toWireCreateBranches,
  toWireRestoreSnapshot,
} from './wire-mapping.ts';

type TargetKind = 'instance_id' | 'execution_id';

/** The not-found code of each kind of target. */
const NOT_FOUND: Record<TargetKind, ErrorCode> = { instance_id: ErrorCode.INSTANCE_NOT_FOUND, execution_id: ErrorCode.EXECUTION_NOT_FOUND };

/**
 * Which field a target is sent as. A string starting with `exec-` (the form of every
 * server- or SDK-generated execution id) is taken for an execution, anything else for an
 * instance; `createSnapshot` tries the other kind when the guess names nothing.
 *
 * @example
 * targetKind('exec-2b6x0q1f9s8d'); // 'execution_id'
 * targetKind({ executionId: 'my-build' }); // 'execution_id'
 */
export function targetKind(target: SnapshotTarget): TargetKind {
  if (typeof target === 'string') return target.startsWith('exec-') ? 'execution_id' : 'instance_id';
  return 'executionId' in target ? 'execution_id' : 'instance_id';
}

function targetId(target: SnapshotTarget): string {
  if (typeof target === 'string') return target;
  return 'executionId' in target ? target.executionId : target.instanceId;
}

export class SnapshotsApi {
  readonly #transport: HttpTransport;
  readonly #instances: InstancesClient;

  constructor(transport: HttpTransport, instances: InstancesClient) {
    this.#transport = transport;
    this.#instances = instances;
  }

  async create(target: SnapshotTarget, metadata: Record<string, string> | undefined, options: CreateSnapshotOptions): Promise<Snapshot> {
    const id = targetId(target);
    const kind = targetKind(target);
    try {
      return await this.#create(kind, id, metadata, options);
    } catch (error) {
      // Only a bare string is guessed; an explicit kind means what it says.
      if (typeof target !== 'string' || !isFaasError(error) || error.code !== NOT_FOUND[kind]) throw error;
      const other: TargetKind = kind === 'instance_id' ? 'execution_id' : 'instance_id';
      try {
        // Safe to send again: the first request created nothing.
        return await this.#create(other, id, metadata, options);
      } catch (second) {
        // Nothing of either kind: the error of the first guess reads best.
        throw isFaasError(second) && second.code === NOT_FOUND[other] ? error : second;
      }
    }
  }

  async #create(kind: TargetKind, id: string, metadata: Record<string, string> | undefined, options: CreateSnapshotOptions): Promise<Snapshot> {
    const body: Record<string, unknown> = { [kind]: id };
    if (metadata !== undefined) body.metadata = metadata;
    if (options.deterministic !== undefined) body.deterministic = options.deterministic;
    return fromWireSnapshot(await this.#transport.request<WireSnapshot>({ method: 'POST', path: '/api/v1/snapshots', body }));
  }

  async get(ref: string): Promise<Snapshot> {
    return fromWireSnapshot(await this.#transport.request<WireSnapshot>({ method: 'GET', path: snapshotPath(ref) }));
  }

  async list(options: ListSnapshotsOptions): Promise<Snapshot[]> {
    const wire = await this.#transport.request<WireSnapshotList>({
      method: 'GET',
      path: '/api/v1/snapshots',
      query: { parent_id: options.parentId, instance_id: options.instanceId, limit: options.limit },
    });
    return wire.snapshots.map(fromWireSnapshot);
  }

  async delete(ref: string, options: DeleteSnapshotOptions): Promise<string[]> {
    const wire = await this.#transport.request<WireDeleteSnapshotResult>({
      method: 'DELETE',
      path: snapshotPath(ref),
      query: { cascade: options.cascade ? 'true' : undefined },
      // Not repeated: a retry after a lost answer would report SNAPSHOT_NOT_FOUND for a delete that worked.
      idempotent: false,
    });
    return wire.deleted;
  }

  async restore(ref: string, options: RestoreSnapshotOptions): Promise<Instance> {
    const wire = await this.#transport.request<WireInstance>({ method: 'POST', path: `${snapshotPath(ref)}/restore`, body: toWireRestoreSnapshot(options) });
    return this.#wrap(wire);
  }

  async branch(snapshotId: string, options: CreateBranchOptions): Promise<Instance[]> {
    const wire = await this.#transport.request<WireBranchList>({ method: 'POST', path: '/api/v1/branches', body: toWireCreateBranches(snapshotId, options) });
    return wire.branches.map((instance) => this.#wrap(instance));
  }

  async listBranches(snapshotId: string | undefined): Promise<BranchList> {
    const wire = await this.#transport.request<WireBranchList>({ method: 'GET', path: '/api/v1/branches', query: { snapshot_id: snapshotId } });
    return { snapshotId: wire.snapshot_id, branches: wire.branches.map((instance) => this.#wrap(instance)) };
  }

  async lineage(ref: string): Promise<SnapshotLineage> {
    return fromWireLineage(await this.#transport.request<WireLineage>({ method: 'GET', path: `${snapshotPath(ref)}/lineage` }));
  }

  async diff(from: string, to: string): Promise<SnapshotDiff> {
    return fromWireSnapshotDiff(await this.#transport.request<WireSnapshotDiff>({ method: 'GET', path: '/api/v1/snapshots/diff', query: { from, to } }));
  }

  async verify(): Promise<VerifyResult> {
    // A POST that only reads: repeating it is harmless.
    return fromWireVerify(await this.#transport.request<WireVerifyResult>({ method: 'POST', path: '/api/v1/snapshots/verify', idempotent: true }));
  }

  async gc(options: GcOptions): Promise<GcResult> {
    const body = options.graceMs === undefined ? {} : { grace_ms: options.graceMs };
    // Mark and sweep again after a lost answer finds nothing more to do: harmless.
    return fromWireGc(await this.#transport.request<WireGcResult>({ method: 'POST', path: '/api/v1/snapshots/gc', body, idempotent: true }));
  }

  #wrap(wire: WireInstance): Instance {
    return new Instance(this.#instances, fromWireInstance(wire));
  }
}
