import { Type, type Static } from 'typebox';

/**
 * Ids chosen by a client (execution ids in `POST /execute`) or by the server. Lower-case so an
 * instance id can also be the sandbox's hostname.
 */
export const IdPattern = '^[a-z0-9][a-z0-9-]{2,62}$';
export const Id = Type.String({ pattern: IdPattern, description: 'Resource id: 3-63 chars of a-z, 0-9 and "-", starting alphanumeric.' });

/** A portable environment variable name (what POSIX shells accept). */
export const ENV_VAR_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Environment variables for a process; names are checked by the service, not the schema, for a precise error. */
export const EnvVars = Type.Record(Type.String(), Type.String(), {
  description: 'Environment variables: names are [A-Za-z_][A-Za-z0-9_]*, values may not contain NUL.',
});

export const IsoTime = Type.String({ description: 'ISO-8601 time' });

/** Resource limits of an instance. Omitted fields take the server defaults. */
export const Limits = Type.Object(
  {
    memory_mb: Type.Optional(Type.Integer({ minimum: 1, description: 'Memory limit in MiB (RAM; no swap).' })),
    cpu_cores: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'CPU quota in cores (0.5 = half a core).' })),
    pids_max: Type.Optional(Type.Integer({ minimum: 1, description: 'Maximum number of processes and threads.' })),
  },
  { additionalProperties: false },
);
export type Limits = Static<typeof Limits>;

/** Limits as applied, every field present. */
export const AppliedLimits = Type.Object({
  memory_mb: Type.Integer(),
  cpu_cores: Type.Number(),
  pids_max: Type.Integer(),
});
export type AppliedLimits = Static<typeof AppliedLimits>;

export const Language = Type.Union([Type.Literal('sh'), Type.Literal('bash'), Type.Literal('python'), Type.Literal('node')], {
  description: 'Interpreter for `code`. Default sh.',
});
export type Language = Static<typeof Language>;
