/**
 * Lists a local tree as sync {@link ManifestEntry}s, filtered as `filters.ts` describes.
 *
 * Safety: symlinks are never followed. Entries are classified by `readdir` dirent types and
 * `lstat`; symlinks are recorded with `readlink`; files are opened with `O_NOFOLLOW |
 * O_NONBLOCK` and checked with `fstat` before being read. Only the root itself is resolved
 * (it may be a symlink to a directory: the caller chose it).
 *
 * Left out and reported in `skipped` (never an error): names that are not valid UTF-8 (a sync
 * path is UTF-8), symlinks whose target is not UTF-8, and special files (devices, FIFOs,
 * sockets), which a sync cannot carry.
 *
 * Speed: directories are read concurrently through the thread pool; entries are `lstat`ed
 * synchronously (cheap for cached metadata). Checksums (XXH3-128) are computed only for files
 * `wantChecksum` accepts (all files when `checksumOnly`): files below 1 MiB are read whole with
 * synchronous calls, larger ones streamed in 1 MiB chunks, never held whole in memory. SHA-256
 * content hashes ({@link hashEntries}) are for naming contents that travel, not for comparing.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readlinkSync, type BigIntStats, type Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import * as crypto from 'node:crypto';
import { createXXHash128, type IHasher } from 'hash-wasm';
import { FaasError } from '../errors/index.ts';
import { TreeFilter, type IgnoreStack } from './filters.ts';
import { comparePaths, insideResolver, joinInside } from './paths.ts';
import type { ManifestEntry, SyncOptions } from './types.ts';
import type { ChecksumCache, FileIdentity } from './checksum-cache.ts';
import { Limiter, readAt, sha256Hex } from '../node-io/index.ts';

export interface SkippedEntry {
  /** The path (a name that is not UTF-8 is shown decoded with U+FFFD replacements). */
  path: string;
  reason: 'name not UTF-8' | 'symlink target not UTF-8' | 'special file' | 'vanished';
}

export interface ManifestResult {
  /** Sorted by the UTF-8 bytes of `path` (a directory right before its content). */
  entries: ManifestEntry[];
  skipped: SkippedEntry[];
  /** Each file entry's identity as the walk's lstat saw it (for a {@link ChecksumCache}). */
  identities: Map<string, FileIdentity>;
}

/** Remembered checksums and the walk's identities to look them up by (see checksum-cache.ts). */
export interface ChecksumMemory {
  cache: ChecksumCache;
  identities: ReadonlyMap<string, FileIdentity>;
}

export function identityOf(st: BigIntStats): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

export const SMALL_FILE = 1024 * 1024;
export const CHUNK = 1024 * 1024;
const GITIGNORE = Buffer.from('.gitignore');
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export { Limiter, readAt };

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Opens a regular file without following a symlink (refusing anything else). */
export function openRegular(abs: string, rel: string): { fd: number; size: number; identity: FileIdentity } {
  let fd: number;
  try {
    fd = openSync(abs, OPEN_FLAGS);
  } catch (err) {
    if (errnoOf(err) === 'ELOOP') throw new FaasError('VALIDATION_FAILED', `${JSON.stringify(rel)} became a symlink`, { path: rel });
    throw err;
  }
  const st = fstatSync(fd, { bigint: true });
  if (!st.isFile()) {
    closeSync(fd);
    throw new FaasError('VALIDATION_FAILED', `${JSON.stringify(rel)} is no longer a regular file`, { path: rel });
  }
  return { fd, size: Number(st.size), identity: identityOf(st) };
}

const smallBuf = Buffer.allocUnsafe(SMALL_FILE + 1);

/**
 * Hashes the given file entries of the tree under `root` in place (`hash`, and `size` as
 * read): small ones synchronously, at most 4 large ones at once.
 */
export async function hashEntries(root: string, entries: readonly ManifestEntry[]): Promise<void> {
  const large = new Limiter(4);
  await Promise.all(
    entries.map(async (e) => {
      const { hash, size } = e.size < SMALL_FILE ? await hashFile(root, e.path) : await large.run(() => hashFile(root, e.path));
      e.hash = hash;
      e.size = size;
    }),
  );
}

