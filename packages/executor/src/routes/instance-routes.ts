import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { CreateInstanceRequest, ExecRequest, ExecStarted, Execution, ExecutionList, Instance, InstanceList, ListInstancesQuery } from '@faas/protocol';
import { executionToWire, instanceToWire, startedToWire } from './wire-mapping.ts';
import { typed, type RouteServices } from './route-context.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const LimitQuery = Type.Object({ limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })) }, { additionalProperties: false });

export function instanceRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const api = typed(app);
    api.post('/api/v1/instances', { schema: { tags: ['instances'], summary: 'Create and start an instance', body: CreateInstanceRequest, response: { 201: Instance } } }, async (request, reply) => {
      const record = await services.instances.create(request.body ?? {});
      return reply.status(201).send(instanceToWire(record));
    });
    api.get('/api/v1/instances', { schema: { tags: ['instances'], summary: 'List instances, newest first', querystring: ListInstancesQuery, response: { 200: InstanceList } } }, async (request) => {
      const { state, limit } = request.query;
      const records = await services.instances.list({ states: state ? [state] : undefined, limit: limit ? Number(limit) : undefined });
      return { instances: records.map(instanceToWire) };
    });
    api.get('/api/v1/instances/:id', { schema: { tags: ['instances'], summary: 'Get an instance (deleted ones too)', params: IdParams, response: { 200: Instance } } }, async (request) =>
      instanceToWire(await services.instances.get(request.params.id)),
    );
    api.delete('/api/v1/instances/:id', { schema: { tags: ['instances'], summary: 'Delete an instance: its processes and files go', params: IdParams, response: { 200: Instance } } }, async (request) =>
      instanceToWire(await services.instances.delete(request.params.id)),
    );
    api.post(
      '/api/v1/instances/:id/exec',
      { schema: { tags: ['executions'], summary: 'Run a process in a running instance', params: IdParams, body: ExecRequest, response: { 200: Execution, 202: ExecStarted } } },
      async (request, reply) => {
        const requestStarted = services.clock.monotonicMs();
        const instance = await services.instances.requireRunning(request.params.id);
        const { id, done } = await services.executions.start(instance, request.body, { ephemeral: false, requestStarted });
        if (request.body.background === true) {
          void done.catch(() => undefined);
          return reply.status(202).send(startedToWire(id, instance.id));
        }
        await done;
        return executionToWire(await services.executions.get(id));
      },
    );
    api.get(
      '/api/v1/instances/:id/executions',
      { schema: { tags: ['executions'], summary: 'Executions of an instance, newest first', params: IdParams, querystring: LimitQuery, response: { 200: ExecutionList } } },
      async (request) => {
        await services.instances.get(request.params.id);
        const views = await services.executions.list(request.params.id, request.query.limit ? Number(request.query.limit) : 100);
        return { executions: views.map(executionToWire) };
      },
    );
  };
}
