/**
 * Byte-for-byte comparison of the same-size files of two local trees, on two threads: what
 * `FileSynchronizer`'s checksum mode does instead of checksumming both sides. Locally both
 * files are read anyway, and comparing them costs less than hashing them (measured on the
 * bench's 262 MB tree, one thread: ~140 ms to compare every pair, ~270 ms to XXH3-128 both
 * sides), and it cannot be fooled by a collision.
 *
 * Threads: {@link FileComparer.start} starts a worker (compare-files-worker.js, plain
 * JavaScript, ready in ~30 ms) so that it boots while the caller walks the two trees; then
 * both threads claim pairs from one shared cursor, largest first, so neither waits for the
 * other's share. The main thread resolves every path (`insideResolver`: PATH_OUTSIDE_ROOT for
 * a symlink on the way) before the worker sees it; a pair the worker fails on is compared
 * again by the main thread, so every error is the one the main thread's own read throws
 * (`openRegular`: VALIDATION_FAILED for a file that became a symlink or a non-file, the errno
 * error otherwise). A worker that cannot start or dies leaves its unfinished pairs to the main
 * thread.
 */
import { closeSync, readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { CHUNK, openRegular } from './manifest.ts';
import { insideResolver } from './paths.ts';
import type { ManifestEntry } from './types.ts';

// Result bytes: 0 not done; the main thread writes 1/2, the worker 4/5 (same/different) or 3.
const SAME = 1;
const DIFFERENT = 2;
const FAILED = 3;
const WORKER_SAME = 4;
const WORKER_DIFFERENT = 5;

let buffers: [Buffer, Buffer] | undefined;

/** Reads `want` bytes (fewer only at EOF) into the start of `buf`. */
function fill(fd: number, buf: Buffer, want: number): number {
  let n = 0;
  while (n < want) {
    const got = readSync(fd, buf, n, want - n, null);
    if (got === 0) break;
    n += got;
  }
  return n;
}

/**
 * Whether the regular files `rel` under the two roots (already resolved) hold the same bytes.
 * Both are read to the size `fstat` gave when they were opened (no read to see EOF: one system
 * call less per file; a file that changes while it is read is a race no sync can win).
 */
function sameBytes(sourceAbs: string, destAbs: string, rel: string): boolean {
  const [a, b] = (buffers ??= [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]);
  const x = openRegular(sourceAbs, rel);
  let y: { fd: number; size: number } | undefined;
  try {
    y = openRegular(destAbs, rel);
    if (x.size !== y.size) return false;
    for (let at = 0; at < x.size; ) {
      const want = Math.min(CHUNK, x.size - at);
      if (fill(x.fd, a, want) !== want || fill(y.fd, b, want) !== want) return false; // shrank
      if (!a.subarray(0, want).equals(b.subarray(0, want))) return false;
      at += want;
    }
    return true;
  } finally {
    closeSync(x.fd);
    if (y !== undefined) closeSync(y.fd);
  }
}

export class FileComparer {
  #worker: Worker | undefined;
  /** After {@link compare}: how many pairs the worker thread decided (the rest were the main thread's). */
  workerCompared = 0;
  /** Resolves when the worker answered 'done', exited, or failed to start. */
  readonly #finished: Promise<void>;

  private constructor() {
    let finish!: () => void;
    this.#finished = new Promise<void>((resolve) => (finish = resolve));
    try {
      // execArgv []: no tsx (or other) preloads in a worker that needs none.
      const worker = new Worker(new URL('./compare-files-worker.js', import.meta.url), { execArgv: [] });
      worker.unref();
      worker.once('message', finish);
      worker.once('exit', finish);
      worker.once('error', finish); // its pairs fall back to the main thread
      this.#worker = worker;
    } catch {
      finish();
    }
  }

  /**
   * Starts the second thread now, so it is ready when {@link compare} is called.
   *
   * @example
   * const comparer = FileComparer.start();
   * try {
   *   // ... walk both trees ...
   *   const same = await comparer.compare(src, dst, candidates);
   * } finally {
   *   comparer.close();
   * }
   */
  static start(): FileComparer {
    return new FileComparer();
  }

  /**
   * Compares each file of `entries` (source entries whose path is a file of the same size on
   * the destination) under `sourceRoot` with the same path under `destRoot`. Call once.
   *
   * @returns path → true when the contents are equal.
   */
  async compare(sourceRoot: string, destRoot: string, entries: readonly ManifestEntry[]): Promise<Map<string, boolean>> {
    const sorted = [...entries].sort((p, q) => q.size - p.size);
    const atSource = insideResolver(sourceRoot);
    const atDest = insideResolver(destRoot);
    const pairs = sorted.map((e): [string, string] => [atSource(e.path), atDest(e.path)]);
    const shared = new SharedArrayBuffer(4 + pairs.length);
    const cursor = new Int32Array(shared, 0, 1);
    const results = new Uint8Array(shared, 4, pairs.length);
    if (this.#worker !== undefined && pairs.length > 1) this.#worker.postMessage({ pairs, shared });

    const compareHere = (i: number): void => {
      const [x, y] = pairs[i]!;
      Atomics.store(results, i, sameBytes(x, y, sorted[i]!.path) ? SAME : DIFFERENT);
    };
    for (;;) {
      const i = Atomics.add(cursor, 0, 1);
      if (i >= pairs.length) break;
      compareHere(i);
    }
    // Pairs the worker claimed: wait for it (or its end), then redo what it could not do.
    if (results.includes(0)) await this.#finished;
    for (let i = 0; i < pairs.length; i++) {
      const r = Atomics.load(results, i);
      if (r === 0 || r === FAILED) compareHere(i);
    }
    this.workerCompared = results.filter((r) => r === WORKER_SAME || r === WORKER_DIFFERENT).length;
    return new Map(sorted.map((e, i) => [e.path, results[i] === SAME || results[i] === WORKER_SAME]));
  }

  /** Stops the worker (at once, whatever it is doing). */
  close(): void {
    void this.#worker?.terminate();
    this.#worker = undefined;
  }
}
