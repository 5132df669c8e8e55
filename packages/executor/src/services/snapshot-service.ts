import { lstatSync } from 'node:fs';
import { CONTENT_HASH_PATTERN, FaasError, SNAPSHOT_ID_PATTERN, type Limits } from '@faas/protocol';
import { SnapshotHasher, parentInput } from '@faas/protocol/snapshot-hash';
import type { Logger } from 'pino';
import type { BlobStore, GcResult as BlobGcResult } from '../blobs/types.ts';
import type { MemoryImageSource, Runtime } from '../runtime/types.ts';
import { FileHashCache, type SeedEntry } from '../snapshots/file-hash-cache.ts';
import { diffTrees, type TreeDiff } from '../snapshots/tree-diff.ts';
import type { TreeMaterializer } from '../snapshots/tree-materializer.ts';
import { scanTree } from '../snapshots/tree-scanner.ts';
import { collectMemoryImage, loadMemoryImage, storeMemoryCapture } from '../snapshots/memory-image-store.ts';
import { storeTree, type TreeReader } from '../snapshots/tree-store.ts';
import { findCommonAncestor, mergeTrees, storeMergedTree, type Conflict, type TreeMergeStrategy } from '../snapshots/tree-merge.ts';
import { wirePath } from '../snapshots/wire-path.ts';
import type { InstanceRecord, SnapshotRecord, Store } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';
import { newId } from '../util/ids.ts';
import { Mutex } from '../util/mutex.ts';
import type { InstanceService } from './instance-service.ts';
import type { Metrics } from './metrics.ts';

export interface SnapshotServiceDeps {
  store: Store;
  runtime: Runtime;
  blobs: BlobStore;
  reader: TreeReader;
  trees: TreeMaterializer;
  instances: InstanceService;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

export interface CreateSnapshotInput {
  instanceId?: string;
  executionId?: string;
  metadata?: Record<string, string>;
  deterministic?: boolean;
}

export interface RestoreInput {
  id?: string;
  limits?: Limits;
  metadata?: Record<string, string>;
}

export interface Lineage {
  snapshot: SnapshotRecord;
  ancestors: Array<{ record: SnapshotRecord; depth: number }>;
  descendants: Array<{ record: SnapshotRecord; depth: number }>;
}

export interface SnapshotDiffResult extends TreeDiff {
  from: SnapshotRecord;
  to: SnapshotRecord;
  envChanged: string[];
}

export interface VerifyReport {
  blobsChecked: number;
  corrupt: Array<{ hash: string; actualHash: string; size: number }>;
  strays: string[];
  snapshotsChecked: number;
  missing: Array<{ snapshotId: string; hash: string; path: string }>;
}

export interface MergeInput {
  /** Executions of checkpointed or branched runs (each names the snapshot it left). */
  branchIds?: readonly string[];
  snapshotIds?: readonly string[];
  strategy?: TreeMergeStrategy;
  metadata?: Record<string, string>;
}

export interface WireConflict {
  path: string;
  path_base64?: string;
  kind: Conflict['kind'] | 'env';
  sides: Array<{ snapshot_id: string; state: string }>;
  winner?: string;
}

export interface MergeReport {
  snapshot: SnapshotRecord;
  base: SnapshotRecord;
  mergedFrom: string[];
  resolved: WireConflict[];
}

export interface GcReport extends BlobGcResult {
  treesRemoved: number;
}

const hasher = new SnapshotHasher();

/**
 * Snapshots of instances: capture (frozen, incremental), lookup by id or content hash,
 * lineage, diff, restore and branches, delete, verify and garbage collection.
 *
 * Commit protocol (the crash-safety argument): every blob a snapshot needs is written in one
 * blob batch, pinned by a lease, and made durable by the batch's commit; only then is the
 * snapshot's record inserted, which is what makes it exist. A crash at any earlier point leaves
 * unreferenced blobs (or temp files) that gc reclaims, never a visible partial snapshot.
 */
export class SnapshotService {
  /** One capture per instance at a time (and the file hash cache belongs to it). */
  private readonly captureLocks = new Map<string, Mutex>();
  private readonly caches = new Map<string, FileHashCache>();
  /** Deletes and gc take this exclusively; restores hold it shared while they need a tree. */
  private readonly treeGuard = new Mutex();
  private restoresInFlight = 0;
  private readonly restoresDone: Array<() => void> = [];

