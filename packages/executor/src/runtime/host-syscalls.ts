import koffi from 'koffi';

/**
 * The few Linux syscalls the bwrap runtime makes itself, through koffi (FFI with prebuilt
 * binaries in its npm package). Spawning mount(8)/umount(8) costs ~3.5 ms each here, the
 * syscalls ~0.3 ms, and creating an instance sits on the hot path of every cold start.
 */
const libc = koffi.load('libc.so.6');
const mountFn = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)');
const umount2Fn = libc.func('int umount2(const char *target, int flags)');
const prctlFn = libc.func('int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)');
const strerrorFn = libc.func('const char *strerror(int errnum)');


const MS_REMOUNT = 32;
const MNT_DETACH = 2;
const UMOUNT_NOFOLLOW = 8;
const PR_SET_NO_NEW_PRIVS = 38;

export class SyscallError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    detail: string,
  ) {
    super(`${syscall} failed: ${strerrorFn(errno) as string} (errno ${errno}): ${detail}`);
  }
}

export function mountOverlay(target: string, lowerDirs: readonly string[], upperDir: string, workDir: string): void {
  for (const dir of [target, upperDir, workDir, ...lowerDirs]) {
    // overlayfs option syntax uses ',' and ':' as separators; paths with them cannot be expressed.
    if (/[,:\\]/.test(dir)) throw new Error(`overlay path contains a separator character: ${dir}`);
  }
  const data = `lowerdir=${lowerDirs.join(':')},upperdir=${upperDir},workdir=${workDir}`;
  if (mountFn('overlay', target, 'overlay', 0, data) !== 0) throw new SyscallError('mount', koffi.errno(), `overlay on ${target}`);
}

/** Unmounts; with `detach`, lazily (the mount goes once nothing uses it). ENOENT/EINVAL (not mounted) are not errors. */
export function unmount(target: string, detach = false): boolean {
  if (umount2Fn(target, (detach ? MNT_DETACH : 0) | UMOUNT_NOFOLLOW) === 0) return true;
  const errno = koffi.errno();
  if (errno === 2 /* ENOENT */ || errno === 22 /* EINVAL: not a mount point */) return false;
  throw new SyscallError('umount2', errno, target);
}

/**
 * Sets no_new_privs on the calling (main) thread. Children forked from it inherit the flag, so
 * nothing the server starts can gain privileges through setuid bits or file capabilities.
 */
export function setNoNewPrivs(): void {
  if (prctlFn(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) !== 0) throw new SyscallError('prctl', koffi.errno(), 'PR_SET_NO_NEW_PRIVS');
}

/** Remounts a filesystem in place with the given (complete) option string. */
export function remount(target: string, options: string): void {
  if (mountFn(null, target, null, MS_REMOUNT, options) !== 0) throw new SyscallError('mount', koffi.errno(), `remount ${target} with ${options}`);
}


/*
 * New mount API (Linux 5.12+), used to give a tree an idmapped view. glibc 2.36 has no wrappers
 * for these, so they go through syscall(2); the numbers are x86_64's (the only host arch).
 */
const syscallFn = libc.func('long syscall(long nr, ...)');
const SYS_OPEN_TREE = 428;
const SYS_MOVE_MOUNT = 429;
const SYS_MOUNT_SETATTR = 442;

const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const AT_RECURSIVE = 0x8000;
const O_CLOEXEC = 0o2000000;
const OPEN_TREE_CLONE = 1;
const MOVE_MOUNT_F_EMPTY_PATH = 4;
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_IDMAP = 0x0010_0000;
/** sizeof(struct mount_attr), version 0: { u64 attr_set, attr_clr, propagation, userns_fd }. */
const MOUNT_ATTR_SIZE_VER0 = 32;

/**
 * open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC): a detached copy of the mount
 * at `path` (with `recursive`, of its submounts too), returned as an fd. It is attached nowhere,
 * so its attributes (e.g. an idmap, which only a not-yet-attached mount may get) can still be set.
 */
export function openTreeClone(path: string, recursive = false): number {
  const flags = OPEN_TREE_CLONE | O_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  const fd = Number(syscallFn(SYS_OPEN_TREE, 'int', AT_FDCWD, 'const char *', path, 'unsigned int', flags));
  if (fd < 0) throw new SyscallError('open_tree', koffi.errno(), path);
  return fd;
}

