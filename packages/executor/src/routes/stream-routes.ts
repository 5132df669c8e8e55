import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { toFaasError } from './error-handler.ts';
import { afterSeq } from './execution-routes.ts';
import type { RouteServices } from './route-context.ts';

/**
 * `GET /api/v1/stream/:id?after=SEQ` (WebSocket): the execution's events as JSON text
 * messages; closes with 1000 after the terminal event. Errors before or during the stream
 * are sent as an `error` message, then the socket closes with 1011 (or 1008 for a bad id).
 */
export function streamRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get(
      '/api/v1/stream/:id',
      { websocket: true, schema: { tags: ['executions'], summary: 'WebSocket stream of an execution from a cursor', hide: false } },
      async (socket: WebSocket, request: FastifyRequest<{ Params: { id: string }; Querystring: { after?: string } }>) => {
        const abort = new AbortController();
        socket.on('close', () => abort.abort());
        socket.on('error', () => abort.abort());
        const after = request.query.after;
        if (after !== undefined && !/^[0-9]{1,15}$/.test(after)) {
          socket.send(JSON.stringify({ type: 'error', seq: 0, time: new Date().toISOString(), code: 'VALIDATION_FAILED', message: 'after must be a non-negative integer' }));
          socket.close(1008, 'VALIDATION_FAILED');
          return;
        }
        let lastSeq = 0;
        try {
          const events = await services.executions.events(request.params.id, afterSeq(request), abort.signal);
          for await (const event of events) {
            if (socket.readyState !== socket.OPEN) break;
            lastSeq = event.seq;
            await new Promise<void>((resolve, reject) => socket.send(JSON.stringify(event), (err) => (err ? reject(err) : resolve())));
          }
          if (socket.readyState === socket.OPEN) socket.close(1000, 'done');
        } catch (err) {
          const faas = toFaasError(err);
          if (socket.readyState === socket.OPEN) {
            socket.send(JSON.stringify({ type: 'error', seq: lastSeq, time: new Date().toISOString(), code: faas.code, message: faas.message }));
            socket.close(faas.status === 404 ? 1008 : 1011, faas.code);
          }
        }
      },
    );
  };
}