/**
 * SHA-256 and length of the regular file `rel` under `root` (never through a symlink).
 */
export async function hashFile(root: string, rel: string): Promise<{ hash: string; size: number }> {
  const { fd } = openRegular(joinInside(root, rel), rel);
  let owned = true;
  try {
    // Read to EOF; a full buffer means the file is (or grew) large: stream it instead.
    let n = 0;
    for (;;) {
      const got = readSync(fd, smallBuf, n, smallBuf.length - n, null);
      if (got === 0 || (n += got) === smallBuf.length) break;
    }
    if (n < smallBuf.length) return { hash: sha256Hex(smallBuf.subarray(0, n)), size: n };
    owned = false;
    return await hashLarge(fd);
  } finally {
    if (owned) closeSync(fd);
  }
}

async function hashLarge(fd: number): Promise<{ hash: string; size: number }> {
  const h = crypto.createHash('sha256');
  const size = await streamFile(fd, (chunk) => h.update(chunk));
  return { hash: h.digest('hex'), size };
}

/**
 * Feeds `fd` (closed at the end) to `take` from offset 0 in 1 MiB chunks, one read ahead through
 * the thread pool while the last chunk is taken; resolves with the bytes read.
 */
async function streamFile(fd: number, take: (chunk: Buffer) => void): Promise<number> {
  let pending: Promise<number> | undefined;
  try {
    let size = 0;
    const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
    let which = 0;
    pending = readAt(fd, bufs[0]!, 0);
    for (;;) {
      const got = await pending;
      pending = undefined;
      if (got === 0) return size;
      const current = bufs[which]!;
      size += got;
      which ^= 1;
      pending = readAt(fd, bufs[which]!, size);
      take(current.subarray(0, got));
    }
  } finally {
    // A read still in flight must end before its descriptor is closed (and maybe reused).
    if (pending) await pending.catch(() => undefined);
    closeSync(fd);
  }
}

/**
 * The hasher for small files: used only synchronously (init, update, digest with no await in
 * between), so one per thread serves every caller; a new hasher costs ~0.1 ms (a WebAssembly
 * instance), far more than hashing a small file.
 */
let smallHasher: Promise<IHasher> | undefined;

/**
 * A fresh XXH3-128 hasher (init, update, digest('hex')) computing {@link ManifestEntry.checksum}.
 * Reuse one for many files: creating one costs more than hashing a small file.
 *
 * @example
 * const h = await createChecksumHasher();
 * h.init();
 * h.update(bytes);
 * const checksum = h.digest('hex');
 */
export function createChecksumHasher(): Promise<IHasher> {
  return createXXHash128();
}

/**
 * Reads a whole small file (of `size` bytes when opened) into `smallBuf`; -1 when it is (or
 * grew) too large for it. A short read that ends at `size` is taken as the end: one read per
 * file instead of two (a regular file reads short only at its end).
 */
function readSmall(fd: number, size: number): number {
  let n = 0;
  for (;;) {
    const want = smallBuf.length - n;
    const got = readSync(fd, smallBuf, n, want, null);
    if (got === 0) return n;
    if ((n += got) === smallBuf.length) return -1;
    if (got < want && n === size) return n;
  }
}

/**
 * Sets `checksum` (XXH3-128 hex, see {@link ManifestEntry.checksum}) and `size` (as read) of
 * the given file entries of the tree under `root`, never reading through a symlink: small files
 * synchronously, large ones one at a time, one 1 MiB chunk read ahead through the thread pool
 * while the last one is hashed.
 *
 * @example
 * await checksumEntries('/srv/app', entries.filter((e) => e.type === 'file'));
 */
