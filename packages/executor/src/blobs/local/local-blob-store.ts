import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, lstatSync } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, rm, unlink, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FaasError } from '@faas/protocol';
import { syncfs } from '../../runtime/host-syscalls.ts';
import {
  assertBlobHash,
  isBlobHash,
  type BatchCommitResult,
  type BatchOptions,
  type BatchPutOptions,
  type BlobBatch,
  type BlobLease,
  type BlobSource,
  type BlobStat,
  type BlobStore,
  type GcOptions,
  type GcResult,
  type PutOptions,
  type PutResult,
  type ReadFileOptions,
  type VerifyOptions,
  type VerifyResult,
} from '../types.ts';

export interface LocalBlobStoreOptions {
  /**
   * The store's directory, created if missing.
   * @example join(dataDir, 'cas')
   */
  root: string;
}

/** Blob files are read-only so a hard link from a materialized tree cannot change a blob. */
const BLOB_MODE = 0o444;
const TEMP_DIR = 'tmp';
const TEMP_SUFFIX = '.tmp';
const DEFAULT_GRACE_MS = 10 * 60_000;
const DEFAULT_READ_MAX_BYTES = 64 * 1024 * 1024;
const FAN_OUT_DIR = /^[0-9a-f]{2}$/;
/**
 * A batch put hashes content up to this size in memory before touching the disk, so a duplicate
 * (stored, or pending in the batch) writes no temp file at all; larger content streams to one.
 */
const BATCH_BUFFER_BYTES = 256 * 1024;
/** File operations a batch commit keeps in flight (libuv runs 4 at a time; this keeps its queue fed). */
const BATCH_FS_CONCURRENCY = 64;

/**
 * Opens (creating if needed) a blob store over a local directory.
 *
 * @example
 * const blobs = await openLocalBlobStore({ root: join(dataDir, 'cas') });
 */
export async function openLocalBlobStore(options: LocalBlobStoreOptions): Promise<LocalBlobStore> {
  await mkdir(join(options.root, TEMP_DIR), { recursive: true });
  return new LocalBlobStore(options.root);
}

/**
 * {@link BlobStore} over a directory: `<root>/<first two hex>/<hash>` for blobs (mode 0o444),
 * `<root>/tmp/<random>.tmp` for puts in progress. A put writes the temp file while hashing,
 * fsyncs it, then hard-links it to its final name (link, unlike rename, never overwrites, so of
 * concurrent identical puts exactly one creates the blob) and fsyncs the directory. A batch
 * writes its temp files without fsync; its commit runs syncfs(2) on the store's filesystem,
 * links them all, and runs syncfs again (which also covers new fan-out directories).
 */
export class LocalBlobStore implements BlobStore {
  readonly root: string;
  /** Pin counts over all live leases and puts in progress. */
  private readonly pins = new Map<string, number>();
  /** Unlinks in flight, so a put of the same content waits and re-creates instead of losing it. */
  private readonly deleting = new Map<string, Promise<void>>();
  /** Temp file names of puts still running: gc and verify leave them alone. */
  private readonly activeTemps = new Set<string>();
  private readonly leases = new WeakSet<BlobLease>();
  private readonly knownFanOut = new Set<string>();

  constructor(root: string) {
    this.root = root;
  }

  /** Where the blob's file is (or would be). Local only: for hard-linking into trees. */
  pathOf(hash: string): string {
    assertBlobHash(hash);
    return join(this.root, hash.slice(0, 2), hash);
  }

  async has(hash: string): Promise<boolean> {
    return (await this.stat(hash)) !== undefined;
  }

  async stat(hash: string): Promise<BlobStat | undefined> {
    // Synchronous: a stat of a cached dentry is a few µs, a thread-pool round trip costs ten
    // times that, and a snapshot asks once per file.
    const st = lstatSync(this.pathOf(hash), { throwIfNoEntry: false });
    return st?.isFile() ? { size: st.size } : undefined;
  }