export interface MountAttr {
  set: number;
  clear?: number;
  /** A user-namespace fd; required with MOUNT_ATTR_IDMAP (its uid/gid maps become the mount's). */
  usernsFd?: number;
}

/** mount_setattr on the mount behind `fd` itself (AT_EMPTY_PATH). */
export function mountSetattr(fd: number, attr: MountAttr, recursive = false): void {
  const buf = Buffer.alloc(MOUNT_ATTR_SIZE_VER0);
  buf.writeBigUInt64LE(BigInt(attr.set), 0);
  buf.writeBigUInt64LE(BigInt(attr.clear ?? 0), 8);
  buf.writeBigUInt64LE(0n, 16); // propagation: unchanged
  buf.writeBigUInt64LE(BigInt(attr.usernsFd ?? 0), 24);
  const flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  const rc = Number(syscallFn(SYS_MOUNT_SETATTR, 'int', fd, 'const char *', '', 'unsigned int', flags, 'void *', buf, 'size_t', MOUNT_ATTR_SIZE_VER0));
  if (rc !== 0) throw new SyscallError('mount_setattr', koffi.errno(), `fd ${fd}`);
}

/** move_mount of the (detached) mount behind `fd` onto `target`, attaching it there. */
export function moveMountTo(fd: number, target: string): void {
  const rc = Number(syscallFn(SYS_MOVE_MOUNT, 'int', fd, 'const char *', '', 'int', AT_FDCWD, 'const char *', target, 'unsigned int', MOVE_MOUNT_F_EMPTY_PATH));
  if (rc !== 0) throw new SyscallError('move_mount', koffi.errno(), `onto ${target}`);
}

/*
 * syncfs(2): writes back every dirty page and inode of the filesystem holding `fd` and commits
 * its journal in one call. The blob store's batch commit makes thousands of files durable with
 * it instead of an fsync each (10,000 1 KiB files here: ~90 ms against ~1.1 s for parallel
 * fsyncs). Since Linux 5.8 it reports writeback errors of that filesystem.
 */
const syncfsFn = libc.func('int syncfs(int fd)');

/** syncfs on koffi's worker thread: it can take long when much is dirty, so it must not block the event loop. */
export function syncfs(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    syncfsFn.async(fd, (err: unknown, rc: number) => {
      // koffi restores the call's errno for the callback.
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else if (rc !== 0) reject(new SyscallError('syncfs', koffi.errno(), `fd ${fd}`));
      else resolve();
    });
  });
}

/*
 * *at() file syscalls for RootedFs (rooted-fs.ts): every path operation inside an instance's
 * tree is relative to a directory fd resolved with openat2(RESOLVE_IN_ROOT). These are thin
 * bindings that never throw: each returns its result (>= 0) or -errno, so callers can branch on
 * expected failures (EEXIST, EISDIR, ENOENT) without the cost of building an Error. Non-variadic
 * prototypes for syscall(2) are ABI-compatible on x86_64 and avoid koffi's slower variadic path.
 */
const openat2Sys = libc.func('syscall', 'long', ['long', 'int', 'const char *', 'void *', 'size_t']);
const getdents64Sys = libc.func('syscall', 'long', ['long', 'int', 'void *', 'size_t']);
const fchmodat2Sys = libc.func('syscall', 'long', ['long', 'int', 'const char *', 'uint32_t', 'int']);
const openatFn = libc.func('int openat(int dirfd, const char *path, int flags, uint32_t mode)');
const closeFn = libc.func('int close(int fd)');
const fstatFn = libc.func('int fstat(int fd, void *statbuf)');
const fstatatFn = libc.func('int fstatat(int dirfd, const char *path, void *statbuf, int flags)');
const mkdiratFn = libc.func('int mkdirat(int dirfd, const char *path, uint32_t mode)');
const symlinkatFn = libc.func('int symlinkat(const char *target, int dirfd, const char *path)');
const renameatFn = libc.func('int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)');
const unlinkatFn = libc.func('int unlinkat(int dirfd, const char *path, int flags)');
const fchownFn = libc.func('int fchown(int fd, uint32_t uid, uint32_t gid)');
const fchownatFn = libc.func('int fchownat(int dirfd, const char *path, uint32_t uid, uint32_t gid, int flags)');
const fchmodFn = libc.func('int fchmod(int fd, uint32_t mode)');
const fchmodatFn = libc.func('int fchmodat(int dirfd, const char *path, uint32_t mode, int flags)');
const futimensFn = libc.func('int futimens(int fd, const void *times)');
const utimensatFn = libc.func('int utimensat(int dirfd, const char *path, const void *times, int flags)');
const readlinkatFn = libc.func('long readlinkat(int dirfd, const char *path, void *buf, size_t size)');

