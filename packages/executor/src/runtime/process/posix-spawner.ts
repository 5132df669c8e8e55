import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import koffi from 'koffi';

/**
 * Starts processes with posix_spawn(3) instead of Node's child_process.
 *
 * Node forks the whole server to start a child: with a ~100 MB process that blocks the event
 * loop for 3-10 ms per spawn, on every instance start and every exec. glibc's posix_spawn
 * uses clone(CLONE_VM | CLONE_VFORK): no page tables are copied and the call returns in
 * ~0.1 ms. What Node would do for us is done here: pipes for stdio (close-on-exec on our ends),
 * every other descriptor closed in the child,
 * default signal dispositions and an empty mask in the child (Node ignores SIGPIPE, which a
 * child would otherwise inherit), and reaping: on SIGCHLD, waitpid(WNOHANG) on our own pids
 * only, never -1, so libuv's children are left to libuv.
 */

const libc = koffi.load('libc.so.6');
const posixSpawnFn = libc.func('int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)');
const actionsInit = libc.func('int posix_spawn_file_actions_init(void *actions)');
const actionsDestroy = libc.func('int posix_spawn_file_actions_destroy(void *actions)');
const actionsAddDup2 = libc.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)');
const actionsAddOpen = libc.func('int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int oflag, int mode)');
// glibc 2.34+: closes every descriptor from `from` up in the child.
const actionsAddCloseFrom = libc.func('int posix_spawn_file_actions_addclosefrom_np(void *actions, int from)');
const attrInit = libc.func('int posix_spawnattr_init(void *attr)');
const attrDestroy = libc.func('int posix_spawnattr_destroy(void *attr)');
const attrSetFlags = libc.func('int posix_spawnattr_setflags(void *attr, short flags)');
const attrSetSigDefault = libc.func('int posix_spawnattr_setsigdefault(void *attr, const void *sigset)');
const attrSetSigMask = libc.func('int posix_spawnattr_setsigmask(void *attr, const void *sigset)');
const sigEmptySet = libc.func('int sigemptyset(void *set)');
const pipe2 = libc.func('int pipe2(_Out_ int *fds, int flags)');
const waitpid = libc.func('int waitpid(int pid, _Out_ int *status, int options)');
const strerror = libc.func('const char *strerror(int errnum)');

const O_CLOEXEC = 0o2000000;
const O_RDWR = 2;
const WNOHANG = 1;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
// Opaque glibc structs (x86_64: 80, 336 and 128 bytes); allocated generously.
const ACTIONS_BYTES = 256;
const ATTR_BYTES = 512;
const SIGSET_BYTES = 128;

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/**
 * What a descriptor of the child is: a new pipe (we get the other end), /dev/null, or a
 * descriptor of ours (e.g. a terminal's slave side), which the caller keeps and closes.
 */
export type StdioKind = 'pipe' | 'ignore' | { fd: number };

export interface SpawnRequest {
  file: string;
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  /** Index = the child's fd number (0, 1, 2, 3, ...). */
  stdio: readonly StdioKind[];
}

export interface ProcessStatus {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export class SpawnedProcess {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly exited: Promise<ProcessStatus>;
  private settle!: (status: ProcessStatus) => void;

  constructor(
    readonly pid: number,
    /** Our end of each child descriptor that is a pipe (readable for 1+, writable for 0), else null. */
    readonly stdio: ReadonlyArray<Socket | null>,
  ) {
    this.exited = new Promise((resolve) => (this.settle = resolve));
  }

