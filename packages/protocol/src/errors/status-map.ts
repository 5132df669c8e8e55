import type { ErrorCode } from './codes.ts';

/**
 * HTTP status for every error code. Typed as a full Record so adding a code without a status
 * fails to compile. SDK-only codes carry the status 0: they never come from the server.
 */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  INVALID_JSON: 400,
  VALIDATION_FAILED: 400,
  INVALID_ENV_VAR: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNAUTHORIZED: 401,
  INVALID_API_KEY: 401,
  ROUTE_NOT_FOUND: 404,
  INSTANCE_NOT_FOUND: 404,
  EXECUTION_NOT_FOUND: 404,
  ENVIRONMENT_NOT_FOUND: 404,
  INSTANCE_NOT_RUNNING: 409,
  EXECUTION_FINISHED: 409,
  ID_CONFLICT: 409,
  MODE_NOT_SUPPORTED: 501,
  RUNTIME_UNSUPPORTED: 501,
  LIMIT_OUT_OF_RANGE: 400,
  CAPACITY_EXHAUSTED: 503,
  EXECUTION_INTERRUPTED: 500,
  RUNTIME_ERROR: 500,
  SHUTTING_DOWN: 503,
  INTERNAL_ERROR: 500,
  BLOB_NOT_FOUND: 404,
  INVALID_HASH: 400,
  BLOB_HASH_MISMATCH: 400,
  SNAPSHOT_NOT_FOUND: 404,
  SNAPSHOT_IN_USE: 409,
  SNAPSHOT_CORRUPT: 500,
  MERGE_CONFLICT: 409,
  MERGE_UNRELATED: 422,
  NO_SNAPSHOT_FOR_EXECUTION: 404,
  INVALID_PATH: 400,
  PATH_OUTSIDE_ROOT: 400,
  SYNC_NOT_FOUND: 404,
  SYNC_CONTENT_MISSING: 409,
  CONNECTION_FAILED: 0,
  CLIENT_TIMEOUT: 0,
  RACE_FAILED: 0,
};

/** True for codes a client may retry after a pause without changing the request. */
export function isRetryableCode(code: string): boolean {
  return code === 'CAPACITY_EXHAUSTED' || code === 'SHUTTING_DOWN' || code === 'CONNECTION_FAILED';
}
