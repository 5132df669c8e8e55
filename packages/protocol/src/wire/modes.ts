import { Type, type Static } from 'typebox';
import { IsoTime } from './common.ts';
import { Snapshot } from './snapshots.ts';

/** `POST /api/v1/cache/invalidate`: everything, or the entries of one cache key / environment. */
export const InvalidateCacheRequest = Type.Object(
  {
    all: Type.Optional(Type.Boolean()),
    cache_key: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    env: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    older_than_ms: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type InvalidateCacheRequest = Static<typeof InvalidateCacheRequest>;
export const InvalidateCacheResult = Type.Object({ removed: Type.Integer(), remaining: Type.Integer() });

export const CacheStats = Type.Object({
  entries: Type.Integer(),
  bytes: Type.Integer(),
  max_bytes: Type.Integer(),
  ttl_ms: Type.Integer(),
  hits: Type.Integer(),
  misses: Type.Integer(),
  evictions: Type.Integer(),
});
export type CacheStats = Static<typeof CacheStats>;

export const MergeStrategy = Type.Union([Type.Literal('fail'), Type.Literal('ours'), Type.Literal('theirs'), Type.Object({ prefer: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false })], {
  description: 'fail (default): conflicts are an error; ours: the first input wins; theirs: the last input wins; {prefer}: that input (snapshot id/hash, or branch execution id) wins.',
});
export type MergeStrategy = Static<typeof MergeStrategy>;

/** `POST /api/v1/branches/merge`: exactly one of branch_ids and snapshot_ids, two or more. */
export const MergeRequest = Type.Object(
  {
    branch_ids: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 2, maxItems: 64, description: 'Executions of branched (or checkpointed) runs.' })),
    snapshot_ids: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 2, maxItems: 64 })),
    strategy: Type.Optional(MergeStrategy),
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }), { maxProperties: 64 })),
  },
  { additionalProperties: false },
);
export type MergeRequest = Static<typeof MergeRequest>;

export const MergeConflict = Type.Object({
  path: Type.String(),
  path_base64: Type.Optional(Type.String()),
  kind: Type.Union([Type.Literal('content'), Type.Literal('mode'), Type.Literal('type'), Type.Literal('delete_modify'), Type.Literal('env')]),
  sides: Type.Array(Type.Object({ snapshot_id: Type.String(), state: Type.String({ description: 'What this input has there: e.g. "file 0644 12 bytes <hash>", "deleted".' }) })),
  winner: Type.Optional(Type.String({ description: 'In resolved_conflicts: the snapshot whose state was taken.' })),
});
export type MergeConflict = Static<typeof MergeConflict>;

export const MergeResult = Type.Object({
  snapshot: Snapshot,
  base_snapshot_id: Type.String({ description: 'The common ancestor the inputs were compared with.' }),
  merged_from: Type.Array(Type.String()),
  resolved_conflicts: Type.Array(MergeConflict, { description: 'Conflicts the strategy settled, and how.' }),
});
export type MergeResult = Static<typeof MergeResult>;

export const Environment = Type.Object({
  name: Type.String(),
  runtime: Type.String(),
  description: Type.String(),
  contains: Type.Array(Type.Object({ name: Type.String(), version: Type.Union([Type.String(), Type.Null()]), path: Type.String() }), { description: 'Interpreters and tools found in it.' }),
  identity: Type.String({ description: 'Hash of what the environment provides; part of every cache key.' }),
  pool: Type.Object({ target: Type.Integer(), ready: Type.Integer(), hits: Type.Integer(), misses: Type.Integer() }),
});
export type Environment = Static<typeof Environment>;
export const EnvironmentList = Type.Object({ environments: Type.Array(Environment) });

export const WarmRequest = Type.Object({ count: Type.Integer({ minimum: 0, maximum: 256 }) }, { additionalProperties: false });
export const WarmResult = Type.Object({ env: Type.String(), target: Type.Integer(), ready: Type.Integer(), updated_at: IsoTime });