export async function checksumEntries(root: string, entries: readonly ManifestEntry[], memory?: ChecksumMemory): Promise<void> {
  if (entries.length === 0) return;
  const h = await (smallHasher ??= createChecksumHasher());
  const at = insideResolver(root);
  const large: ManifestEntry[] = [];
  for (const e of entries) {
    const seen = memory?.identities.get(e.path);
    const known = seen === undefined ? undefined : memory!.cache.lookup(seen);
    if (known !== undefined) {
      e.checksum = known;
      continue;
    }
    if (e.size >= SMALL_FILE) {
      large.push(e);
      continue;
    }
    const { fd, size, identity } = openRegular(at(e.path), e.path);
    let n: number;
    try {
      n = readSmall(fd, size);
    } finally {
      closeSync(fd);
    }
    if (n < 0) {
      large.push(e); // it grew
      continue;
    }
    h.init();
    h.update(smallBuf.subarray(0, n));
    e.checksum = h.digest('hex');
    e.size = n;
    if (BigInt(n) === identity.size) memory?.cache.remember(identity, e.checksum);
  }
  if (large.length === 0) return;
  // Large files get their own hasher: it is held across awaits.
  const lh = await createChecksumHasher();
  for (const e of large) {
    const { fd, identity } = openRegular(at(e.path), e.path);
    const r = await checksumLarge(fd, lh);
    e.checksum = r.checksum;
    e.size = r.size;
    if (BigInt(r.size) === identity.size) memory?.cache.remember(identity, r.checksum);
  }
}

/**
 * XXH3-128 and length of the regular file `rel` under `root` (never through a symlink).
 *
 * @example
 * const { checksum, size } = await checksumFile('/srv/app', 'src/index.ts');
 */
export async function checksumFile(root: string, rel: string): Promise<{ checksum: string; size: number }> {
  const e: ManifestEntry = { path: rel, type: 'file', mode: 0, size: 0, mtimeNs: '0' };
  await checksumEntries(root, [e]);
  return { checksum: e.checksum!, size: e.size };
}

/** Streams `fd` (closed at the end) through `h` from offset 0. */
async function checksumLarge(fd: number, h: IHasher): Promise<{ checksum: string; size: number }> {
  h.init();
  const size = await streamFile(fd, (chunk) => h.update(chunk));
  return { checksum: h.digest('hex'), size };
}

function entryFromStat(path: string, st: BigIntStats, type: ManifestEntry['type']): ManifestEntry {
  return { path, type, mode: Number(st.mode) & 0o7777, size: type === 'dir' ? 0 : Number(st.size), mtimeNs: st.mtimeNs.toString() };
}

/** How {@link buildManifest} walks (not what it lists). */
export interface ManifestWalkOptions {
  /**
   * Fill `identities`. A caller without a {@link ChecksumCache} turns it off: keeping five
   * BigInts per file alive until the walk ends costs ~7% of a walk's time (garbage collection).
   * @default true
   */
  identities?: boolean;
}

/**
 * Lists the tree under `root` (a directory, or a symlink to one).
 *
 * @param wantChecksum called for each file entry (without `checksum`); true → the file gets its
 *   `checksum` (XXH3-128). Every file gets one when `options.checksumOnly` is set. (`hash`,
 *   SHA-256, is never computed here: see {@link hashEntries}.)
 * @param walkOptions `{identities: false}` leaves `identities` empty.
 *
 * @example
 * const { entries, skipped } = await buildManifest('/srv/app', { excludePatterns: ['*.log'] });
 */
