import { Type, type Static } from 'typebox';
import { IsoTime } from './common.ts';

/**
 * Readiness probes (`POST /api/v1/instances/:id/readiness`), see docs/readiness.md.
 *
 * One probe object carries the fields of every probe type; which ones apply depends on `type`.
 * The schema checks JSON types (VALIDATION_FAILED); the server checks what a type needs and
 * takes (INVALID_PROBE, naming the probe's index and field), so a mistake in one probe of
 * several gets an error that says which one, instead of one line per union member.
 */

/** Most probes in one request. */
export const MAX_PROBES = 16;
/** Shortest period between the starts of two rounds. */
export const MIN_PERIOD_MS = 50;
/** Longest regular expression of a log probe, in characters. */
export const MAX_LOG_PATTERN_LENGTH = 512;

/** The probe types, in the order docs/readiness.md describes them. */
export const PROBE_TYPES = ['http', 'tcp', 'command', 'file', 'log'] as const;
export type ProbeType = (typeof PROBE_TYPES)[number];

export const ReadinessProbe = Type.Object(
  {
    type: Type.String({ maxLength: 32, description: 'http, tcp, command, file or log.' }),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000, description: "This probe's own timeout. Default: the request's timeout_ms." })),
    port: Type.Optional(Type.Integer({ description: 'http, tcp: port inside the instance, 1..65535.' })),
    host: Type.Optional(Type.String({ maxLength: 64, description: "http, tcp: address inside the instance: a loopback address or one of the instance's own. Default 127.0.0.1." })),
    path: Type.Optional(
      Type.String({ maxLength: 4096, description: 'http: the request path, starting with "/" (default "/"). file: an absolute path inside the instance.' }),
    ),
    expected_status: Type.Optional(
      Type.Array(Type.Integer(), { minItems: 1, maxItems: 32, description: 'http: statuses that count as success. Default: any of 200-399 (redirects are not followed).' }),
    ),
    expected_body: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'http: the body (its first 64 KiB) must contain this text.' })),
    command: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 256, description: 'command: argv to run inside the instance; success is exit 0.' })),
    code: Type.Optional(Type.String({ minLength: 1, maxLength: 16_384, description: 'command: shell code run with /bin/sh -c instead of an argv.' })),
    non_empty: Type.Optional(Type.Boolean({ description: 'file: also require a regular file of at least one byte (or a directory with an entry).' })),
    execution_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'log: an execution of this instance whose output is searched.' })),
    pattern: Type.Optional(Type.String({ description: `log: a JavaScript regular expression, at most ${MAX_LOG_PATTERN_LENGTH} characters, matched against each line of output.` })),
    stream: Type.Optional(Type.String({ description: 'log: stdout, stderr or both (default both).' })),
  },
  { additionalProperties: false },
);
export type ReadinessProbe = Static<typeof ReadinessProbe>;

/** The settings of a readiness check, with Kubernetes meanings. */
const ReadinessSettings = {
  initial_delay_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000, description: 'Wait this long before the first round. Default 0.' })),
  period_ms: Type.Optional(Type.Integer({ minimum: MIN_PERIOD_MS, maximum: 60_000, description: `From the start of one round to the start of the next (at least ${MIN_PERIOD_MS}). Default 500.` })),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000, description: 'Timeout of each probe that sets none itself. Default 1000.' })),
  success_threshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Consecutive passing rounds that make the instance ready. Default 1.' })),
  failure_threshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Consecutive failing rounds that make it not ready (and end a wait with stop_on_failure). Default 3.' })),
};

export const ReadinessRequest = Type.Object(
  {
    probes: Type.Array(ReadinessProbe, { minItems: 1, maxItems: MAX_PROBES, description: 'All must pass in one round for the round to pass; they run concurrently.' }),
    ...ReadinessSettings,
    wait: Type.Optional(Type.Boolean({ description: 'Keep checking every period_ms until ready, failed (stop_on_failure) or wait_timeout_ms. Default false: check once.' })),
    wait_timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000, description: 'wait: give up after this long (initial delay included). Default 30000.' })),
    stop_on_failure: Type.Optional(Type.Boolean({ description: 'wait: end as failed once failure_threshold consecutive rounds failed. Default false.' })),
  },
  { additionalProperties: false },
);
export type ReadinessRequest = Static<typeof ReadinessRequest>;

export const ProbeResult = Type.Object({
  type: Type.String(),
  ok: Type.Boolean(),
  latency_ms: Type.Integer({ description: 'How long the probe took, measured.' }),
  message: Type.String({ description: 'What the probe saw: a status, an exit code and output (cut short), or why it failed.' }),
  last_failure: Type.Union([Type.String(), Type.Null()], { description: "The message of this probe's most recent failure in this check, or null if it never failed." }),
});
export type ProbeResult = Static<typeof ProbeResult>;

export const ReadinessStatus = Type.Object({
  ready: Type.Boolean(),
  checks_performed: Type.Integer({ description: 'Rounds run.' }),
  consecutive_successes: Type.Integer(),
  consecutive_failures: Type.Integer(),
  last_check: Type.Union([IsoTime, Type.Null()], { description: 'When the last round ended (null when none ran).' }),
  probes: Type.Array(ProbeResult, { description: 'The results of the last round, one per probe in request order.' }),
  message: Type.String(),
  timed_out: Type.Boolean({ description: 'wait: wait_timeout_ms passed before the instance became ready.' }),
  failed: Type.Boolean({ description: 'wait with stop_on_failure: failure_threshold consecutive rounds failed.' }),
  elapsed_ms: Type.Integer({ description: 'From the request to this answer, measured.' }),
});
export type ReadinessStatus = Static<typeof ReadinessStatus>;

/** One round, as a `probe` event of the streaming variant. */
export interface ReadinessRoundEvent {
  type: 'probe';
  round: number;
  time: string;
  ok: boolean;
  ready: boolean;
  consecutive_successes: number;
  consecutive_failures: number;
  probes: ProbeResult[];
}

/** The last event of the streaming variant: its name says how the check ended. */
export interface ReadinessFinalEvent extends ReadinessStatus {
  type: 'ready' | 'not_ready' | 'timeout' | 'failed';
}

/** A failure after the stream began (the instance stopped, the server shuts down). */
export interface ReadinessErrorEvent {
  type: 'error';
  code: string;
  message: string;
}

export type ReadinessEvent = ReadinessRoundEvent | ReadinessFinalEvent | ReadinessErrorEvent;
