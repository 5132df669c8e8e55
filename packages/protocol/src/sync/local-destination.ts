/**
 * A {@link SyncDestination} over a local directory.
 *
 * Safety: every path goes through {@link joinInside} (INVALID_PATH for a malformed path,
 * PATH_OUTSIDE_ROOT when an intermediate component is a symlink) and the final component is
 * never followed: files and symlinks are created under a temporary name in the same directory
 * (`O_CREAT | O_EXCL | O_NOFOLLOW`, 64 random bits in the name) and renamed over the path,
 * which replaces a symlink there rather than writing through it; attributes are set on an
 * `O_NOFOLLOW` descriptor (or with `lutimes`), removal unlinks.
 *
 * Durability: like rsync, nothing is fsynced; a crash can lose recent writes but never leaves a
 * half-written file under its final name.
 *
 * Timestamps: Node sets times only as a double number of seconds and libuv truncates them to
 * microseconds, so nanosecond precision is out of reach: the destination keeps the source's
 * mtime to the microsecond (the plan compares at that granularity). The value written is the
 * middle of the microsecond, so the double's rounding error cannot move it to the previous
 * one. Negative mtimes (before 1970) are not supported (Node turns them into "now").
 *
 * Speed: metadata calls are synchronous (microseconds each for a local disk, far cheaper than a
 * thread-pool round trip); file content is written chunk by chunk as the source yields it, so
 * memory stays bounded by the chunk size whatever the file size. A source on this host is
 * copied by the kernel instead ({@link LocalDestination.copyLocalFile}), several files at once
 * on the thread pool, with no byte passing through JavaScript (docs/benchmarks.md#sync).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  futimesSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  chmodSync,
  existsSync,
} from 'node:fs';
import { copyFile, stat } from 'node:fs/promises';
import { buildManifest, openRegular, type ManifestResult, type ManifestWalkOptions } from './manifest.ts';
import { joinInside, parentOf } from './paths.ts';
import type { LocalCopyProgress, ManifestEntry, SyncDestination, SyncOptions } from './types.ts';

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const ATTR_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Seconds (as Node's time setters take them) for a nanosecond mtime, kept exact to the µs. */
export function secondsOf(mtimeNs: string): number {
  const us = BigInt(mtimeNs) / 1000n;
  const sec = us / 1_000_000n;
  const frac = us % 1_000_000n;
  return Number(sec) + (Number(frac) * 1000 + 500) / 1e9;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

// 64 random bits per process plus a counter: unguessable enough, and O_EXCL refuses any name
// that exists anyway. (randomBytes per file cost 2-5 µs each: 11-25 ms on the bench's 5,000 files.)
const tempPrefix = `.faas-sync-${randomBytes(8).toString('hex')}-`;
let tempCounter = 0;

function tempName(abs: string): string {
  return `${parentOf(abs)}/${tempPrefix}${(tempCounter++).toString(36)}.tmp`;
}

/**
 * `copyFile` of `/proc/self/fd/N` copies the file behind an open descriptor: the source is
 * opened with O_NOFOLLOW first, and the magic link names that open file, never a path that
 * could have become a symlink since. Without /proc mounted, content streams instead.
 */
const KERNEL_COPY = existsSync('/proc/self/fd');

/** Files at least this large report their progress while the kernel copies them. */
const WATCH_COPY_FROM = 8 * 1024 * 1024;

function writeAll(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
}

export class LocalDestination implements SyncDestination {
  readonly root: string;

  /** See {@link SyncDestination.copyLocalFile}; absent where /proc is not mounted. */
  readonly copyLocalFile?: (path: string, sourceAbs: string, mode: number, mtimeNs: string | undefined, progress?: LocalCopyProgress) => Promise<number>;

  /** `root`: the destination directory (used as given; it may be a symlink to a directory). */
  constructor(root: string) {
    this.root = root.length > 1 && root.endsWith('/') ? root.slice(0, -1) : root;
    if (KERNEL_COPY) this.copyLocalFile = (...args) => this.#copyLocal(...args);
  }

  /** The manifest of the tree, or [] when the root does not exist yet. */
  async manifest(options: SyncOptions, wantChecksum: (entry: ManifestEntry) => boolean): Promise<ManifestEntry[]> {
    return (await this.scan(options, wantChecksum, { identities: false })).entries;
  }

  /** The whole {@link buildManifest} result of the tree (empty when the root does not exist yet). */
  async scan(options: SyncOptions, wantChecksum: (entry: ManifestEntry) => boolean, walk?: ManifestWalkOptions): Promise<ManifestResult> {
    const st = await stat(this.root).catch((err: unknown) => {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (st === undefined) return { entries: [], skipped: [], identities: new Map() };
    return buildManifest(this.root, options, wantChecksum, walk);
  }

  async mkdir(path: string, mode: number): Promise<void> {
    const abs = joinInside(this.root, path);
    try {
      mkdirSync(abs, mode & 0o7777);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
    this.#chmod(abs, mode, true); // the umask, or an existing dir's mode
  }

  async writeFile(path: string, content: AsyncIterable<Uint8Array>, mode: number, mtimeNs: string | undefined): Promise<void> {
    const abs = joinInside(this.root, path);
    const tmp = tempName(abs);
    const fd = openSync(tmp, WRITE_FLAGS, 0o600);
    let open = true;
    try {
      for await (const chunk of content) writeAll(fd, chunk);
      fchmodSync(fd, mode & 0o7777);
      if (mtimeNs !== undefined) futimesSync(fd, Date.now() / 1000, secondsOf(mtimeNs));
      closeSync(fd);
      open = false;
      renameSync(tmp, abs);
    } catch (err) {
      if (open) closeSync(fd);
      this.#removeTemp(tmp);
      throw err;
    }
  }

  /**
   * The source file copied by the kernel on the thread pool (libuv's copyfile:
   * copy_file_range, falling back to sendfile), into a temp name opened with O_EXCL, which
   * refuses anything already there (a symlink included); then its mode, mtime and the rename,
   * as {@link writeFile} does. No byte passes through JavaScript, and several copies run at
   * once on the pool's threads, so a tree of small files costs the main thread four system
   * calls per file.
   */
  async #copyLocal(path: string, sourceAbs: string, mode: number, mtimeNs: string | undefined, progress?: LocalCopyProgress): Promise<number> {
    const abs = joinInside(this.root, path);
    const tmp = tempName(abs);
    const source = openRegular(sourceAbs, path);
    let watch: NodeJS.Timeout | undefined;
    try {
      if (progress !== undefined && source.size >= WATCH_COPY_FROM) {
        watch = setInterval(() => {
          const st = lstatSync(tmp, { throwIfNoEntry: false });
          if (st !== undefined) progress.onBytes(st.size);
        }, progress.intervalMs);
      }
      // copyfile gives the new file the source's mode (fchmod, whatever the umask).
      await copyFile(`/proc/self/fd/${source.fd}`, tmp, constants.COPYFILE_EXCL);
    } catch (err) {
      // EEXIST: the name is someone else's file, not ours to remove.
      if (errnoOf(err) !== 'EEXIST') this.#removeTemp(tmp);
      throw err;
    } finally {
      clearInterval(watch);
      closeSync(source.fd);
    }
    try {
      const st = lstatSync(tmp);
      if ((st.mode & 0o7777) !== (mode & 0o7777)) this.#chmod(tmp, mode, false);
      if (mtimeNs !== undefined) lutimesSync(tmp, Date.now() / 1000, secondsOf(mtimeNs));
      renameSync(tmp, abs);
      return st.size;
    } catch (err) {
      this.#removeTemp(tmp);
      throw err;
    }
  }

  /** Removes a temp name of ours after a failure (not created, already renamed, or gone: fine). */
  #removeTemp(tmp: string): void {
    try {
      unlinkSync(tmp);
    } catch {
      // not created, or gone
    }
  }

  async symlink(path: string, target: string): Promise<void> {
    const abs = joinInside(this.root, path);
    const tmp = tempName(abs);
    symlinkSync(target, tmp);
    try {
      renameSync(tmp, abs);
    } catch (err) {
      this.#removeTemp(tmp);
      throw err;
    }
  }

  async remove(path: string): Promise<void> {
    const abs = joinInside(this.root, path);
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (st === undefined) return;
    if (st.isDirectory()) rmSync(abs, { recursive: true, force: true });
    else {
      try {
        unlinkSync(abs);
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw err;
      }
    }
  }

  async setAttributes(path: string, mode: number | undefined, mtimeNs: string | undefined): Promise<void> {
    const abs = joinInside(this.root, path);
    const st = lstatSync(abs);
    if (mode !== undefined && !st.isSymbolicLink()) this.#chmod(abs, mode, st.isDirectory());
    if (mtimeNs !== undefined) lutimesSync(abs, Date.now() / 1000, secondsOf(mtimeNs));
  }

  /** chmod without following a symlink at `abs`. */
  #chmod(abs: string, mode: number, isDir: boolean): void {
    let fd: number;
    try {
      fd = openSync(abs, ATTR_FLAGS | (isDir ? constants.O_DIRECTORY : 0));
    } catch (err) {
      if (errnoOf(err) !== 'EACCES') throw err;
      // Unreadable (we are not root): chmod by path once lstat says it is no symlink.
      if (lstatSync(abs).isSymbolicLink()) throw err;
      chmodSync(abs, mode & 0o7777);
      return;
    }
    try {
      fchmodSync(fd, mode & 0o7777);
    } finally {
      closeSync(fd);
    }
  }
}
