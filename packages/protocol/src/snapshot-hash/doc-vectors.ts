/**
 * Test vectors of docs/snapshot-hash.md, parsed following the listing format the doc defines.
 * Shared by the hasher's and the tree codec's tests (not part of the package's API).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SnapshotHasher, dir, file, symlink, type DirEntry, type EntryName, type FsEntry } from './index.ts';

const hasher = new SnapshotHasher();
export const doc = readFileSync(new URL('../../../../docs/snapshot-hash.md', import.meta.url), 'utf8');

export interface Vector {
  title: string;
  root: DirEntry;
  env: Record<string, string>;
  memory: string | null;
  parent: string | null;
  expected: Record<string, string>;
}

/** Parses the test vectors of docs/snapshot-hash.md, following the listing format the doc defines. */
export function parseVectors(): Vector[] {
  const re = /### Vector (\d+): ([^\n]*)\n\n```vector\n([\s\S]*?)```\n\n```expected\n([\s\S]*?)```/g;
  return [...doc.matchAll(re)].map((m) => {
    const root = new Map<EntryName, FsEntry>();
    const dirs = new Map<string, Map<EntryName, FsEntry>>([['', root]]);
    const env: Record<string, string> = {};
    let memory: string | null = null;
    let parent: string | null = null;
    const place = (path: string, entry: FsEntry): void => {
      const slash = path.lastIndexOf('/');
      const into = dirs.get(slash < 0 ? '' : path.slice(0, slash));
      assert.ok(into, `vector ${m[1]}: parent of ${path} not listed`);
      into.set(slash < 0 ? path : path.slice(slash + 1), entry);
    };
    for (const line of m[3]!.split('\n').filter((l) => l !== '')) {
      const l = JSON.parse(line) as [string, ...unknown[]];
      if (l[0] === 'dir') {
        const children = new Map<EntryName, FsEntry>();
        dirs.set(l[2] as string, children);
        place(l[2] as string, dir(children, parseInt(l[1] as string, 8)));
      } else if (l[0] === 'file') {
        const raw = l[3] as string | { hex: string };
        const content = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : Buffer.from(raw.hex, 'hex');
        place(l[2] as string, file(hasher.hashFile(content), content.length, parseInt(l[1] as string, 8)));
      } else if (l[0] === 'symlink') place(l[1] as string, symlink(l[2] as string));
      else if (l[0] === 'env') env[l[1] as string] = l[2] as string;
      else if (l[0] === 'memory') memory = l[1] as string;
      else if (l[0] === 'parent') parent = l[1] as string;
      else assert.fail(`vector ${m[1]}: unknown line ${line}`);
    }
    const expected = Object.fromEntries(m[4]!.trim().split('\n').map((l) => l.split(/\s+/) as [string, string]));
    return { title: `${m[1]}: ${m[2]}`, root: dir(root), env, memory, parent, expected };
  });
}

