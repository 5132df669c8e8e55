import { Type, type Static } from 'typebox';
import { EnvVars, Id, IsoTime, Language } from './common.ts';

/**
 * Long-running sessions (docs/sessions.md): an execution with a hard deadline, heartbeats,
 * an idle timeout, scheduled checkpoints and explicit extensions.
 */

export const SessionState = Type.Union(
  [
    Type.Literal('starting'),
    Type.Literal('running'),
    Type.Literal('checkpointing'),
    Type.Literal('expiring'),
    Type.Literal('completed'),
    Type.Literal('failed'),
    Type.Literal('terminated'),
  ],
  { description: 'completed: the command exited 0 by itself; failed: it exited non-zero by itself; terminated: faas ended it (see state_reason).' },
);
export type SessionState = Static<typeof SessionState>;

/** Why a session ended (state terminated), or why it is expiring. */
export const SessionEndReason = Type.Union(
  [
    Type.Literal('max_duration'),
    Type.Literal('idle_timeout'),
    Type.Literal('stopped'),
    Type.Literal('killed'),
    Type.Literal('executor_restart'),
    Type.Literal('instance_ended'),
  ],
  { description: 'max_duration: the deadline passed; idle_timeout: no heartbeat for idle_timeout_ms; stopped: POST .../stop; killed: POST .../kill or a signal not sent by faas; executor_restart: the executor restarted; instance_ended: its instance stopped, died or was deleted.' },
);
export type SessionEndReason = Static<typeof SessionEndReason>;

const NonNegativeMs = (description: string) => Type.Integer({ minimum: 0, description });

/** `POST /api/v1/executions/long-running`. */
export const StartSessionRequest = Type.Object(
  {
    command: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 4096, description: 'argv; the first item is looked up in PATH.' })),
    code: Type.Optional(Type.String({ minLength: 1, description: 'Source run by the interpreter of `language` (sh by default).' })),
    language: Type.Optional(Language),
    env_vars: Type.Optional(EnvVars),
    working_dir: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Absolute path inside the instance. Default /workspace.' })),
    instance_id: Type.Optional(Id),
    env: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Environment of a new instance (without instance_id). Default "host".' })),
    memory_mb: Type.Optional(Type.Integer({ minimum: 1 })),
    cpu_cores: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    pids_max: Type.Optional(Type.Integer({ minimum: 1 })),
    max_duration_ms: Type.Integer({ minimum: 1, description: 'Hard cap: the deadline is started_at + this. At most the server\'s sessionMaxDurationMs (24 h by default).' }),
    heartbeat_interval_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'How often the client means to heartbeat (informational; bounds how much heartbeat time a restart may lose).' })),
    idle_timeout_ms: Type.Optional(NonNegativeMs('No heartbeat for this long ends the session (reason idle_timeout). 0 or absent: no idle timeout.')),
    grace_period_ms: Type.Optional(NonNegativeMs('Between SIGTERM and SIGKILL when the session is ended. Default 10000.')),
    checkpoint_interval_ms: Type.Optional(NonNegativeMs('A snapshot of the instance this often. 0 or absent: none (a final one is still taken before any termination).')),
    max_extensions: Type.Optional(NonNegativeMs('How many times the deadline may be extended. Default 0.')),
    auto_extend: Type.Optional(Type.Boolean({ description: 'At the deadline, extend by max_duration_ms instead of ending, while extensions remain and the cap allows.' })),
  },
  { additionalProperties: false },
);
export type StartSessionRequest = Static<typeof StartSessionRequest>;

export const SessionCheckpoint = Type.Object({
  id: Type.String({ description: 'The snapshot id.' }),
  content_hash: Type.String(),
  created_at: IsoTime,
  size_bytes: Type.Integer(),
});
export type SessionCheckpoint = Static<typeof SessionCheckpoint>;

export const Session = Type.Object({
  id: Type.String({ description: 'sess-...' }),
  execution_id: Type.String({ description: 'The current execution (a resume starts a new one).' }),
  instance_id: Type.String(),
  state: SessionState,
  state_reason: Type.Union([SessionEndReason, Type.Null()]),
  started_at: IsoTime,
  deadline: IsoTime,
  last_heartbeat: IsoTime,
  heartbeat_interval_ms: Type.Union([Type.Integer(), Type.Null()]),
  idle_timeout_ms: Type.Integer(),
  grace_period_ms: Type.Integer(),
  checkpoint_interval_ms: Type.Integer(),
  checkpoints: Type.Array(SessionCheckpoint, { description: 'Oldest first; each one\'s parent is the one before.' }),
  extended_count: Type.Integer(),
  max_extensions: Type.Integer(),
  auto_extend: Type.Boolean(),
  exit_code: Type.Union([Type.Integer(), Type.Null()]),
});
export type Session = Static<typeof Session>;

export const HeartbeatResponse = Type.Object({ id: Type.String(), last_heartbeat: IsoTime, deadline: IsoTime, state: SessionState });
export type HeartbeatResponse = Static<typeof HeartbeatResponse>;

export const ExtendSessionRequest = Type.Object(
  { duration_ms: Type.Integer({ minimum: 1, description: 'Added to the current deadline.' }) },
  { additionalProperties: false },
);
export type ExtendSessionRequest = Static<typeof ExtendSessionRequest>;
