import { ErrorCode } from './codes.ts';
import { ERROR_STATUS } from './status-map.ts';

/** The JSON body of every error response: `{"error": {code, message, details}}`. */
export interface ErrorBody {
  error: {
    code: ErrorCode | string;
    message: string;
    details?: Record<string, unknown>;
  };
}

/**
 * The one error type both sides throw. Services throw it with a stable code; the server's
 * error handler turns it into an {@link ErrorBody} with the mapped status; the SDK turns an
 * {@link ErrorBody} back into it.
 *
 * @example
 * throw new FaasError('INSTANCE_NOT_FOUND', `no instance ${id}`, { instance_id: id });
 */
export class FaasError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FaasError';
    this.code = code;
    this.status = options?.status ?? ERROR_STATUS[code];
    this.details = details;
  }

  toBody(): ErrorBody {
    return Object.keys(this.details).length > 0
      ? { error: { code: this.code, message: this.message, details: this.details } }
      : { error: { code: this.code, message: this.message } };
  }
}

/**
 * Shape check rather than `instanceof`, so errors that crossed a realm or a duplicated copy
 * of this package are still recognised.
 */
export function isFaasError(value: unknown): value is FaasError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { status?: unknown }).status === 'number' &&
    typeof (value as { message?: unknown }).message === 'string' &&
    (value as { code: string }).code in ErrorCode
  );
}

/** Parses an error response body; returns undefined when it is not one. */
export function parseErrorBody(value: unknown): ErrorBody['error'] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const error = (value as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message, details } = error as Record<string, unknown>;
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  return details !== null && typeof details === 'object'
    ? { code, message, details: details as Record<string, unknown> }
    : { code, message };
}
