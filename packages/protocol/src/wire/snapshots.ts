import { Type, type Static } from 'typebox';
import { EnvVars, Id, IsoTime, Limits } from './common.ts';
import { Instance } from './instances.ts';

/** A snapshot id (`snap-` + 16 base32 chars) or a snapshot's content hash (64 lowercase hex). */
export const SnapshotRef = Type.String({ minLength: 1, maxLength: 128, description: 'Snapshot id (snap-...) or content hash (64 lowercase hex).' });
export const SNAPSHOT_ID_PATTERN = /^snap-[0-9a-z]{16}$/;
export const CONTENT_HASH_PATTERN = /^[0-9a-f]{64}$/;

const Metadata = Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }), { description: 'Free-form labels.', maxProperties: 64 });

/** `POST /api/v1/snapshots`: exactly one of instance_id and execution_id. */
export const CreateSnapshotRequest = Type.Object(
  {
    instance_id: Type.Optional(Id),
    execution_id: Type.Optional(Id),
    metadata: Type.Optional(Metadata),
    deterministic: Type.Optional(
      Type.Boolean({
        description:
          'Default true: the instance is frozen while its tree is read, so the snapshot is one consistent moment. false reads it live (processes keep running; files written meanwhile may be caught half way).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateSnapshotRequest = Static<typeof CreateSnapshotRequest>;

export const Snapshot = Type.Object({
  id: Type.String(),
  content_hash: Type.String({ description: 'The snapshot hash (docs/snapshot-hash.md): fs, env, memory and parent chained.' }),
  parent_id: Type.Union([Type.String(), Type.Null()]),
  parent_hash: Type.Union([Type.String(), Type.Null()]),
  fs_hash: Type.String(),
  env_hash: Type.String(),
  memory_hash: Type.Union([Type.String(), Type.Null()], { description: 'Null: this runtime keeps no memory image.' }),
  size: Type.Integer({ description: 'Sum of the sizes of the files in the tree, in bytes.' }),
  stored_bytes: Type.Integer({ description: 'Bytes this snapshot added to the blob store (new file contents and tree nodes).' }),
  file_count: Type.Integer(),
  files_read: Type.Integer({ description: "Files whose content this capture read; the others were unchanged since the instance's previous snapshot and were not read again." }),
  dir_count: Type.Integer(),
  symlink_count: Type.Integer(),
  created_at: IsoTime,
  metadata: Type.Record(Type.String(), Type.String()),
  env: Type.String({ description: 'Environment the instance ran in.' }),
  env_vars: EnvVars,
  source_instance_id: Type.Union([Type.String(), Type.Null()]),
  source_execution_id: Type.Union([Type.String(), Type.Null()]),
  deterministic: Type.Boolean(),
  merge_parent_ids: Type.Array(Type.String(), { description: 'A merge: every snapshot it merged, in order (parent_id is the first). Empty otherwise.' }),
  duration_ms: Type.Number({ description: 'Measured time the capture took, freeze to commit.' }),
});
export type Snapshot = Static<typeof Snapshot>;

export const SnapshotList = Type.Object({ snapshots: Type.Array(Snapshot) });
export type SnapshotList = Static<typeof SnapshotList>;

export const ListSnapshotsQuery = Type.Object(
  {
    parent_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Children of this snapshot (id or hash); "none" lists roots.' })),
    instance_id: Type.Optional(Id),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
  },
  { additionalProperties: false },
);
export type ListSnapshotsQuery = Static<typeof ListSnapshotsQuery>;

export const DeleteSnapshotQuery = Type.Object(
  { cascade: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')], { description: 'Also delete every descendant.' })) },
  { additionalProperties: false },
);
export const DeleteSnapshotResult = Type.Object({ deleted: Type.Array(Type.String(), { description: 'Ids deleted, descendants first.' }) });
export type DeleteSnapshotResult = Static<typeof DeleteSnapshotResult>;

export const LineageNode = Type.Object({
  id: Type.String(),
  content_hash: Type.String(),
  parent_id: Type.Union([Type.String(), Type.Null()]),
  depth: Type.Integer({ description: 'Generations from the snapshot asked about: -1 its parent, 1 its children.' }),
  created_at: IsoTime,
  metadata: Type.Record(Type.String(), Type.String()),
});
export type LineageNode = Static<typeof LineageNode>;

export const Lineage = Type.Object({
  snapshot: Snapshot,
  ancestors: Type.Array(LineageNode, { description: 'Parent first, up to the root.' }),
  descendants: Type.Array(LineageNode, { description: 'Depth-first, children in creation order; parent_id makes the tree.' }),
});
export type Lineage = Static<typeof Lineage>;

export const DiffQuery = Type.Object({ from: SnapshotRef, to: SnapshotRef }, { additionalProperties: false });

export const EntryType = Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink')]);

export const DiffEntry = Type.Object({
  path: Type.String({ description: 'Relative to the root, "/"-separated; bytes that are not UTF-8 show as U+FFFD (see path_base64).' }),
  path_base64: Type.Optional(Type.String({ description: 'The raw path bytes, present only when the path is not valid UTF-8.' })),
  type: EntryType,
  size: Type.Integer(),
});
export const DiffChange = Type.Object({
  path: Type.String(),
  path_base64: Type.Optional(Type.String()),
  type: EntryType,
  old_type: EntryType,
  old_size: Type.Integer(),
  size: Type.Integer(),
  changes: Type.Array(Type.Union([Type.Literal('content'), Type.Literal('mode'), Type.Literal('type'), Type.Literal('target')])),
});

export const SnapshotDiff = Type.Object({
  from: Type.String({ description: 'Snapshot id.' }),
  to: Type.String({ description: 'Snapshot id.' }),
  added: Type.Array(DiffEntry),
  removed: Type.Array(DiffEntry),
  modified: Type.Array(DiffChange),
  env_changed: Type.Array(Type.String(), { description: 'Names of env vars added, removed or changed.' }),
  summary: Type.Object({ added: Type.Integer(), removed: Type.Integer(), modified: Type.Integer(), bytes_added: Type.Integer(), bytes_removed: Type.Integer() }),
});
export type SnapshotDiff = Static<typeof SnapshotDiff>;

export const RestoreSnapshotRequest = Type.Object(
  {
    id: Type.Optional(Id),
    limits: Type.Optional(Limits),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);
export type RestoreSnapshotRequest = Static<typeof RestoreSnapshotRequest>;

export const CreateBranchesRequest = Type.Object(
  {
    snapshot_id: SnapshotRef,
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, description: 'Default 1.' })),
    limits: Type.Optional(Limits),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);
export type CreateBranchesRequest = Static<typeof CreateBranchesRequest>;

export const BranchList = Type.Object({ snapshot_id: Type.Union([Type.String(), Type.Null()]), branches: Type.Array(Instance) });
export type BranchList = Static<typeof BranchList>;

export const ListBranchesQuery = Type.Object({ snapshot_id: Type.Optional(SnapshotRef) }, { additionalProperties: false });

export const VerifyResult = Type.Object({
  ok: Type.Boolean({ description: 'Nothing corrupt or missing.' }),
  blobs_checked: Type.Integer(),
  corrupt_blobs: Type.Array(Type.Object({ hash: Type.String(), actual_hash: Type.String(), size: Type.Integer() })),
  stray_files: Type.Array(Type.String()),
  snapshots_checked: Type.Integer(),
  missing_blobs: Type.Array(Type.Object({ snapshot_id: Type.String(), hash: Type.String(), path: Type.String() })),
});
export type VerifyResult = Static<typeof VerifyResult>;

export const GcRequest = Type.Object(
  { grace_ms: Type.Optional(Type.Integer({ minimum: 0, description: 'Unreferenced blobs younger than this are kept. Default 600000.' })) },
  { additionalProperties: false },
);
export const GcResult = Type.Object({
  blobs_scanned: Type.Integer(),
  blobs_deleted: Type.Integer(),
  freed_bytes: Type.Integer(),
  blobs_kept: Type.Integer(),
  temp_files_removed: Type.Integer(),
  trees_removed: Type.Integer({ description: 'Materialized snapshot trees no longer needed.' }),
});
export type GcResult = Static<typeof GcResult>;
