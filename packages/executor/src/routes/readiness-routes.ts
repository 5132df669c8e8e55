import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { ReadinessRequest, ReadinessStatus, type ProbeResult, type ReadinessEvent, type ReadinessStatus as WireStatus } from '@faas/protocol';
import type { ProbeReport, ReadinessOutcome, RoundReport } from '../services/readiness/readiness-checker.ts';
import { toFaasError } from './error-handler.ts';
import { typed, type RouteServices } from './route-context.ts';
import { startEventStream } from './event-stream-reply.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

/**
 * `POST /api/v1/instances/:id/readiness`: a one-shot check, or a wait (`wait: true`), answered
 * as JSON, or with `Accept: text/event-stream` as one `probe` event per round and a final
 * `ready` / `not_ready` / `timeout` / `failed` event. A bad request is a plain error answer
 * either way: everything is validated before the stream starts.
 */
export function readinessRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const api = typed(app);
    api.post(
      '/api/v1/instances/:id/readiness',
      {
        schema: {
          tags: ['readiness'],
          summary: 'Check readiness probes once, or wait until they pass (Accept: text/event-stream streams each round)',
          params: IdParams,
          body: ReadinessRequest,
          response: { 200: ReadinessStatus },
        },
      },
      async (request, reply) => {
        const check = await services.readiness.prepare(request.params.id, request.body);
        const abort = new AbortController();
        if (!wantsEventStream(request.headers.accept)) {
          // The client hanging up while it waits ends the wait (the response's close: the
          // request's own fires once its body was read).
          reply.raw.once('close', () => abort.abort());
          return statusToWire(await services.readiness.run(check, { signal: abort.signal }));
        }
        await streamCheck(reply, abort, (onRound) => services.readiness.run(check, { signal: abort.signal, onRound }));
      },
    );
  };
}

function wantsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/event-stream\b/i.test(accept);
}

async function streamCheck(reply: FastifyReply, abort: AbortController, run: (onRound: (round: RoundReport) => void) => Promise<ReadinessOutcome>): Promise<void> {
  const { res, onClose } = startEventStream(reply, abort);
  // Events are small and few (one per period): no back-pressure handling is needed beyond the socket's buffer.
  const send = (event: ReadinessEvent) => {
    if (!res.writableEnded && !res.destroyed) res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  };
  try {
    const outcome = await run((round) =>
      send({
        type: 'probe',
        round: round.round,
        time: round.time.toISOString(),
        ok: round.ok,
        ready: round.ready,
        consecutive_successes: round.consecutiveSuccesses,
        consecutive_failures: round.consecutiveFailures,
        probes: round.probes.map(probeToWire),
      }),
    );
    send({ type: outcome.end, ...statusToWire(outcome) });
  } catch (err) {
    // The stream began: the failure travels as an error event, not a dropped connection.
    if (!abort.signal.aborted) {
      const faas = toFaasError(err);
      send({ type: 'error', code: faas.code, message: faas.message });
    }
  } finally {
    res.off('close', onClose);
    if (!res.writableEnded) res.end();
  }
}

export function statusToWire(o: ReadinessOutcome): WireStatus {
  return {
    ready: o.ready,
    checks_performed: o.checksPerformed,
    consecutive_successes: o.consecutiveSuccesses,
    consecutive_failures: o.consecutiveFailures,
    last_check: o.lastCheck === null ? null : o.lastCheck.toISOString(),
    probes: o.probes.map(probeToWire),
    message: o.message,
    timed_out: o.timedOut,
    failed: o.failed,
    elapsed_ms: Math.round(o.elapsedMs),
  };
}

function probeToWire(p: ProbeReport): ProbeResult {
  return { type: p.type, ok: p.ok, latency_ms: Math.round(p.latencyMs), message: p.message, last_failure: p.lastFailure };
}
