/**
 * Differences between two stored trees, by walking both Merkle DAGs together: a subtree whose
 * hash is equal on both sides is skipped without being read, so the cost follows the size of
 * the change, not of the trees.
 */
import type { TreeNodeEntry } from '@faas/protocol/snapshot-hash';
import type { TreeReader } from './tree-store.ts';

export type EntryKind = 'file' | 'dir' | 'symlink';

export interface DiffPath {
  /** Raw path bytes relative to the root. */
  path: Buffer;
  type: EntryKind;
  size: number;
}

export interface DiffModification {
  path: Buffer;
  type: EntryKind;
  oldType: EntryKind;
  size: number;
  oldSize: number;
  changes: Array<'content' | 'mode' | 'type' | 'target'>;
}

export interface TreeDiff {
  added: DiffPath[];
  removed: DiffPath[];
  modified: DiffModification[];
}

const SLASH = Buffer.from('/');

/** Every path from `from` to `to`, sorted by raw path bytes within each list. */
export async function diffTrees(reader: TreeReader, fromHash: string, toHash: string): Promise<TreeDiff> {
  const out: TreeDiff = { added: [], removed: [], modified: [] };
  const join = (prefix: Buffer, name: Buffer): Buffer => (prefix.length === 0 ? name : Buffer.concat([prefix, SLASH, name]));

  /** Lists an entry and, for a directory, everything below it. */
  const all = async (into: DiffPath[], prefix: Buffer, e: TreeNodeEntry): Promise<void> => {
    const path = join(prefix, e.name);
    into.push({ path, type: e.type, size: e.size });
    if (e.type === 'dir') for (const child of await reader.node(e.hash!)) await all(into, path, child);
  };

  const walk = async (a: string, b: string, prefix: Buffer): Promise<void> => {
    if (a === b) return;
    const left = await reader.node(a);
    const right = await reader.node(b);
    let i = 0;
    let j = 0;
    // Both lists are sorted by name bytes: a merge walk.
    while (i < left.length || j < right.length) {
      const cmp = i >= left.length ? 1 : j >= right.length ? -1 : Buffer.compare(left[i]!.name, right[j]!.name);
      if (cmp < 0) await all(out.removed, prefix, left[i++]!);
      else if (cmp > 0) await all(out.added, prefix, right[j++]!);
      else {
        const l = left[i++]!;
        const r = right[j++]!;
        const path = join(prefix, l.name);
        if (l.type === 'dir' && r.type === 'dir') {
          if (l.mode !== r.mode) out.modified.push({ path, type: 'dir', oldType: 'dir', size: 0, oldSize: 0, changes: ['mode'] });
          await walk(l.hash!, r.hash!, path);
          continue;
        }
        if (l.type !== r.type) {
          out.modified.push({ path, type: r.type, oldType: l.type, size: r.size, oldSize: l.size, changes: ['type'] });
          // What was below a directory that is now something else is gone, and vice versa.
          if (l.type === 'dir') for (const c of await reader.node(l.hash!)) await all(out.removed, path, c);
          if (r.type === 'dir') for (const c of await reader.node(r.hash!)) await all(out.added, path, c);
          continue;
        }
        const changes: DiffModification['changes'] = [];
        if (l.type === 'file' && l.hash !== r.hash) changes.push('content');
        if (l.type === 'symlink' && !l.target!.equals(r.target!)) changes.push('target');
        if (l.mode !== r.mode) changes.push('mode');
        if (changes.length > 0) out.modified.push({ path, type: r.type, oldType: l.type, size: r.size, oldSize: l.size, changes });
      }
    }
  };
  await walk(fromHash, toHash, Buffer.alloc(0));
  const byPath = (x: { path: Buffer }, y: { path: Buffer }): number => Buffer.compare(x.path, y.path);
  out.added.sort(byPath);
  out.removed.sort(byPath);
  out.modified.sort(byPath);
  return out;
}
