/**
 * Checksum mode, the instance's side: the XXH3-128 `checksum` of the candidate files (same
 * path, both regular files, same size), computed in the background while the client
 * checksums its own (docs/sync-protocol.md, "Checksum mode").
 *
 * The instance is running (not frozen) meanwhile, so a path could have been swapped for a
 * symlink since the walk: every file is opened with {@link RootedFs.openRead} (resolved inside
 * the instance's root, final component never followed, only regular files); the descriptor it
 * returns is then read directly. Small files are read with one synchronous call (a thread-pool
 * round trip per small file would cost more than reading it), large ones in 1 MiB chunks
 * through the thread pool, one ahead. The event loop is given back every few milliseconds, so
 * other requests are served while thousands of files are read.
 */
import { closeSync, read, readSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { createChecksumHasher, type ChecksumMemory, type FileIdentity, type ManifestEntry } from '@faas/protocol/sync';
import type { RootedStat } from '../runtime/rooted-fs.ts';
import type { RootedFs } from '../runtime/rooted-fs.ts';

const SMALL = 1024 * 1024;
const CHUNK = 1024 * 1024;
/** The longest stretch of synchronous reading and hashing between two event-loop turns. */
const SLICE_MS = 4;

let smallBuf: Buffer | undefined;

function readAt(fd: number, buf: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * Sets `checksum` on each of `entries` (files of the instance's tree under `baseRel`, paths
 * relative to it), read through `fs`. Throws what `openRead` throws (e.g. a file that became a
 * symlink or vanished since the walk).
 */
export async function checksumRooted(fs: RootedFs, baseRel: string, entries: readonly ManifestEntry[], memory?: ChecksumMemory): Promise<void> {
  if (entries.length === 0) return;
  const h = await createChecksumHasher();
  const buf = (smallBuf ??= Buffer.allocUnsafe(SMALL + 1));
  const at = (p: string): string => (baseRel === '' ? p : `${baseRel}/${p}`);
  const large: ManifestEntry[] = [];
  let sliceStart = performance.now();
  for (const e of entries) {
    const seen = memory?.identities.get(e.path);
    const known = seen === undefined ? undefined : memory!.cache.lookup(seen);
    if (known !== undefined) {
      e.checksum = known;
      continue;
    }
    if (e.size >= SMALL) {
      large.push(e);
      continue;
    }
    const { fd, stat } = fs.openRead(at(e.path));
    let n = 0;
    try {
      for (;;) {
        const want = buf.length - n;
        const got = readSync(fd, buf, n, want, null);
        if (got === 0 || (n += got) === buf.length) break;
        if (got < want && n === stat.size) break; // a regular file reads short only at its end: no read to see EOF
      }
    } finally {
      closeSync(fd);
    }
    if (n === buf.length) {
      large.push(e); // it grew
      continue;
    }
    h.init();
    h.update(buf.subarray(0, n));
    e.checksum = h.digest('hex');
    if (n === stat.size) memory?.cache.remember(identityOf(stat), e.checksum);
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  for (const e of large) {
    const { fd, stat } = fs.openRead(at(e.path));
    let pending: Promise<number> | undefined;
    try {
      h.init();
      let position = 0;
      let which = 0;
      pending = readAt(fd, bufs[0]!, 0);
      for (;;) {
        const got = await pending;
        pending = undefined;
        if (got === 0) break;
        const current = bufs[which]!;
        position += got;
        which ^= 1;
        pending = readAt(fd, bufs[which]!, position);
        h.update(current.subarray(0, got));
      }
      e.checksum = h.digest('hex');
      if (position === stat.size) memory?.cache.remember(identityOf(stat), e.checksum);
    } finally {
      // A read still in flight must end before its descriptor is closed (and maybe reused).
      if (pending) await pending.catch(() => undefined);
      closeSync(fd);
    }
  }
}

function identityOf(st: RootedStat): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: BigInt(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}
