import type { Readable } from 'node:stream';
import { FaasError } from '@faas/protocol';

/**
 * The content-addressed blob store (CAS).
 *
 * A blob is an immutable byte string with no metadata of its own: no name, mode or owner (those
 * belong to the snapshot records that refer to it). A blob is named by the SHA-256 of its raw
 * content written as 64 lowercase hex characters, so equal content is stored once however many
 * snapshots use it, and a name can always be checked against its bytes (`verify`).
 *
 * Atomicity: a blob becomes visible under its name only complete and durable. A backend writes
 * to a private temporary object while hashing, makes it durable, then publishes it under its
 * final name in one step that never overwrites; a put that fails half way (the source errors,
 * the disk fills, the process dies) leaves no blob, at most a temporary leftover that `gc`
 * removes once older than the grace period and `verify` reports as a stray.
 *
 * GC safety: the store does not know which blobs are referenced; `gc(isLive)` asks the caller
 * and sweeps what is neither live, leased, nor younger than the grace period. Because a
 * snapshot references its blobs only once its record is committed, a snapshot writer must
 * follow this protocol so a sweep running meanwhile never removes a blob it is about to
 * reference:
 *
 * 1. `const lease = store.lease()` before writing or choosing any blob;
 * 2. `store.put(content, { lease })` for new content, and `await lease.pin(hashes)` for blobs
 *    it reuses without writing them (pin throws BLOB_NOT_FOUND if one is already gone);
 * 3. commit the snapshot record (from now on `isLive` reports its hashes);
 * 4. `lease.release()` (in a `finally`, also when the snapshot failed).
 *
 * Leases live in the memory of the process that holds the store: gc and writers must share one
 * store object (one server per data dir is enforced by its lock). The grace period
 * (`GcOptions.graceMs`) is the backstop for writers that hold no lease: a blob whose file is
 * younger than it is never swept.
 *
 * Batches: `put` makes each blob durable on its own (two syncs per blob, ~1 ms each on a local
 * disk), which dominates a snapshot of many small files. A writer storing many blobs at once
 * uses `batch({ lease })` instead: its puts only write private temporaries, and `commit` makes
 * them all durable with one filesystem-wide sync, publishes them, and syncs the names once more.
 * The crash guarantee is put's: no blob is ever visible under its name before its content is
 * durable, and a crash before or during commit leaves at most temporaries (not blobs) and blobs
 * that are complete; `removeLeftovers` at start-up clears the temporaries.
 */
export interface BlobStore {
  /** True when a blob with this hash is stored. Throws INVALID_HASH for a malformed hash. */
  has(hash: string): Promise<boolean>;
  /** The blob's size, or undefined when it is not stored. Throws INVALID_HASH. */
  stat(hash: string): Promise<BlobStat | undefined>;
  /**
   * Stores content, streaming it: a large blob is never held in memory whole. Returns its hash
   * and size; `created` is false when the blob was stored already (the new copy is discarded).
   * Concurrent puts of the same content all succeed and exactly one of them reports `created`.
   * Throws BLOB_HASH_MISMATCH (storing nothing) when `expectedHash` is given and differs, and
   * rethrows the source's error (storing nothing) when the source fails.
   */
  put(source: BlobSource, options?: PutOptions): Promise<PutResult>;
  /** `put` of a file read from disk as a stream. */
  putFile(path: string, options?: PutOptions): Promise<PutResult>;
  /** Streams the blob's content. Throws BLOB_NOT_FOUND, or INVALID_HASH for a malformed hash. */
  open(hash: string): Promise<Readable>;
  /**
   * The whole blob in memory: for small blobs only. Throws BLOB_NOT_FOUND, INVALID_HASH, and
   * LIMIT_OUT_OF_RANGE when the blob is larger than `maxBytes`.
   */
  readFile(hash: string, options?: ReadFileOptions): Promise<Buffer>;
  /**
   * Removes the blob now, leases or not; returns false when it was not stored. This is for
   * repair and tests: `gc` is the safe way to reclaim space.
   */
  delete(hash: string): Promise<boolean>;
  /** Every stored blob, in ascending hash order. Temporary leftovers are not listed. */
  list(): AsyncIterable<BlobStat & { hash: string }>;
  /** Recomputes every blob's hash by streaming its content and reports what does not match. */
  verify(options?: VerifyOptions): Promise<VerifyResult>;
  /**
   * Mark and sweep. `isLive(hash)` is the mark (asked once per candidate blob); a blob is
   * deleted only when it is not live, not pinned by a lease, and its file is older than the
   * grace period. Temporary leftovers older than the grace period are removed as crash debris;
   * those of puts still running are never touched.
   */
  gc(isLive: (hash: string) => boolean | Promise<boolean>, options?: GcOptions): Promise<GcResult>;
  /** A new, empty lease: what it pins is never swept until `release()`. See the protocol above. */
  lease(): BlobLease;
  /**
   * A write batch (see {@link BlobBatch}): puts that are made durable and published together by
   * one `commit`. Every blob it writes or finds is pinned in `lease` (which the caller releases,
   * after committing the snapshot record, as in the protocol above). Throws TypeError for a lease
   * of another store.
   */
  batch(options: BatchOptions): BlobBatch;
  /**
   * Removes every temporary leftover, whatever its age, and returns how many. For start-up, when
   * no writer of this process can be running yet (temporaries of puts and batches still open in
   * this store object are left alone all the same); afterwards `verify` reports no temporaries as
   * strays. `gc` does the same for leftovers older than the grace period.
   */
  removeLeftovers(): Promise<number>;
}