const SYS_OPENAT2 = 437;
const SYS_GETDENTS64 = 217;
const SYS_FCHMODAT2 = 452;

/** A path argument: a string (UTF-8 encoded by koffi) or a NUL-terminated byte name. */
export type CPath = string | Buffer;

function rc(value: number | bigint): number {
  const n = Number(value);
  return n < 0 ? -koffi.errno() : n;
}

/** struct open_how { u64 flags, mode, resolve }, reused: the calls are synchronous. */
const openHow = Buffer.alloc(24);
let fchmodat2Missing = false;

export const atCalls = {
  openat2(dirfd: number, path: CPath, flags: number, mode: number, resolve: number): number {
    openHow.writeBigUInt64LE(BigInt(flags >>> 0), 0);
    openHow.writeBigUInt64LE(BigInt(mode), 8);
    openHow.writeBigUInt64LE(BigInt(resolve), 16);
    return rc(openat2Sys(SYS_OPENAT2, dirfd, path, openHow, 24) as number);
  },
  openat: (dirfd: number, path: CPath, flags: number, mode: number): number => rc(openatFn(dirfd, path, flags, mode) as number),
  close: (fd: number): number => rc(closeFn(fd) as number),
  /** Fills `buf` (>= 144 bytes, x86_64 struct stat). */
  fstat: (fd: number, buf: Buffer): number => rc(fstatFn(fd, buf) as number),
  fstatat: (dirfd: number, path: CPath, buf: Buffer, flags: number): number => rc(fstatatFn(dirfd, path, buf, flags) as number),
  /** Fills `buf` with linux_dirent64 records; returns the bytes used (0 at the end). */
  getdents64: (fd: number, buf: Buffer): number => rc(getdents64Sys(SYS_GETDENTS64, fd, buf, buf.length) as number),
  mkdirat: (dirfd: number, path: CPath, mode: number): number => rc(mkdiratFn(dirfd, path, mode) as number),
  symlinkat: (target: CPath, dirfd: number, path: CPath): number => rc(symlinkatFn(target, dirfd, path) as number),
  renameat: (olddirfd: number, oldpath: CPath, newdirfd: number, newpath: CPath): number => rc(renameatFn(olddirfd, oldpath, newdirfd, newpath) as number),
  unlinkat: (dirfd: number, path: CPath, flags: number): number => rc(unlinkatFn(dirfd, path, flags) as number),
  fchown: (fd: number, uid: number, gid: number): number => rc(fchownFn(fd, uid, gid) as number),
  fchownat: (dirfd: number, path: CPath, uid: number, gid: number, flags: number): number => rc(fchownatFn(dirfd, path, uid, gid, flags) as number),
  fchmod: (fd: number, mode: number): number => rc(fchmodFn(fd, mode) as number),
  /**
   * fchmodat2 (Linux 6.6+), which honours AT_SYMLINK_NOFOLLOW atomically; before it, glibc's
   * fchmodat does the same through an O_PATH fd and /proc. Either way a symlink gives EOPNOTSUPP.
   */
  fchmodatNoFollow(dirfd: number, path: CPath, mode: number): number {
    const AT_SYMLINK_NOFOLLOW = 0x100;
    if (!fchmodat2Missing) {
      const r = rc(fchmodat2Sys(SYS_FCHMODAT2, dirfd, path, mode, AT_SYMLINK_NOFOLLOW) as number);
      if (r !== -38 /* ENOSYS */) return r;
      fchmodat2Missing = true;
    }
    return rc(fchmodatFn(dirfd, path, mode, AT_SYMLINK_NOFOLLOW) as number);
  },
  /** `times`: struct timespec[2] (atime, mtime), 32 bytes. */
  futimens: (fd: number, times: Buffer): number => rc(futimensFn(fd, times) as number),
  utimensat: (dirfd: number, path: CPath, times: Buffer, flags: number): number => rc(utimensatFn(dirfd, path, times, flags) as number),
  readlinkat: (dirfd: number, path: CPath, buf: Buffer): number => rc(readlinkatFn(dirfd, path, buf, buf.length) as number),
};

