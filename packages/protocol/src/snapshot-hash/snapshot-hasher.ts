/**
 * Deterministic snapshot hashing, implementing docs/snapshot-hash.md (v1). The same content
 * gives the same hash on any machine and in any creation order: every variable-length field
 * is length-prefixed, every collection is sorted by raw bytes, and each kind of hash starts
 * with its own domain/version prefix. Node-only (node:crypto), so it is reachable through
 * the `@faas/protocol/snapshot-hash` subpath and never from the package root.
 */
import { createHash, type Hash } from 'node:crypto';
import { ENV_PREFIX, MAX_U32, SNAPSHOT_PREFIX, TREE_PREFIX, TYPE_TAG, bytesOf, checkHash, checkMode, invalid, joinPath, showPath, u32, utf8 } from './encoding.ts';
import { checkName, checkTarget, encodeSortedEntries, sortByName } from './tree-node.ts';
import { SYMLINK_MODE, entriesOf, type DirEntry, type FsEntry } from './tree.ts';

export { TREE_PREFIX, ENV_PREFIX, SNAPSHOT_PREFIX, TYPE_TAG };

const ABSENT = 0x00;
const PRESENT = 0x01;

export interface SnapshotHashes {
  /** The snapshot's own hash: what identifies it. */
  readonly contentHash: string;
  readonly fsHash: string;
  readonly envHash: string;
  readonly memoryHash: string | null;
  readonly parentHash: string | null;
}

/**
 * Called by `hashTree` once per directory occurrence, children before their parent and the
 * root last. `encoding` is the directory's tree node (see `encodeTreeNode`), a fresh buffer the
 * callee may keep; `hash` is SHA-256(encoding) in hex, its blob name; `path` is the directory's
 * path from the root ('' for the root), names decoded as UTF-8, for display only. A subtree
 * reachable twice is visited twice with the same hash and encoding.
 */
export type TreeNodeVisitor = (hash: string, encoding: Buffer, path: string) => void;

export interface HashTreeOptions {
  readonly onNode?: TreeNodeVisitor;
}

/** A directory entry on its way to the encoder: the wire fields are filled in after sorting. */
interface Item {
  readonly name: Buffer;
  readonly entry: FsEntry;
  tag: number;
  mode: number;
  size: number;
  payload: Buffer | string;
}

const NO_PAYLOAD = Buffer.alloc(0);

function lengthPrefixed(hash: Hash, bytes: Buffer, what: string): void {
  if (bytes.length > MAX_U32) throw invalid(`${what} is longer than 2^32-1 bytes`, { field: what });
  hash.update(u32(bytes.length));
  hash.update(bytes);
}

function optionalHash(value: string | null, what: string): Buffer {
  if (value === null) return Buffer.from([ABSENT]);
  return Buffer.concat([Buffer.from([PRESENT]), Buffer.from(checkHash(value, what), 'hex')]);
}

/** Streaming SHA-256 of a file's raw content; equal to `SnapshotHasher.hashFile` of the whole. */
export class FileHasher {
  readonly #hash = createHash('sha256');
  #size = 0;
  #digest: string | null = null;

  update(chunk: string | Uint8Array): this {
    if (this.#digest !== null) throw invalid('file hasher already finished; create a new one');
    const bytes = bytesOf(chunk, 'file content chunk');
    this.#size += bytes.length;
    this.#hash.update(bytes);
    return this;
  }

  /** Bytes fed so far: the `size` of the file entry. */
  get size(): number {
    return this.#size;
  }

  /** The content hash, 64 lowercase hex. Idempotent. */
  digest(): string {
    this.#digest ??= this.#hash.digest('hex');
    return this.#digest;
  }
}

export class SnapshotHasher {
  /** SHA-256 of the raw content with no prefix: the blob store's name for it. */
  hashFile(content: string | Uint8Array): string {
    return createHash('sha256').update(bytesOf(content, 'file content')).digest('hex');
  }

  createFileHasher(): FileHasher {
    return new FileHasher();
  }

  /**
   * The filesystem hash of a root directory (the root's own mode is not part of it). With
   * `onNode`, also hands over every directory's encoding (its tree node) and hash, children
   * before parents and the root last, so a caller can store the whole tree as node blobs.
   */
  hashTree(root: FsEntry, options?: HashTreeOptions): string {
    if (root === null || typeof root !== 'object' || root.type !== 'dir') throw invalid('the filesystem root must be a dir entry');
    checkMode(root.mode, '"" (root)');
    const onNode = options?.onNode;
    if (onNode !== undefined && typeof onNode !== 'function') throw invalid('onNode must be a function');
    return this.#treeDigest(root, '', new Set(), onNode).toString('hex');
  }

