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