  async put(source: BlobSource, options: PutOptions = {}): Promise<PutResult> {
    if (options.expectedHash !== undefined) assertBlobHash(options.expectedHash);
    if (options.lease !== undefined) this.assertOwnLease(options.lease);
    const tempName = randomBytes(16).toString('hex') + TEMP_SUFFIX;
    const tempPath = join(this.root, TEMP_DIR, tempName);
    this.activeTemps.add(tempName);
    let hash: string | undefined;
    try {
      const file = await open(tempPath, 'wx', 0o600);
      const hasher = createHash('sha256');
      let size = 0;
      try {
        // One chunk in flight at a time: memory stays at a chunk whatever the blob's size.
        for await (const chunk of chunksOf(source)) {
          hasher.update(chunk);
          size += chunk.byteLength;
          await file.write(chunk);
        }
        await file.sync();
        await file.chmod(BLOB_MODE);
      } finally {
        await file.close();
      }
      hash = hasher.digest('hex');
      if (options.expectedHash !== undefined && options.expectedHash !== hash) {
        throw new FaasError('BLOB_HASH_MISMATCH', `content hashes to ${hash}, not the expected ${options.expectedHash}`, {
          expected: options.expectedHash,
          actual: hash,
          size,
        });
      }
      // Pinned before the existence decision: a sweep that has not unlinked yet now sees the
      // pin, and one already unlinking is awaited, so `created: false` never names a blob
      // about to vanish.
      if (options.lease !== undefined) (options.lease as LocalBlobLease).add(hash);
      this.pin(hash);
      try {
        while (this.deleting.has(hash)) await this.deleting.get(hash);
        const created = await this.publish(tempPath, hash);
        return { hash, size, created };
      } finally {
        this.unpin(hash);
      }
    } finally {
      this.activeTemps.delete(tempName);
      await unlinkIfExists(tempPath);
    }
  }

  async putFile(path: string, options?: PutOptions): Promise<PutResult> {
    return this.put(createReadStream(path), options);
  }

  async open(hash: string): Promise<Readable> {
    const file = await this.openBlob(hash);
    return file.createReadStream();
  }

  async readFile(hash: string, options: ReadFileOptions = {}): Promise<Buffer> {
    const max = options.maxBytes ?? DEFAULT_READ_MAX_BYTES;
    const file = await this.openBlob(hash);
    try {
      const { size } = await file.stat();
      if (size > max) {
        throw new FaasError('LIMIT_OUT_OF_RANGE', `blob ${hash} has ${size} bytes, more than the ${max} readFile allows`, {
          limit: 'blob_read_bytes',
          value: size,
          max,
        });
      }
      return await file.readFile();
    } finally {
      await file.close();
    }
  }

  async delete(hash: string): Promise<boolean> {
    return this.unlinkBlob(hash);
  }

  async *list(): AsyncIterable<BlobStat & { hash: string }> {
    for (const dir of await this.fanOutDirs()) {
      for (const name of (await readdirOrEmpty(join(this.root, dir))).sort()) {
        if (!isBlobHash(name) || !name.startsWith(dir)) continue;
        const st = await lstatOrUndefined(join(this.root, dir, name));
        if (st?.isFile()) yield { hash: name, size: st.size };
      }
    }
  }

  async verify(options: VerifyOptions = {}): Promise<VerifyResult> {
    const result: VerifyResult = { checked: 0, corrupt: [], strays: [] };
    for (const entry of (await readdirOrEmpty(this.root)).sort()) {
      if (entry === TEMP_DIR) {
        for (const name of (await readdirOrEmpty(join(this.root, TEMP_DIR))).sort()) {
          if (!this.activeTemps.has(name)) result.strays.push(`${TEMP_DIR}/${name}`);
        }
        continue;
      }
      if (!FAN_OUT_DIR.test(entry) || !(await lstatOrUndefined(join(this.root, entry)))?.isDirectory()) {
        result.strays.push(entry);
        continue;
      }
      for (const name of (await readdirOrEmpty(join(this.root, entry))).sort()) {
        options.signal?.throwIfAborted();
        const path = join(this.root, entry, name);
        const st = await lstatOrUndefined(path);
        if (st === undefined) continue; // deleted meanwhile
        if (!isBlobHash(name) || !name.startsWith(entry) || !st.isFile()) {
          result.strays.push(`${entry}/${name}`);
          continue;
        }
        const actual = await hashFile(path);
        if (actual === undefined) continue;
        result.checked++;
        if (actual.hash !== name) result.corrupt.push({ hash: name, actualHash: actual.hash, size: actual.size });
      }
    }
    return result;
  }

