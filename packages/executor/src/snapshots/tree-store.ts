/**
 * A snapshot's filesystem as a Merkle DAG in the blob store: every directory's encoding
 * (docs/snapshot-hash.md, "Stored tree nodes") is a blob whose name is the directory's tree
 * hash; file entries name content blobs. A whole tree is therefore recoverable, verifiable and
 * deduplicated from its fs hash alone, and an unchanged subtree costs nothing to store again.
 */
import { FaasError } from '@faas/protocol';
import { SnapshotHasher, decodeTreeNode, type DirEntry, type TreeNodeEntry } from '@faas/protocol/snapshot-hash';
import type { BlobLease, BlobStore } from '../blobs/types.ts';
import type { BlobSink } from './tree-scanner.ts';

const hasher = new SnapshotHasher();
/** Decoded nodes kept in memory: nodes are immutable (named by their hash), so never stale. */
const NODE_CACHE_MAX = 20_000;
/** Largest directory node read back (a directory of ~1M entries). */
const MAX_NODE_BYTES = 256 * 1024 * 1024;

export interface StoredTree {
  fsHash: string;
  /** Bytes of node blobs this call newly wrote. */
  nodeBytes: number;
  nodeCount: number;
}

/**
 * Stores every directory node of `tree` (children first), pinning existing ones in `lease`.
 * Returns the fs hash: the root node's name.
 */
export async function storeTree(tree: DirEntry, sink: BlobSink, lease: BlobLease): Promise<StoredTree> {
  const nodes: Array<{ hash: string; encoding: Buffer }> = [];
  const seen = new Set<string>();
  const fsHash = hasher.hashTree(tree, {
    onNode: (hash, encoding) => {
      if (seen.has(hash)) return;
      seen.add(hash);
      nodes.push({ hash, encoding });
    },
  });
  let nodeBytes = 0;
  const existing: string[] = [];
  for (const { hash, encoding } of nodes) {
    if (await sink.has(hash)) {
      existing.push(hash);
      continue;
    }
    const r = await sink.put(encoding, { expectedHash: hash, lease });
    if (r.created) nodeBytes += r.size;
  }
  if (existing.length > 0) await lease.pin(existing);
  return { fsHash, nodeBytes, nodeCount: nodes.length };
}

/** Reads directory nodes back from a blob store, with a cache of decoded nodes. */
export class TreeReader {
  readonly #cache = new Map<string, TreeNodeEntry[]>();

  constructor(private readonly blobs: BlobStore) {}

  /** The entries of the directory node `hash`, sorted by name. SNAPSHOT_CORRUPT when missing or malformed. */
  async node(hash: string): Promise<TreeNodeEntry[]> {
    const cached = this.#cache.get(hash);
    if (cached !== undefined) return cached;
    let bytes: Buffer;
    try {
      bytes = await this.blobs.readFile(hash, { maxBytes: MAX_NODE_BYTES });
    } catch (err) {
      if (err instanceof FaasError && err.code === 'BLOB_NOT_FOUND') {
        throw new FaasError('SNAPSHOT_CORRUPT', `tree node ${hash} is missing from the blob store`, { hash }, { cause: err });
      }
      throw err;
    }
    let entries: TreeNodeEntry[];
    try {
      entries = decodeTreeNode(bytes);
    } catch (err) {
      throw new FaasError('SNAPSHOT_CORRUPT', `tree node ${hash} is malformed: ${(err as Error).message}`, { hash }, { cause: err });
    }
    if (this.#cache.size >= NODE_CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(hash, entries);
    return entries;
  }

  /**
   * Visits every entry below the root node `fsHash`, parents before children, with its path
   * as raw bytes relative to the root. Return false from `visit` to skip a directory's content.
   */
  async walk(fsHash: string, visit: (path: Buffer, entry: TreeNodeEntry) => boolean | void | Promise<boolean | void>): Promise<void> {
    const go = async (hash: string, prefix: Buffer): Promise<void> => {
      for (const entry of await this.node(hash)) {
        const path = prefix.length === 0 ? entry.name : Buffer.concat([prefix, SLASH, entry.name]);
        const descend = await visit(path, entry);
        if (entry.type === 'dir' && descend !== false) await go(entry.hash!, path);
      }
    };
    await go(fsHash, Buffer.alloc(0));
  }

  /** Every blob hash the tree refers to: its nodes and file contents (deduplicated into `into`). */
  async collect(fsHash: string, into: Set<string>): Promise<void> {
    if (into.has(fsHash)) return;
    into.add(fsHash);
    const go = async (hash: string): Promise<void> => {
      for (const entry of await this.node(hash)) {
        if (entry.type === 'file') into.add(entry.hash!);
        else if (entry.type === 'dir' && !into.has(entry.hash!)) {
          // A subtree seen before (shared by another snapshot) is fully collected already.
          into.add(entry.hash!);
          await go(entry.hash!);
        }
      }
    };
    await go(fsHash);
  }
}

const SLASH = Buffer.from('/');
