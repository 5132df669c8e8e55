import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { EnvironmentList, FaasError, WarmRequest, WarmResult } from '@faas/protocol';
import { typed, type RouteServices } from './route-context.ts';

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });

export function environmentRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const api = typed(app);
    const { catalog, pool } = services.environments;
    api.get('/api/v1/environments', { schema: { tags: ['environments'], summary: 'Environments: their tools, identity and warm pool', response: { 200: EnvironmentList } } }, async () => {
      const entries = await catalog.list();
      return { environments: entries.map((e) => ({ ...e, pool: pool.stats(e.name) })) };
    });
    api.post(
      '/api/v1/environments/:name/warm',
      { schema: { tags: ['environments'], summary: 'Set how many instances the environment keeps started ahead of demand (0 drains)', params: NameParams, body: WarmRequest, response: { 200: WarmResult } } },
      async (request) => {
        const env = request.params.name;
        if (!pool.has(env)) throw new FaasError('ENVIRONMENT_NOT_FOUND', `no environment named ${JSON.stringify(env)}`, { env, available: (await catalog.list()).map((e) => e.name) });
        const { count } = request.body;
        if (count > services.maxInstances) {
          throw new FaasError('VALIDATION_FAILED', `count must be at most the server's max_instances (${services.maxInstances}), got ${count}`, { errors: [{ path: '/count', message: `must be <= ${services.maxInstances}` }] });
        }
        const stats = await pool.setTarget(env, count);
        return { env, target: stats.target, ready: stats.ready, updated_at: pool.updatedAt(env).toISOString() };
      },
    );
  };
}
