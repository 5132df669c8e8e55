import { Type, type Static } from 'typebox';

export const WireManifestEntry = Type.Object(
  {
    path: Type.String({ minLength: 1, maxLength: 4096 }),
    type: Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink')]),
    mode: Type.Integer({ minimum: 0, maximum: 0o7777 }),
    size: Type.Integer({ minimum: 0 }),
    mtime_ns: Type.String({ pattern: '^[0-9]{1,25}$' }),
    hash: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type WireManifestEntry = Static<typeof WireManifestEntry>;

export const WireSyncOptions = Type.Object(
  {
    use_gitignore: Type.Optional(Type.Boolean()),
    include_patterns: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { maxItems: 1000 })),
    exclude_patterns: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { maxItems: 1000 })),
    dry_run: Type.Optional(Type.Boolean()),
    checksum_only: Type.Optional(Type.Boolean()),
    delete_unmatched: Type.Optional(Type.Boolean()),
    preserve_timestamps: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type WireSyncOptions = Static<typeof WireSyncOptions>;

/** `POST /api/v1/instances/:id/sync` (docs/sync-protocol.md). */
export const SyncPlanRequest = Type.Object(
  {
    direction: Type.Union([Type.Literal('upload'), Type.Literal('download')]),
    remote_dir: Type.String({ minLength: 1, maxLength: 4096, description: 'Absolute path inside the instance.' }),
    options: Type.Optional(WireSyncOptions),
    manifest: Type.Array(WireManifestEntry, { maxItems: 1_000_000, description: 'The client tree: source of an upload, destination of a download.' }),
  },
  { additionalProperties: false },
);
export type SyncPlanRequest = Static<typeof SyncPlanRequest>;

export const WirePlanStep = Type.Object({
  action: Type.Union([Type.Literal('copy'), Type.Literal('update'), Type.Literal('delete'), Type.Literal('skip')]),
  path: Type.String(),
  type: Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink')]),
  reason: Type.String(),
  bytes: Type.Integer(),
  hash: Type.Optional(Type.String()),
});

export const SyncPlanResponse = Type.Object({
  sync_id: Type.Union([Type.String(), Type.Null()], { description: 'Null for a dry run.' }),
  plan: Type.Object({ steps: Type.Array(WirePlanStep) }),
  needed: Type.Array(Type.Object({ path: Type.String(), size: Type.Integer(), hash: Type.Optional(Type.String()) })),
  source: Type.Optional(
    Type.Array(WireManifestEntry, { description: 'Download: the instance entries of every path the plan copies or updates and of every directory it keeps (mode, mtime, symlink target).' }),
  ),
});
export type SyncPlanResponse = Static<typeof SyncPlanResponse>;

export const SyncHashesRequest = Type.Object(
  { hashes: Type.Record(Type.String({ minLength: 1, maxLength: 4096 }), Type.String({ pattern: '^[0-9a-f]{64}$' })) },
  { additionalProperties: false },
);

export const WireSyncResult = Type.Object({
  files_copied: Type.Integer(),
  files_updated: Type.Integer(),
  files_deleted: Type.Integer(),
  files_skipped: Type.Integer(),
  bytes_transferred: Type.Integer(),
  duration_ms: Type.Number(),
  dry_run: Type.Boolean(),
});
export type WireSyncResult = Static<typeof WireSyncResult>;