  async gc(isLive: (hash: string) => boolean | Promise<boolean>, options: GcOptions = {}): Promise<GcResult> {
    const now = (options.now ?? Date.now)();
    const cutoff = now - (options.graceMs ?? DEFAULT_GRACE_MS);
    const result: GcResult = { scanned: 0, deleted: 0, freedBytes: 0, kept: 0, tempFilesRemoved: 0 };

    const tempDir = join(this.root, TEMP_DIR);
    for (const name of await readdirOrEmpty(tempDir)) {
      if (this.activeTemps.has(name)) continue;
      const st = await lstatOrUndefined(join(tempDir, name));
      if (st !== undefined && st.mtimeMs < cutoff && (await unlinkIfExists(join(tempDir, name)))) result.tempFilesRemoved++;
    }

    for (const dir of await this.fanOutDirs()) {
      for (const name of await readdirOrEmpty(join(this.root, dir))) {
        if (!isBlobHash(name) || !name.startsWith(dir)) continue;
        const st = await lstatOrUndefined(join(this.root, dir, name));
        if (!st?.isFile()) continue;
        result.scanned++;
        if (this.pins.has(name) || st.mtimeMs >= cutoff || (await isLive(name))) {
          result.kept++;
          continue;
        }
        // isLive was awaited: a lease may have pinned the blob meanwhile. This check and the
        // registration of the unlink in `deleting` (inside unlinkBlob) run in one synchronous
        // step, which is what makes put's pin-then-wait sound.
        if (this.pins.has(name)) {
          result.kept++;
          continue;
        }
        if (await this.unlinkBlob(name)) {
          result.deleted++;
          result.freedBytes += st.size;
        }
      }
    }
    return result;
  }

  lease(): BlobLease {
    const lease = new LocalBlobLease(this);
    this.leases.add(lease);
    return lease;
  }

  batch(options: BatchOptions): BlobBatch {
    this.assertOwnLease(options.lease);
    return new LocalBlobBatch(this, options.lease as LocalBlobLease);
  }

