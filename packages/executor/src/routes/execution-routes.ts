import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { Execution, KillRequest, type ExecutionStreamEvent } from '@faas/protocol';
import { executionToWire } from './wire-mapping.ts';
import { toFaasError } from './error-handler.ts';
import { typed, type RouteServices } from './route-context.ts';
import { startEventStream } from './event-stream-reply.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const AfterQuery = Type.Object(
  {
    after: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'Last seq the client has; events after it are sent.' })),
    access_token: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
/** A comment line every so often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

/** `after` from the query, else from the Last-Event-ID header EventSource sends on reconnect. */
export function afterSeq(request: { query: unknown; headers: FastifyRequest['headers'] }): number {
  const query = request.query as { after?: string };
  if (query.after !== undefined) return Number(query.after);
  const header = request.headers['last-event-id'];
  if (typeof header === 'string' && /^[0-9]{1,15}$/.test(header)) return Number(header);
  return 0;
}

export function executionRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const api = typed(app);
    api.get('/api/v1/executions/:id', { schema: { tags: ['executions'], summary: 'An execution with its output so far', params: IdParams, response: { 200: Execution } } }, async (request) => {
      const wire = executionToWire(await services.executions.get(request.params.id));
      if (wire.mode === 'checkpointed' || wire.mode === 'branched') {
        // What the run left, once it is taken (null while it runs or if taking it failed).
        const snapshot = await services.snapshots.leftBy(wire.id);
        wire.snapshot_id = snapshot?.id ?? null;
        wire.content_hash = snapshot?.contentHash ?? null;
      }
      return wire;
    });
    api.post(
      '/api/v1/executions/:id/kill',
      { schema: { tags: ['executions'], summary: 'Signal the whole process tree; answers once it ended', params: IdParams, body: Type.Optional(KillRequest), response: { 200: Execution } } },
      async (request) => {
        const body = request.body ?? {};
        const view = await services.executions.kill(request.params.id, body.signal ?? 'SIGKILL', body.grace_ms);
        return executionToWire(view);
      },
    );
    api.get(
      '/api/v1/executions/:id/events',
      { schema: { tags: ['executions'], summary: 'Server-sent events of an execution from a cursor (text/event-stream)', params: IdParams, querystring: AfterQuery } },
      async (request, reply) => {
        // Resolve the execution first: an unknown id is a plain 404, not an empty stream.
        const abort = new AbortController();
        const events = await services.executions.events(request.params.id, afterSeq(request), abort.signal);
        await sendSse(reply, events, abort);
      },
    );
  };
}

async function sendSse(reply: FastifyReply, events: AsyncGenerator<ExecutionStreamEvent>, abort: AbortController): Promise<void> {
  const { res, onClose } = startEventStream(reply, abort);
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  let lastSeq = 0;
  try {
    for await (const event of events) {
      lastSeq = event.seq;
      const ok = res.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      if (!ok) await new Promise<void>((resolve) => {
        const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
        res.once('drain', done);
        res.once('close', done);
      });
      if (abort.signal.aborted) break;
    }
  } catch (err) {
    // Streaming already began: the failure travels as an error event, not a broken connection.
    const faas = toFaasError(err);
    if (!res.writableEnded) res.write(`event: error\ndata: ${JSON.stringify({ type: 'error', seq: lastSeq, time: new Date().toISOString(), code: faas.code, message: faas.message })}\n\n`);
  } finally {
    clearInterval(keepalive);
    res.off('close', onClose);
    if (!res.writableEnded) res.end();
    await events.return(undefined);
  }
}

