/**
 * Captures a directory tree as the {@link FsEntry} the snapshot hash is defined over
 * (docs/snapshot-hash.md), optionally storing every file's content in a {@link BlobStore}.
 *
 * Safety: the walk never follows a symlink. Entries are classified with `readdir` dirent types
 * (falling back to `lstat`), symlinks are recorded with `readlink` and never traversed, and
 * files are opened with `O_RDONLY | O_NOFOLLOW | O_NONBLOCK` and checked with `fstat` on the
 * open descriptor, so a file swapped for a symlink during the scan is refused (ELOOP) and one
 * swapped for a FIFO neither blocks the open nor gets read. Device files, FIFOs and sockets
 * cannot be represented in a v1 tree: they are refused (VALIDATION_FAILED naming the path)
 * unless `skipSpecial` is set, in which case they are left out and counted.
 *
 * Names are raw bytes (`readdir` with `encoding: 'buffer'`), so names that are not UTF-8
 * survive; every entry name in the returned tree is a Buffer.
 *
 * Speed: a small file (< 1 MiB) is read whole with synchronous calls on the event-loop thread
 * (open, fstat, read, close: a few microseconds each for cached data, far cheaper than four
 * thread-pool round trips, and hashing is synchronous anyway); the loop yields between
 * directories. A large file is streamed in 1 MiB chunks through the thread pool with the next
 * read in flight while the current chunk is hashed, never held whole in memory; up to
 * `concurrency` files are in progress at once.
 *
 * Blobs: with `blobs`, each file's content is stored unless a blob with its hash exists
 * already (then it is only pinned in `lease`, when one is given), so an incremental scan of a
 * mostly unchanged tree writes only what changed. `storedBytes` counts blobs newly created.
 */