  constructor(private readonly deps: SnapshotServiceDeps) {
    deps.instances.onInstanceEnd((id) => {
      this.caches.delete(id);
      this.captureLocks.delete(id);
    });
  }

  /** Start-up: clears half-built trees and blob temp files a crash left behind. */
  async recover(): Promise<{ treeLeftovers: number; blobLeftovers: number }> {
    const treeLeftovers = await this.deps.trees.removeLeftovers();
    const blobLeftovers = await this.deps.blobs.removeLeftovers();
    return { treeLeftovers, blobLeftovers };
  }

  async create(input: CreateSnapshotInput): Promise<SnapshotRecord> {
    const { store } = this.deps;
    if ((input.instanceId === undefined) === (input.executionId === undefined)) {
      throw new FaasError('VALIDATION_FAILED', 'give exactly one of instance_id and execution_id', { fields: ['instance_id', 'execution_id'] });
    }
    let instanceId = input.instanceId;
    if (input.executionId !== undefined) {
      const execution = await store.executions.get(input.executionId);
      if (execution === undefined) throw new FaasError('EXECUTION_NOT_FOUND', `no execution with id ${input.executionId}`, { execution_id: input.executionId });
      instanceId = execution.instanceId;
    }
    const id = instanceId!;
    let lock = this.captureLocks.get(id);
    if (lock === undefined) this.captureLocks.set(id, (lock = new Mutex()));
    return lock.run(() => this.capture(id, input));
  }

  private async capture(instanceId: string, input: CreateSnapshotInput): Promise<SnapshotRecord> {
    const { store, runtime, blobs, clock, metrics } = this.deps;
    const instance = await this.deps.instances.requireRunning(instanceId);
    const deterministic = input.deterministic ?? true;
    const started = clock.monotonicMs();
    let cache = this.caches.get(instanceId);
    if (cache === undefined) {
      this.caches.set(instanceId, (cache = new FileHashCache()));
      if (instance.sourceSnapshotId !== null) await this.seedCache(cache, instance);
    }
    const owned = new Set(runtime.instanceOwnedPaths);
    const lease = blobs.lease();
    const batch = blobs.batch({ lease });
    let memoryHash: string | null = null;
    try {
      // The cache is always given: an empty one (first scan, or cleared below) misses every
      // lookup and is filled for the next capture.
      // A runtime that keeps memory images captures one with every snapshot, at the same
      // instant as the files: both are taken while the instance is frozen.
      const withMemory = runtime.capabilities.memorySnapshots && runtime.captureMemory !== undefined;
      const scan = async () => {
        cache.begin(clock.now().getTime());
        const thaw = deterministic || withMemory ? await runtime.freeze(instanceId) : undefined;
        try {
          const scanned = await scanTree(runtime.rootDir(instanceId), {
            blobs: batch,
            lease,
            cache,
            exclude: (rel) => owned.has(rel),
            // Sockets and FIFOs are live objects of running processes, not state.
            skipSpecial: true,
          });
          return { scanned, memory: withMemory ? await runtime.captureMemory!(instanceId) : undefined };
        } finally {
          thaw?.();
        }
      };
      let { scanned: result, memory } = await scan();
      try {
        if (result.cacheHits.length > 0) {
          // Pinned before the check: if the snapshot that holds these blobs still exists now,
          // gc has kept them all along, and from now on the lease keeps them.
          lease.pinKnown(result.cacheHits);
          if (cache.owner === undefined || (await store.snapshots.get(cache.owner)) === undefined) {
            cache.clear();
            await memory?.release();
            memory = undefined;
            ({ scanned: result, memory } = await scan());
          }
        }
        memoryHash = memory === undefined ? null : (await storeMemoryCapture(memory, runtime.name, batch, lease)).memoryHash;
      } finally {
        await memory?.release();
      }
      const tree = await storeTree(result.tree, batch, lease);
      const committed = await batch.commit();
      const parent = await this.parentOf(instance);
      const hashes = hasher.hashSnapshot(memoryHash, tree.fsHash, instance.envVars, parent?.contentHash ?? null);
      const record: SnapshotRecord = {
        id: newId('snap'),
        contentHash: hashes.contentHash,
        parentId: parent?.id ?? null,
        parentHash: parent?.contentHash ?? null,
        fsHash: tree.fsHash,
        envHash: hashes.envHash,
        memoryHash,
        size: result.totalBytes,
        storedBytes: committed.createdBytes,
        fileCount: result.fileCount,
        filesRead: result.fileCount - result.cacheHits.length,
        dirCount: result.dirCount,
        symlinkCount: result.symlinkCount,
        env: instance.env,
        envVars: instance.envVars,
        metadata: input.metadata ?? {},
        sourceInstanceId: instanceId,
        sourceExecutionId: input.executionId ?? null,
        deterministic,
        durationMs: Math.round((clock.monotonicMs() - started) * 100) / 100,
        createdAt: clock.now(),
        mergeParentIds: [],
      };
      await store.withTransaction(async (tx) => {
        await tx.snapshots.insert(record);
        await tx.instances.update(instanceId, { lastSnapshotId: record.id });
      });
      cache.commit(record.id);
      metrics.snapshotsCreated.inc();
      metrics.snapshotCapture.observe(record.durationMs / 1000);
      this.deps.logger.info({ snapshot: record.id, instance: instanceId, files: record.fileCount, stored_bytes: record.storedBytes, ms: record.durationMs }, 'snapshot created');
      return record;
    } catch (err) {
      cache.discard();
      await batch.abort().catch(() => undefined);
      throw err;
    } finally {
      lease.release();
    }
  }