export interface BatchOptions {
  /** Pins every blob the batch writes or finds until the caller releases it. */
  lease: BlobLease;
}

/**
 * Puts made durable together: `put` only writes (and hashes) a private temporary per new blob,
 * `commit` makes all of them durable with one filesystem-wide sync, publishes them under their
 * names (never overwriting), then makes the names durable with one more sync. For 10,000 small
 * files that is two syncs instead of 20,000.
 *
 * Crash guarantee (the same as `BlobStore.put`'s): a blob is never visible under its name before
 * its content is durable, because nothing is published before the first sync. A crash before
 * commit, or during it, leaves only temporaries (never listed, never blobs; `removeLeftovers` or
 * `gc` removes them) and blobs that are complete. Until `commit` resolves, nothing the batch
 * created may be assumed stored: pending blobs are visible to the batch's own `has` only, not to
 * `BlobStore.has/open`.
 *
 * While the batch is open its temporaries are never removed by `gc` nor reported by `verify`.
 * Finish every batch with `commit` or `abort` (in a `finally`): an abandoned batch keeps its
 * temporaries until the process exits. Batches and puts of the same content may run
 * concurrently; all of them succeed.
 *
 * @example
 * const lease = store.lease();
 * const batch = store.batch({ lease });
 * try {
 *   for (const file of files) await batch.put(createReadStream(file));
 *   await batch.commit();
 *   await snapshots.commit({ blobs: [...lease.hashes] });
 * } finally {
 *   await batch.abort(); // no-op after a successful commit
 *   lease.release();
 * }
 */
export interface BlobBatch {
  /** True when the blob is stored or already pending in this batch. Throws INVALID_HASH. */
  has(hash: string): Promise<boolean>;
  /**
   * Streams content into a private temporary while hashing it (no sync; a large source is never
   * held in memory whole) and pins its hash in the batch's lease. `created` is true when this
   * batch will create the blob: it is neither stored nor already pending in the batch (a
   * duplicate writes no second temporary; its source is still read to the end to hash it). It is
   * a forecast: `commit` counts what it actually publishes. Throws BLOB_HASH_MISMATCH (keeping
   * nothing) when `expectedHash` is given and differs, rethrows the source's error, and throws
   * once the batch is committed, committing or aborted.
   */
  put(source: BlobSource, options?: BatchPutOptions): Promise<PutResult>;
  /**
   * Waits for puts still running, makes every pending temporary durable with one filesystem-wide
   * sync, publishes each under its name (one stored meanwhile by someone else is fine: its
   * content is the same), then makes the names durable with one more sync. Afterwards the blobs
   * are visible through `BlobStore.has/open`. Returns the blobs (and their bytes) this commit
   * actually published: of concurrent batches and puts of the same new content exactly one
   * counts it. May be called once; on failure, call `abort` to remove the temporaries.
   */
  commit(): Promise<BatchCommitResult>;
  /**
   * Removes the pending temporaries and ends the batch; nothing it wrote becomes visible.
   * Idempotent, a no-op after a successful commit, safe after a failed one. A put still running
   * rejects and removes its own temporary when it finishes.
   */
  abort(): Promise<void>;
}

export interface BatchPutOptions {
  /** The hash the writer expects; the put fails with BLOB_HASH_MISMATCH when content differs. */
  expectedHash?: string;
}

