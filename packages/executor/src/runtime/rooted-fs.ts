import { FaasError } from '@faas/protocol';
import { read, writev, writevSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { randomBytes } from 'node:crypto';
import { atCalls, SyscallError, type CPath } from './host-syscalls.ts';

/**
 * Host-side file access inside an instance's root directory (file sync), safe against
 * everything the instance can do to its own tree.
 *
 * The instance owns that tree: it can plant symlinks (`src -> /etc`, `up -> ../../..`) and swap
 * a directory for a symlink at any moment. A host-side path walk would follow such a link into
 * the host. So no path is ever resolved by the host's rules:
 *
 * - A path's directories are resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
 *   RESOLVE_NO_XDEV) from an fd of the root: symlinks, absolute ones and '..' included, resolve
 *   as if the root were '/', and the kernel guarantees the result stays below the root even under
 *   concurrent renames. Intermediate symlinks are thus followed, *within* the root (as the
 *   sandbox itself would see them); a mount crossing is refused (PATH_OUTSIDE_ROOT).
 * - The final component is then handled with an *at() call on that directory fd and never
 *   followed: lstat, O_NOFOLLOW opens, unlinkat, renameat, AT_SYMLINK_NOFOLLOW. Writing "over" a
 *   symlink replaces the link; reading a symlink is refused.
 * - Created entries belong to the instance's host uid/gid; files are written to a temp name in
 *   their directory and renamed into place (atomic within that directory).
 *
 * Paths given to RootedFs are relative, '/'-separated, without empty, '.' or '..' components
 * (INVALID_PATH otherwise). Metadata calls are synchronous (each a few µs of syscalls through
 * koffi); content moves through Node's thread pool in 1 MiB chunks.
 */

const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_NOCTTY = 0o400;
const O_DIRECTORY = 0o200000;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;
const O_RDONLY = 0;

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;

const RESOLVE_NO_XDEV = 0x01;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_IN_ROOT = 0x10;
const RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

const UTIME_OMIT = (1 << 30) - 2;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

const DT_DIR = 4;

const E = {
  ENOENT: 2,
  EAGAIN: 11,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  ELOOP: 40,
  ENOTEMPTY: 39,
  EOPNOTSUPP: 95,
} as const;

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** Chunk size of content reads and writes. */
const CHUNK = 1 << 20;
/** Content up to this size is written with one synchronous writev (cheaper than a thread-pool hop). */
const SYNC_WRITE_MAX = 256 << 10;
/** Positional writes of one file in flight at once (each up to about CHUNK bytes). */
const WRITES_IN_FLIGHT = 4;
const MAX_PATH_BYTES = 4095;
const NAME_MAX = 255;
/** openat2 gives EAGAIN when a rename raced its '..' resolution; it is safe to retry. */
const EAGAIN_RETRIES = 100;

/** Temp names RootedFs creates (and renames away); a listing may briefly show one. */
export const TEMP_NAME_PREFIX = '.faas-tmp-';
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_NAME_PREFIX);
}

/** A syscall failed for a path inside the root; `code` is the errno's name ('ENOENT', ...). */
export class RootedFsError extends SyscallError {
  readonly code: string;
  constructor(
    syscall: string,
    errno: number,
    readonly path: string,
  ) {
    super(syscall, errno, path === '' ? '(root)' : path);
    this.name = 'RootedFsError';
    this.code = ERRNO_NAMES.get(errno) ?? `E${errno}`;
  }
}

export function isRootedFsError(err: unknown, code?: string): err is RootedFsError {
  return err instanceof RootedFsError && (code === undefined || err.code === code);
}

export interface Owner {
  uid: number;
  gid: number;
}

export type RootedEntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface RootedStat {
  type: RootedEntryType;
  /** Permission bits (st_mode & 0o7777). */
  mode: number;
  size: number;
  uid: number;
  gid: number;
  nlink: number;
  dev: bigint;
  ino: bigint;
  /** Modification time, nanoseconds since the epoch (exact). */
  mtimeNs: bigint;
  /** Status change time, nanoseconds since the epoch. */
  ctimeNs: bigint;
}