  /** Entries of the snapshot the instance was made from, keyed as the scanner keys its files. */
  private async seedCache(cache: FileHashCache, instance: InstanceRecord): Promise<void> {
    const source = await this.deps.store.snapshots.get(instance.sourceSnapshotId!);
    if (source === undefined) return;
    const root = Buffer.from(this.deps.runtime.rootDir(instance.id));
    const tree = Buffer.from(this.deps.trees.pathOf(source.fsHash));
    const slash = Buffer.from('/');
    const entries = new Map<string, SeedEntry>();
    await this.deps.reader.walk(source.fsHash, (path, e) => {
      if (e.type !== 'file') return;
      // The instance sees the materialized file itself wherever it did not change it.
      const st = lstatSync(Buffer.concat([tree, slash, path]), { bigint: true, throwIfNoEntry: false });
      if (st === undefined) return;
      entries.set(Buffer.concat([root, slash, path]).toString('latin1'), { hash: e.hash!, size: st.size, mode: st.mode, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs });
    });
    cache.seed(entries, source.id);
  }

  /** The instance's newest snapshot that still exists, else the one it was restored from. */
  private async parentOf(instance: InstanceRecord): Promise<SnapshotRecord | undefined> {
    for (const id of [instance.lastSnapshotId, instance.sourceSnapshotId]) {
      if (id === null) continue;
      const record = await this.deps.store.snapshots.get(id);
      if (record !== undefined) return record;
    }
    return undefined;
  }

  /** By id (`snap-...`) or content hash. SNAPSHOT_NOT_FOUND, or INVALID_HASH for a malformed ref. */
  async get(ref: string): Promise<SnapshotRecord> {
    const { snapshots } = this.deps.store;
    let record: SnapshotRecord | undefined;
    if (SNAPSHOT_ID_PATTERN.test(ref)) record = await snapshots.get(ref);
    else if (CONTENT_HASH_PATTERN.test(ref)) record = await snapshots.getByContentHash(ref);
    else {
      throw new FaasError('INVALID_HASH', `${JSON.stringify(ref.slice(0, 80))} is neither a snapshot id (snap-...) nor a content hash (64 lowercase hex characters)`, { hash: ref.slice(0, 80) });
    }
    if (record === undefined) throw new FaasError('SNAPSHOT_NOT_FOUND', `no snapshot ${ref}`, { snapshot: ref });
    return record;
  }

