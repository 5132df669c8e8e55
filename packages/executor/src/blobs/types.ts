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