  async removeLeftovers(): Promise<number> {
    const tempDir = join(this.root, TEMP_DIR);
    let removed = 0;
    for (const name of await readdirOrEmpty(tempDir)) {
      if (this.activeTemps.has(name)) continue;
      const path = join(tempDir, name);
      const st = await lstatOrUndefined(path);
      if (st === undefined) continue;
      // Only files are ever made here, but a directory would be a stray all the same.
      await rm(path, { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  /** @internal used by LocalBlobBatch: a new temp file name, protected from gc and verify until `dropTemp`. */
  newTemp(): { name: string; path: string } {
    const name = randomBytes(16).toString('hex') + TEMP_SUFFIX;
    this.activeTemps.add(name);
    return { name, path: join(this.root, TEMP_DIR, name) };
  }

  /** @internal used by LocalBlobBatch: removes the temp file (if any) and its protection. */
  async dropTemp(name: string): Promise<void> {
    try {
      await unlinkIfExists(join(this.root, TEMP_DIR, name));
    } finally {
      this.activeTemps.delete(name);
    }
  }

  /**
   * @internal used by LocalBlobBatch: links a temp file whose content is durable already to the
   * blob's name; false when the blob was there. The fan-out directory is created if needed but
   * not synced: its name goes into `newDirs` for the caller's syncfs to cover.
   */
  async publishDurable(tempPath: string, hash: string, newDirs: Set<string>): Promise<boolean> {
    while (this.deleting.has(hash)) await this.deleting.get(hash);
    const dir = join(this.root, hash.slice(0, 2));
    if (!this.knownFanOut.has(dir) && !newDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      newDirs.add(dir);
    }
    try {
      await link(tempPath, join(dir, hash));
      return true;
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return false;
      throw err;
    }
  }

  /** @internal used by LocalBlobBatch: fan-out directories a completed syncfs made durable. */
  fanOutDurable(dirs: Iterable<string>): void {
    for (const dir of dirs) this.knownFanOut.add(dir);
  }

  /** @internal used by LocalBlobBatch: syncfs(2) on the store's filesystem. */
  async syncFilesystem(): Promise<void> {
    const handle = await open(this.root, 'r');
    try {
      await syncfs(handle.fd);
    } finally {
      await handle.close();
    }
  }

  /** @internal used by LocalBlobLease. */
  pin(hash: string): void {
    this.pins.set(hash, (this.pins.get(hash) ?? 0) + 1);
  }

  /** @internal used by LocalBlobLease. */
  unpin(hash: string): void {
    const count = (this.pins.get(hash) ?? 0) - 1;
    if (count > 0) this.pins.set(hash, count);
    else this.pins.delete(hash);
  }

  /** @internal used by LocalBlobLease: waits out unlinks in flight, then checks existence. */
  async existsAfterPending(hash: string): Promise<boolean> {
    while (this.deleting.has(hash)) await this.deleting.get(hash);
    return this.has(hash);
  }

  private assertOwnLease(lease: BlobLease): void {
    if (!this.leases.has(lease)) throw new TypeError('this lease was made by another blob store');
  }

  private async openBlob(hash: string) {
    try {
      return await open(this.pathOf(hash), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new FaasError('BLOB_NOT_FOUND', `no blob ${hash}`, { hash });
      throw err;
    }
  }

  /** Links the finished temp file to its final name; false when the blob was there already. */
  private async publish(tempPath: string, hash: string): Promise<boolean> {
    const dir = join(this.root, hash.slice(0, 2));
    await this.ensureFanOutDir(dir);
    const finalPath = join(dir, hash);
    try {
      await link(tempPath, finalPath);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      // Refresh the age so the grace period also covers a writer that holds no lease.
      await utimes(finalPath, new Date(), new Date()).catch(() => undefined);
      return false;
    }
    await fsyncDir(dir);
    return true;
  }

  private async ensureFanOutDir(dir: string): Promise<void> {
    if (this.knownFanOut.has(dir)) return;
    await mkdir(dir, { recursive: true });
    await fsyncDir(this.root);
    this.knownFanOut.add(dir);
  }

  private unlinkBlob(hash: string): Promise<boolean> {
    const path = this.pathOf(hash);
    const pending = this.deleting.get(hash);
    if (pending !== undefined) return pending.then(() => false);
    const removal = unlinkIfExists(path);
    const done = removal.then(
      () => undefined,
      () => undefined,
    );
    this.deleting.set(hash, done);
    void done.then(() => {
      if (this.deleting.get(hash) === done) this.deleting.delete(hash);
    });
    return removal;
  }

  private async fanOutDirs(): Promise<string[]> {
    return (await readdirOrEmpty(this.root)).filter((name) => FAN_OUT_DIR.test(name)).sort();
  }
}

class LocalBlobLease implements BlobLease {
  private readonly pinned = new Set<string>();
  private released = false;

  constructor(private readonly store: LocalBlobStore) {}

  get hashes(): ReadonlySet<string> {
    return this.pinned;
  }

  /** Pins synchronously; put calls this before publishing. */
  add(hash: string): void {
    this.assertUsable();
    if (this.pinned.has(hash)) return;
    this.pinned.add(hash);
    this.store.pin(hash);
  }

  async pin(hashes: Iterable<string>): Promise<void> {
    const list = [...hashes];
    this.pinKnown(list);
    const missing: string[] = [];
    for (const hash of list) if (!(await this.store.existsAfterPending(hash))) missing.push(hash);
    if (missing.length > 0) throw new FaasError('BLOB_NOT_FOUND', `${missing.length} pinned blob(s) are not stored`, { hashes: missing });
  }

  pinKnown(hashes: Iterable<string>): void {
    const list = [...hashes];
    for (const hash of list) assertBlobHash(hash);
    for (const hash of list) this.add(hash);
  }

  /** @internal throws once released, like `add`. */
  assertUsable(): void {
    if (this.released) throw new Error('blob lease already released');
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const hash of this.pinned) this.store.unpin(hash);
  }
}

/** A blob a batch will publish: its (complete, once `written` resolves) temp file. */
interface PendingBlob {
  tempName: string;
  tempPath: string;
  size: number;
  /** Resolves when the temp file holds the content; a duplicate put waits for it. */
  written: Promise<void>;
}

type BatchState = 'open' | 'committing' | 'committed' | 'failed' | 'aborted';

/**
 * {@link BlobBatch} of a LocalBlobStore. Its temp files stay in the store's `activeTemps` from
 * creation until the commit or abort that removes them, so gc and verify leave them alone.
 */
class LocalBlobBatch implements BlobBatch {
  private readonly pending = new Map<string, PendingBlob>();
  /** Puts still running: commit waits for them, so a put started before commit is in it. */
  private readonly running = new Set<Promise<unknown>>();
  private state: BatchState = 'open';
  private committing: Promise<BatchCommitResult> | undefined;
  private aborting: Promise<void> | undefined;

  constructor(
    private readonly store: LocalBlobStore,
    private readonly lease: LocalBlobLease,
  ) {}

  async has(hash: string): Promise<boolean> {
    assertBlobHash(hash);
    return this.pending.has(hash) || (await this.store.has(hash));
  }

  put(source: BlobSource, options: BatchPutOptions = {}): Promise<PutResult> {
    const put = this.write(source, options);
    this.running.add(put);
    const done = () => this.running.delete(put);
    put.then(done, done);
    return put;
  }

  commit(): Promise<BatchCommitResult> {
    if (this.state !== 'open') return Promise.reject(new Error(`blob batch already ${this.state}`));
    this.state = 'committing';
    this.committing = this.publishAll().then(
      (result) => {
        this.state = 'committed';
        return result;
      },
      (err: unknown) => {
        this.state = 'failed';
        throw err;
      },
    );
    return this.committing;
  }

  abort(): Promise<void> {
    this.aborting ??= (async () => {
      // A commit in progress runs to its end first: its links cannot be taken back anyway.
      if (this.committing !== undefined) await this.committing.catch(() => undefined);
      if (this.state === 'committed') return;
      this.state = 'aborted';
      await this.removeTemps();
    })();
    return this.aborting;
  }

  private async write(source: BlobSource, options: BatchPutOptions): Promise<PutResult> {
    if (options.expectedHash !== undefined) assertBlobHash(options.expectedHash);
    this.assertOpen();
    this.lease.assertUsable();
    const hasher = createHash('sha256');
    let size = 0;
    /** Copies of the first chunks (a source may reuse its buffer), until they pass BATCH_BUFFER_BYTES. */
    let head: Buffer[] | undefined = [];
    let temp: { name: string; path: string } | undefined;
    let file: FileHandle | undefined;
    let keepTemp = false;
    try {
      if (source instanceof Uint8Array && source.byteLength <= BATCH_BUFFER_BYTES) {
        // Whole already: no copy (it is written before this put resolves).
        hasher.update(source);
        size = source.byteLength;
        head = [Buffer.from(source.buffer, source.byteOffset, source.byteLength)];
      } else {
        try {
          for await (const chunk of chunksOf(source)) {
            hasher.update(chunk);
            size += chunk.byteLength;
            if (head !== undefined && size <= BATCH_BUFFER_BYTES) {
              head.push(Buffer.from(chunk));
              continue;
            }
            if (file === undefined) {
              // Too large to hold: stream the rest to a temp file (one chunk in flight at a time).
              temp = this.store.newTemp();
              file = await open(temp.path, 'wx', 0o600);
              for (const part of head ?? []) await file.write(part);
              head = undefined;
            }
            await file.write(chunk);
          }
          if (file !== undefined) await file.chmod(BLOB_MODE);
        } finally {
          await file?.close();
        }
      }
      const hash = hasher.digest('hex');
      if (options.expectedHash !== undefined && options.expectedHash !== hash) {
        throw new FaasError('BLOB_HASH_MISMATCH', `content hashes to ${hash}, not the expected ${options.expectedHash}`, {
          expected: options.expectedHash,
          actual: hash,
          size,
        });
      }
      this.assertNotAborted();
      // Pinned before the existence check, as in put: a blob found stored cannot vanish after.
      this.lease.add(hash);
      if (await this.isDuplicate(hash)) return { hash, size, created: false };
      if (await this.store.existsAfterPending(hash)) {
        // Another put of the batch may have registered it while we looked; either way not ours.
        if (this.pending.has(hash)) await this.pending.get(hash)!.written;
        return { hash, size, created: false };
      }
      // Checked with no await before the entry is registered below: a concurrent put of the
      // same content that got here first has registered it by now.
      const registered = this.pending.get(hash);
      if (registered !== undefined) {
        await registered.written;
        return { hash, size, created: false };
      }
      this.assertNotAborted();
      if (temp !== undefined) {
        // Streamed: the temp file is complete already.
        this.pending.set(hash, { tempName: temp.name, tempPath: temp.path, size, written: Promise.resolve() });
        keepTemp = true;
        return { hash, size, created: true };
      }
      // Buffered: registered before writing so that a concurrent duplicate waits for this write.
      const own = this.store.newTemp();
      temp = own;
      const parts = head!;
      const written = writeFile(own.path, parts.length === 1 ? parts[0]! : Buffer.concat(parts), { flag: 'wx', mode: 0o600 }).then(() =>
        chmod(own.path, BLOB_MODE),
      );
      const entry: PendingBlob = { tempName: own.name, tempPath: own.path, size, written };
      this.pending.set(hash, entry);
      keepTemp = true;
      try {
        await written;
      } catch (err) {
        if (this.pending.get(hash) === entry) this.pending.delete(hash);
        keepTemp = false;
        throw err;
      }
      this.assertNotAborted();
      return { hash, size, created: true };
    } finally {
      if (temp !== undefined && !keepTemp) await this.store.dropTemp(temp.name);
    }
  }

  /** True (once its temp is written) when the hash is pending in this batch already. */
  private async isDuplicate(hash: string): Promise<boolean> {
    const existing = this.pending.get(hash);
    if (existing === undefined) return false;
    await existing.written;
    return true;
  }

  private async publishAll(): Promise<BatchCommitResult> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
    const entries = [...this.pending];
    if (entries.length === 0) return { created: 0, createdBytes: 0 };
    // 1. Every temp file's content and inode durable: nothing is published before this.
    await this.store.syncFilesystem();
    // 2. Publish. EEXIST: stored meanwhile (by a put or another batch), the same content.
    let created = 0;
    let createdBytes = 0;
    const newDirs = new Set<string>();
    await forEachLimit(entries, BATCH_FS_CONCURRENCY, async ([hash, blob]) => {
      if (await this.store.publishDurable(blob.tempPath, hash, newDirs)) {
        created++;
        createdBytes += blob.size;
      }
    });
    // 3. The names (and new fan-out directories) durable.
    await this.store.syncFilesystem();
    this.store.fanOutDurable(newDirs);
    // The temp files are only extra names now; their removal needs no sync.
    await this.removeTemps();
    return { created, createdBytes };
  }

  private async removeTemps(): Promise<void> {
    const entries = [...this.pending.values()];
    this.pending.clear();
    await forEachLimit(entries, BATCH_FS_CONCURRENCY, async (blob) => {
      await blob.written.catch(() => undefined);
      await this.store.dropTemp(blob.tempName);
    });
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw new Error(`blob batch already ${this.state}`);
  }

  private assertNotAborted(): void {
    if (this.state === 'aborted') throw new Error('blob batch already aborted');
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first error after all settle. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.err;
}

async function* chunksOf(source: BlobSource): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
    // A Readable with an encoding set yields strings; the blob is its bytes as UTF-8.
    yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
  }
}

async function hashFile(path: string): Promise<{ hash: string; size: number } | undefined> {
  const hasher = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      hasher.update(chunk);
      size += chunk.byteLength;
    }
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  return { hash: hasher.digest('hex'), size };
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
    throw err;
  }
}

async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
