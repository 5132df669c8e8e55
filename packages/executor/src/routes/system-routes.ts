import type { FastifyInstance } from 'fastify';
import { Health, MetricsSummary } from '@faas/protocol';
import { typed, type RouteServices } from './route-context.ts';

export function systemRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const started = Date.now();
    typed(app).get('/health', { schema: { tags: ['system'], summary: 'Liveness and what this server offers (no key needed)', response: { 200: Health } } }, async () => {
      const caps = services.runtime.capabilities;
      return {
        status: 'ok' as const,
        version: services.version,
        runtime: services.runtime.name,
        capabilities: { memory_snapshots: caps.memorySnapshots, network: [...caps.network], pty: caps.pty, limits: [...caps.limits] },
        uptime_ms: Date.now() - started,
      };
    });
    typed(app).get('/api/v1/metrics', { schema: { tags: ['system'], summary: 'Counts and measured latency percentiles', response: { 200: MetricsSummary } } }, async () => services.metrics.summary());
    app.get('/metrics', { schema: { tags: ['system'], summary: 'Prometheus text format (no key needed)', hide: false } }, async (_request, reply) => {
      void reply.header('content-type', services.metrics.registry.contentType);
      return services.metrics.registry.metrics();
    });
  };
}