export interface DirEntry {
  name: string;
  stat: RootedStat;
}

export interface WalkEntry {
  /** Relative to the root, '/'-separated. */
  path: string;
  stat: RootedStat;
  /** Symlinks: the target exactly as stored (UTF-8; see `walk`). */
  target?: string;
}

export interface WalkOptions {
  /** Called for each directory (before its entries); true = yield it but do not descend. */
  prune?: (path: string, stat: RootedStat) => boolean;
}

/** x86_64 struct stat (144 bytes); reused, the calls filling it are synchronous. */
const statBuf = Buffer.alloc(144);
const direntBuf = Buffer.alloc(64 << 10);
const linkBuf = Buffer.alloc(4096);
const timesBuf = Buffer.alloc(32);

function parseStat(buf: Buffer): RootedStat {
  const rawMode = buf.readUInt32LE(24);
  const fmt = rawMode & S_IFMT;
  return {
    type: fmt === S_IFREG ? 'file' : fmt === S_IFDIR ? 'dir' : fmt === S_IFLNK ? 'symlink' : 'other',
    mode: rawMode & 0o7777,
    size: Number(buf.readBigInt64LE(48)),
    uid: buf.readUInt32LE(28),
    gid: buf.readUInt32LE(32),
    nlink: Number(buf.readBigUInt64LE(16)),
    dev: buf.readBigUInt64LE(0),
    ino: buf.readBigUInt64LE(8),
    mtimeNs: buf.readBigInt64LE(88) * 1_000_000_000n + buf.readBigInt64LE(96),
    ctimeNs: buf.readBigInt64LE(104) * 1_000_000_000n + buf.readBigInt64LE(112),
  };
}

function toNs(mtimeNs: bigint | string): bigint {
  if (typeof mtimeNs === 'bigint') return mtimeNs;
  if (!/^-?\d{1,20}$/.test(mtimeNs)) throw new FaasError('VALIDATION_FAILED', `mtimeNs is not a decimal integer: ${mtimeNs}`);
  return BigInt(mtimeNs);
}

/** Fills timesBuf: atime left as is, mtime = mtimeNs. */
function fillTimes(mtimeNs: bigint | string): Buffer {
  const ns = toNs(mtimeNs);
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  timesBuf.writeBigInt64LE(0n, 0);
  timesBuf.writeBigInt64LE(BigInt(UTIME_OMIT), 8);
  timesBuf.writeBigInt64LE(sec, 16);
  timesBuf.writeBigInt64LE(nsec, 24);
  return timesBuf;
}

/** A UTF-16 surrogate without its pair: such a string has no UTF-8 encoding. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function invalidPath(path: string, why: string): FaasError {
  return new FaasError('INVALID_PATH', `invalid path ${JSON.stringify(path)}: ${why}`, { path });
}

/**
 * Checks a root-relative path: non-empty, not absolute, no NUL, well-formed UTF-16 (so it
 * encodes to UTF-8), '/'-separated components none of which is empty, '.' or '..'.
 */
export function checkRootedPath(path: string): string[] {
  if (typeof path !== 'string' || path.length === 0) throw invalidPath(String(path), 'empty');
  if (path.startsWith('/')) throw invalidPath(path, 'absolute');
  if (path.includes('\0')) throw invalidPath(path, 'contains NUL');
  if (LONE_SURROGATE.test(path)) throw invalidPath(path, 'not valid Unicode');
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw invalidPath(path, 'too long');
  const parts = path.split('/');
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') throw invalidPath(path, `has a ${part === '' ? 'empty' : `'${part}'`} component`);
    if (Buffer.byteLength(part) > NAME_MAX) throw invalidPath(path, 'a component is longer than 255 bytes');
  }
  return parts;
}

function checkName(name: string): void {
  if (checkRootedPath(name).length !== 1) throw invalidPath(name, 'must be a single component');
}

