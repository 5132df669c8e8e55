/**
 * The tree node codec: the exact bytes of one directory's encoding in docs/snapshot-hash.md,
 *
 *     "faas/tree/v1\0" ‖ u32(n) ‖ entry_1 ‖ … ‖ entry_n
 *
 * whose SHA-256 is the directory's tree hash. Stored verbatim in the blob store, a node's blob
 * name is its tree hash, so a snapshot's filesystem is a Merkle DAG of node blobs (directories)
 * and content blobs (files) reachable from its fs hash (see "Stored tree nodes" in the doc).
 *
 * This is the one implementation of the format: `SnapshotHasher.hashTree` hashes the bytes
 * produced by {@link encodeSortedEntries}, the same function {@link encodeTreeNode} uses.
 * {@link decodeTreeNode} parses untrusted stored bytes and accepts exactly the encodings this
 * module produces, so `encodeTreeNode(decodeTreeNode(b))` equals `b` for every valid `b`.
 */
import { FaasError } from '../errors/index.ts';
import { HASH_BYTES, MAX_MODE, MAX_U32, TREE_PREFIX, TYPE_TAG, bytesOf, checkHash, checkMode, invalid, showPath } from './encoding.ts';
import { SYMLINK_MODE } from './tree.ts';

/** One entry of a directory node, as `decodeTreeNode` returns it and `encodeTreeNode` takes it. */
export interface TreeNodeEntry {
  /** The raw name bytes (need not be UTF-8). */
  name: Buffer;
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits (`st_mode & 0o7777`). Always 0o777 for a symlink once encoded. */
  mode: number;
  /** File: content length. Dir: 0. Symlink: target length in bytes. */
  size: number;
  /** File: content hash (the content blob's name). Dir: subtree hash (the node blob's name). 64 lowercase hex. Absent for a symlink. */
  hash?: string;
  /** Symlink: the target bytes exactly as `readlink` returns them. Absent for a file or dir. */
  target?: Buffer;
}

/**
 * @internal An entry validated and in wire form, ready for {@link encodeSortedEntries}.
 * `payload` is the content or subtree hash (64 hex, or 32 raw bytes) for a file or dir, and
 * the target bytes for a symlink.
 */
export interface WireEntry {
  readonly name: Buffer;
  readonly tag: number;
  readonly mode: number;
  readonly size: number;
  readonly payload: Buffer | string;
}

const TYPE_OF_TAG = ['', 'file', 'dir', 'symlink'] as const;
const TWO_32 = 0x1_0000_0000;
/** name length + type + mode + size. */
const ENTRY_FIXED = 4 + 1 + 4 + 8;

/** @internal Validates a name (raw bytes) per the spec; `parent` is for messages only. */
export function checkName(name: Buffer, parent: string): Buffer {
  if (name.length === 0) throw invalid(`entry name in ${JSON.stringify(parent)} must not be empty`, { path: parent });
  const problem = nameProblem(name);
  if (problem !== null) {
    const where = showPath(parent, name);
    throw invalid(`entry name ${where} ${problem}`, { path: where });
  }
  return name;
}

function nameProblem(name: Buffer): string | null {
  if (name.length === 0) return 'must not be empty';
  if (name.includes(0x2f)) return "must not contain '/'";
  if (name.includes(0)) return 'must not contain NUL';
  if (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e))) return "must not be '.' or '..'";
  if (name.length > MAX_U32) return 'is longer than 2^32-1 bytes';
  return null;
}

/** @internal Validates a symlink target per the spec; `where` is the quoted path, for messages. */
export function checkTarget(target: Buffer, where: string): Buffer {
  if (target.length === 0) throw invalid(`symlink target of ${where} must not be empty`, { path: where });
  if (target.includes(0)) throw invalid(`symlink target of ${where} must not contain NUL`, { path: where });
  if (target.length > MAX_U32) throw invalid(`symlink target of ${where} is longer than 2^32-1 bytes`, { path: where });
  return target;
}

/** @internal Sorts in place by name bytes and rejects duplicate names; `path` is the directory's, for messages. */
export function sortByName<T extends { readonly name: Buffer }>(items: T[], path: string): T[] {
  items.sort((a, b) => Buffer.compare(a.name, b.name));
  for (let i = 1; i < items.length; i++) {
    const name = items[i]!.name;
    if (items[i - 1]!.name.equals(name)) throw invalid(`duplicate entry name ${showPath(path, name)}`, { path: showPath(path, name) });
  }
  return items;
}

/**
 * @internal The encoding of a directory whose entries are already validated, sorted by name
 * and free of duplicates. The single writer of the tree format.
 */
