/**
 * The in-memory description of a filesystem tree that `SnapshotHasher.hashTree` hashes.
 * docs/snapshot-hash.md is the normative spec; this file only shapes the input.
 *
 * Entry names are raw bytes on Linux, so a name may be given as a `Uint8Array` (a Buffer
 * is one) or, for convenience, as a string, which is encoded as UTF-8. A string and a
 * Buffer holding the same bytes are the same name. Only the name bytes, the type, the
 * permission bits, the size and the content/target/subtree take part in the hash; see
 * the spec for what is excluded and why.
 */

/** A directory entry name: raw bytes, or a string that is encoded as UTF-8. */
export type EntryName = string | Uint8Array;

export interface FileEntry {
  readonly type: 'file';
  /** Permission bits only: `st_mode & 0o7777`. */
  readonly mode: number;
  /** Content length in bytes. */
  readonly size: number;
  /** SHA-256 of the raw content, 64 lowercase hex: the blob store's name for it. */
  readonly contentHash: string;
}

export interface SymlinkEntry {
  readonly type: 'symlink';
  /** Ignored (validated if given): Linux symlinks have no meaningful mode; always hashed as 0o777. */
  readonly mode?: number;
  /** The link target exactly as `readlink` returns it: raw bytes, or a string encoded as UTF-8. */
  readonly target: string | Uint8Array;
}

/** Children keyed by name. A Map allows byte names; a plain record is convenient with strings. */
export type DirEntries = ReadonlyMap<EntryName, FsEntry> | Readonly<Record<string, FsEntry>>;

export interface DirEntry {
  readonly type: 'dir';
  /** Permission bits only: `st_mode & 0o7777`. The root directory's own mode is not hashed. */
  readonly mode: number;
  readonly entries: DirEntries;
}

export type FsEntry = FileEntry | SymlinkEntry | DirEntry;

/** The mode every symlink is hashed with, whatever `mode` says. */
export const SYMLINK_MODE = 0o777;

export function dir(entries: DirEntries = {}, mode = 0o755): DirEntry {
  return { type: 'dir', mode, entries };
}

export function file(contentHash: string, size: number, mode = 0o644): FileEntry {
  return { type: 'file', mode, size, contentHash };
}

export function symlink(target: string | Uint8Array): SymlinkEntry {
  return { type: 'symlink', target };
}

/** The (name, entry) pairs of a directory, whichever representation it uses. */
export function entriesOf(d: DirEntry): Iterable<readonly [EntryName, FsEntry]> {
  return d.entries instanceof Map ? d.entries.entries() : Object.entries(d.entries as Record<string, FsEntry>);
}
