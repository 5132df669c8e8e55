// @ts-check
/**
 * The second thread of the instance-side checksums (sync-checksum-thread.ts). Plain JavaScript
 * on purpose: a worker does not inherit the tsx loader (a `.ts` worker fails to load under
 * `node --import tsx` on Node 20), and with no preloads it starts in tens of milliseconds.
 *
 * It never opens or closes anything: the main thread opens each file inside the instance's
 * root (RootedFs.openRead) and sends the descriptor; this thread reads it with positional
 * reads (no shared file offset) and answers the XXH3-128 and the length read. The main thread
 * closes the descriptors once the batch is answered, or when this thread died, so a descriptor
 * number is never closed twice or while another thread reads it.
 *
 * Message in: `{ id, fds: number[], limits: number[] }` (at most `limits[i]` bytes of `fds[i]` are read). Out: `{ id, results: Array<{ checksum: string, size: number } | { error: string }> }`.
 */
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { createXXHash128 } from 'hash-wasm';

const CHUNK = 1024 * 1024;
const buf = Buffer.allocUnsafe(CHUNK);
const hasher = await createXXHash128();

/**
 * @param {number} fd
 * @param {number} limit
 */
function checksum(fd, limit) {
  hasher.init();
  let position = 0;
  while (position < limit) {
    const got = readSync(fd, buf, 0, Math.min(CHUNK, limit - position), position);
    if (got === 0) break;
    hasher.update(buf.subarray(0, got));
    position += got;
  }
  return { checksum: hasher.digest('hex'), size: position };
}

parentPort?.on('message', (/** @type {{ id: number, fds: number[], limits: number[] }} */ msg) => {
  const results = msg.fds.map((fd, i) => {
    try {
      return checksum(fd, msg.limits[i] ?? 0);
    } catch (err) {
      return { error: String(/** @type {Error} */ (err).message ?? err) };
    }
  });
  parentPort?.postMessage({ id: msg.id, results });
});
