import type { FastifyInstance } from 'fastify';
import { ExecStarted, ExecuteRequest, Execution } from '@faas/protocol';
import type { ExecuteResult } from '../services/execute-service.ts';
import { executionToWire, startedToWire } from './wire-mapping.ts';
import { typed, type RouteServices } from './route-context.ts';

/** The execution with what its mode adds (docs/execution-modes.md). */
function resultToWire({ view, outcome }: ExecuteResult): Execution {
  const wire: Execution = { ...executionToWire(view), mode: outcome.mode };
  if (outcome.mode === 'cached') wire.cached = false;
  if (outcome.snapshot !== undefined) {
    wire.snapshot_id = outcome.snapshot?.id ?? null;
    wire.content_hash = outcome.snapshot?.contentHash ?? null;
  }
  if (outcome.base !== undefined) wire.base_snapshot_id = outcome.base?.id ?? null;
  return wire;
}

export function executeRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    typed(app).post(
      '/api/v1/execute',
      {
        schema: {
          tags: ['executions'],
          summary: 'Run one command in the instance its mode says (ephemeral by default: a fresh one, destroyed after)',
          body: ExecuteRequest,
          response: { 200: Execution, 202: ExecStarted },
        },
      },
      async (request, reply) => {
        const started = await services.execute.start(request.body);
        if (started.kind === 'cached') {
          if (request.body.background === true) return reply.status(202).send({ ...startedToWire(started.execution.id, started.execution.instance_id), status: started.execution.status });
          return started.execution;
        }
        if (request.body.background === true) {
          void started.finished.catch(() => undefined);
          return reply.status(202).send(startedToWire(started.id, started.instanceId));
        }
        return resultToWire(await started.finished);
      },
    );
  };
}
