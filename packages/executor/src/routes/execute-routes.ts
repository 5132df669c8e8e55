import type { FastifyInstance } from 'fastify';
import { ExecStarted, ExecuteRequest, Execution } from '@faas/protocol';
import { executionToWire, startedToWire } from './wire-mapping.ts';
import { typed, type RouteServices } from './route-context.ts';

export function executeRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    typed(app).post(
      '/api/v1/execute',
      {
        schema: {
          tags: ['executions'],
          summary: 'Run one command in a fresh instance that is destroyed after',
          body: ExecuteRequest,
          response: { 200: Execution, 202: ExecStarted },
        },
      },
      async (request, reply) => {
        const { id, finished } = await services.execute.start(request.body);
        if (request.body.background === true) {
          void finished.catch(() => undefined);
          const view = await services.executions.get(id);
          return reply.status(202).send(startedToWire(id, view.record.instanceId));
        }
        return executionToWire(await finished);
      },
    );
  };
}