  /**
   * A snapshot named by id or content hash, or by an execution that left one (checkpointed and
   * branched runs): its newest. EXECUTION_NOT_FOUND / NO_SNAPSHOT_FOR_EXECUTION otherwise.
   */
  async resolve(ref: string): Promise<SnapshotRecord> {
    if (SNAPSHOT_ID_PATTERN.test(ref) || CONTENT_HASH_PATTERN.test(ref)) return this.get(ref);
    const execution = await this.deps.store.executions.get(ref);
    if (execution === undefined) {
      throw new FaasError('EXECUTION_NOT_FOUND', `${JSON.stringify(ref.slice(0, 80))} is neither a snapshot (snap-... or a content hash) nor a known execution`, { execution_id: ref.slice(0, 80) });
    }
    const [snapshot] = await this.deps.store.snapshots.listByExecution(ref);
    if (snapshot === undefined) {
      throw new FaasError('NO_SNAPSHOT_FOR_EXECUTION', `execution ${ref} left no snapshot (only checkpointed and branched runs do)`, { execution_id: ref });
    }
    return snapshot;
  }

  /** The newest snapshot an execution left (checkpointed and branched runs), if any. */
  async leftBy(executionId: string): Promise<SnapshotRecord | undefined> {
    const [snapshot] = await this.deps.store.snapshots.listByExecution(executionId);
    return snapshot;
  }

  /**
   * Starts a stopped instance again on its kept files; one made from a snapshot gets that
   * snapshot's tree back as its lower layer.
   */
  async restartInstance(instance: InstanceRecord): Promise<InstanceRecord> {
    if (instance.sourceSnapshotId === null) return this.deps.instances.restart(instance.id);
    return this.withTreeShared(async () => {
      const snapshot = await this.get(instance.sourceSnapshotId!);
      const treeDir = await this.deps.trees.materialize(snapshot.fsHash, this.deps.runtime.environmentRoot(snapshot.env));
      return this.deps.instances.restart(instance.id, treeDir);
    });
  }

  async list(filter: { parentRef?: string; instanceId?: string; limit?: number }): Promise<SnapshotRecord[]> {
    let parentId: string | null | undefined;
    if (filter.parentRef === 'none') parentId = null;
    else if (filter.parentRef !== undefined) parentId = (await this.get(filter.parentRef)).id;
    return this.deps.store.snapshots.list({ parentId, sourceInstanceId: filter.instanceId, limit: filter.limit });
  }

  async lineage(ref: string): Promise<Lineage> {
    const snapshot = await this.get(ref);
    const all = await this.deps.store.snapshots.all();
    const byId = new Map(all.map((r) => [r.id, r]));
    const children = new Map<string, SnapshotRecord[]>();
    for (const r of all) if (r.parentId !== null) (children.get(r.parentId) ?? children.set(r.parentId, []).get(r.parentId)!).push(r);
    const ancestors: Lineage['ancestors'] = [];
    for (let p = snapshot.parentId, depth = -1; p !== null; depth--) {
      const r = byId.get(p);
      if (r === undefined) break;
      ancestors.push({ record: r, depth });
      p = r.parentId;
    }
    const descendants: Lineage['descendants'] = [];
    const visit = (id: string, depth: number): void => {
      for (const c of children.get(id) ?? []) {
        descendants.push({ record: c, depth });
        visit(c.id, depth + 1);
      }
    };
    visit(snapshot.id, 1);
    return { snapshot, ancestors, descendants };
  }

  async diff(fromRef: string, toRef: string): Promise<SnapshotDiffResult> {
    const from = await this.get(fromRef);
    const to = await this.get(toRef);
    const tree = await diffTrees(this.deps.reader, from.fsHash, to.fsHash);
    const names = new Set([...Object.keys(from.envVars), ...Object.keys(to.envVars)]);
    const envChanged = [...names].filter((n) => from.envVars[n] !== to.envVars[n]).sort();
    return { from, to, envChanged, ...tree };
  }