import { closeSync, constants, createReadStream, fstatSync, lstatSync, openSync, readSync, type BigIntStats, type Dirent, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import * as crypto from 'node:crypto';
import { FaasError } from '@faas/protocol';
import { SnapshotHasher, type DirEntry, type FsEntry } from '@faas/protocol/snapshot-hash';
import { Limiter, readAt, sha256Hex } from '@faas/protocol/node-io';
import type { BlobLease, BlobSource, PutOptions, PutResult } from '../blobs/types.ts';
import type { FileHashCache } from './file-hash-cache.ts';

/** Where a scan stores file contents: a BlobStore, or a write batch of one. */
export interface BlobSink {
  has(hash: string): Promise<boolean>;
  put(source: BlobSource, options?: PutOptions): Promise<PutResult>;
}

export interface ScanOptions {
  /** Store each file's content here (deduplicated: existing blobs are not rewritten). */
  blobs?: BlobSink;
  /**
   * Skips reading files that are unchanged since the scan that filled the cache (same inode,
   * size, mode, mtime and ctime). Their hashes are returned in `cacheHits`, *not* pinned in
   * the lease: the caller pins them (they belong to the snapshot the cache came from).
   */
  cache?: FileHashCache;
  /** Pins every blob the tree refers to (stored or reused); only with `blobs`. */
  lease?: BlobLease;
  /**
   * Leaves out entries for which this returns true (an excluded directory is not read).
   * `relPath` is relative to the root with `/` separators, names decoded as UTF-8.
   */
  exclude?: (relPath: string) => boolean;
  /** Files hashed (and stored) at once. @default 8 */
  concurrency?: number;
  /** Skip (and count) device files, FIFOs and sockets instead of refusing the tree. @default false */
  skipSpecial?: boolean;
}

export interface ScanResult {
  /** The root directory (its mode is the root's own, which the hash ignores). */
  tree: DirEntry;
  /** `SnapshotHasher.hashTree(tree)`. */
  fsHash: string;
  fileCount: number;
  /** Directories below the root (the root itself is not counted). */
  dirCount: number;
  symlinkCount: number;
  /** Special files left out because of `skipSpecial`. */
  skippedCount: number;
  /**
   * Entries listed by `readdir` that were gone when read (removed or renamed away meanwhile):
   * left out, as if listed a moment later. Only a tree something writes to during the scan
   * (a live, non-frozen snapshot) has any.
   */
  vanishedCount: number;
  /** Sum of the sizes of all files in the tree. */
  totalBytes: number;
  /** Bytes of the blobs this scan newly created in the store (0 without `blobs`). */
  storedBytes: number;
  /** Content hashes of the files taken from `cache` without reading them. */
  cacheHits: string[];
}

/** Files below this size are read whole; larger ones are streamed. */
const SMALL_FILE = 1024 * 1024;
const CHUNK = 1024 * 1024;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const SLASH = Buffer.from('/');
const hasher = new SnapshotHasher();

function refused(relPath: string, what: string): FaasError {
  return new FaasError('VALIDATION_FAILED', `cannot snapshot ${JSON.stringify(relPath)}: ${what} cannot be part of a snapshot (devices, FIFOs and sockets are not supported)`, {
    path: relPath,
    kind: what,
  });
}

function kindOf(st: Stats | BigIntStats | Dirent): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'an unknown file type';
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Scans `root` (a directory, not a symlink to one) and returns its tree and filesystem hash.
 *
 * @example
 * const lease = blobs.lease();
 * try {
 *   const { fsHash, tree } = await scanTree('/srv/app', { blobs, lease });
 *   await snapshots.commit({ fsHash, tree });
 * } finally {
 *   lease.release();
 * }
 */
export async function scanTree(root: string, options: ScanOptions = {}): Promise<ScanResult> {
  const { blobs, lease, exclude, cache, skipSpecial = false } = options;
  const cacheHits: string[] = [];
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new FaasError('VALIDATION_FAILED', `scanTree: concurrency must be a positive integer, not ${concurrency}`, { concurrency });
  }
  const limiter = new Limiter(concurrency);
  /**
   * Files in progress at once when storing: every directory is walked concurrently, so without
   * this bound each small file would be read and held in memory while its put waits.
   */
  const fileSlots = new Limiter(Math.max(2 * concurrency, 16));
  const counts = { fileCount: 0, dirCount: 0, symlinkCount: 0, skippedCount: 0, vanishedCount: 0, totalBytes: 0, storedBytes: 0 };
  /** One buffer for all synchronous small-file reads (never shared across an await). */
  const smallBuf = Buffer.allocUnsafe(SMALL_FILE + 1);

  const rootStat = await lstat(root);
  if (!rootStat.isDirectory()) {
    throw new FaasError('VALIDATION_FAILED', `scanTree: root ${JSON.stringify(root)} is not a directory${rootStat.isSymbolicLink() ? ' (it is a symlink, which is never followed)' : ''}`, { path: root });
  }

  /** Stores content this scan has (small files); dedups against the store first. */
  const storeBuffer = async (hash: string, content: Buffer): Promise<void> => {
    if (!blobs) return;
    if (await reuse(hash)) return;
    const r = await blobs.put(content, { expectedHash: hash, lease });
    if (r.created) counts.storedBytes += r.size;
  };

  /** True when the blob exists (and is now pinned in the lease, when there is one). */
  const reuse = async (hash: string): Promise<boolean> => {
    if (!blobs || !(await blobs.has(hash))) return false;
    if (!lease) return true;
    try {
      await lease.pin([hash]);
      return true;
    } catch (err) {
      if (err instanceof FaasError && err.code === 'BLOB_NOT_FOUND') return false; // swept meanwhile: store it again
      throw err;
    }
  };

  const scanFile = async (path: Buffer, rel: string): Promise<FsEntry | undefined> => {
    const key = cache ? path.toString('latin1') : '';
    if (cache) {
      const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
      const hash = st?.isFile() ? cache.lookup(key, st) : undefined;
      if (st && hash !== undefined) {
        counts.fileCount++;
        counts.totalBytes += Number(st.size);
        cacheHits.push(hash);
        return { type: 'file', mode: Number(st.mode) & 0o7777, size: Number(st.size), contentHash: hash };
      }
    }
    let fd: number;
    try {
      fd = openSync(path, OPEN_FLAGS);
    } catch (err) {
      if (errnoOf(err) === 'ELOOP') throw new FaasError('VALIDATION_FAILED', `cannot snapshot ${JSON.stringify(rel)}: it became a symlink during the scan`, { path: rel });
      if (errnoOf(err) === 'ENOENT') return vanished();
      throw err;
    }
    let closed = false;
    try {
      const big: BigIntStats | undefined = cache ? fstatSync(fd, { bigint: true }) : undefined;
      const st: Stats | BigIntStats = big ?? fstatSync(fd);
      const remember = (hash: string): void => {
        if (big) cache!.record(key, big, hash);
      };
      if (!st.isFile()) {
        if (st.isDirectory() || st.isSymbolicLink()) throw new FaasError('VALIDATION_FAILED', `cannot snapshot ${JSON.stringify(rel)}: it changed type during the scan`, { path: rel });
        if (skipSpecial) {
          counts.skippedCount++;
          return undefined;
        }
        throw refused(rel, kindOf(st));
      }
      const mode = Number(st.mode) & 0o7777;
      if (Number(st.size) < SMALL_FILE) {
        // Read to EOF; one byte more than the limit tells a file that grew since fstat.
        let n = 0;
        for (;;) {
          const got = readSync(fd, smallBuf, n, smallBuf.length - n, null);
          if (got === 0) break;
          n += got;
          if (n === smallBuf.length) break;
        }
        if (n < smallBuf.length) {
          closeSync(fd);
          closed = true;
          const content = smallBuf.subarray(0, n);
          const hash = sha256Hex(content);
          counts.fileCount++;
          counts.totalBytes += n;
          if (blobs) await storeBuffer(hash, Buffer.from(content));
          remember(hash);
          return { type: 'file', mode, size: n, contentHash: hash };
        }
        // It grew past the small-file limit: stream it from the start instead.
      }
      closed = true; // the large path owns fd from here
      const entry = await limiter.run(() => scanLargeFile(fd, mode));
      remember(entry.contentHash);
      return entry;
    } finally {
      if (!closed) closeSync(fd);
    }
  };

  /** Streams a large file by its descriptor (closing it) with one read ahead while hashing. */
  const scanLargeFile = async (fd: number, mode: number): Promise<FsEntry & { type: 'file' }> => {
    try {
      const h = crypto.createHash('sha256');
      let size = 0;
      let position = 0;
      const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
      let which = 0;
      let pending = readAt(fd, bufs[which]!, position);
      for (;;) {
        const bytesRead = await pending;
        if (bytesRead === 0) break;
        const current = bufs[which]!;
        position += bytesRead;
        which ^= 1;
        pending = readAt(fd, bufs[which]!, position);
        h.update(current.subarray(0, bytesRead));
        size += bytesRead;
      }
      const hash = h.digest('hex');
      counts.fileCount++;
      counts.totalBytes += size;
      if (blobs && !(await reuse(hash))) {
        const stream = createReadStream('', { fd, start: 0, autoClose: false, highWaterMark: CHUNK });
        const r = await blobs.put(stream, { expectedHash: hash, lease });
        if (r.created) counts.storedBytes += r.size;
      }
      return { type: 'file', mode, size, contentHash: hash };
    } finally {
      closeSync(fd);
    }
  };

  const vanished = (): undefined => {
    counts.vanishedCount++;
    return undefined;
  };
  /** `op`'s result, or undefined when the entry is gone (ENOENT; ENOTDIR: a parent was replaced). */
  const unlessGone = async <T>(op: Promise<T>): Promise<T | undefined> => {
    try {
      return await op;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  };

  const scanDir = async (path: Buffer, rel: string, mode: number): Promise<DirEntry | undefined> => {
    const listed = await (rel === '' ? readdir(path, { withFileTypes: true, encoding: 'buffer' }) : unlessGone(readdir(path, { withFileTypes: true, encoding: 'buffer' })));
    if (listed === undefined) return vanished();
    const dirents = listed as unknown as Array<Dirent & { name: Buffer }>;
    dirents.sort((a, b) => Buffer.compare(a.name, b.name));
    const jobs: Array<Promise<[Buffer, FsEntry | undefined]>> = [];
    for (const d of dirents) {
      const name = d.name;
      const childRel = rel === '' ? name.toString('utf8') : `${rel}/${name.toString('utf8')}`;
      if (exclude?.(childRel)) continue;
      const childPath = Buffer.concat([path, SLASH, name]);
      jobs.push(scanEntry(childPath, childRel, d).then((e) => [name, e]));
    }
    const entries = new Map<Buffer, FsEntry>();
    for (const [name, entry] of await Promise.all(jobs)) if (entry) entries.set(name, entry);
    return { type: 'dir', mode, entries };
  };

  const scanEntry = async (path: Buffer, rel: string, d: Dirent): Promise<FsEntry | undefined> => {
    let kind: Stats | Dirent = d;
    let st: Stats | undefined;
    const known = d.isFile() || d.isDirectory() || d.isSymbolicLink() || d.isFIFO() || d.isSocket() || d.isCharacterDevice() || d.isBlockDevice();
    if (!known) {
      // DT_UNKNOWN on some filesystems
      const found = await unlessGone(lstat(path));
      if (found === undefined) return vanished();
      kind = st = found;
    }
    if (kind.isFile()) return blobs ? fileSlots.run(() => scanFile(path, rel)) : scanFile(path, rel);
    if (kind.isSymbolicLink()) {
      const target = await unlessGone(readlink(path, { encoding: 'buffer' }));
      if (target === undefined) return vanished();
      counts.symlinkCount++;
      return { type: 'symlink', target };
    }
    if (kind.isDirectory()) {
      st ??= await unlessGone(lstat(path));
      if (st === undefined) return vanished();
      if (!st.isDirectory()) throw new FaasError('VALIDATION_FAILED', `cannot snapshot ${JSON.stringify(rel)}: it changed type during the scan`, { path: rel });
      const dir = await scanDir(path, rel, st.mode & 0o7777);
      if (dir !== undefined) counts.dirCount++;
      return dir;
    }
    if (skipSpecial) {
      counts.skippedCount++;
      return undefined;
    }
    throw refused(rel, kindOf(kind));
  };

  const tree = (await scanDir(Buffer.from(root), '', rootStat.mode & 0o7777))!;
  return { tree, fsHash: hasher.hashTree(tree), ...counts, cacheHits };
}
