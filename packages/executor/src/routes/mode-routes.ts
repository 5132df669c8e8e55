import type { FastifyInstance } from 'fastify';
import { FaasError, CacheStats, InvalidateCacheRequest, InvalidateCacheResult, MergeRequest, MergeResult } from '@faas/protocol';
import { snapshotToWire } from './wire-mapping.ts';
import { typed, type RouteServices } from './route-context.ts';

/** The result cache of cached mode, and branch merging (docs/execution-modes.md). */
export function modeRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const api = typed(app);
    api.post('/api/v1/cache/invalidate', { schema: { tags: ['execute'], summary: 'Drop cached results: all, or by cache_key, env or age', body: InvalidateCacheRequest, response: { 200: InvalidateCacheResult } } }, async (request) => {
      const { all, cache_key, env, older_than_ms } = request.body;
      if (all !== true && cache_key === undefined && env === undefined && older_than_ms === undefined) {
        throw new FaasError('VALIDATION_FAILED', 'say what to invalidate: all: true, or cache_key, env or older_than_ms', { fields: ['all', 'cache_key', 'env', 'older_than_ms'] });
      }
      const removed = await services.cache.invalidate(request.body);
      return { removed, remaining: (await services.cache.stats()).entries };
    });
    api.get('/api/v1/cache', { schema: { tags: ['execute'], summary: 'Result cache size, bounds and hit counts', response: { 200: CacheStats } } }, async () => services.cache.stats());
    api.post('/api/v1/branches/merge', { schema: { tags: ['snapshots'], summary: 'Three-way merge of branches into a new snapshot', body: MergeRequest, response: { 201: MergeResult } } }, async (request, reply) => {
      const { branch_ids, snapshot_ids, strategy, metadata } = request.body;
      const r = await services.snapshots.merge({ branchIds: branch_ids, snapshotIds: snapshot_ids, strategy, metadata });
      return reply.status(201).send({ snapshot: snapshotToWire(r.snapshot), base_snapshot_id: r.base.id, merged_from: r.mergedFrom, resolved_conflicts: r.resolved });
    });
  };
}