  /** A new instance whose files, modes, symlinks and env are the snapshot's. */
  async restore(ref: string, input: RestoreInput = {}): Promise<InstanceRecord> {
    const [instance] = await this.branch(ref, 1, input);
    return instance!;
  }

  /**
   * `count` independent instances from one snapshot: the tree is materialized once and every
   * instance gets a copy-on-write view of it. All or nothing: when one fails to start, the
   * others are deleted and the error is rethrown.
   */
  async branch(ref: string, count: number, input: RestoreInput = {}): Promise<InstanceRecord[]> {
    if (!Number.isInteger(count) || count < 1) throw new FaasError('VALIDATION_FAILED', `count must be a positive integer, not ${count}`, { count });
    if (count > 1 && input.id !== undefined) throw new FaasError('VALIDATION_FAILED', 'an instance id can only be chosen for a single instance', { count });
    return this.withTreeShared(async () => {
      const snapshot = await this.get(ref);
      const treeDir = await this.deps.trees.materialize(snapshot.fsHash, this.deps.runtime.environmentRoot(snapshot.env));
      const request = { env: snapshot.env, env_vars: snapshot.envVars, limits: input.limits, metadata: input.metadata, ...(input.id !== undefined ? { id: input.id } : {}) };
      const memoryImage = await this.memoryImageFor(snapshot);
      const origin = { snapshotId: snapshot.id, treeDir, ...(memoryImage !== undefined ? { memoryImage } : {}) };
      const results = await Promise.allSettled(Array.from({ length: count }, () => this.deps.instances.create(request, origin)));
      const created = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure !== undefined) {
        await Promise.all(created.map((r) => this.deps.instances.delete(r.id, 'branch_failed').catch(() => undefined)));
        throw failure.reason;
      }
      return created;
    });
  }

  /**
   * The snapshot's memory image when this runtime can resume it; a snapshot without one, or a
   * runtime without memory snapshots, restores files only (processes start afresh).
   */
  private async memoryImageFor(snapshot: SnapshotRecord): Promise<MemoryImageSource | undefined> {
    if (snapshot.memoryHash === null || !this.deps.runtime.capabilities.memorySnapshots) return undefined;
    return loadMemoryImage(this.deps.blobs, snapshot.memoryHash, this.deps.runtime.name);
  }

  /** Instances restored or branched from a snapshot (or from any, without a ref) that are not deleted. */
  async listBranches(ref?: string): Promise<{ snapshot: SnapshotRecord | undefined; instances: InstanceRecord[] }> {
    const snapshot = ref === undefined ? undefined : await this.get(ref);
    const live = ['starting', 'running', 'stopped', 'failed'] as const;
    const instances =
      snapshot === undefined
        ? (await this.deps.store.instances.list({ states: live })).filter((r) => r.sourceSnapshotId !== null)
        : await this.deps.store.instances.list({ states: live, sourceSnapshotId: snapshot.id });
    return { snapshot, instances };
  }

