/**
 * Internal helpers shared by the snapshot hasher and the tree node codec: the domain
 * prefixes, the type tags and the validation of the primitive fields of docs/snapshot-hash.md.
 * Not exported from the package; `snapshot-hasher.ts` re-exports the public constants.
 */
import { FaasError } from '../errors/index.ts';

export const TREE_PREFIX = Buffer.from('faas/tree/v1\0', 'ascii');
export const ENV_PREFIX = Buffer.from('faas/env/v1\0', 'ascii');
export const SNAPSHOT_PREFIX = Buffer.from('faas/snapshot/v1\0', 'ascii');

export const TYPE_TAG = { file: 0x01, dir: 0x02, symlink: 0x03 } as const;

export const HASH_BYTES = 32;
export const MAX_U32 = 0xffff_ffff;
/** The largest `mode`: permission bits only, including setuid, setgid and sticky. */
export const MAX_MODE = 0o7777;

const HEX64 = /^[0-9a-f]{64}$/;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

export function invalid(message: string, details: Record<string, unknown> = {}): FaasError {
  return new FaasError('VALIDATION_FAILED', `snapshot hash: ${message}`, details);
}

export function checkHash(value: unknown, what: string): string {
  if (typeof value !== 'string' || !HEX64.test(value)) {
    throw invalid(`${what} must be 64 lowercase hex characters (SHA-256), got ${JSON.stringify(value)}`, { field: what });
  }
  return value;
}

export function utf8(value: string, what: string): Buffer {
  if (LONE_SURROGATE.test(value)) throw invalid(`${what} contains a lone UTF-16 surrogate and has no UTF-8 encoding`, { field: what });
  return Buffer.from(value, 'utf8');
}

/** A string as UTF-8, or the bytes of a Uint8Array (no copy). */
export function bytesOf(value: unknown, what: string): Buffer {
  if (typeof value === 'string') return utf8(value, what);
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw invalid(`${what} must be a string or bytes`, { field: what });
}

export function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

/** For messages: a path shown as JSON, so newlines and odd bytes stay visible. */
export function showPath(parent: string, name: Buffer): string {
  return JSON.stringify(joinPath(parent, name));
}

/** `parent/name` with the name decoded as UTF-8 (lossy for non-UTF-8 names: for display only). */
export function joinPath(parent: string, name: Buffer): string {
  return parent === '' ? name.toString('utf8') : `${parent}/${name.toString('utf8')}`;
}

export function checkMode(mode: unknown, where: string): number {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > MAX_MODE) {
    throw invalid(`mode of ${where} must be an integer in 0..0o7777 (permission bits only), got ${String(mode)}`, { path: where });
  }
  return mode;
}
