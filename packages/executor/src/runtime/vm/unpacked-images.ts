import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { MemoryImageSource } from '../types.ts';
import { truncate, writeFile } from 'node:fs/promises';
import { unpackSparse } from './qemu/sparse-files.ts';
import { regionName } from './memory-regions.ts';

/** Unpacked images kept for further restores; older unused ones are removed. */
const KEEP = 2;
/** An unused unpacked image goes after this long: its RAM file sits in memory (/dev/shm). */
const IDLE_MS = 30_000;
const UNPACK_PARALLEL = 8;

interface Entry {
  dir: string;
  ready: Promise<void>;
  users: number;
  lastUsed: number;
}

/** Files of an unpacked memory image: what a machine restores from (each restore copies them). */
export interface UnpackedImage {
  state: string;
  ram: string;
  disk: string;
}

/**
 * Memory images unpacked from the blob store into files, once per image: ten branches of one
 * snapshot unpack its RAM and disk once and each copies the files (sparse, tens of ms), instead
 * of ten unpacks of the same blobs competing for the disk and the CPU.
 */
export class UnpackedImages {
  private readonly entries = new Map<string, Entry>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly dir: string) {}

  /** Runs `fn` with the image's files, unpacking them first unless another restore did. */
  async use<T>(image: MemoryImageSource, fn: (files: UnpackedImage) => Promise<T>): Promise<T> {
    let entry = this.entries.get(image.hash);
    if (entry === undefined) {
      const dir = join(this.dir, image.hash);
      entry = { dir, ready: unpack(image, dir), users: 0, lastUsed: Date.now() };
      this.entries.set(image.hash, entry);
    }
    entry.users++;
    try {
      await entry.ready;
      return await fn({ state: join(entry.dir, 'state'), ram: join(entry.dir, 'ram'), disk: join(entry.dir, 'disk') });
    } catch (err) {
      // A failed unpack is not kept: the next restore tries again.
      if (this.entries.get(image.hash) === entry && entry.users === 1) this.remove(image.hash, entry);
      throw err;
    } finally {
      entry.users--;
      entry.lastUsed = Date.now();
      this.evict();
    }
  }

  clear(): void {
    clearTimeout(this.sweeper);
    this.sweeper = undefined;
    for (const [hash, entry] of this.entries) this.remove(hash, entry);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private evict(): void {
    const idle = [...this.entries].filter(([, e]) => e.users === 0).sort(([, a], [, b]) => b.lastUsed - a.lastUsed);
    const now = Date.now();
    for (const [i, [hash, entry]] of idle.entries()) if (i >= KEEP || now - entry.lastUsed >= IDLE_MS) this.remove(hash, entry);
    clearTimeout(this.sweeper);
    this.sweeper = this.entries.size > 0 ? setTimeout(() => this.evict(), IDLE_MS).unref() : undefined;
  }

  private remove(hash: string, entry: Entry): void {
    this.entries.delete(hash);
    rmSync(entry.dir, { recursive: true, force: true });
  }
}

async function unpack(image: MemoryImageSource, dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { ramMb, diskBytes, ramRegionBytes, diskRegionBytes } = image.machine as { ramMb: number; diskBytes: number; ramRegionBytes: number; diskRegionBytes: number };
  await Promise.all([
    (async () => pipeline(await image.open('state'), createWriteStream(join(dir, 'state'), { mode: 0o600 })))(),
    unpackRegions(image, 'ram', join(dir, 'ram'), ramMb * 1024 * 1024, ramRegionBytes),
    unpackRegions(image, 'disk', join(dir, 'disk'), diskBytes, diskRegionBytes),
  ]);
}

/** Writes a file of `size` bytes from its region parts (see packSparseRegions). */
async function unpackRegions(image: MemoryImageSource, file: 'ram' | 'disk', path: string, size: number, regionBytes: number): Promise<void> {
  await truncate(path, size).catch(async () => {
    await writeFile(path, '', { mode: 0o600 });
    await truncate(path, size);
  });
  const count = Math.ceil(size / regionBytes);
  let next = 0;
  // Regions are independent writes at their own offsets: a few at once keep the disk busy
  // while others wait on the blob store.
  await Promise.all(
    Array.from({ length: Math.min(UNPACK_PARALLEL, count) }, async () => {
      for (let i = next++; i < count; i = next++) await unpackSparse(await image.open(regionName(file, i)), path, { into: true });
    }),
  );
}
