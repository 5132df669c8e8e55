/**
 * The SDK's one adapter from an error answer to a FaasError (STYLE point 8): whatever a server
 * or a proxy in front of it sends, the caller gets a FaasError with `code`, `status` and
 * `details`, and can branch on the code.
 */
import { ErrorCode, FaasError, parseErrorBody } from '@faas/protocol/errors';

/** Codes used when an error response carries no code this SDK knows, by HTTP status. */
const FALLBACK_CODES: Record<number, ErrorCode> = {
  401: ErrorCode.UNAUTHORIZED,
  404: ErrorCode.ROUTE_NOT_FOUND,
  409: ErrorCode.ID_CONFLICT,
  413: ErrorCode.PAYLOAD_TOO_LARGE,
  415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  501: ErrorCode.RUNTIME_UNSUPPORTED,
};

/**
 * Narrows a code string from the wire to a known ErrorCode.
 *
 * @example
 * isKnownErrorCode('INSTANCE_NOT_FOUND'); // true
 */
export function isKnownErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ErrorCode, code);
}

/**
 * Builds the FaasError for a non-2xx answer. A body in the documented error shape keeps its
 * code, message and details; anything else (a proxy's HTML page, a code newer than this SDK)
 * still becomes a FaasError with the real status, a code chosen by status, and the original
 * code or text in `details`.
 *
 * @example
 * errorFromResponse(404, { error: { code: 'INSTANCE_NOT_FOUND', message: 'no instance x' } }, '');
 */
export function errorFromResponse(status: number, body: unknown, text: string): FaasError {
  const parsed = parseErrorBody(body);
  if (parsed && isKnownErrorCode(parsed.code)) {
    return new FaasError(parsed.code, parsed.message, parsed.details ?? {}, { status });
  }
  const fallback = FALLBACK_CODES[status] ?? (status >= 500 ? ErrorCode.INTERNAL_ERROR : ErrorCode.VALIDATION_FAILED);
  if (parsed) {
    return new FaasError(fallback, parsed.message, { ...parsed.details, server_code: parsed.code }, { status });
  }
  const snippet = text.slice(0, 500);
  return new FaasError(fallback, `HTTP ${status}${snippet ? `: ${snippet}` : ''}`, { body: snippet }, { status });
}

/** The FaasError a failed answer carries (its JSON error body, else its status and text). Reads the body. */
export async function errorFromFailedResponse(response: Response): Promise<FaasError> {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return errorFromResponse(response.status, body, text);
}
