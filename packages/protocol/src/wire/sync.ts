import { Type, type Static } from 'typebox';

export const WireManifestEntry = Type.Object(
  {
    path: Type.String({ minLength: 1, maxLength: 4096 }),
    type: Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink')]),
    mode: Type.Integer({ minimum: 0, maximum: 0o7777 }),
    size: Type.Integer({ minimum: 0 }),
    mtime_ns: Type.String({ pattern: '^[0-9]{1,25}$' }),
    hash: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
    checksum: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$', description: 'Files: XXH3-128 of the content (checksum mode compares it).' })),
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type WireManifestEntry = Static<typeof WireManifestEntry>;

/** XXH3-128, 32 lowercase hex characters. */
export const WIRE_CHECKSUM_PATTERN = '^[0-9a-f]{32}$';

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

/**
 * Checksum mode, the first answer of `POST /api/v1/instances/:id/sync`: the paths whose
 * checksums the client must send (`POST .../sync/:sync_id/checksums`) to get the plan.
 */
export const SyncChecksumsNeeded = Type.Object({
  sync_id: Type.String(),
  checksums_needed: Type.Array(Type.String(), { description: 'Paths that are regular files of the same size on both sides (minus those the manifest gave a checksum for).' }),
});
export type SyncChecksumsNeeded = Static<typeof SyncChecksumsNeeded>;

/** The answer of `POST /api/v1/instances/:id/sync`: the plan, or in checksum mode the checksums needed first. */
export const SyncPlanAnswer = Type.Union([SyncPlanResponse, SyncChecksumsNeeded]);
export type SyncPlanAnswer = Static<typeof SyncPlanAnswer>;

/**
 * `POST /api/v1/instances/:id/sync/:sync_id/checksums`: the client's checksum of every path of
 * `checksums_needed`, in that order. (A list, not a path-keyed object: a file named
 * `__proto__` must not make the body a prototype-poisoning attempt that the JSON parser
 * refuses, and the paths need not travel twice.)
 */
export const SyncChecksumsRequest = Type.Object(
  { checksums: Type.Array(Type.String({ pattern: WIRE_CHECKSUM_PATTERN }), { maxItems: 1_000_000, description: 'XXH3-128 hex of each path of checksums_needed, in its order.' }) },
  { additionalProperties: false },
);
export type SyncChecksumsRequest = Static<typeof SyncChecksumsRequest>;

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
