import { FaasError } from '@faas/protocol';
import { createHash } from 'node:crypto';
import type { BlobBatch, BlobLease, BlobStore } from '../blobs/types.ts';
import type { MemoryCapture, MemoryImageSource } from '../runtime/types.ts';

/**
 * Memory images in the blob store. An image is a manifest blob naming one blob per part (device
 * state, RAM, disk...) and the machine shape a restore needs; `memory_hash` is the manifest's
 * SHA-256, so it covers every byte of every part (a Merkle node, as trees are for files).
 *
 * The manifest is canonical JSON (sorted keys, no spaces): equal images give equal hashes.
 */
const FORMAT = 'faas-memory-image/1';
/**
 * A manifest names one blob per region (~80 bytes each): a 1 GiB guest with a 4 GiB disk has
 * ~1,300 of them, a 64 GiB one ~17,000. Anything much larger is not a manifest.
 */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const HASH = /^[0-9a-f]{64}$/;

interface Manifest {
  format: typeof FORMAT;
  runtime: string;
  machine: Record<string, string | number | boolean>;
  parts: Record<string, string>;
}

/**
 * Stores every part of a capture and its manifest in the batch; returns the image's hash and
 * how many bytes were new. A part the store already holds (the same region of an earlier image)
 * is only named, not written again.
 */
export async function storeMemoryCapture(capture: MemoryCapture, runtime: string, batch: BlobBatch, lease: BlobLease): Promise<{ memoryHash: string; newBytes: number }> {
  const parts: Record<string, string> = {};
  let newBytes = 0;
  for await (const part of capture.parts()) {
    if (part.name in parts) throw new FaasError('RUNTIME_ERROR', `memory capture named part ${JSON.stringify(part.name)} twice`);
    const hash = createHash('sha256').update(part.data).digest('hex');
    parts[part.name] = hash;
    // Pinned before the check, so a gc running now cannot take a blob this image reuses.
    if (await batch.has(hash)) {
      await lease.pin([hash]).catch(() => undefined);
      if (await batch.has(hash)) continue;
    }
    const stored = await batch.put(part.data, { expectedHash: hash });
    if (stored.created) newBytes += stored.size;
  }
  const manifest: Manifest = { format: FORMAT, runtime, machine: { ...capture.machine }, parts };
  const stored = await batch.put(Buffer.from(canonicalJson(manifest)));
  return { memoryHash: stored.hash, newBytes: newBytes + (stored.created ? stored.size : 0) };
}

/** The image a snapshot's `memory_hash` names, ready for `startInstance({ memoryImage })`. */
export async function loadMemoryImage(blobs: BlobStore, memoryHash: string, runtime: string): Promise<MemoryImageSource> {
  const manifest = await readManifest(blobs, memoryHash);
  if (manifest.runtime !== runtime) {
    throw new FaasError('RUNTIME_UNSUPPORTED', `memory image ${memoryHash} was captured by the ${manifest.runtime} runtime; this server runs ${runtime}`, { memory_hash: memoryHash, runtime: manifest.runtime });
  }
  return {
    hash: memoryHash,
    machine: manifest.machine,
    open: async (part) => {
      const hash = manifest.parts[part];
      if (hash === undefined) throw new FaasError('SNAPSHOT_CORRUPT', `memory image ${memoryHash} has no part ${JSON.stringify(part)}`, { hash: memoryHash, part });
      return blobs.open(hash);
    },
  };
}

/** Adds the manifest and every part of the image to `live` (gc's mark). A missing manifest adds only itself. */
export async function collectMemoryImage(blobs: BlobStore, memoryHash: string, live: Set<string>): Promise<void> {
  live.add(memoryHash);
  if (!(await blobs.has(memoryHash))) return;
  for (const hash of Object.values((await readManifest(blobs, memoryHash)).parts)) live.add(hash);
}

/** Blob hashes of the image's parts (for checks); the manifest itself is not among them. */
export async function memoryImageParts(blobs: BlobStore, memoryHash: string): Promise<Record<string, string>> {
  return (await readManifest(blobs, memoryHash)).parts;
}

async function readManifest(blobs: BlobStore, memoryHash: string): Promise<Manifest> {
  const raw = await blobs.readFile(memoryHash, { maxBytes: MAX_MANIFEST_BYTES });
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (!isManifest(parsed)) throw new FaasError('SNAPSHOT_CORRUPT', `blob ${memoryHash} is not a memory image manifest`, { hash: memoryHash });
  return parsed;
}

function isManifest(value: unknown): value is Manifest {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Partial<Manifest>;
  return (
    m.format === FORMAT &&
    typeof m.runtime === 'string' &&
    typeof m.machine === 'object' &&
    m.machine !== null &&
    typeof m.parts === 'object' &&
    m.parts !== null &&
    Object.values(m.parts).every((h) => typeof h === 'string' && HASH.test(h))
  );
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
