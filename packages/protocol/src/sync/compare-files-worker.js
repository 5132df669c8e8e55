// @ts-check
/**
 * The second thread of {@link compareFiles} (compare-files.ts). Plain JavaScript on purpose:
 * a worker does not inherit the tsx loader (a `.ts` worker fails to load under `node --import
 * tsx` on Node 20), and one that runs tsx's `--import` starts 3-5x slower; this file imports
 * node:fs and node:worker_threads only, so it is ready in ~30 ms, while the main thread walks
 * the two trees.
 *
 * It receives `{ pairs, shared }` once: `pairs` is `[sourceAbs, destAbs][]` (resolved by the
 * main thread, whose checks keep every path inside its root), `shared` a SharedArrayBuffer of
 * an Int32 cursor followed by one byte per pair. Both threads claim pairs from the cursor
 * (`Atomics.add`); this one writes 4 (same content) or 5 (different). On any error it
 * writes 3 (the main thread compares that pair again itself, so the error it throws is exactly
 * the one the main thread's own reading throws) and goes on. It answers 'done' and exits.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const CHUNK = 1024 * 1024;
const a = Buffer.allocUnsafe(CHUNK);
const b = Buffer.allocUnsafe(CHUNK);

/** @param {number} fd @param {Buffer} buf @param {number} want */
function fill(fd, buf, want) {
  let n = 0;
  while (n < want) {
    const got = readSync(fd, buf, n, want - n, null);
    if (got === 0) break;
    n += got;
  }
  return n;
}

/** @param {string} path @returns {{ fd: number, size: number }} */
function openFile(path) {
  const fd = openSync(path, FLAGS);
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new Error('not a regular file');
  }
  return { fd, size: st.size };
}

/** The same comparison as compare-files.ts `sameBytes`. @param {string} x @param {string} y @returns {boolean} */
function same(x, y) {
  const fx = openFile(x);
  let fy;
  try {
    fy = openFile(y);
    if (fx.size !== fy.size) return false;
    for (let at = 0; at < fx.size; ) {
      const want = Math.min(CHUNK, fx.size - at);
      if (fill(fx.fd, a, want) !== want || fill(fy.fd, b, want) !== want) return false;
      if (!a.subarray(0, want).equals(b.subarray(0, want))) return false;
      at += want;
    }
    return true;
  } finally {
    closeSync(fx.fd);
    if (fy !== undefined) closeSync(fy.fd);
  }
}

const port = parentPort;
if (port === null) throw new Error('compare-files-worker.js runs as a worker thread');
port.once('message', (/** @type {{ pairs: Array<[string, string]>, shared: SharedArrayBuffer }} */ job) => {
  const cursor = new Int32Array(job.shared, 0, 1);
  const results = new Uint8Array(job.shared, 4, job.pairs.length);
  for (;;) {
    const i = Atomics.add(cursor, 0, 1);
    if (i >= job.pairs.length) break;
    const [x, y] = /** @type {[string, string]} */ (job.pairs[i]);
    let r = 3;
    try {
      r = same(x, y) ? 4 : 5;
    } catch {
      // the main thread compares it again and throws its own error
    }
    Atomics.store(results, i, r);
  }
  port.postMessage('done');
  port.close();
});
