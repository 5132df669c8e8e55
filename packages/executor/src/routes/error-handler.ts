import { FaasError, type ErrorBody } from '@faas/protocol';
import type { FastifyError, FastifyInstance } from 'fastify';

/** Fastify's own error codes → ours. Anything else under 500 is a malformed request. */
const FASTIFY_CODES: Record<string, FaasError['code']> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
};

/** The one place errors become responses: `{error: {code, message, details}}` with the mapped status. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | FaasError | Error, request, reply) => {
    const faas = toFaasError(error);
    if (faas.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: faas.code, msg: faas.message }, 'request rejected');
    void reply.status(faas.status).send(faas.toBody() satisfies ErrorBody);
  });
  app.setNotFoundHandler((request, reply) => {
    const err = new FaasError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`, { method: request.method });
    void reply.status(err.status).send(err.toBody());
  });
}

export function toFaasError(error: unknown): FaasError {
  if (error instanceof FaasError) return error;
  const fe = error as FastifyError & { validation?: Array<{ instancePath: string; message?: string; params?: Record<string, unknown> }>; validationContext?: string };
  if (Array.isArray(fe.validation)) {
    const seen = new Set<string>();
    const errors = fe.validation
      .map((v) => {
        const extra = v.params?.additionalProperty;
        const allowed = v.params?.allowedValue;
        const path = `${fe.validationContext === 'body' ? '' : `${fe.validationContext ?? ''}:`}${v.instancePath || '/'}`;
        const message = extra !== undefined ? `unknown field ${JSON.stringify(extra)}` : allowed !== undefined ? 'is not one of the allowed values' : (v.message ?? 'invalid');
        return { path, message };
      })
      // A union reports one failure per member; one line per path and message is enough.
      .filter((e) => !seen.has(`${e.path} ${e.message}`) && seen.add(`${e.path} ${e.message}`) !== undefined);
    const first = errors[0]!;
    return new FaasError('VALIDATION_FAILED', `invalid request: ${first.path} ${first.message}`, { errors });
  }
  const code = typeof fe.code === 'string' ? FASTIFY_CODES[fe.code] : undefined;
  if (code !== undefined) return new FaasError(code, fe.message);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new FaasError('VALIDATION_FAILED', fe.message, {}, { status: fe.statusCode });
  }
  return new FaasError('INTERNAL_ERROR', `internal error: ${(error as Error)?.message ?? String(error)}`);
}
