import { closeSync, fstatSync, openSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { Writable } from 'node:stream';
import { atCalls, ptyCalls, SyscallError } from '../host-syscalls.ts';

const O_RDWR = 2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_IN_ROOT = 0x10;
const EAGAIN = 11;
const EINTR = 4;
/** /dev/ptmx (and every devpts instance's pts/ptmx) is character device 5:2. */
const PTMX_RDEV = (5 << 8) | 2;
/** Retry delays while the terminal's input queue is full (the process is not reading). */
const FULL_RETRY_MIN_MS = 1;
const FULL_RETRY_MAX_MS = 50;

/**
 * A pseudo-terminal allocated in the devpts of a root directory (an instance's `/dev/pts`), so
 * inside it the slave is a /dev/pts/N of its own: `tty` names it, and the host's terminals are
 * neither used nor visible. We keep the master; the slave goes to the process and is closed
 * here once it has been handed over.
 *
 * Output is read through a tty.ReadStream (epoll, no thread). Input is NOT written through it:
 * libuv treats a master as a blocking-write tty and spins the event loop while the terminal's
 * input queue is full (a process in raw mode that stops reading would hang the whole server).
 * Input goes through {@link PtyInput}: non-blocking write(2) on a duplicate of the master,
 * retried on a timer while the queue is full, with stream backpressure.
 */
export class Pty {
  readonly output: ReadStream;
  readonly input: PtyInput;
  /** The slave's number: inside the root it is /dev/pts/<number>. */
  readonly number: number;
  private slaveFd: number | null;

  private constructor(
    private readonly master: number,
    slave: number,
  ) {
    this.slaveFd = slave;
    this.number = ptyCalls.number(master);
    this.input = new PtyInput(ptyCalls.dup(master), () => ptyCalls.eofChar(master));
    // Owns `master` from here on (closes it when destroyed).
    this.output = new ReadStream(master);
  }

  /**
   * Opens `<root>/dev/pts/ptmx`, resolving the path inside `root` and refusing any symlink on
   * the way (the tree belongs to the sandbox), and checks it really is a ptmx device.
   */
  static openIn(root: string, cols: number, rows: number): Pty {
    const rootFd = openSync(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    let master = -1;
    let slave = -1;
    try {
      master = atCalls.openat2(rootFd, 'dev/pts/ptmx', O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
      if (master < 0) throw new SyscallError('openat2', -master, `${root}/dev/pts/ptmx`);
      const st = fstatSync(master);
      if (!st.isCharacterDevice() || st.rdev !== PTMX_RDEV) throw new Error(`${root}/dev/pts/ptmx is not a pseudo-terminal multiplexer`);
      ptyCalls.unlock(master);
      ptyCalls.setSize(master, windowDimension(cols), windowDimension(rows));
      // Blocking, as a terminal is for the process that gets it.
      slave = ptyCalls.openPeer(master, O_RDWR | O_NOCTTY | O_CLOEXEC);
      const pty = new Pty(master, slave);
      master = -1;
      slave = -1;
      return pty;
    } finally {
      closeSync(rootFd);
      if (master >= 0) closeSync(master);
      if (slave >= 0) closeSync(slave);
    }
  }

  /** The slave descriptor to hand to the process; null after {@link closeSlave}. */
  get slave(): number {
    if (this.slaveFd === null) throw new Error('the terminal slave was already handed over');
    return this.slaveFd;
  }

  /**
   * Closes our copy of the slave. Must follow the spawn at once: the master reads end of
   * file (EIO) only once no process holds the slave any more, ours included.
   */
  closeSlave(): void {
    if (this.slaveFd === null) return;
    closeSync(this.slaveFd);
    this.slaveFd = null;
  }

  resize(cols: number, rows: number): void {
    if (this.output.destroyed) return;
    // The master stays open exactly as long as the output stream.
    ptyCalls.setSize(this.master, windowDimension(cols), windowDimension(rows));
  }

  /** Closes the master: whatever still holds the slave gets a hang-up. */
  destroy(): void {
    this.closeSlave();
    this.input.destroy();
    this.output.destroy();
  }
}

/** A window size field is an unsigned 16-bit count; a client may send anything. */
function windowDimension(n: number): number {
  return Number.isFinite(n) ? Math.min(Math.max(Math.trunc(n), 0), 0xffff) : 0;
}

/** The terminal's input side: bytes as typed; end() sends the terminal's end-of-file character. */
export class PtyInput extends Writable {
  private timer: NodeJS.Timeout | undefined;
  private fd: number;

  constructor(
    fd: number,
    private readonly eofChar: () => number,
  ) {
    super({ highWaterMark: 64 * 1024, decodeStrings: true });
    this.fd = fd;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.writeAll(Buffer.of(this.eofChar()), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    callback(error);
  }

  private writeAll(chunk: Buffer, callback: (error?: Error | null) => void): void {
    let offset = 0;
    let delay = FULL_RETRY_MIN_MS;
    const attempt = () => {
      this.timer = undefined;
      while (offset < chunk.length) {
        if (this.fd < 0) return callback(new Error('terminal closed'));
        const n = ptyCalls.write(this.fd, offset === 0 ? chunk : chunk.subarray(offset));
        if (n > 0) {
          offset += n;
          delay = FULL_RETRY_MIN_MS;
        } else if (n === -EAGAIN || n === 0) {
          // The input queue is full: the process is not reading. Try again later, without
          // taking the event loop or a thread; the stream holds further writes back meanwhile.
          this.timer = setTimeout(attempt, delay);
          delay = Math.min(delay * 2, FULL_RETRY_MAX_MS);
          return;
        } else if (n !== -EINTR) {
          // EIO: nothing holds the slave any more.
          return callback(Object.assign(new SyscallError('write', -n, 'terminal input'), { code: 'EPIPE' }));
        }
      }
      callback();
    };
    attempt();
  }
}