  /** Sends a signal; false when the process is already gone. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exitCode !== null || this.signalCode !== null) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** @internal called by the reaper */
  reaped(status: number): void {
    const termsig = status & 0x7f;
    if (termsig === 0) this.exitCode = (status >> 8) & 0xff;
    else this.signalCode = SIGNAL_NAMES.get(termsig) ?? null;
    this.settle({ exitCode: this.exitCode, signal: this.signalCode });
  }
}

const tracked = new Map<number, SpawnedProcess>();
let listening = false;
/**
 * Signal listeners do not keep Node's event loop alive, a timer does: while a child runs, a
 * slow poll holds the loop open and also catches a SIGCHLD that was coalesced or lost.
 */
let poll: NodeJS.Timeout | undefined;
const POLL_MS = 500;

function reap(): void {
  for (const [pid, child] of tracked) {
    const status = [0];
    const r = waitpid(pid, status, WNOHANG) as number;
    if (r === pid || r === -1) {
      tracked.delete(pid);
      // -1 (ECHILD): someone else reaped it; report it as gone without a status.
      child.reaped(r === pid ? status[0]! : 0x09);
    }
  }
  if (tracked.size === 0 && listening) {
    process.off('SIGCHLD', reap);
    listening = false;
    clearInterval(poll);
    poll = undefined;
  }
}

/** Spawns a process; throws an Error with the errno text when exec fails (e.g. no such file). */
export function posixSpawn(request: SpawnRequest): SpawnedProcess {
  const ours: Array<Socket | null> = [];
  const childEnds: number[] = [];
  const ourFds: number[] = [];
  const actions = Buffer.alloc(ACTIONS_BYTES);
  const attr = Buffer.alloc(ATTR_BYTES);
  actionsInit(actions);
  attrInit(attr);
  try {
    // Every signal 1-64 back to its default, glibc's internal 32 and 33 included (sigfillset
    // leaves those out, and the server has them ignored).
    const sigs = Buffer.alloc(SIGSET_BYTES);
    sigs.fill(0xff, 0, 8);
    attrSetSigDefault(attr, sigs);
    const empty = Buffer.alloc(SIGSET_BYTES);
    sigEmptySet(empty);
    attrSetSigMask(attr, empty);
    attrSetFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    const pipes: Array<{ our: number; child: number; readable: boolean } | null> = [];
    request.stdio.forEach((kind, fd) => {
      if (kind === 'ignore') {
        actionsAddOpen(actions, fd, '/dev/null', O_RDWR, 0);
        pipes.push(null);
        return;
      }
      if (typeof kind === 'object') {
        // dup2 clears close-on-exec on the copy, so the child keeps it.
        actionsAddDup2(actions, kind.fd, fd);
        pipes.push(null);
        return;
      }
      const fds = [0, 0];
      if (pipe2(fds, O_CLOEXEC) !== 0) throw new Error(`pipe2 failed: ${strerror(koffi.errno()) as string}`);
      const [readEnd, writeEnd] = fds as [number, number];
      // fd 0 is the child's input: it reads, we write. Every other pipe is output.
      const child = fd === 0 ? readEnd : writeEnd;
      const our = fd === 0 ? writeEnd : readEnd;
      childEnds.push(child);
      ourFds.push(our);
      actionsAddDup2(actions, child, fd);
      pipes.push({ our, child, readable: fd !== 0 });
    });
    // Nothing but the descriptors asked for reaches the child, whatever the server inherited or
    // a library opened without close-on-exec: a stray descriptor inside a sandbox is a way out.
    if (actionsAddCloseFrom(actions, request.stdio.length) !== 0) throw new Error('posix_spawn_file_actions_addclosefrom_np failed');
    const pid = [0];
    const argv = [...request.argv, null];
    const envp = [...Object.entries(request.env).map(([k, v]) => `${k}=${v}`), null];
    const rc = posixSpawnFn(pid, request.file, actions, attr, argv as string[], envp as string[]) as number;
    if (rc !== 0) throw new Error(`cannot start ${request.file}: ${strerror(rc) as string}`);
    for (const p of pipes) ours.push(p === null ? null : new Socket({ fd: p.our, readable: p.readable, writable: !p.readable, allowHalfOpen: true }));
    ourFds.length = 0; // owned by the sockets now
    const child = new SpawnedProcess(pid[0]!, ours);
    tracked.set(child.pid, child);
    if (!listening) {
      process.on('SIGCHLD', reap);
      listening = true;
      poll = setInterval(reap, POLL_MS);
    }
    // A child that exited before the listener existed sent its SIGCHLD to nobody.
    setImmediate(reap);
    return child;
  } finally {
    for (const fd of childEnds) closeSync(fd);
    for (const fd of ourFds) closeSync(fd);
    actionsDestroy(actions);
    attrDestroy(attr);
  }
}

const killFn = libc.func('int kill(int pid, int sig)');

/**
 * Starts `argv` (argv[0] an absolute path) with an empty environment, inheriting the server's
 * stdio, untracked: no pipes, no reaper. For short-lived helpers the caller ends with
 * {@link killAndReap}, synchronously (the idmapped-mount helper needs its pid for ~1 ms).
 */
export function spawnUntracked(argv: readonly [string, ...string[]]): number {
  const pid: [number] = [0];
  const err = posixSpawnFn(pid, argv[0], null, null, [...argv, null], [null]) as number;
  // posix_spawn returns the error number rather than setting errno.
  if (err !== 0) throw new Error(`posix_spawn ${argv.join(' ')} failed: ${strerror(err) as string} (errno ${err})`);
  return pid[0];
}

/** SIGKILLs a child started by spawnUntracked and waits for it, so it leaves no zombie. */
export function killAndReap(pid: number): void {
  if (killFn(pid, 9 /* SIGKILL */) !== 0 && koffi.errno() !== 3 /* ESRCH: gone, still to be reaped */) {
    throw new Error(`kill ${pid} failed: errno ${koffi.errno()}`);
  }
  for (;;) {
    if (waitpid(pid, [0], 0) === pid) return;
    const errno = koffi.errno();
    if (errno !== 4 /* EINTR */) throw new Error(`waitpid ${pid} failed: ${strerror(errno) as string}`);
  }
}
