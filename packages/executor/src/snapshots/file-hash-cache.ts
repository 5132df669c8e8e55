import type { BigIntStats } from 'node:fs';

/**
 * Remembers the content hash of every file one scan read, keyed by path and guarded by the
 * file's identity and change time, so the next scan of the same tree reads only files that
 * changed (the stat-based shortcut git's index and rsync's quick check use).
 *
 * Why it is sound. A file's ctime changes on every content, mode or owner change and cannot be
 * set by its user, and (dev, ino) tell a replaced file from the original. One gap remains:
 * timestamps come from a coarse kernel clock, so a file changed again within the same clock
 * tick right after it was hashed would look unchanged. Like git's "racy" entries, a file
 * whose ctime is not clearly older than the scan's start is therefore hashed but not
 * remembered. The margin covers the coarsest kernel tick (10 ms at HZ=100) with room.
 *
 * A scan reads from the previous generation and fills a new one; {@link commit} makes the new
 * one current (so files deleted meanwhile drop out), {@link discard} forgets a failed scan.
 *
 * Seeding. An instance made from a snapshot starts with that snapshot's materialized files as
 * its read-only lower layer, and a file it never touched shows exactly the lower file's ctime
 * and mtime. Any change (write, chmod, rename, link) copies the file up first, which gives it
 * a new ctime (copy-up cannot carry a ctime over). So a file whose size, mode, mtime and ctime
 * equal those of the materialized file at the same path holds the snapshot's content:
 * {@link seed} supplies those entries, and the instance's first capture reads only what it
 * changed.
 */
export class FileHashCache {
  #current = new Map<string, CachedFile>();
  #next: Map<string, CachedFile> | undefined;
  #notAfterNs = 0n;
  /** Snapshot whose blobs hold every remembered hash (set by the caller on commit). */
  owner: string | undefined;

  static readonly RACY_MARGIN_NS = 50_000_000n;

  #seed: Map<string, SeedEntry> | undefined;

  /** Files of the snapshot an instance was made from, keyed like lookups (see above). */
  seed(entries: Map<string, SeedEntry>, owner: string): void {
    this.#seed = entries;
    this.owner = owner;
  }

  get seeded(): boolean {
    return this.#seed !== undefined;
  }

  /** Starts a scan: lookups see the last committed generation; records go to a new one. */
  begin(nowMs: number): void {
    this.#next = new Map();
    this.#notAfterNs = BigInt(Math.floor(nowMs * 1e6)) - FileHashCache.RACY_MARGIN_NS;
  }

  /** The remembered hash when the file at `key` is unchanged, else undefined. Records a hit for the next generation. */
  lookup(key: string, st: BigIntStats): string | undefined {
    const hit = this.#current.get(key);
    if (hit !== undefined && same(hit, st)) {
      this.#next?.set(key, hit);
      return hit.hash;
    }
    const seeded = this.#seed?.get(key);
    if (seeded === undefined || seeded.ctimeNs !== st.ctimeNs || seeded.mtimeNs !== st.mtimeNs || seeded.size !== st.size || seeded.mode !== st.mode) return undefined;
    this.record(key, st, seeded.hash);
    return seeded.hash;
  }

  /** Remembers a file just hashed, unless its change is too recent to trust (see above). */
  record(key: string, st: BigIntStats, hash: string): void {
    if (this.#next === undefined || st.ctimeNs >= this.#notAfterNs || st.mtimeNs >= this.#notAfterNs) return;
    this.#next.set(key, { dev: st.dev, ino: st.ino, size: st.size, mode: st.mode, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, hash });
  }

  commit(owner: string): void {
    if (this.#next === undefined) return;
    this.#current = this.#next;
    this.#next = undefined;
    this.owner = owner;
    // Everything the seed could tell is in the generation just committed.
    this.#seed = undefined;
  }

  discard(): void {
    this.#next = undefined;
  }

  /** Forgets everything (e.g. the snapshot holding the hashes is gone). */
  clear(): void {
    this.#current = new Map();
    this.#next = undefined;
    this.owner = undefined;
    this.#seed = undefined;
  }

  get size(): number {
    return this.#current.size;
  }
}

/** A file of the snapshot an instance was made from, with the stat of its materialized copy. */
export interface SeedEntry {
  hash: string;
  size: bigint;
  /** Full st_mode (type and permission bits). */
  mode: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

interface CachedFile {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mode: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  hash: string;
}

function same(c: CachedFile, st: BigIntStats): boolean {
  return c.ino === st.ino && c.dev === st.dev && c.size === st.size && c.mode === st.mode && c.mtimeNs === st.mtimeNs && c.ctimeNs === st.ctimeNs;
}
