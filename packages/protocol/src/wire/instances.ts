import { Type, type Static } from 'typebox';
import { AppliedLimits, EnvVars, Id, IsoTime, Limits } from './common.ts';

export const InstanceState = Type.Union(
  [Type.Literal('starting'), Type.Literal('running'), Type.Literal('stopped'), Type.Literal('failed'), Type.Literal('deleted')],
  { description: 'stopped: its processes are gone but its files are kept (state_reason says why); deleted: gone for good.' },
);
export type InstanceState = Static<typeof InstanceState>;

/** `POST /api/v1/instances`. */
export const CreateInstanceRequest = Type.Object(
  {
    id: Type.Optional(Id),
    env: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Environment name. Default "host".' })),
    env_vars: Type.Optional(EnvVars),
    limits: Type.Optional(Limits),
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }), { description: 'Free-form labels.' })),
  },
  { additionalProperties: false },
);
export type CreateInstanceRequest = Static<typeof CreateInstanceRequest>;

export const Instance = Type.Object({
  id: Type.String(),
  state: InstanceState,
  state_reason: Type.Union([Type.String(), Type.Null()], { description: 'Why the instance left running: deleted, executor_restart, start_failed, ...' }),
  env: Type.String(),
  runtime: Type.String(),
  env_vars: EnvVars,
  limits: AppliedLimits,
  metadata: Type.Record(Type.String(), Type.String()),
  created_at: IsoTime,
  started_at: Type.Union([IsoTime, Type.Null()]),
  stopped_at: Type.Union([IsoTime, Type.Null()]),
  start_duration_ms: Type.Union([Type.Integer(), Type.Null()], { description: 'Measured time the runtime took to start it.' }),
  source_snapshot_id: Type.Union([Type.String(), Type.Null()], { description: 'The snapshot it was restored or branched from; its next snapshot has it as parent.' }),
});
export type Instance = Static<typeof Instance>;

export const InstanceList = Type.Object({ instances: Type.Array(Instance) });
export type InstanceList = Static<typeof InstanceList>;

export const ListInstancesQuery = Type.Object(
  {
    state: Type.Optional(InstanceState),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
  },
  { additionalProperties: false },
);