  /** The environment hash. Names: non-empty, no '=' or NUL. Values: no NUL. */
  hashEnv(env: Readonly<Record<string, string>>): string {
    if (env === null || typeof env !== 'object' || Array.isArray(env)) throw invalid('env must be an object of name to value');
    const vars = Object.entries(env).map(([name, value]) => {
      const where = JSON.stringify(name);
      if (name.length === 0) throw invalid('env var name must not be empty', { name });
      if (name.includes('=') || name.includes('\0')) throw invalid(`env var name ${where} must not contain '=' or NUL`, { name });
      if (typeof value !== 'string') throw invalid(`env var ${where} must have a string value`, { name });
      if (value.includes('\0')) throw invalid(`env var ${where} value must not contain NUL`, { name });
      return { name: utf8(name, `env var name ${where}`), value: utf8(value, `env var ${where} value`) };
    });
    vars.sort((a, b) => Buffer.compare(a.name, b.name));
    const hash = createHash('sha256').update(ENV_PREFIX).update(u32(vars.length));
    for (const v of vars) {
      lengthPrefixed(hash, v.name, 'env var name');
      lengthPrefixed(hash, v.value, 'env var value');
    }
    return hash.digest('hex');
  }

  /**
   * Hashes a snapshot. `memory` is the memory image's content hash or null when the snapshot
   * has none; `filesystem` and `env` are either already-computed hashes or the values to hash;
   * `parent` is the parent snapshot's hash or null.
   */
  hashSnapshot(
    memory: string | null,
    filesystem: string | FsEntry,
    env: string | Readonly<Record<string, string>>,
    parent: string | null,
  ): SnapshotHashes {
    const fsHash = typeof filesystem === 'string' ? checkHash(filesystem, 'filesystem hash') : this.hashTree(filesystem);
    const envHash = typeof env === 'string' ? checkHash(env, 'env hash') : this.hashEnv(env);
    if (memory !== null) checkHash(memory, 'memory hash');
    if (parent !== null) checkHash(parent, 'parent hash');
    const contentHash = createHash('sha256')
      .update(SNAPSHOT_PREFIX)
      .update(Buffer.from(fsHash, 'hex'))
      .update(Buffer.from(envHash, 'hex'))
      .update(optionalHash(memory, 'memory hash'))
      .update(optionalHash(parent, 'parent hash'))
      .digest('hex');
    return { contentHash, fsHash, envHash, memoryHash: memory, parentHash: parent };
  }

  #treeDigest(d: DirEntry, path: string, open: Set<DirEntry>, onNode: TreeNodeVisitor | undefined): Buffer {
    if (open.has(d)) throw invalid(`directory ${JSON.stringify(path)} contains itself`, { path });
    open.add(d);
    const items: Item[] = [];
    for (const [rawName, entry] of entriesOf(d)) {
      const name = checkName(bytesOf(rawName, `entry name in ${JSON.stringify(path)}`), path);
      items.push({ name, entry, tag: 0, mode: 0, size: 0, payload: NO_PAYLOAD });
    }
    sortByName(items, path);

    for (const item of items) {
      const { name, entry } = item;
      const where = showPath(path, name);
      if (entry === null || typeof entry !== 'object') throw invalid(`entry ${where} must be an object`, { path: where });
      switch (entry.type) {
        case 'file':
          item.tag = TYPE_TAG.file;
          item.mode = checkMode(entry.mode, where);
          if (typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) {
            throw invalid(`size of ${where} must be a non-negative safe integer, got ${String(entry.size)}`, { path: where });
          }
          item.size = entry.size;
          item.payload = checkHash(entry.contentHash, `content hash of ${where}`);
          break;
        case 'dir':
          item.tag = TYPE_TAG.dir;
          item.mode = checkMode(entry.mode, where);
          item.payload = this.#treeDigest(entry, joinPath(path, name), open, onNode);
          break;
        case 'symlink': {
          item.tag = TYPE_TAG.symlink;
          if (entry.mode !== undefined) checkMode(entry.mode, where);
          item.mode = SYMLINK_MODE;
          const target = checkTarget(bytesOf(entry.target, `symlink target of ${where}`), where);
          item.size = target.length;
          item.payload = target;
          break;
        }
        default:
          throw invalid(`entry ${where} has unknown type ${JSON.stringify((entry as { type?: unknown }).type)}`, { path: where });
      }
    }
    open.delete(d);
    const encoding = encodeSortedEntries(items);
    const digest = createHash('sha256').update(encoding).digest();
    onNode?.(digest.toString('hex'), encoding, path);
    return digest;
  }
}