interface RawName {
  /** NUL-terminated bytes, usable as a path argument whatever the encoding. */
  raw: Buffer;
  /** The name as UTF-8, or undefined when the bytes are not valid UTF-8. */
  name: string | undefined;
  dtype: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads all entries of an open directory (without '.' and '..'). Synchronous: the shared buffer is safe. */
function readNames(fd: number, path: string): RawName[] {
  const out: RawName[] = [];
  for (;;) {
    const n = atCalls.getdents64(fd, direntBuf);
    if (n < 0) throw new RootedFsError('getdents64', -n, path);
    if (n === 0) return out;
    for (let off = 0; off < n; ) {
      const reclen = direntBuf.readUInt16LE(off + 16);
      const dtype = direntBuf.readUInt8(off + 18);
      const start = off + 19;
      const end = direntBuf.indexOf(0, start);
      off += reclen;
      const bytes = direntBuf.subarray(start, end);
      if ((bytes.length === 1 && bytes[0] === 0x2e) || (bytes.length === 2 && bytes[0] === 0x2e && bytes[1] === 0x2e)) continue;
      const raw = Buffer.alloc(bytes.length + 1);
      bytes.copy(raw);
      let name: string | undefined;
      try {
        name = utf8.decode(bytes);
      } catch {
        name = undefined;
      }
      out.push({ raw, name, dtype });
    }
  }
}

function closeQuietly(fd: number): void {
  if (fd >= 0) atCalls.close(fd);
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

async function writevAll(fd: number, buffers: Buffer[], position: number): Promise<void> {
  let bufs = buffers;
  let at = position;
  let left = bufs.reduce((sum, b) => sum + b.length, 0);
  while (left > 0) {
    const written = await new Promise<number>((resolve, reject) => writev(fd, bufs, at, (err, n) => (err ? reject(err) : resolve(n))));
    left -= written;
    at += written;
    if (left > 0) bufs = skipBytes(bufs, written);
  }
}

function writevAllSync(fd: number, buffers: Buffer[]): void {
  let bufs = buffers;
  let left = bufs.reduce((sum, b) => sum + b.length, 0);
  while (left > 0) {
    const written = writevSync(fd, bufs);
    left -= written;
    if (left > 0) bufs = skipBytes(bufs, written);
  }
}

function skipBytes(bufs: Buffer[], n: number): Buffer[] {
  let skip = n;
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) skip -= b.length;
    else {
      out.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return out;
}

function readAt(fd: number, size: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  return new Promise((resolve, reject) =>
    read(fd, buf, 0, size, position, (err, n) => (err ? reject(err) : resolve(n === size ? buf : buf.subarray(0, n)))),
  );
}

export class RootedFs {
  private rootFd: number;
  private readonly tempPrefix = `${TEMP_NAME_PREFIX}${process.pid.toString(36)}-${randomBytes(4).toString('hex')}-`;
  private tempCounter = 0;

  private constructor(
    readonly rootDir: string,
    readonly owner: Owner,
    rootFd: number,
  ) {
    this.rootFd = rootFd;
  }

  /** Opens the root (a host path the host trusts, resolved normally) as an O_PATH directory fd. */
  static open(rootDir: string, owner: Owner): RootedFs {
    const fd = atCalls.openat(AT_FDCWD, rootDir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) throw new SyscallError('open', -fd, rootDir);
    return new RootedFs(rootDir, owner, fd);
  }

  close(): void {
    if (this.rootFd >= 0) {
      atCalls.close(this.rootFd);
      this.rootFd = -1;
    }
  }

  private get root(): number {
    if (this.rootFd < 0) throw new Error(`RootedFs on ${this.rootDir} is closed`);
    return this.rootFd;
  }

  /** openat2 below the root with RESOLVE_IN_ROOT; EXDEV (a mount crossing) is PATH_OUTSIDE_ROOT. */
  private openat2(path: string, flags: number): number {
    for (let attempt = 0; ; attempt++) {
      const fd = atCalls.openat2(this.root, path, flags | O_CLOEXEC, 0, RESOLVE);
      if (fd >= 0) return fd;
      if (fd === -E.EAGAIN && attempt < EAGAIN_RETRIES) continue;
      if (fd === -E.EXDEV) throw new FaasError('PATH_OUTSIDE_ROOT', `path ${JSON.stringify(path)} leaves the root's filesystem`, { path });
      throw new RootedFsError('openat2', -fd, path);
    }
  }

  /**
   * The directory holding the final component, as an O_PATH fd (the root's own fd for a single
   * component: then `owned` is false and it must not be closed), and that component's name.
   */
  private parent(path: string): { dirfd: number; name: string; owned: boolean } {
    const parts = checkRootedPath(path);
    const name = parts.pop() as string;
    if (parts.length === 0) return { dirfd: this.root, name, owned: false };
    return { dirfd: this.openat2(parts.join('/'), O_PATH | O_DIRECTORY), name, owned: true };
  }

  private withParent<T>(path: string, fn: (dirfd: number, name: string) => T): T {
    const { dirfd, name, owned } = this.parent(path);
    try {
      return fn(dirfd, name);
    } finally {
      if (owned) atCalls.close(dirfd);
    }
  }

  /**
   * An O_PATH fd of directory `dirPath` ('' = the root). All its components are intermediate
   * ones of the paths below it, so, like `parent`, symlinks among them resolve within the root.
   */
  private dirPathFd(dirPath: string): { dirfd: number; owned: boolean } {
    if (dirPath === '') return { dirfd: this.root, owned: false };
    checkRootedPath(dirPath);
    return { dirfd: this.openat2(dirPath, O_PATH | O_DIRECTORY), owned: true };
  }

  /**
   * Opens a directory for reading (O_RDONLY|O_DIRECTORY; '' = the root); the caller closes the fd.
   * The final component is not followed unless `followFinal` (and then only within the root).
   */
  openDir(path: string, options: { followFinal?: boolean } = {}): number {
    if (path === '') {
      const fd = atCalls.openat(this.root, '.', O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
      if (fd < 0) throw new RootedFsError('openat', -fd, path);
      return fd;
    }
    checkRootedPath(path);
    return this.openat2(path, O_RDONLY | O_DIRECTORY | (options.followFinal ? 0 : O_NOFOLLOW));
  }

  /** lstat: the entry itself, never a symlink's target; null when it (or a directory on the way) is absent. */
  lstat(path: string): RootedStat | null {
    let stat: RootedStat | null = null;
    try {
      this.withParent(path, (dirfd, name) => {
        const r = atCalls.fstatat(dirfd, name, statBuf, AT_SYMLINK_NOFOLLOW);
        if (r === -E.ENOENT || r === -E.ENOTDIR) return;
        if (r < 0) throw new RootedFsError('fstatat', -r, path);
        stat = parseStat(statBuf);
      });
    } catch (err) {
      if (isRootedFsError(err, 'ENOENT') || isRootedFsError(err, 'ENOTDIR')) return null;
      throw err;
    }
    return stat;
  }

  /** A symlink's target, as stored. */
  readlink(path: string): string {
    return this.withParent(path, (dirfd, name) => readlinkAt(dirfd, name, path));
  }

  /**
   * A directory's entries with their lstat ('' = the root; the final component is not followed).
   * Names that are not valid UTF-8 cannot be expressed in the protocol and are left out.
   */
  readdir(path: string): DirEntry[] {
    const fd = this.openDir(path);
    try {
      const out: DirEntry[] = [];
      for (const { raw, name } of readNames(fd, path)) {
        if (name === undefined) continue;
        const r = atCalls.fstatat(fd, raw, statBuf, AT_SYMLINK_NOFOLLOW);
        if (r === -E.ENOENT) continue; // removed meanwhile
        if (r < 0) throw new RootedFsError('fstatat', -r, join(path, name));
        out.push({ name, stat: parseStat(statBuf) });
      }
      return out;
    } finally {
      atCalls.close(fd);
    }
  }

  /**
   * Every entry below `path` ('' = the root), depth first, parents before children, never
   * following a symlink (each directory is opened with O_NOFOLLOW relative to its parent's fd).
   * Entries the instance removes meanwhile are skipped; names that are not valid UTF-8 are left
   * out (with everything below them); temp names of in-flight writes are left out.
   */
  *walk(path = '', options: WalkOptions = {}): Generator<WalkEntry> {
    const fd = this.openDir(path);
    try {
      yield* this.walkFd(fd, path, options);
    } finally {
      atCalls.close(fd);
    }
  }

  private *walkFd(fd: number, dirPath: string, options: WalkOptions): Generator<WalkEntry> {
    const names = readNames(fd, dirPath).filter((n) => n.name !== undefined && !isTempName(n.name));
    names.sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : (a.name as string) > (b.name as string) ? 1 : 0));
    for (const { raw, name } of names) {
      const path = join(dirPath, name as string);
      const r = atCalls.fstatat(fd, raw, statBuf, AT_SYMLINK_NOFOLLOW);
      if (r === -E.ENOENT) continue;
      if (r < 0) throw new RootedFsError('fstatat', -r, path);
      const stat = parseStat(statBuf);
      if (stat.type === 'symlink') {
        let target: string;
        try {
          target = readlinkAt(fd, raw, path);
        } catch (err) {
          if (isRootedFsError(err, 'ENOENT') || isRootedFsError(err, 'EINVAL')) continue; // swapped meanwhile
          throw err;
        }
        yield { path, stat, target };
        continue;
      }
      yield { path, stat };
      if (stat.type !== 'dir' || options.prune?.(path, stat)) continue;
      const child = atCalls.openat(fd, raw, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
      if (child === -E.ENOENT || child === -E.ENOTDIR || child === -E.ELOOP) continue; // swapped meanwhile
      if (child < 0) throw new RootedFsError('openat', -child, path);
      try {
        yield* this.walkFd(child, path, options);
      } finally {
        atCalls.close(child);
      }
    }
  }

  /**
   * Opens a regular file for reading; a symlink (final component) or any non-regular file is
   * refused. The entry is first pinned with O_PATH and checked, then reopened through
   * /proc/self/fd, so a FIFO or device node planted there is never opened.
   */
  openRead(path: string): { fd: number; stat: RootedStat } {
    checkRootedPath(path);
    const pathFd = this.openat2(path, O_PATH | O_NOFOLLOW);
    try {
      const r = atCalls.fstat(pathFd, statBuf);
      if (r < 0) throw new RootedFsError('fstat', -r, path);
      const stat = parseStat(statBuf);
      if (stat.type !== 'file') {
        throw new RootedFsError('open', stat.type === 'symlink' ? E.ELOOP : stat.type === 'dir' ? E.EISDIR : E.EOPNOTSUPP, path);
      }
      const fd = atCalls.openat(AT_FDCWD, `/proc/self/fd/${pathFd}`, O_RDONLY | O_NOCTTY | O_CLOEXEC, 0);
      if (fd < 0) throw new RootedFsError('open', -fd, path);
      return { fd, stat };
    } finally {
      atCalls.close(pathFd);
    }
  }

  /** A file's content in chunks of up to 1 MiB, read through the thread pool one chunk ahead. */
  async *readStream(path: string, chunkSize = CHUNK): AsyncGenerator<Buffer> {
    const { fd, stat } = this.openRead(path);
    // A small file is read with a buffer of its size (+1 to see it grew): a chunk-sized buffer
    // per small file is megabytes of garbage per thousand files.
    if (stat.size < chunkSize) chunkSize = stat.size + 1;
    let position = 0;
    let next: Promise<Buffer> | undefined = readAt(fd, chunkSize, 0);
    try {
      for (;;) {
        const buf: Buffer = await next;
        next = undefined;
        if (buf.length === 0) return;
        position += buf.length;
        next = readAt(fd, chunkSize, position);
        yield buf;
      }
    } finally {
      // A read still in flight must finish before its fd is closed (and maybe reused).
      if (next) await next.catch(() => undefined);
      atCalls.close(fd);
    }
  }

  private nextTempName(): string {
    return `${this.tempPrefix}${(this.tempCounter++).toString(36)}`;
  }

  /** O_CREAT|O_EXCL a fresh temp file in `dirfd`, owned by the owner, mode 0600. */
  private createTempAt(dirfd: number, dirPath: string): { fd: number; name: string } {
    for (;;) {
      const name = this.nextTempName();
      const fd = atCalls.openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600);
      if (fd === -E.EEXIST) continue;
      if (fd < 0) throw new RootedFsError('openat', -fd, join(dirPath, name));
      const r = atCalls.fchown(fd, this.owner.uid, this.owner.gid);
      if (r < 0) {
        atCalls.close(fd);
        atCalls.unlinkat(dirfd, name, 0);
        throw new RootedFsError('fchown', -r, join(dirPath, name));
      }
      return { fd, name };
    }
  }

  /**
   * Creates an empty temp file (mode 0600, owned by the owner) in directory `dirPath` ('' = the
   * root); write it, `setFdAttributes`, close, then `renameAt` it into place.
   */
  createTemp(dirPath: string): { fd: number; name: string } {
    const { dirfd, owned } = this.dirPathFd(dirPath);
    try {
      return this.createTempAt(dirfd, dirPath);
    } finally {
      if (owned) atCalls.close(dirfd);
    }
  }

  /** fchmod and (with mtimeNs) futimens, nanosecond-exact, on an open file. */
  setFdAttributes(fd: number, mode: number | undefined, mtimeNs: bigint | string | undefined, path = `fd ${fd}`): void {
    if (mode !== undefined) {
      const r = atCalls.fchmod(fd, mode & 0o7777);
      if (r < 0) throw new RootedFsError('fchmod', -r, path);
    }
    if (mtimeNs !== undefined) {
      const r = atCalls.futimens(fd, fillTimes(mtimeNs));
      if (r < 0) throw new RootedFsError('futimens', -r, path);
    }
  }

  /** renameat within directory `dirPath` ('' = the root): atomic, replacing `to` unless it is a non-empty dir. */
  renameAt(dirPath: string, from: string, to: string): void {
    checkName(from);
    checkName(to);
    const { dirfd, owned } = this.dirPathFd(dirPath);
    try {
      const r = atCalls.renameat(dirfd, from, dirfd, to);
      if (r < 0) throw new RootedFsError('renameat', -r, join(dirPath, to));
    } finally {
      if (owned) atCalls.close(dirfd);
    }
  }

  /**
   * Creates a directory (its parent must exist) owned by the owner with exactly `mode`; an
   * existing directory only gets the mode. Anything else already there is EEXIST.
   */
  mkdirAt(path: string, mode: number): 'created' | 'existed' {
    return this.withParent(path, (dirfd, name) => {
      const made = atCalls.mkdirat(dirfd, name, 0o700);
      if (made < 0 && made !== -E.EEXIST) throw new RootedFsError('mkdirat', -made, path);
      // Open what is there now without following it: the instance may have swapped it.
      const fd = atCalls.openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
      if (fd === -E.ELOOP || fd === -E.ENOTDIR) throw new RootedFsError('mkdirat', E.EEXIST, path);
      if (fd < 0) throw new RootedFsError('openat', -fd, path);
      try {
        if (made === 0) {
          const r = atCalls.fchown(fd, this.owner.uid, this.owner.gid);
          if (r < 0) throw new RootedFsError('fchown', -r, path);
        }
        const r = atCalls.fchmod(fd, mode & 0o7777);
        if (r < 0) throw new RootedFsError('fchmod', -r, path);
      } finally {
        atCalls.close(fd);
      }
      return made === 0 ? 'created' : 'existed';
    });
  }

  /** Replaces whatever is at `path` (a directory: with its tree) by a symlink owned by the owner, atomically. */
  symlinkAt(path: string, target: string): void {
    if (typeof target !== 'string' || target.length === 0 || target.includes('\0') || LONE_SURROGATE.test(target) || Buffer.byteLength(target) > MAX_PATH_BYTES) {
      throw new FaasError('INVALID_PATH', `invalid symlink target ${JSON.stringify(target)}`, { path, target });
    }
    this.withParent(path, (dirfd, name) => {
      let tmp: string;
      for (;;) {
        tmp = this.nextTempName();
        const r = atCalls.symlinkat(target, dirfd, tmp);
        if (r === 0) break;
        if (r !== -E.EEXIST) throw new RootedFsError('symlinkat', -r, path);
      }
      try {
        const r = atCalls.fchownat(dirfd, tmp, this.owner.uid, this.owner.gid, AT_SYMLINK_NOFOLLOW);
        if (r < 0) throw new RootedFsError('fchownat', -r, path);
        this.replaceWith(dirfd, tmp, name, path);
      } catch (err) {
        atCalls.unlinkat(dirfd, tmp, 0);
        throw err;
      }
    });
  }

  /** renameat(tmp -> name) in dirfd; a directory in the way is removed (with its tree) first. */
  private replaceWith(dirfd: number, tmp: string, name: string, path: string): void {
    for (let attempt = 0; ; attempt++) {
      const r = atCalls.renameat(dirfd, tmp, dirfd, name);
      if (r === 0) return;
      if ((r === -E.EISDIR || r === -E.ENOTEMPTY || r === -E.EEXIST) && attempt < 3) {
        removeTreeAt(dirfd, Buffer.from(`${name}\0`), path);
        continue;
      }
      throw new RootedFsError('renameat', -r, path);
    }
  }

  /** Removes a file or symlink (never a directory: EISDIR); false when absent. */
  unlinkAt(path: string): boolean {
    return this.withParent(path, (dirfd, name) => {
      const r = atCalls.unlinkat(dirfd, name, 0);
      if (r === -E.ENOENT) return false;
      if (r < 0) throw new RootedFsError('unlinkat', -r, path);
      return true;
    });
  }

  /** Removes a file, symlink or directory tree, never following a symlink; false when absent. */
  removeTree(path: string): boolean {
    try {
      return this.withParent(path, (dirfd, name) => removeTreeAt(dirfd, Buffer.from(`${name}\0`), path));
    } catch (err) {
      if (isRootedFsError(err, 'ENOENT') || isRootedFsError(err, 'ENOTDIR')) return false;
      throw err;
    }
  }

  /**
   * Sets mode and/or mtime of an existing entry without following it: fchmodat2 with
   * AT_SYMLINK_NOFOLLOW (a symlink has no mode of its own on Linux: skipped) and utimensat with
   * AT_SYMLINK_NOFOLLOW.
   */
  setAttributes(path: string, mode: number | undefined, mtimeNs: bigint | string | undefined): void {
    this.withParent(path, (dirfd, name) => {
      if (mode !== undefined) {
        const r = atCalls.fchmodatNoFollow(dirfd, name, mode & 0o7777);
        if (r < 0 && r !== -E.EOPNOTSUPP) throw new RootedFsError('fchmodat2', -r, path);
      }
      if (mtimeNs !== undefined) {
        const r = atCalls.utimensat(dirfd, name, fillTimes(mtimeNs), AT_SYMLINK_NOFOLLOW);
        if (r < 0) throw new RootedFsError('utimensat', -r, path);
      }
    });
  }

  /**
   * Writes a file atomically: a temp file in the same directory (owned by the owner), the
   * content, mode, mtime (nanosecond-exact, when given), then renameat over `path`. Whatever
   * was at `path` is replaced, never written through (a symlink is replaced by the file, a
   * directory is removed with its tree). On failure the temp file is removed. Memory stays
   * bounded: at most WRITES_IN_FLIGHT 1 MiB writes in flight while the next megabyte is gathered.
   * @returns the bytes written.
   */
  async writeFileAtomic(path: string, content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, mode: number, mtimeNs?: bigint | string): Promise<number> {
    if (mtimeNs !== undefined) toNs(mtimeNs); // validate before creating anything
    const { dirfd, name, owned } = this.parent(path);
    let fd = -1;
    let tmp: string | undefined;
    // Positional writes, several in flight: the content keeps being read while the disk is
    // slow (one write at a time left the socket idle for half of a large upload).
    const inflight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    const settleAll = async (): Promise<void> => {
      await Promise.all(inflight);
      if (failure) throw failure.error;
    };
    try {
      ({ fd, name: tmp } = this.createTempAt(dirfd, path));
      const file = fd;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let total = 0;
      let position = 0;
      const flush = async (): Promise<void> => {
        while (inflight.size >= WRITES_IN_FLIGHT) await Promise.race(inflight);
        if (failure) throw failure.error;
        const p: Promise<void> = writevAll(file, pending, position).then(
          () => void inflight.delete(p),
          (error: unknown) => {
            inflight.delete(p);
            failure ??= { error };
          },
        );
        inflight.add(p);
        position += pendingBytes;
        pending = [];
        pendingBytes = 0;
      };
      for await (const chunk of content) {
        if (chunk.length === 0) continue;
        pending.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
        pendingBytes += chunk.length;
        total += chunk.length;
        if (pendingBytes >= CHUNK) await flush();
      }
      if (position > 0 || pendingBytes > SYNC_WRITE_MAX) {
        if (pendingBytes > 0) await flush();
        await settleAll();
      } else if (pendingBytes > 0) {
        writevAllSync(fd, pending);
      }
      this.setFdAttributes(fd, mode, mtimeNs, path);
      const fdToClose = fd;
      fd = -1;
      const r = atCalls.close(fdToClose);
      if (r < 0) throw new RootedFsError('close', -r, path);
      this.replaceWith(dirfd, tmp, name, path);
      tmp = undefined;
      return total;
    } finally {
      await Promise.all(inflight);
      closeQuietly(fd);
      if (tmp !== undefined) atCalls.unlinkat(dirfd, tmp, 0);
      if (owned) atCalls.close(dirfd);
    }
  }
}

function readlinkAt(dirfd: number, name: CPath, path: string): string {
  const n = atCalls.readlinkat(dirfd, name, linkBuf);
  if (n < 0) throw new RootedFsError('readlinkat', -n, path);
  if (n >= linkBuf.length) throw new RootedFsError('readlinkat', 36 /* ENAMETOOLONG */, path);
  return linkBuf.toString('utf8', 0, n);
}

/**
 * Removes `name` in dirfd: unlinkat, and for a directory its entries first (each directory
 * opened O_NOFOLLOW relative to its parent's fd, so no symlink is ever followed), then
 * unlinkat(AT_REMOVEDIR). Retries when the instance adds entries meanwhile. False when absent.
 */
function removeTreeAt(dirfd: number, name: Buffer, path: string): boolean {
  const r = atCalls.unlinkat(dirfd, name, 0);
  if (r === 0) return true;
  if (r === -E.ENOENT) return false;
  if (r !== -E.EISDIR) throw new RootedFsError('unlinkat', -r, path);
  for (let attempt = 0; ; attempt++) {
    const fd = atCalls.openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd === -E.ENOENT) return false;
    if (fd === -E.ELOOP || fd === -E.ENOTDIR) {
      // Swapped for a symlink or file meanwhile: remove that.
      const u = atCalls.unlinkat(dirfd, name, 0);
      if (u === 0 || u === -E.ENOENT) return u === 0;
      throw new RootedFsError('unlinkat', -u, path);
    }
    if (fd < 0) throw new RootedFsError('openat', -fd, path);
    try {
      for (const entry of readNames(fd, path)) {
        const childPath = join(path, entry.name ?? entry.raw.subarray(0, -1).toString('latin1'));
        if (entry.dtype === DT_DIR) removeTreeAt(fd, entry.raw, childPath);
        else {
          const u = atCalls.unlinkat(fd, entry.raw, 0);
          if (u === -E.EISDIR) removeTreeAt(fd, entry.raw, childPath);
          else if (u < 0 && u !== -E.ENOENT) throw new RootedFsError('unlinkat', -u, childPath);
        }
      }
    } finally {
      atCalls.close(fd);
    }
    const d = atCalls.unlinkat(dirfd, name, AT_REMOVEDIR);
    if (d === 0) return true;
    if (d === -E.ENOENT) return false;
    if (d === -E.ENOTEMPTY && attempt < 10) continue;
    throw new RootedFsError('unlinkat', -d, path);
  }
}
