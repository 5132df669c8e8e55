/**
 * The calls around the execution modes behind the flat client methods: the result cache,
 * branch merges, environments and warm pools, each wire call written once.
 */
import { ErrorCode, isFaasError } from '@faas/protocol/errors';
import type { CacheStats as WireCacheStats, Environment as WireEnvironment, MergeConflict as WireMergeConflict, MergeResult as WireMergeResult } from '@faas/protocol/wire';
import { environmentPath } from './api-paths.ts';
import type { HttpTransport } from './http-transport.ts';
import type { CacheFilter, CacheStats, Environment, InvalidateCacheResult, MergeConflict, MergeOptions, MergeResult, WarmResult } from './mode-types.ts';
import { fromWireCacheStats, fromWireEnvironment, fromWireMergeConflict, fromWireMergeResult, fromWireWarm, toWireInvalidateCache, toWireMerge } from './wire-mapping.ts';

/**
 * The conflicts of a MERGE_CONFLICT error, in camelCase; null for any other error.
 *
 * @example
 * try {
 *   await client.mergeBranches([a.id, b.id]);
 * } catch (error) {
 *   const conflicts = mergeConflicts(error);
 *   if (!conflicts) throw error;
 *   for (const c of conflicts) console.log(c.path, c.kind);
 * }
 */
export function mergeConflicts(error: unknown): MergeConflict[] | null {
  if (!isFaasError(error) || error.code !== ErrorCode.MERGE_CONFLICT) return null;
  const conflicts = error.details.conflicts;
  return Array.isArray(conflicts) ? (conflicts as WireMergeConflict[]).map(fromWireMergeConflict) : [];
}

export class ModesApi {
  readonly #transport: HttpTransport;

  constructor(transport: HttpTransport) {
    this.#transport = transport;
  }

  async invalidateCache(filter: CacheFilter): Promise<InvalidateCacheResult> {
    // Dropping again drops nothing more: harmless to repeat.
    const wire = await this.#transport.request<InvalidateCacheResult>({ method: 'POST', path: '/api/v1/cache/invalidate', body: toWireInvalidateCache(filter), idempotent: true });
    return { removed: wire.removed, remaining: wire.remaining };
  }

  async cacheStats(): Promise<CacheStats> {
    return fromWireCacheStats(await this.#transport.request<WireCacheStats>({ method: 'GET', path: '/api/v1/cache' }));
  }

  async merge(ids: string[], options: MergeOptions): Promise<MergeResult> {
    // Not repeated: a retry after a lost answer would write a second merge snapshot.
    return fromWireMergeResult(await this.#transport.request<WireMergeResult>({ method: 'POST', path: '/api/v1/branches/merge', body: toWireMerge(ids, options) }));
  }

  async listEnvironments(): Promise<Environment[]> {
    const wire = await this.#transport.request<{ environments: WireEnvironment[] }>({ method: 'GET', path: '/api/v1/environments' });
    return wire.environments.map(fromWireEnvironment);
  }

  async warm(name: string, count: number): Promise<WarmResult> {
    const wire = await this.#transport.request<{ env: string; target: number; ready: number; updated_at: string }>({
      method: 'POST',
      path: `${environmentPath(name)}/warm`,
      body: { count },
      idempotent: true, // it sets a target: the same again changes nothing
    });
    return fromWireWarm(wire);
  }
}
