import { Type, type Static } from 'typebox';
import { EnvVars, Id, IsoTime, Language } from './common.ts';

export const ExitReason = Type.Union(
  [Type.Literal('exited'), Type.Literal('signaled'), Type.Literal('timeout'), Type.Literal('oom'), Type.Literal('killed')],
  { description: 'exited: the process ended by itself (see exit_code); signaled: a signal it did not get from faas; timeout: timeout_ms passed; oom: the memory limit; killed: the kill API.' },
);
export type ExitReason = Static<typeof ExitReason>;

export const ExecutionStatus = Type.Union([Type.Literal('running'), Type.Literal('completed'), Type.Literal('interrupted')], {
  description: 'interrupted: the executor restarted while the execution ran; its output up to then is kept.',
});
export type ExecutionStatus = Static<typeof ExecutionStatus>;

/** What to run: exactly one of `command` (argv, no shell) or `code` (source for `language`). */
const ProcessFields = {
  command: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 4096, description: 'argv; the first item is looked up in PATH.' })),
  code: Type.Optional(Type.String({ minLength: 1, description: 'Source run by the interpreter of `language` (sh by default).' })),
  language: Type.Optional(Language),
  env_vars: Type.Optional(EnvVars),
  working_dir: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Absolute path inside the instance. Default /workspace.' })),
  stdin: Type.Optional(Type.String({ description: 'Bytes written to the process standard input, then closed.' })),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'Kill the whole process tree after this long. Default from the server.' })),
};

export const ExecModeName = Type.Union([
  Type.Literal('ephemeral'),
  Type.Literal('cached'),
  Type.Literal('checkpointed'),
  Type.Literal('branched'),
  Type.Literal('persistent'),
]);
export type ExecModeName = Static<typeof ExecModeName>;

/** `POST /api/v1/execute`: one execution, in the instance its mode says (docs/execution-modes.md). */
export const ExecuteRequest = Type.Object(
  {
    id: Type.Optional(Id),
    ...ProcessFields,
    mode: Type.Optional(ExecModeName),
    cache_key: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'cached: an extra key input, e.g. a version of inputs the command reads.' })),
    cache_failures: Type.Optional(Type.Boolean({ description: 'cached: also cache results with a non-zero exit code (never timeouts, OOM or kills).' })),
    checkpoint: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'checkpointed: restore this snapshot (id or content hash) first.' })),
    branch_from: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'branched: the snapshot (id or hash) or an execution that left one.' })),
    instance_id: Type.Optional(Id),
    function_id: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'persistent: a stable name; its instance is created on first use.' })),
    env: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Environment name. Default "host".' })),
    memory_mb: Type.Optional(Type.Integer({ minimum: 1 })),
    cpu_cores: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    pids_max: Type.Optional(Type.Integer({ minimum: 1 })),
    background: Type.Optional(Type.Boolean({ description: 'Answer 202 with the execution id at once; the instance is still destroyed when the execution ends.' })),
  },
  { additionalProperties: false },
);
export type ExecuteRequest = Static<typeof ExecuteRequest>;

/** `POST /api/v1/instances/:id/exec`. */
export const ExecRequest = Type.Object(
  {
    id: Type.Optional(Id),
    ...ProcessFields,
    background: Type.Optional(Type.Boolean({ description: 'Return the execution id at once instead of waiting for the result.' })),
  },
  { additionalProperties: false },
);
export type ExecRequest = Static<typeof ExecRequest>;

/** The result of a finished (or, with status running, a live) execution. */
export const Execution = Type.Object({
  id: Type.String(),
  instance_id: Type.String(),
  status: ExecutionStatus,
  command: Type.Array(Type.String()),
  working_dir: Type.String(),
  exit_code: Type.Union([Type.Integer(), Type.Null()]),
  exit_reason: Type.Union([ExitReason, Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  stdout: Type.String(),
  stderr: Type.String(),
  stdout_bytes: Type.Integer(),
  stderr_bytes: Type.Integer(),
  output_truncated: Type.Boolean({ description: 'True when output passed the per-execution cap; the rest was discarded.' }),
  progress: Type.Union([Type.Number(), Type.Null()]),
  last_seq: Type.Integer({ description: 'Sequence number of the last event in the log.' }),
  started_at: IsoTime,
  finished_at: Type.Union([IsoTime, Type.Null()]),
  duration_ms: Type.Union([Type.Integer(), Type.Null()], { description: 'Measured from process start to exit.' }),
  mode: Type.Optional(ExecModeName),
  cached: Type.Optional(Type.Boolean({ description: 'cached mode: true when this is a stored result (duration_ms is the original run\'s).' })),
  cache_latency_ms: Type.Optional(Type.Number({ description: 'cached hit: what answering from the cache took on the server.' })),
  snapshot_id: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'checkpointed and branched: the snapshot of the state the run left.' })),
  content_hash: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  base_snapshot_id: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'checkpointed and branched: the snapshot the run started from.' })),
});
export type Execution = Static<typeof Execution>;

/** `POST /api/v1/instances/:id/exec` with background: true. */
export const ExecStarted = Type.Object({
  id: Type.String(),
  instance_id: Type.String(),
  status: ExecutionStatus,
  events_url: Type.String(),
  stream_url: Type.String(),
});
export type ExecStarted = Static<typeof ExecStarted>;

export const KillRequest = Type.Object(
  {
    signal: Type.Optional(Type.Union([Type.Literal('SIGKILL'), Type.Literal('SIGTERM'), Type.Literal('SIGINT'), Type.Literal('SIGHUP')])),
    grace_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000, description: 'With a signal other than SIGKILL: SIGKILL the whole tree after this long.' })),
  },
  { additionalProperties: false },
);
export type KillRequest = Static<typeof KillRequest>;

export const ExecutionList = Type.Object({ executions: Type.Array(Execution) });
