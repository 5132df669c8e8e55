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