  /**
   * Deletes a snapshot. Refused (SNAPSHOT_IN_USE) while child snapshots or instances made from
   * it exist, unless `cascade`: then its descendants go too, and the instances made from any of
   * them are deleted first. Returns the deleted ids, descendants first.
   */
  async delete(ref: string, cascade: boolean): Promise<string[]> {
    return this.withTreeExclusive(async () => {
      const snapshot = await this.get(ref);
      const { descendants } = await this.lineage(snapshot.id);
      const doomed = [snapshot, ...descendants.map((d) => d.record)];
      const users = new Map<string, InstanceRecord[]>();
      for (const s of doomed) users.set(s.id, (await this.listBranches(s.id)).instances);
      if (!cascade) {
        const children = descendants.filter((d) => d.depth === 1).map((d) => d.record.id);
        const instances = users.get(snapshot.id)!.map((r) => r.id);
        if (children.length > 0 || instances.length > 0) {
          const what = [children.length > 0 ? `${children.length} child snapshot(s)` : '', instances.length > 0 ? `${instances.length} instance(s) made from it` : ''].filter(Boolean).join(' and ');
          throw new FaasError('SNAPSHOT_IN_USE', `snapshot ${snapshot.id} has ${what}; delete them first or pass cascade=true`, { snapshot_id: snapshot.id, children, instances });
        }
      }
      for (const list of users.values()) await Promise.all(list.map((r) => this.deps.instances.delete(r.id, `snapshot_deleted: ${snapshot.id}`)));
      // Deepest first, so no row ever points at a parent that is already gone.
      const ids = [...descendants].sort((a, b) => b.depth - a.depth).map((d) => d.record.id).concat(snapshot.id);
      await this.deps.store.withTransaction(async (tx) => {
        await tx.snapshots.delete(ids);
        for (const inst of await tx.instances.list({ states: ['starting', 'running', 'stopped', 'failed'] })) {
          if (inst.lastSnapshotId !== null && ids.includes(inst.lastSnapshotId)) await tx.instances.update(inst.id, { lastSnapshotId: null });
        }
      });
      for (const [instanceId, cache] of this.caches) if (cache.owner !== undefined && ids.includes(cache.owner)) this.caches.get(instanceId)?.clear();
      await this.removeUnusedTrees();
      return ids;
    });
  }

