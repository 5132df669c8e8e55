/**
 * The shapes of file sync (docs/sync-protocol.md), shared by the engine, the server and the SDK.
 * Paths are relative to the sync root, '/'-separated, UTF-8, never empty, never containing
 * '.', '..' or empty components, never absolute.
 */

export type EntryType = 'file' | 'dir' | 'symlink';

/** One entry of a tree as a manifest lists it. */
export interface ManifestEntry {
  path: string;
  type: EntryType;
  /** Permission bits (st_mode & 0o7777). */
  mode: number;
  /** Files: content length; dirs: 0; symlinks: target length. */
  size: number;
  /** Modification time in nanoseconds since the epoch, as a decimal string (exact). */
  mtimeNs: string;
  /**
   * Files: SHA-256 hex of the content, when computed. It names a content that travels (content
   * frames); checksum mode does not compute it for the comparison (see `checksum`).
   */
  hash?: string;
  /**
   * Files: XXH3-128 hex (32 characters, the canonical big-endian form `xxhsum -H2` prints) of
   * the content, when computed: the comparison checksum of checksum mode. Not collision
   * resistant against a chosen input, which a comparison of one's own two trees does not need
   * (rsync -c uses the same hash); never used to name content.
   */
  checksum?: string;
  /** Symlinks: the target exactly as readlink returns it (UTF-8). */
  target?: string;
}

export interface SyncOptions {
  /** Apply .gitignore files (nested), .git/info/exclude; `.git` itself is never synced. @default true */
  useGitignore?: boolean;
  /** gitignore-syntax patterns; when given, only matching files (and the dirs leading to them) are synced. */
  includePatterns?: string[];
  /** gitignore-syntax patterns excluded on top of .gitignore. */
  excludePatterns?: string[];
  /** Plan only: change nothing. @default false */
  dryRun?: boolean;
  /** Compare files of equal size by a content checksum (XXH3-128) instead of mtime, as `rsync -c`. @default false */
  checksumOnly?: boolean;
  /** Delete destination entries the source does not have (excluded ones are kept). @default false */
  deleteUnmatched?: boolean;
  /** Set destination mtimes to the source's. @default true */
  preserveTimestamps?: boolean;
}

export type PlanAction = 'copy' | 'update' | 'delete' | 'skip';

export interface PlanStep {
  action: PlanAction;
  path: string;
  type: EntryType;
  /** Why: e.g. 'new', 'content', 'size', 'mtime', 'mode', 'type', 'target', 'unchanged', 'not_in_source'. */
  reason: string;
  /** Bytes that must be transferred for this step (0 when the content is known to the receiver). */
  bytes: number;
  /** copy/update of a file: the content hash, when known. */
  hash?: string;
}

export interface SyncPlan {
  steps: PlanStep[];
}

export interface SyncResult {
  filesCopied: number;
  filesUpdated: number;
  filesDeleted: number;
  filesSkipped: number;
  bytesTransferred: number;
  durationMs: number;
  dryRun: boolean;
  plan?: SyncPlan;
}

export interface SyncProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** The path being worked on, if any. */
  path?: string;
}

/**
 * Where a sync writes: a local directory, or an instance's filesystem on the server. Every
 * path is relative to the destination root and must resolve inside it: an implementation
 * refuses (PATH_OUTSIDE_ROOT) any path whose resolution would leave the root, symlinks
 * included, and never follows a symlink at the final component.
 */
export interface SyncDestination {
  /** The destination's current tree, filtered, with the `checksum` of each file `wantChecksum` accepts. */
  manifest(options: SyncOptions, wantChecksum: (entry: ManifestEntry) => boolean): Promise<ManifestEntry[]>;
  /** Creates a directory (parents exist) with this mode; an existing dir gets the mode. */
  mkdir(path: string, mode: number): Promise<void>;
  /** Writes a file atomically (temp + rename in its directory) with mode and, if given, mtime. */
  writeFile(path: string, content: AsyncIterable<Uint8Array>, mode: number, mtimeNs: string | undefined): Promise<void>;
  /** Replaces whatever is at `path` with a symlink (atomically: temp name + rename). */
  symlink(path: string, target: string): Promise<void>;
  /** Removes a file, symlink or (recursively) a directory; absent is fine. */
  remove(path: string): Promise<void>;
  /** Sets mode and mtime of an existing entry (not following a symlink). */
  setAttributes(path: string, mode: number | undefined, mtimeNs: string | undefined): Promise<void>;
  /**
   * Present on a destination on this host that can copy a local file in the kernel: writes
   * the regular file `sourceAbs` (opened without following a symlink) to `path` as
   * {@link writeFile} would, and resolves with the bytes copied. `onBytes` hears the bytes
   * copied so far while a large copy runs (every `intervalMs`).
   */
  copyLocalFile?(path: string, sourceAbs: string, mode: number, mtimeNs: string | undefined, progress?: LocalCopyProgress): Promise<number>;
}

export interface LocalCopyProgress {
  onBytes: (bytesSoFar: number) => void;
  intervalMs: number;
}