export interface BatchCommitResult {
  /** Blobs this commit published (not those stored meanwhile by another writer). */
  created: number;
  /** Bytes of those blobs. */
  createdBytes: number;
}

/** What `put` reads: a whole buffer, a byte stream, or any async iterable of byte chunks. */
export type BlobSource = Buffer | Uint8Array | Readable | AsyncIterable<Uint8Array>;

export interface BlobStat {
  size: number;
}

export interface PutOptions {
  /** The hash the writer expects; the put fails with BLOB_HASH_MISMATCH when content differs. */
  expectedHash?: string;
  /** Pins the blob in this lease before it becomes visible, so no sweep can race the writer. */
  lease?: BlobLease;
}

export interface PutResult {
  hash: string;
  size: number;
  /** False when the blob was stored already and this put only confirmed it. */
  created: boolean;
}

export interface ReadFileOptions {
  /**
   * Refuse (LIMIT_OUT_OF_RANGE) blobs larger than this, so a caller expecting a small blob cannot
   * be made to buffer a huge one.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number;
}

export interface VerifyOptions {
  /** Stops the check between blobs; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface VerifyResult {
  /** Blobs whose content was hashed. */
  checked: number;
  /** Blobs whose content no longer hashes to their name. */
  corrupt: Array<{ hash: string; actualHash: string; size: number }>;
  /** Files in the store that are not valid blob names, e.g. leftover temp files (paths relative to the store root). */
  strays: string[];
}

export interface GcOptions {
  /**
   * Blobs and temporary files younger than this are kept even when unreferenced.
   * @default 600000 (10 minutes)
   */
  graceMs?: number;
  /**
   * The clock gc measures ages against, in epoch milliseconds.
   * @default Date.now
   */
  now?: () => number;
}

export interface GcResult {
  /** Blobs looked at. */
  scanned: number;
  /** Blobs removed. */
  deleted: number;
  /** Bytes of the blobs removed (temporary files not counted). */
  freedBytes: number;
  /** Blobs kept: live, leased, or inside the grace period. */
  kept: number;
  /** Temporary leftovers removed (crashed or abandoned puts). */
  tempFilesRemoved: number;
}

/**
 * A set of pinned hashes that `gc` never sweeps while the lease is held. A lease is made by
 * {@link BlobStore.lease} and only works with the store that made it.
 *
 * @example
 * const lease = store.lease();
 * try {
 *   const { hash } = await store.put(file, { lease });
 *   await lease.pin(reusedHashes);
 *   await snapshots.commit({ blobs: [hash, ...reusedHashes] });
 * } finally {
 *   lease.release();
 * }
 */
export interface BlobLease {
  /** The hashes pinned so far. */
  readonly hashes: ReadonlySet<string>;
  /**
   * Pins stored blobs. Resolves once they are pinned and known to exist; throws BLOB_NOT_FOUND
   * (details `hashes`: the missing ones, which stay pinned until release) or INVALID_HASH.
   */
  pin(hashes: Iterable<string>): Promise<void>;
  /**
   * Pins at once, without checking that the blobs exist (throws INVALID_HASH for a malformed
   * hash, before pinning any). For a caller that knows they exist because a committed snapshot
   * references them, e.g. the files a hash cache says are unchanged since that snapshot: a blob
   * a committed snapshot references is live, so no sweep removes it before the pin, and once
   * pinned none can. The caller must re-check after pinning that the snapshot is still committed
   * (it could have been deleted, and its blobs swept, just before); then the blobs are safe.
   */
  pinKnown(hashes: Iterable<string>): void;
  /** Unpins everything; idempotent. The lease cannot be used afterwards. */
  release(): void;
}

/** SHA-256 as 64 lowercase hex characters: the only form a blob hash takes. */
export const BLOB_HASH_PATTERN = /^[0-9a-f]{64}$/;

export function isBlobHash(value: unknown): value is string {
  return typeof value === 'string' && BLOB_HASH_PATTERN.test(value);
}

/** Throws INVALID_HASH unless `value` is a well-formed blob hash. */
export function assertBlobHash(value: unknown): asserts value is string {
  if (!isBlobHash(value)) {
    const shown = typeof value === 'string' ? value.slice(0, 80) : typeof value;
    throw new FaasError('INVALID_HASH', 'a blob hash is a SHA-256 written as 64 lowercase hex characters', { hash: shown });
  }
}
