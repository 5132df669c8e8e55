/**
 * Checksum mode, the instance's side: the XXH3-128 `checksum` of the candidate files (same
 * path, both regular files, same size), computed in the background while the client
 * checksums its own (docs/sync-protocol.md, "Checksum mode").
 *
 * The instance is running (not frozen) meanwhile, so a path could have been swapped for a
 * symlink since the walk: every file is opened with {@link RootedFs.openRead} (resolved inside
 * the instance's root, final component never followed, only regular files) on the event loop,
 * in batches; a second thread ({@link ChecksumThread}) reads and hashes each batch's
 * descriptors while the next batch is opened. Descriptors are closed here once their batch is
 * answered. If the thread is gone, the batch is hashed on the event loop instead (positional
 * reads, so nothing depends on how far the thread got).
 *
 * Checksums the instance's side computed before are reused by file identity (see
 * ChecksumCache in @faas/protocol/sync).
 *
 * A file is read up to one byte past the size the walk saw, never to its end: the instance can
 * grow it meanwhile (`truncate -s 16T`, or a process that keeps appending), and reading until
 * end of file would then spend the server's CPU, outside the instance's limits, for as long as
 * it likes, holding the one checksum thread every instance shares. A file that grew hashes the
 * extra byte too, so its checksum cannot match the client's and the file is transferred.
 */
import { closeSync, readSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { FaasError } from '@faas/protocol';
import { createChecksumHasher, type ChecksumMemory, type FileIdentity, type ManifestEntry } from '@faas/protocol/sync';
import type { RootedFs, RootedStat } from '../runtime/rooted-fs.ts';
import type { ChecksumThread, ThreadResult } from './sync-checksum-thread.ts';

/** Files per batch, and bytes: a batch holds its descriptors open until it is answered. */
const BATCH_FILES = 128;
const BATCH_BYTES = 32 * 1024 * 1024;
const CHUNK = 1024 * 1024;

interface Opened {
  entry: ManifestEntry;
  fd: number;
  stat: RootedStat;
}

/**
 * Sets `checksum` on each of `entries` (files of the instance's tree under `baseRel`, paths
 * relative to it), read through `fs`. Throws what `openRead` throws (e.g. a file that became a
 * symlink or vanished since the walk), or the read error of a file.
 */
export async function checksumRooted(fs: RootedFs, baseRel: string, entries: readonly ManifestEntry[], memory: ChecksumMemory | undefined, thread: ChecksumThread): Promise<void> {
  const at = (p: string): string => (baseRel === '' ? p : `${baseRel}/${p}`);
  const todo: ManifestEntry[] = [];
  for (const e of entries) {
    const seen = memory?.identities.get(e.path);
    const known = seen === undefined ? undefined : memory!.cache.lookup(seen);
    if (known !== undefined) e.checksum = known;
    else todo.push(e);
  }
  let previous: Promise<void> = Promise.resolve();
  let batch: Opened[] = [];
  let bytes = 0;
  const send = async (): Promise<void> => {
    const mine = batch;
    batch = [];
    bytes = 0;
    const answered = hashBatch(mine, thread, memory);
    // One batch hashed while the next is opened; errors surface in order.
    await previous;
    previous = answered;
  };
  try {
    for (const e of todo) {
      const { fd, stat } = fs.openRead(at(e.path));
      batch.push({ entry: e, fd, stat });
      bytes += stat.size;
      if (batch.length >= BATCH_FILES || bytes >= BATCH_BYTES) {
        await send();
        await yieldToLoop();
      }
    }
    if (batch.length > 0) await send();
    await previous;
  } finally {
    for (const o of batch) closeSync(o.fd);
    await previous.catch(() => undefined);
  }
}

async function hashBatch(batch: Opened[], thread: ChecksumThread, memory: ChecksumMemory | undefined): Promise<void> {
  try {
    let results: ThreadResult[];
    try {
      results = await thread.checksum(
        batch.map((o) => o.fd),
        batch.map(readLimit),
      );
    } catch {
      results = await hashHere(batch); // the thread is gone: the event loop does it
    }
    batch.forEach((o, i) => {
      const r = results[i]!;
      if ('error' in r) throw new FaasError('INTERNAL_ERROR', `reading ${JSON.stringify(o.entry.path)} in the instance failed: ${r.error}`, { path: o.entry.path });
      o.entry.checksum = r.checksum;
      if (r.size === o.stat.size) memory?.cache.remember(identityOf(o.stat), r.checksum);
    });
  } finally {
    for (const o of batch) closeSync(o.fd);
  }
}

/** Bytes read of a candidate: its size at the walk, and one more to see that it grew. */
function readLimit(o: Opened): number {
  return o.entry.size + 1;
}

let fallbackBuf: Buffer | undefined;

async function hashHere(batch: Opened[]): Promise<ThreadResult[]> {
  const h = await createChecksumHasher();
  const buf = (fallbackBuf ??= Buffer.allocUnsafe(CHUNK));
  return batch.map((o) => {
    const { fd } = o;
    const limit = readLimit(o);
    try {
      h.init();
      let position = 0;
      for (let got; position < limit && (got = readSync(fd, buf, 0, Math.min(CHUNK, limit - position), position)) > 0; position += got) h.update(buf.subarray(0, got));
      return { checksum: h.digest('hex'), size: position };
    } catch (err) {
      return { error: (err as Error).message };
    }
  });
}

function identityOf(st: RootedStat): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: BigInt(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}
