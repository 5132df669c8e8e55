/**
 * Checksums of files read before, kept by file identity, so checksum mode does not re-read a
 * file the kernel says is unchanged since it was checksummed (Unison's "fastcheck" and git's
 * index do the same).
 *
 * Why it is sound. A file's ctime changes with every change of its content (and of its mode or
 * owner) and cannot be set by its user; (dev, ino) tell a replaced file from the original; size
 * and mtime are checked too. One gap remains: timestamps come from a coarse kernel clock, so a
 * file changed again within the same tick right after it was read would look unchanged. As git
 * does with "racy" entries, a checksum is only remembered when the file's ctime and mtime are
 * clearly older than the moment it was read: a file changed in the last {@link RACY_MARGIN_NS}
 * is checksummed but not remembered, and read again next time.
 *
 * Lookups use the identity the manifest walk saw (its lstat, no extra call); a checksum is
 * remembered under the identity `fstat` gave when the file was opened for reading, so a file
 * that changed between the walk and the read is stored under its new identity and the walk's
 * stale one never matches it.
 */

/** What identifies one version of a file's content. */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export const RACY_MARGIN_NS = 50_000_000n;

export class ChecksumCache {
  readonly #entries = new Map<string, { id: FileIdentity; checksum: string }>();

  /** @param maxEntries the oldest entries go beyond this many (about 200 bytes each). */
  constructor(private readonly maxEntries = 1_000_000) {}

  /** The remembered checksum of this exact file version, or undefined. */
  lookup(id: FileIdentity): string | undefined {
    const key = keyOf(id);
    const hit = this.#entries.get(key);
    if (hit === undefined || !sameVersion(hit.id, id)) return undefined;
    // Re-inserted: the map's order is then least recently used first.
    this.#entries.delete(key);
    this.#entries.set(key, hit);
    return hit.checksum;
  }

  /** Remembers `checksum` of the file version `id` (as fstat saw it when it was read), unless it changed too recently to trust. */
  remember(id: FileIdentity, checksum: string, nowNs: bigint = BigInt(Date.now()) * 1_000_000n): void {
    const notAfter = nowNs - RACY_MARGIN_NS;
    if (id.ctimeNs >= notAfter || id.mtimeNs >= notAfter) return;
    const key = keyOf(id);
    this.#entries.delete(key);
    this.#entries.set(key, { id, checksum });
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
  }
}

function keyOf(id: FileIdentity): string {
  return `${id.dev}:${id.ino}`;
}

function sameVersion(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}