/*
 * Network namespaces: a socket belongs to the namespace of the thread that created it, for its
 * whole life. So a socket made while the calling thread sits in an instance's namespace
 * connects inside it, without a process per connection (see netns-connect.ts).
 */
const setnsFn = libc.func('int setns(int fd, int nstype)');
const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const CLONE_NEWNET = 0x4000_0000;

/** Moves the calling thread into the namespace behind `fd` (which must be a network namespace). */
export function setNetNs(fd: number): void {
  if (setnsFn(fd, CLONE_NEWNET) !== 0) throw new SyscallError('setns', koffi.errno(), `fd ${fd}`);
}

/** socket(2); throws on failure. */
export function createSocket(domain: number, type: number, protocol = 0): number {
  const fd = socketFn(domain, type, protocol) as number;
  if (fd < 0) throw new SyscallError('socket', koffi.errno(), `domain ${domain}`);
  return fd;
}

/*
 * Pseudo-terminals. ioctl(2) is variadic; these fixed prototypes are ABI-compatible with it on
 * x86_64 (as for syscall(2) above). Request numbers are x86_64's.
 */
const ioctlPtrFn = libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']);
const ioctlIntFn = libc.func('ioctl', 'int', ['int', 'unsigned long', 'long']);
const writeFn = libc.func('long write(int fd, const void *buf, size_t count)');
const fcntlIntFn = libc.func('fcntl', 'int', ['int', 'int', 'long']);
const F_DUPFD_CLOEXEC = 1030;
const TIOCSPTLCK = 0x4004_5431;
const TIOCGPTN = 0x8004_5430;
const TIOCGPTPEER = 0x5441;
const TIOCSWINSZ = 0x5414;
const TCGETS = 0x5401;
/** Offset of c_cc[VEOF] in the kernel's struct termios (4 flag words, c_line, then c_cc; VEOF = 4). */
const TERMIOS_VEOF_OFFSET = 17 + 4;

export const ptyCalls = {
  /** Unlocks a new master's slave (ptmx starts locked). */
  unlock(master: number): void {
    const zero = Buffer.alloc(4);
    if (ioctlPtrFn(master, TIOCSPTLCK, zero) !== 0) throw new SyscallError('ioctl', koffi.errno(), 'TIOCSPTLCK');
  },
  /** The slave's number in its devpts instance (/dev/pts/N). */
  number(master: number): number {
    const n = Buffer.alloc(4);
    if (ioctlPtrFn(master, TIOCGPTN, n) !== 0) throw new SyscallError('ioctl', koffi.errno(), 'TIOCGPTN');
    return n.readUInt32LE(0);
  },
  /** Opens the slave of `master` without a path lookup (Linux 4.13+), so nothing can swap it. */
  openPeer(master: number, flags: number): number {
    const fd = ioctlIntFn(master, TIOCGPTPEER, flags) as number;
    if (fd < 0) throw new SyscallError('ioctl', koffi.errno(), 'TIOCGPTPEER');
    return fd;
  },
  /** Sets the window size; the kernel sends SIGWINCH to the terminal's foreground process group. */
  setSize(master: number, cols: number, rows: number): void {
    const ws = Buffer.alloc(8);
    ws.writeUInt16LE(rows, 0);
    ws.writeUInt16LE(cols, 2);
    if (ioctlPtrFn(master, TIOCSWINSZ, ws) !== 0) throw new SyscallError('ioctl', koffi.errno(), 'TIOCSWINSZ');
  },
  /** The terminal's current end-of-file character (what `stty eof` says; ^D unless changed). */
  eofChar(master: number): number {
    const termios = Buffer.alloc(64);
    if (ioctlPtrFn(master, TCGETS, termios) !== 0) return 4;
    return termios[TERMIOS_VEOF_OFFSET]!;
  },
  /** A close-on-exec duplicate of `fd` (same open file, so the same non-blocking flag). */
  dup(fd: number): number {
    const copy = fcntlIntFn(fd, F_DUPFD_CLOEXEC, 3) as number;
    if (copy < 0) throw new SyscallError('fcntl', koffi.errno(), 'F_DUPFD_CLOEXEC');
    return copy;
  },
  /** write(2) on a non-blocking fd: bytes written, or -errno (EAGAIN when the terminal is full). */
  write(fd: number, buf: Buffer): number {
    return rc(writeFn(fd, buf, buf.length) as number);
  },
};
