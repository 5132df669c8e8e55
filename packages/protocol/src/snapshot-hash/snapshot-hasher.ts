/**
 * Deterministic snapshot hashing, implementing docs/snapshot-hash.md (v1). The same content
 * gives the same hash on any machine and in any creation order: every variable-length field
 * is length-prefixed, every collection is sorted by raw bytes, and each kind of hash starts
 * with its own domain/version prefix. Node-only (node:crypto), so it is reachable through
 * the `@faas/protocol/snapshot-hash` subpath and never from the package root.
 */
import { createHash, type Hash } from 'node:crypto';
import { FaasError } from '../errors/index.ts';
import { SYMLINK_MODE, entriesOf, type DirEntry, type EntryName, type FsEntry } from './tree.ts';

export const TREE_PREFIX = Buffer.from('faas/tree/v1\0', 'ascii');
export const ENV_PREFIX = Buffer.from('faas/env/v1\0', 'ascii');
export const SNAPSHOT_PREFIX = Buffer.from('faas/snapshot/v1\0', 'ascii');

export const TYPE_TAG = { file: 0x01, dir: 0x02, symlink: 0x03 } as const;
const ABSENT = 0x00;
const PRESENT = 0x01;

const HEX64 = /^[0-9a-f]{64}$/;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const MAX_U32 = 0xffff_ffff;

export interface SnapshotHashes {
  /** The snapshot's own hash: what identifies it. */
  readonly contentHash: string;
  readonly fsHash: string;
  readonly envHash: string;
  readonly memoryHash: string | null;
  readonly parentHash: string | null;
}

function invalid(message: string, details: Record<string, unknown> = {}): FaasError {
  return new FaasError('VALIDATION_FAILED', `snapshot hash: ${message}`, details);
}

function checkHash(value: unknown, what: string): string {
  if (typeof value !== 'string' || !HEX64.test(value)) {
    throw invalid(`${what} must be 64 lowercase hex characters (SHA-256), got ${JSON.stringify(value)}`, { field: what });
  }
  return value;
}

function utf8(value: string, what: string): Buffer {
  if (LONE_SURROGATE.test(value)) throw invalid(`${what} contains a lone UTF-16 surrogate and has no UTF-8 encoding`, { field: what });
  return Buffer.from(value, 'utf8');
}

function bytesOf(value: unknown, what: string): Buffer {
  if (typeof value === 'string') return utf8(value, what);
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw invalid(`${what} must be a string or bytes`, { field: what });
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

function lengthPrefixed(hash: Hash, bytes: Buffer, what: string): void {
  if (bytes.length > MAX_U32) throw invalid(`${what} is longer than 2^32-1 bytes`, { field: what });
  hash.update(u32(bytes.length));
  hash.update(bytes);
}

function optionalHash(value: string | null, what: string): Buffer {
  if (value === null) return Buffer.from([ABSENT]);
  return Buffer.concat([Buffer.from([PRESENT]), Buffer.from(checkHash(value, what), 'hex')]);
}

/** For messages: a path shown as JSON, so newlines and odd bytes stay visible. */
function showPath(parent: string, name: Buffer): string {
  return JSON.stringify(parent === '' ? name.toString('utf8') : `${parent}/${name.toString('utf8')}`);
}

function checkMode(mode: unknown, where: string): number {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw invalid(`mode of ${where} must be an integer in 0..0o7777 (permission bits only), got ${String(mode)}`, { path: where });
  }
  return mode;
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

  /** The filesystem hash of a root directory (the root's own mode is not part of it). */
  hashTree(root: FsEntry): string {
    if (root === null || typeof root !== 'object' || root.type !== 'dir') throw invalid('the filesystem root must be a dir entry');
    checkMode(root.mode, '"" (root)');
    return this.#treeDigest(root, '', new Set()).toString('hex');
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

  #treeDigest(d: DirEntry, path: string, open: Set<DirEntry>): Buffer {
    if (open.has(d)) throw invalid(`directory ${JSON.stringify(path)} contains itself`, { path });
    open.add(d);
    const items: { name: Buffer; entry: FsEntry }[] = [];
    for (const [rawName, entry] of entriesOf(d)) items.push({ name: this.#name(rawName, path), entry });
    items.sort((a, b) => Buffer.compare(a.name, b.name));

    const hash = createHash('sha256').update(TREE_PREFIX).update(u32(items.length));
    let previous: Buffer | null = null;
    for (const { name, entry } of items) {
      if (previous !== null && previous.equals(name)) throw invalid(`duplicate entry name ${showPath(path, name)}`, { path: showPath(path, name) });
      previous = name;
      const where = showPath(path, name);
      if (entry === null || typeof entry !== 'object') throw invalid(`entry ${where} must be an object`, { path: where });

      let tag: number;
      let mode: number;
      let size: number;
      let payload: Buffer;
      switch (entry.type) {
        case 'file':
          tag = TYPE_TAG.file;
          mode = checkMode(entry.mode, where);
          if (typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) {
            throw invalid(`size of ${where} must be a non-negative safe integer, got ${String(entry.size)}`, { path: where });
          }
          size = entry.size;
          payload = Buffer.from(checkHash(entry.contentHash, `content hash of ${where}`), 'hex');
          break;
        case 'dir': {
          tag = TYPE_TAG.dir;
          mode = checkMode(entry.mode, where);
          size = 0;
          const childPath = path === '' ? name.toString('utf8') : `${path}/${name.toString('utf8')}`;
          payload = this.#treeDigest(entry, childPath, open);
          break;
        }
        case 'symlink': {
          tag = TYPE_TAG.symlink;
          if (entry.mode !== undefined) checkMode(entry.mode, where);
          mode = SYMLINK_MODE;
          const target = bytesOf(entry.target, `symlink target of ${where}`);
          if (target.length === 0) throw invalid(`symlink target of ${where} must not be empty`, { path: where });
          if (target.includes(0)) throw invalid(`symlink target of ${where} must not contain NUL`, { path: where });
          if (target.length > MAX_U32) throw invalid(`symlink target of ${where} is longer than 2^32-1 bytes`, { path: where });
          size = target.length;
          payload = Buffer.concat([u32(target.length), target]);
          break;
        }
        default:
          throw invalid(`entry ${where} has unknown type ${JSON.stringify((entry as { type?: unknown }).type)}`, { path: where });
      }
      const head = Buffer.allocUnsafe(4 + name.length + 1 + 4 + 8);
      head.writeUInt32BE(name.length, 0);
      name.copy(head, 4);
      const at = 4 + name.length;
      head.writeUInt8(tag, at);
      head.writeUInt32BE(mode, at + 1);
      head.writeBigUInt64BE(BigInt(size), at + 5);
      hash.update(head);
      hash.update(payload);
    }
    open.delete(d);
    return hash.digest();
  }

  #name(raw: EntryName, parent: string): Buffer {
    const name = bytesOf(raw, `entry name in ${JSON.stringify(parent)}`);
    const where = showPath(parent, name);
    if (name.length === 0) throw invalid(`entry name in ${JSON.stringify(parent)} must not be empty`, { path: parent });
    if (name.includes(0x2f)) throw invalid(`entry name ${where} must not contain '/'`, { path: where });
    if (name.includes(0)) throw invalid(`entry name ${where} must not contain NUL`, { path: where });
    if ((name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)) {
      throw invalid(`entry name ${where} must not be '.' or '..'`, { path: where });
    }
    if (name.length > MAX_U32) throw invalid(`entry name ${where} is longer than 2^32-1 bytes`, { path: where });
    return name;
  }
}
