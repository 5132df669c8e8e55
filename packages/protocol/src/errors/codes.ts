/**
 * Stable error codes of the faas API.
 *
 * A code is a contract: clients branch on it. Codes are only ever added; a code that is no
 * longer produced stays listed (marked retired in docs/errors.md) and is never reused for a
 * different meaning. Every code has an HTTP status in `status-map.ts` (enforced by the type
 * checker) and an entry in docs/errors.md (enforced by a test).
 */
export const ErrorCode = {
  /** The request body is not valid JSON. */
  INVALID_JSON: 'INVALID_JSON',
  /** The request does not match the schema: unknown field, wrong type, missing field, bad value. */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** An environment variable name is not a portable shell identifier or a value holds NUL. */
  INVALID_ENV_VAR: 'INVALID_ENV_VAR',
  /** The request body exceeds the server's body limit. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** The request body has a content type the route does not accept. */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** No `Authorization: Bearer` header (or token) was given. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /** A bearer key was given but it is not the server's key. */
  INVALID_API_KEY: 'INVALID_API_KEY',
  /** No route matches the method and path. */
  ROUTE_NOT_FOUND: 'ROUTE_NOT_FOUND',
  /** No instance has this id. */
  INSTANCE_NOT_FOUND: 'INSTANCE_NOT_FOUND',
  /** No execution has this id. */
  EXECUTION_NOT_FOUND: 'EXECUTION_NOT_FOUND',
  /** No environment has this name. */
  ENVIRONMENT_NOT_FOUND: 'ENVIRONMENT_NOT_FOUND',
  /** The instance exists but is not running (stopped, failed, deleted, still starting). */
  INSTANCE_NOT_RUNNING: 'INSTANCE_NOT_RUNNING',
  /** The execution already finished; it cannot be killed or written to. */
  EXECUTION_FINISHED: 'EXECUTION_FINISHED',
  /** A client-chosen id is already used by a different request. */
  ID_CONFLICT: 'ID_CONFLICT',
  /** Retired (every mode is served): never produced, never reused. */
  MODE_NOT_SUPPORTED: 'MODE_NOT_SUPPORTED',
  /** The runtime lacks a capability the request needs (network egress, PTY, memory snapshots). */
  RUNTIME_UNSUPPORTED: 'RUNTIME_UNSUPPORTED',
  /** A requested limit (memory, CPU, pids, timeout) is outside what the server allows. */
  LIMIT_OUT_OF_RANGE: 'LIMIT_OUT_OF_RANGE',
  /** The server cannot take more instances or executions now; retry later. */
  CAPACITY_EXHAUSTED: 'CAPACITY_EXHAUSTED',
  /** The execution ended because the executor restarted while it ran. */
  EXECUTION_INTERRUPTED: 'EXECUTION_INTERRUPTED',
  /** The sandbox runtime failed (could not start an instance, could not spawn a process). */
  RUNTIME_ERROR: 'RUNTIME_ERROR',
  /** The server is shutting down and takes no new work. */
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  /** An unexpected server fault; the message says what, the logs say more. */
  INTERNAL_ERROR: 'INTERNAL_ERROR',
  /** No blob in the content-addressed store has this hash. */
  BLOB_NOT_FOUND: 'BLOB_NOT_FOUND',
  /** A blob hash is not a SHA-256 written as 64 lowercase hex characters. */
  INVALID_HASH: 'INVALID_HASH',
  /** Content written to the blob store did not hash to the hash its writer said it would. */
  BLOB_HASH_MISMATCH: 'BLOB_HASH_MISMATCH',
  /** No snapshot has this id or content hash. */
  SNAPSHOT_NOT_FOUND: 'SNAPSHOT_NOT_FOUND',
  /** The snapshot cannot be deleted: child snapshots or instances depend on it (cascade deletes children). */
  SNAPSHOT_IN_USE: 'SNAPSHOT_IN_USE',
  /** A snapshot's stored content is missing or corrupt, so it cannot be read or restored. */
  SNAPSHOT_CORRUPT: 'SNAPSHOT_CORRUPT',
  /** Merging found paths changed differently by two inputs; nothing was written (details list them). */
  MERGE_CONFLICT: 'MERGE_CONFLICT',
  /** The snapshots to merge share no ancestor, so there is no base to compare them with. */
  MERGE_UNRELATED: 'MERGE_UNRELATED',
  /** A branch_from or branch id names an execution that left no snapshot. */
  NO_SNAPSHOT_FOR_EXECUTION: 'NO_SNAPSHOT_FOR_EXECUTION',
  /** The client could not reach the server or the connection broke (SDK side only). */
  CONNECTION_FAILED: 'CONNECTION_FAILED',
  /** A path is malformed: absolute, empty, with '..' or '.' components, NUL, or not UTF-8. */
  INVALID_PATH: 'INVALID_PATH',
  /** A path would resolve outside the sync root (through '..' or a symlink). */
  PATH_OUTSIDE_ROOT: 'PATH_OUTSIDE_ROOT',
  /** No sync session has this id (it finished, expired, or never existed). */
  SYNC_NOT_FOUND: 'SYNC_NOT_FOUND',
  /** A sync was applied before every content it needs had arrived (details list what is missing). */
  SYNC_CONTENT_MISSING: 'SYNC_CONTENT_MISSING',
  /** Nothing accepts connections at the port inside the instance (connection refused or unreachable). */
  PORT_UNREACHABLE: 'PORT_UNREACHABLE',
  /** A connection to a port inside the instance was not established in time. */
  CONNECT_TIMEOUT: 'CONNECT_TIMEOUT',
  /** No SSH key of this instance has this id (or the instance has no live key). */
  SSH_KEY_NOT_FOUND: 'SSH_KEY_NOT_FOUND',
  /** A public key is not one OpenSSH authorized_keys line (or a private key was sent instead). */
  SSH_KEY_INVALID: 'SSH_KEY_INVALID',
  /** A key algorithm the server does not issue or accept (e.g. ssh-dss, RSA under 2048 bits). */
  SSH_ALGORITHM_UNSUPPORTED: 'SSH_ALGORITHM_UNSUPPORTED',
  /** The public key is already a live key of this instance. */
  SSH_KEY_EXISTS: 'SSH_KEY_EXISTS',
  /** The port of the instance is not exposed (or the instance does not exist): its public URL answers nothing. */
  PORT_NOT_EXPOSED: 'PORT_NOT_EXPOSED',
  /** The port is exposed already; un-expose it first to change its token. */
  PORT_ALREADY_EXPOSED: 'PORT_ALREADY_EXPOSED',
  /** The exposed port needs its access token and none was sent. */
  PORT_TOKEN_REQUIRED: 'PORT_TOKEN_REQUIRED',
  /** The access token sent for an exposed port is not its token. */
  PORT_TOKEN_INVALID: 'PORT_TOKEN_INVALID',
  /** The service inside the instance accepted the connection but sent no response headers in time. */
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  /** The service inside the instance closed the connection or answered with something that is not HTTP. */
  UPSTREAM_ERROR: 'UPSTREAM_ERROR',
  /** SDK only: no entrant of a race succeeded (details list each one's failure). */
  RACE_FAILED: 'RACE_FAILED',
  /** The client gave up waiting for the server (SDK side only). */
  CLIENT_TIMEOUT: 'CLIENT_TIMEOUT',
  /** A readiness probe's settings are wrong for its type (unknown type, missing field, port out of range, bad regex). */
  INVALID_PROBE: 'INVALID_PROBE',
  /** SDK only: waitForReady ended without the instance becoming ready (timed out, or failed with stopOnFailure). */
  NOT_READY: 'NOT_READY',
  /** No session has this id (a session id, or the id of one of its executions). */
  SESSION_NOT_FOUND: 'SESSION_NOT_FOUND',
  /** The session has ended (completed, failed or terminated): it takes no heartbeat, extension, checkpoint or stop. */
  SESSION_NOT_ACTIVE: 'SESSION_NOT_ACTIVE',
  /** An extension would pass the server's cap (started_at + sessionMaxDurationMs) or the session's max_extensions. */
  SESSION_EXTENSION_REFUSED: 'SESSION_EXTENSION_REFUSED',
  /** A resume is not possible: the session is still live, its deadline passed, or it has nothing to resume from. */
  SESSION_NOT_RESUMABLE: 'SESSION_NOT_RESUMABLE',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** All codes, in declaration order. */
export const ALL_ERROR_CODES: readonly ErrorCode[] = Object.values(ErrorCode);