  /**
   * Three-way merge of two or more snapshots against their nearest common ancestor: changes
   * that do not overlap combine; a path (or env var) changed differently by two inputs is a
   * conflict, settled by the strategy or refused with MERGE_CONFLICT listing every one, with
   * nothing written. The result is a new snapshot recording every input as a parent.
   */
  async merge(input: MergeInput): Promise<MergeReport> {
    const { store, blobs, reader, clock } = this.deps;
    const started = clock.monotonicMs();
    if ((input.branchIds === undefined) === (input.snapshotIds === undefined)) {
      throw new FaasError('VALIDATION_FAILED', 'give exactly one of branch_ids and snapshot_ids', { fields: ['branch_ids', 'snapshot_ids'] });
    }
    const refs = input.branchIds ?? input.snapshotIds!;
    // Inputs cannot be deleted while their subtrees are being reused.
    return this.withTreeShared(async () => {
      const inputs: SnapshotRecord[] = [];
      for (const ref of refs) {
        const s = input.branchIds !== undefined ? await this.resolve(ref) : await this.get(ref);
        if (!inputs.some((i) => i.id === s.id)) inputs.push(s);
      }
      if (inputs.length < 2) throw new FaasError('VALIDATION_FAILED', 'a merge needs two or more different snapshots', { snapshot_ids: inputs.map((s) => s.id) });
      const env = inputs[0]!.env;
      if (inputs.some((s) => s.env !== env)) throw new FaasError('VALIDATION_FAILED', 'snapshots of different environments cannot be merged', { envs: inputs.map((s) => s.env) });
      let strategy: TreeMergeStrategy = input.strategy ?? 'fail';
      if (typeof strategy === 'object') {
        // {prefer} may name an input as it was given (a branch execution id) or by snapshot id or hash.
        const wanted = strategy.prefer;
        const at = refs.indexOf(wanted);
        const preferred = at >= 0 ? await (input.branchIds !== undefined ? this.resolve(wanted) : this.get(wanted)) : inputs.find((s) => s.id === wanted || s.contentHash === wanted);
        if (preferred === undefined) throw new FaasError('VALIDATION_FAILED', `strategy.prefer ${JSON.stringify(wanted)} is not one of the inputs`, { prefer: wanted });
        strategy = { prefer: preferred.id };
      }

      const all = new Map((await store.snapshots.all()).map((s) => [s.id, s]));
      const parentsOf = async (id: string): Promise<readonly string[]> => {
        const s = all.get(id);
        if (s === undefined) return [];
        return s.mergeParentIds.length > 0 ? s.mergeParentIds : s.parentId !== null ? [s.parentId] : [];
      };
      const baseId = await findCommonAncestor(parentsOf, inputs.map((s) => s.id));
      if (baseId === undefined) throw new FaasError('MERGE_UNRELATED', `snapshots ${inputs.map((s) => s.id).join(', ')} share no ancestor`, { snapshot_ids: inputs.map((s) => s.id) });
      const base = all.get(baseId)!;

      const outcome = await mergeTrees(reader, base.fsHash, inputs.map((s) => ({ id: s.id, fsHash: s.fsHash })), strategy);
      const envMerge = mergeEnv(base.envVars, inputs, strategy);
      const conflicts = [...outcome.conflicts.map(conflictToWire), ...envMerge.conflicts];
      if (conflicts.length > 0) {
        throw new FaasError('MERGE_CONFLICT', `${conflicts.length} path(s) or env var(s) changed differently by the inputs; nothing was written (choose a strategy: ours, theirs or {prefer})`, {
          base_snapshot_id: base.id,
          conflicts: conflicts.slice(0, 1000),
          conflict_count: conflicts.length,
        });
      }
      const lease = blobs.lease();
      const batch = blobs.batch({ lease });
      try {
        const stored = await storeMergedTree(outcome, batch, lease);
        const committed = await batch.commit();
        const counts = { size: 0, fileCount: 0, dirCount: 0, symlinkCount: 0 };
        await reader.walk(stored.fsHash, (_path, e) => {
          if (e.type === 'file') {
            counts.fileCount++;
            counts.size += e.size;
          } else if (e.type === 'dir') counts.dirCount++;
          else counts.symlinkCount++;
        });
        const parent = parentInput(inputs.map((s) => s.contentHash));
        const hashes = hasher.hashSnapshot(null, stored.fsHash, envMerge.env, parent);
        const record: SnapshotRecord = {
          id: newId('snap'),
          contentHash: hashes.contentHash,
          parentId: inputs[0]!.id,
          parentHash: parent,
          fsHash: stored.fsHash,
          envHash: hashes.envHash,
          memoryHash: null,
          ...counts,
          storedBytes: committed.createdBytes,
          filesRead: 0,
          env,
          envVars: envMerge.env,
          metadata: input.metadata ?? {},
          sourceInstanceId: null,
          sourceExecutionId: null,
          deterministic: true,
          durationMs: Math.round((clock.monotonicMs() - started) * 100) / 100,
          createdAt: clock.now(),
          mergeParentIds: inputs.map((s) => s.id),
        };
        await store.snapshots.insert(record);
        const resolved = [...outcome.resolved.map((c) => ({ ...conflictToWire(c), winner: c.winner })), ...envMerge.resolved];
        return { snapshot: record, base, mergedFrom: record.mergeParentIds, resolved };
      } catch (err) {
        await batch.abort().catch(() => undefined);
        throw err;
      } finally {
        lease.release();
      }
    });
  }

  /** Recomputes every blob's hash and checks every snapshot's tree is complete. */
  async verify(): Promise<VerifyReport> {
    const { blobs, reader, store } = this.deps;
    const blobReport = await blobs.verify();
    const corruptSet = new Set(blobReport.corrupt.map((c) => c.hash));
    const missing: VerifyReport['missing'] = [];
    const snapshots = await store.snapshots.all();
    const checked = new Map<string, boolean>();
    for (const s of snapshots) {
      const report = (hash: string, path: string): void => {
        missing.push({ snapshotId: s.id, hash, path });
      };
      const exists = async (hash: string): Promise<boolean> => {
        let ok = checked.get(hash);
        if (ok === undefined) checked.set(hash, (ok = !corruptSet.has(hash) && (await blobs.has(hash))));
        return ok;
      };
      if (!(await exists(s.fsHash))) {
        report(s.fsHash, '');
        continue;
      }
      try {
        await reader.walk(s.fsHash, async (path, entry) => {
          if (entry.type === 'symlink') return;
          if (!(await exists(entry.hash!))) {
            report(entry.hash!, path.toString('utf8'));
            return false;
          }
          return undefined;
        });
      } catch (err) {
        if (!(err instanceof FaasError && err.code === 'SNAPSHOT_CORRUPT')) throw err;
        report((err.details as { hash?: string }).hash ?? s.fsHash, '');
      }
    }
    return { blobsChecked: blobReport.checked, corrupt: blobReport.corrupt, strays: blobReport.strays, snapshotsChecked: snapshots.length, missing };
  }

