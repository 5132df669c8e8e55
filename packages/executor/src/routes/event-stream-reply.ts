import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/**
 * Takes the reply over for a `text/event-stream` answer: status and headers go out at once (no
 * proxy buffering, no caching), and `abort` is aborted when the client goes away. The caller
 * writes the events and ends `res`; `onClose` is the listener to remove when it ends first.
 */
export function startEventStream(reply: FastifyReply, abort: AbortController): { res: ServerResponse; onClose: () => void } {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  const onClose = (): void => abort.abort();
  res.once('close', onClose);
  return { res, onClose };
}