export function encodeSortedEntries(entries: readonly WireEntry[]): Buffer {
  let total = TREE_PREFIX.length + 4;
  for (const e of entries) total += ENTRY_FIXED + e.name.length + (e.tag === TYPE_TAG.symlink ? 4 + (e.payload as Buffer).length : HASH_BYTES);
  const out = Buffer.allocUnsafe(total);
  let at = TREE_PREFIX.copy(out, 0);
  at = out.writeUInt32BE(entries.length, at);
  for (const e of entries) {
    at = out.writeUInt32BE(e.name.length, at);
    at += e.name.copy(out, at);
    at = out.writeUInt8(e.tag, at);
    at = out.writeUInt32BE(e.mode, at);
    // u64 without a BigInt: size is a safe integer, so the high word is exact.
    at = out.writeUInt32BE(Math.floor(e.size / TWO_32), at);
    at = out.writeUInt32BE(e.size % TWO_32, at);
    const p = e.payload;
    if (e.tag === TYPE_TAG.symlink) {
      at = out.writeUInt32BE((p as Buffer).length, at);
      at += (p as Buffer).copy(out, at);
    } else if (typeof p === 'string') {
      at += out.write(p, at, HASH_BYTES, 'hex');
    } else {
      at += p.copy(out, at);
    }
  }
  // allocUnsafe: every byte must have been written.
  if (at !== total) throw new Error(`tree node encoder wrote ${at} of ${total} bytes`);
  return out;
}

/**
 * The encoding of one directory: the exact bytes whose SHA-256 is its tree hash. Sorts the
 * entries by name bytes itself and validates them as `SnapshotHasher.hashTree` does (names,
 * modes, duplicates, sizes, hashes, symlink targets). A symlink is always encoded with mode
 * 0o777, whatever valid mode it is given. Throws FaasError('VALIDATION_FAILED') on bad input.
 */
export function encodeTreeNode(entries: readonly TreeNodeEntry[]): Buffer {
  if (!Array.isArray(entries)) throw invalid('tree node entries must be an array');
  const wire: WireEntry[] = [];
  for (const e of entries as readonly unknown[]) wire.push(toWire(e));
  return encodeSortedEntries(sortByName(wire, ''));
}

function toWire(entry: unknown): WireEntry {
  if (entry === null || typeof entry !== 'object') throw invalid('tree node entry must be an object');
  const e = entry as Partial<Record<keyof TreeNodeEntry, unknown>>;
  const name = checkName(bytesOf(e.name, 'tree node entry name'), '');
  const where = showPath('', name);
  const { size, hash, target } = e;
  switch (e.type) {
    case 'file':
    case 'dir': {
      const mode = checkMode(e.mode, where);
      if (target !== undefined) throw invalid(`${e.type} entry ${where} must not have a symlink target`, { path: where });
      if (e.type === 'dir' && size !== 0) throw invalid(`size of dir entry ${where} must be 0, got ${String(size)}`, { path: where });
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
        throw invalid(`size of ${where} must be a non-negative safe integer, got ${String(size)}`, { path: where });
      }
      const what = e.type === 'file' ? `content hash of ${where}` : `subtree hash of ${where}`;
      return { name, tag: TYPE_TAG[e.type], mode, size, payload: checkHash(hash, what) };
    }
    case 'symlink': {
      checkMode(e.mode, where);
      if (hash !== undefined) throw invalid(`symlink entry ${where} must not have a hash`, { path: where });
      const bytes = checkTarget(bytesOf(target, `symlink target of ${where}`), where);
      if (size !== bytes.length) throw invalid(`size of symlink ${where} must be its target length ${bytes.length}, got ${String(size)}`, { path: where });
      return { name, tag: TYPE_TAG.symlink, mode: SYMLINK_MODE, size: bytes.length, payload: bytes };
    }
    default:
      throw invalid(`entry ${where} has unknown type ${JSON.stringify(e.type)}`, { path: where });
  }
}

function malformed(message: string, offset: number, details: Record<string, unknown> = {}): FaasError {
  return new FaasError('VALIDATION_FAILED', `tree node: ${message} (at byte ${offset})`, { offset, ...details });
}

/**
 * Parses a stored directory node strictly: the prefix, the count, every field, names that are
 * valid and in strictly ascending byte order (so no duplicates), modes <= 0o7777, symlinks with
 * mode 0o777 and a non-empty target of `size` bytes without NUL, dir sizes of 0, and no
 * trailing bytes. Accepts exactly the byte strings {@link encodeTreeNode} produces. The
 * returned names and targets are copies, not views of `bytes`. Throws
 * FaasError('VALIDATION_FAILED') with the offending byte offset on any malformed input.
 */