export async function buildManifest(
  root: string,
  options: SyncOptions = {},
  wantChecksum?: (entry: ManifestEntry) => boolean,
  walkOptions: ManifestWalkOptions = {},
): Promise<ManifestResult> {
  const keepIdentities = walkOptions.identities !== false;
  const rootStat = await stat(root);
  if (!rootStat.isDirectory()) throw new FaasError('VALIDATION_FAILED', `sync root ${JSON.stringify(root)} is not a directory`, { path: root });
  const rootAbs = root.length > 1 && root.endsWith('/') ? root.slice(0, -1) : root;
  const filter = new TreeFilter(rootAbs, options);
  const entries: ManifestEntry[] = [];
  const skipped: SkippedEntry[] = [];
  const toChecksum: ManifestEntry[] = [];
  const identities = new Map<string, FileIdentity>();
  const checksumAll = options.checksumOnly === true;

  /** Walks one directory; returns how many entries it listed (recursively). */
  const walk = async (abs: string, rel: string, stack: IgnoreStack): Promise<number> => {
    let dirents: Array<Dirent & { name: Buffer }>;
    try {
      dirents = (await readdir(abs, { withFileTypes: true, encoding: 'buffer' })) as unknown as Array<Dirent & { name: Buffer }>;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return 0; // removed meanwhile
      throw err;
    }
    // Open .gitignore only when readdir listed one: a failed open throws, and building that
    // error for every directory cost more than the rest of the directory's bookkeeping.
    const hasGitignore = filter.useGitignore && dirents.some((d) => d.name.length === GITIGNORE.length && d.name.equals(GITIGNORE));
    const here = filter.enter(stack, rel, hasGitignore ? filter.readGitignore(abs) : undefined);
    let listed = 0;
    const subdirs: Array<Promise<void>> = [];
    for (const d of dirents) {
      const raw = d.name;
      const name = raw.toString('utf8');
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (!isUtf8(raw)) {
        skipped.push({ path: childRel, reason: 'name not UTF-8' });
        continue;
      }
      const childAbs = `${abs}/${name}`;
      let isDir = d.isDirectory();
      let isLink = d.isSymbolicLink();
      let isFile = d.isFile();
      let st: BigIntStats | undefined;
      if (!isDir && !isLink && !isFile && !d.isFIFO() && !d.isSocket() && !d.isCharacterDevice() && !d.isBlockDevice()) {
        // DT_UNKNOWN on some filesystems
        st = lstatSync(childAbs, { bigint: true, throwIfNoEntry: false });
        if (!st) continue;
        isDir = st.isDirectory();
        isLink = st.isSymbolicLink();
        isFile = st.isFile();
      }
      if (filter.excluded(childRel, name, isDir, here)) continue;
      if (!isDir && !filter.included(childRel, false)) continue;
      st ??= lstatSync(childAbs, { bigint: true, throwIfNoEntry: false });
      if (!st) {
        skipped.push({ path: childRel, reason: 'vanished' });
        continue;
      }
      if (st.isDirectory() !== isDir || st.isSymbolicLink() !== isLink || st.isFile() !== isFile) {
        // Changed type since readdir: take lstat's word for files and links only.
        if (isDir || st.isDirectory()) {
          skipped.push({ path: childRel, reason: 'vanished' });
          continue;
        }
        isLink = st.isSymbolicLink();
        isFile = st.isFile();
      }
      if (isDir) {
        const dirEntry = entryFromStat(childRel, st, 'dir');
        subdirs.push(
          walk(childAbs, childRel, here).then((n) => {
            if (n > 0 || filter.included(childRel, true)) {
              entries.push(dirEntry);
              listed += n + 1;
            }
          }),
        );
      } else if (isLink) {
        let target: Buffer;
        try {
          target = readlinkSync(childAbs, { encoding: 'buffer' });
        } catch (err) {
          if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'EINVAL') throw err;
          skipped.push({ path: childRel, reason: 'vanished' });
          continue;
        }
        if (!isUtf8(target)) {
          skipped.push({ path: childRel, reason: 'symlink target not UTF-8' });
          continue;
        }
        const e = entryFromStat(childRel, st, 'symlink');
        e.size = target.length;
        e.target = target.toString('utf8');
        entries.push(e);
        listed++;
      } else if (isFile) {
        const e = entryFromStat(childRel, st, 'file');
        if (keepIdentities) identities.set(childRel, identityOf(st));
        if (checksumAll || wantChecksum?.(e)) toChecksum.push(e);
        entries.push(e);
        listed++;
      } else {
        skipped.push({ path: childRel, reason: 'special file' });
      }
    }
    await Promise.all(subdirs);
    return listed;
  };

  await walk(rootAbs, '', []);

  if (toChecksum.length > 0) await checksumEntries(rootAbs, toChecksum);
  entries.sort((a, b) => comparePaths(a.path, b.path));
  skipped.sort((a, b) => comparePaths(a.path, b.path));
  return { entries, skipped, identities };
}
