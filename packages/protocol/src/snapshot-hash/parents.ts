/**
 * The parent input of a merge snapshot (docs/snapshot-hash.md, "Merge snapshots"): a snapshot
 * made by merging several snapshots has several parents, and `hashSnapshot` takes one parent
 * hash, so the parents are hashed into one, in the order the inputs were merged in:
 *
 *     parents_hash = SHA-256( "faas/parents/v1\0" ‖ u32(n) ‖ parent_1 ‖ … ‖ parent_n )
 */
import { createHash } from 'node:crypto';
import { checkHash, invalid, u32 } from './encoding.ts';

export const PARENTS_PREFIX = Buffer.from('faas/parents/v1\0', 'ascii');

/**
 * The parents hash of a merge snapshot: two or more parent snapshot hashes (64 lowercase hex
 * each), in merge order. Order matters and repeats are kept. Fewer than two parents is
 * VALIDATION_FAILED: a snapshot with one parent uses that parent's hash itself (see
 * {@link parentInput}), so a one-element parents hash would name the same ancestry twice.
 */
export function hashParents(parentHashes: readonly string[]): string {
  if (!Array.isArray(parentHashes)) throw invalid('parent hashes must be an array');
  if (parentHashes.length < 2) {
    throw invalid(`a parents hash needs two or more parents, got ${parentHashes.length}; a snapshot with one parent uses that parent's hash`, { count: parentHashes.length });
  }
  const hash = createHash('sha256').update(PARENTS_PREFIX).update(u32(parentHashes.length));
  parentHashes.forEach((p, i) => hash.update(Buffer.from(checkHash(p, `parent hash ${i + 1}`), 'hex')));
  return hash.digest('hex');
}

/**
 * The `parent` argument of `SnapshotHasher.hashSnapshot` for a snapshot with these parents (in
 * merge order): null for none, the parent's hash for one, {@link hashParents} for several.
 */
export function parentInput(parentHashes: readonly string[]): string | null {
  if (!Array.isArray(parentHashes)) throw invalid('parent hashes must be an array');
  if (parentHashes.length === 0) return null;
  if (parentHashes.length === 1) return checkHash(parentHashes[0], 'parent hash');
  return hashParents(parentHashes);
}