  /** Mark (every blob any snapshot reaches) and sweep; then drops trees no snapshot has. */
  async gc(options: { graceMs?: number } = {}): Promise<GcReport> {
    return this.withTreeExclusive(async () => {
      const live = new Set<string>();
      for (const s of await this.deps.store.snapshots.all()) {
        await this.deps.reader.collect(s.fsHash, live);
        if (s.memoryHash !== null) await collectMemoryImage(this.deps.blobs, s.memoryHash, live);
      }
      const result = await this.deps.blobs.gc((hash) => live.has(hash), options.graceMs === undefined ? {} : { graceMs: options.graceMs });
      const treesRemoved = await this.removeUnusedTrees();
      return { ...result, treesRemoved };
    });
  }

  /** Removes materialized trees whose fs hash no snapshot has any more. Under the exclusive guard. */
  private async removeUnusedTrees(): Promise<number> {
    const wanted = new Set((await this.deps.store.snapshots.all()).map((s) => s.fsHash));
    let removed = 0;
    for (const fsHash of await this.deps.trees.list()) {
      if (wanted.has(fsHash)) continue;
      await this.deps.trees.remove(fsHash);
      removed++;
    }
    return removed;
  }

  /** Runs `fn` while no delete or gc can remove trees (restores run concurrently with each other). */
  private async withTreeShared<T>(fn: () => Promise<T>): Promise<T> {
    await this.treeGuard.run(async () => {
      this.restoresInFlight++;
    });
    try {
      return await fn();
    } finally {
      this.restoresInFlight--;
      if (this.restoresInFlight === 0) for (const done of this.restoresDone.splice(0)) done();
    }
  }

  /** Runs `fn` once no restore is in flight, holding off new ones until it ends. */
  private async withTreeExclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.treeGuard.run(async () => {
      if (this.restoresInFlight > 0) await new Promise<void>((resolve) => this.restoresDone.push(resolve));
      return fn();
    });
  }
}

function conflictToWire(c: Conflict): WireConflict {
  return { ...wirePath(c.path), kind: c.kind, sides: c.sides.map((s) => ({ snapshot_id: s.id, state: s.state })) };
}

/** Env vars merged like paths: an input that left a var as the base had it does not count. */
function mergeEnv(base: Record<string, string>, inputs: readonly SnapshotRecord[], strategy: TreeMergeStrategy): { env: Record<string, string>; conflicts: WireConflict[]; resolved: WireConflict[] } {
  const env: Record<string, string> = {};
  const conflicts: WireConflict[] = [];
  const resolved: WireConflict[] = [];
  const names = new Set([...Object.keys(base), ...inputs.flatMap((s) => Object.keys(s.envVars))]);
  for (const name of [...names].sort()) {
    const changed = inputs.filter((s) => s.envVars[name] !== base[name]);
    const states = new Set(changed.map((s) => s.envVars[name] ?? null));
    let value: string | undefined = base[name];
    if (states.size === 1) value = changed[0]!.envVars[name];
    else if (states.size > 1) {
      const conflict: WireConflict = { path: name, kind: 'env', sides: changed.map((s) => ({ snapshot_id: s.id, state: s.envVars[name] === undefined ? 'unset' : `= ${s.envVars[name]!.length} chars` })) };
      const winner = strategy === 'ours' ? changed[0] : strategy === 'theirs' ? changed.at(-1) : typeof strategy === 'object' ? changed.find((s) => s.id === strategy.prefer) : undefined;
      if (winner === undefined) {
        conflicts.push(conflict);
        continue;
      }
      value = winner.envVars[name];
      resolved.push({ ...conflict, winner: winner.id });
    }
    if (value !== undefined) env[name] = value;
  }
  return { env, conflicts, resolved };
}
