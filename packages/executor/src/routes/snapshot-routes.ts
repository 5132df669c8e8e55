import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import {
  BranchList,
  CreateBranchesRequest,
  CreateSnapshotRequest,
  DeleteSnapshotQuery,
  DeleteSnapshotResult,
  DiffQuery,
  GcRequest,
  GcResult,
  Instance,
  Lineage,
  ListBranchesQuery,
  ListSnapshotsQuery,
  RestoreSnapshotRequest,
  Snapshot,
  SnapshotDiff,
  SnapshotList,
  SnapshotRef,
  VerifyResult,
} from '@faas/protocol';
import { diffToWire, instanceToWire, lineageToWire, snapshotToWire } from './wire-mapping.ts';
import { typed, type RouteServices } from './route-context.ts';

const RefParams = Type.Object({ ref: SnapshotRef });

export function snapshotRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const api = typed(app);
    const { snapshots } = services;
    api.post('/api/v1/snapshots', { schema: { tags: ['snapshots'], summary: "Snapshot an instance's files and env", body: CreateSnapshotRequest, response: { 201: Snapshot } } }, async (request, reply) => {
      const { instance_id, execution_id, metadata, deterministic } = request.body;
      const record = await snapshots.create({ instanceId: instance_id, executionId: execution_id, metadata, deterministic });
      return reply.status(201).send(snapshotToWire(record));
    });
    api.get('/api/v1/snapshots', { schema: { tags: ['snapshots'], summary: 'List snapshots, newest first', querystring: ListSnapshotsQuery, response: { 200: SnapshotList } } }, async (request) => {
      const { parent_id, instance_id, limit } = request.query;
      const records = await snapshots.list({ parentRef: parent_id, instanceId: instance_id, limit: limit ? Number(limit) : undefined });
      return { snapshots: records.map(snapshotToWire) };
    });
    api.get('/api/v1/snapshots/diff', { schema: { tags: ['snapshots'], summary: 'Paths added, removed and modified between two snapshots', querystring: DiffQuery, response: { 200: SnapshotDiff } } }, async (request) =>
      diffToWire(await snapshots.diff(request.query.from, request.query.to)),
    );
    api.post('/api/v1/snapshots/verify', { schema: { tags: ['snapshots'], summary: 'Re-hash every blob and check every snapshot is complete', response: { 200: VerifyResult } } }, async () => {
      const r = await snapshots.verify();
      return {
        ok: r.corrupt.length === 0 && r.missing.length === 0,
        blobs_checked: r.blobsChecked,
        corrupt_blobs: r.corrupt.map((c) => ({ hash: c.hash, actual_hash: c.actualHash, size: c.size })),
        stray_files: r.strays,
        snapshots_checked: r.snapshotsChecked,
        missing_blobs: r.missing.map((m) => ({ snapshot_id: m.snapshotId, hash: m.hash, path: m.path })),
      };
    });
    api.post('/api/v1/snapshots/gc', { schema: { tags: ['snapshots'], summary: 'Remove blobs and trees no snapshot references', body: GcRequest, response: { 200: GcResult } } }, async (request) => {
      const r = await snapshots.gc({ graceMs: request.body.grace_ms });
      return { blobs_scanned: r.scanned, blobs_deleted: r.deleted, freed_bytes: r.freedBytes, blobs_kept: r.kept, temp_files_removed: r.tempFilesRemoved, trees_removed: r.treesRemoved };
    });
    api.get('/api/v1/snapshots/:ref', { schema: { tags: ['snapshots'], summary: 'Get a snapshot by id or content hash', params: RefParams, response: { 200: Snapshot } } }, async (request) =>
      snapshotToWire(await snapshots.get(request.params.ref)),
    );
    api.delete(
      '/api/v1/snapshots/:ref',
      { schema: { tags: ['snapshots'], summary: 'Delete a snapshot (cascade=true: with its descendants and the instances made from them)', params: RefParams, querystring: DeleteSnapshotQuery, response: { 200: DeleteSnapshotResult } } },
      async (request) => ({ deleted: await snapshots.delete(request.params.ref, request.query.cascade === 'true') }),
    );
    api.get('/api/v1/snapshots/:ref/lineage', { schema: { tags: ['snapshots'], summary: 'Ancestors and descendants of a snapshot', params: RefParams, response: { 200: Lineage } } }, async (request) =>
      lineageToWire(await snapshots.lineage(request.params.ref)),
    );
    api.post(
      '/api/v1/snapshots/:ref/restore',
      { schema: { tags: ['snapshots'], summary: 'A new instance with the snapshot\'s files and env', params: RefParams, body: RestoreSnapshotRequest, response: { 201: Instance } } },
      async (request, reply) => reply.status(201).send(instanceToWire(await snapshots.restore(request.params.ref, request.body))),
    );
    api.post('/api/v1/branches', { schema: { tags: ['snapshots'], summary: 'Independent copy-on-write instances from one snapshot', body: CreateBranchesRequest, response: { 201: BranchList } } }, async (request, reply) => {
      const { snapshot_id, count, limits, metadata } = request.body;
      const created = await snapshots.branch(snapshot_id, count ?? 1, { limits, metadata });
      return reply.status(201).send({ snapshot_id: created[0]!.sourceSnapshotId, branches: created.map(instanceToWire) });
    });
    api.get('/api/v1/branches', { schema: { tags: ['snapshots'], summary: 'Instances made from a snapshot (or from any)', querystring: ListBranchesQuery, response: { 200: BranchList } } }, async (request) => {
      const { snapshot, instances } = await snapshots.listBranches(request.query.snapshot_id);
      return { snapshot_id: snapshot?.id ?? null, branches: instances.map(instanceToWire) };
    });
  };
}