export function decodeTreeNode(bytes: Uint8Array): TreeNodeEntry[] {
  if (!(bytes instanceof Uint8Array)) throw new FaasError('VALIDATION_FAILED', 'tree node: input must be bytes');
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = b.length;
  const need = (at: number, n: number, what: string): void => {
    if (end - at < n) throw malformed(`truncated: ${what} needs ${n} bytes, ${end - at} left`, at);
  };

  need(0, TREE_PREFIX.length, 'the "faas/tree/v1\\0" prefix');
  if (!b.subarray(0, TREE_PREFIX.length).equals(TREE_PREFIX)) throw malformed('does not start with the "faas/tree/v1\\0" prefix', 0);
  let at = TREE_PREFIX.length;
  need(at, 4, 'the entry count');
  const count = b.readUInt32BE(at);
  at += 4;

  const entries: TreeNodeEntry[] = [];
  let previous: Buffer | null = null;
  for (let i = 0; i < count; i++) {
    const entryAt = at;
    const which = `entry ${i + 1} of ${count}`;
    if (at === end) throw malformed(`entry count is ${count} but only ${i} entries are present`, at, { entry: i });
    need(at, 4, `the name length of ${which}`);
    const nameLength = b.readUInt32BE(at);
    at += 4;
    need(at, nameLength, `the name of ${which}`);
    const name = Buffer.from(b.subarray(at, at + nameLength));
    at += nameLength;
    const problem = nameProblem(name);
    if (problem !== null) throw malformed(`name ${JSON.stringify(name.toString('utf8'))} of ${which} ${problem}`, entryAt, { entry: i });
    if (previous !== null) {
      const order = Buffer.compare(previous, name);
      if (order === 0) throw malformed(`duplicate name ${JSON.stringify(name.toString('utf8'))} in ${which}`, entryAt, { entry: i });
      if (order > 0) throw malformed(`name ${JSON.stringify(name.toString('utf8'))} of ${which} is not after the previous name in byte order`, entryAt, { entry: i });
    }
    previous = name;
    const where = `${which} (${JSON.stringify(name.toString('utf8'))})`;

    need(at, 1 + 4 + 8, `the type, mode and size of ${where}`);
    const tag = b.readUInt8(at);
    const type = TYPE_OF_TAG[tag];
    if (type === undefined || type === '') throw malformed(`unknown type tag 0x${tag.toString(16).padStart(2, '0')} in ${where}`, at, { entry: i });
    at += 1;
    const mode = b.readUInt32BE(at);
    if (mode > MAX_MODE) throw malformed(`mode 0o${mode.toString(8)} of ${where} is above 0o7777`, at, { entry: i });
    if (type === 'symlink' && mode !== SYMLINK_MODE) throw malformed(`symlink mode of ${where} must be 0o777, got 0o${mode.toString(8)}`, at, { entry: i });
    at += 4;
    const high = b.readUInt32BE(at);
    const size = high * TWO_32 + b.readUInt32BE(at + 4);
    if (high > 0x1f_ffff) throw malformed(`size of ${where} is above 2^53-1`, at, { entry: i });
    if (type === 'dir' && size !== 0) throw malformed(`size of dir ${where} must be 0, got ${size}`, at, { entry: i });
    at += 8;

    if (type === 'symlink') {
      need(at, 4, `the target length of ${where}`);
      const targetLength = b.readUInt32BE(at);
      if (targetLength !== size) throw malformed(`target length ${targetLength} of symlink ${where} differs from its size ${size}`, at, { entry: i });
      if (targetLength === 0) throw malformed(`symlink target of ${where} is empty`, at, { entry: i });
      at += 4;
      need(at, targetLength, `the target of ${where}`);
      const target = Buffer.from(b.subarray(at, at + targetLength));
      if (target.includes(0)) throw malformed(`symlink target of ${where} contains NUL`, at, { entry: i });
      at += targetLength;
      entries.push({ name, type, mode, size, target });
    } else {
      need(at, HASH_BYTES, `the ${type === 'file' ? 'content' : 'subtree'} hash of ${where}`);
      const hash = b.toString('hex', at, at + HASH_BYTES);
      at += HASH_BYTES;
      entries.push({ name, type, mode, size, hash });
    }
  }
  if (at !== end) throw malformed(`${end - at} trailing bytes after the last of ${count} entries`, at);
  return entries;
}
