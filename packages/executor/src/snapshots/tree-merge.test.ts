import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isFaasError } from '@faas/protocol';
import { SnapshotHasher, dir, file, symlink, type DirEntry, type EntryName, type FsEntry, type TreeNodeEntry } from '@faas/protocol/snapshot-hash';
import { openLocalBlobStore, type LocalBlobStore } from '../blobs/local/local-blob-store.ts';
import { findCommonAncestor, mergeTrees, storeMergedTree, type Conflict, type MergeInput, type MergeOutcome, type TreeMergeStrategy } from './tree-merge.ts';
import { TreeReader, storeTree } from './tree-store.ts';

const hasher = new SnapshotHasher();

/** Content blobs to put before a tree that refers to them is stored. */
const contents = new Map<string, Buffer>();
/** A file entry whose content is `text`, remembered so the store gets its blob. */
const f = (text: string, mode = 0o644): FsEntry => {
  const content = Buffer.from(text);
  const hash = hasher.hashFile(content);
  contents.set(hash, content);
  return file(hash, content.length, mode);
};
const short = (text: string): string => hasher.hashFile(text).slice(0, 12);
const fileState = (text: string, mode = '0644'): string => `file ${mode} ${Buffer.byteLength(text)} bytes ${short(text)}`;

class CountingReader extends TreeReader {
  readonly calls: string[] = [];
  override node(hash: string): Promise<TreeNodeEntry[]> {
    this.calls.push(hash);
    return super.node(hash);
  }
}

let root: string;
let store: LocalBlobStore;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'faas-merge-'));
  store = await openLocalBlobStore({ root });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Stores the tree (with its file contents) and returns its fs hash. */
async function put(tree: DirEntry): Promise<string> {
  const lease = store.lease();
  const batch = store.batch({ lease });
  try {
    for (const content of contents.values()) await batch.put(content);
    contents.clear();
    const { fsHash } = await storeTree(tree, batch, lease);
    await batch.commit();
    assert.equal(fsHash, hasher.hashTree(tree));
    return fsHash;
  } finally {
    await batch.abort();
    lease.release();
  }
}

/** Merges trees given as DirEntry: stores base and inputs, named A, B, C… in order. */
async function merge(base: DirEntry, inputs: DirEntry[], strategy: TreeMergeStrategy = 'fail', reader = new TreeReader(store)): Promise<MergeOutcome> {
  const baseHash = await put(base);
  const ins: MergeInput[] = [];
  for (const [i, t] of inputs.entries()) ins.push({ id: String.fromCharCode(65 + i), fsHash: await put(t) });
  return mergeTrees(reader, baseHash, ins, strategy);
}

/** Stores the merged nodes in a batch, then checks the result reads back as `expected`. */
async function assertMerged(outcome: MergeOutcome, expected: DirEntry): Promise<void> {
  assert.deepEqual(outcome.conflicts, []);
  assert.equal(outcome.fsHash, hasher.hashTree(expected));
  const lease = store.lease();
  const batch = store.batch({ lease });
  try {
    const stored = await storeMergedTree(outcome, batch, lease);
    await batch.commit();
    assert.equal(stored.fsHash, outcome.fsHash);
  } finally {
    await batch.abort();
    lease.release();
  }
  // Read back from the store with a fresh reader (no cache): every node is there and decodes.
  const back = new Map<string, string>();
  await new TreeReader(store).walk(outcome.fsHash!, (path, e) => {
    back.set(path.toString(), e.type === 'symlink' ? `symlink ${e.target!.toString()}` : `${e.type} ${e.mode.toString(8)} ${e.hash}`);
  });
  const want = new Map<string, string>();
  const flatten = (d: DirEntry, prefix: string): void => {
    for (const [name, e] of Object.entries(d.entries as Record<string, FsEntry>)) {
      const path = prefix === '' ? name : `${prefix}/${name}`;
      if (e.type === 'symlink') want.set(path, `symlink ${String(e.target)}`);
      else if (e.type === 'file') want.set(path, `file ${e.mode.toString(8)} ${e.contentHash}`);
      else {
        want.set(path, `dir ${e.mode.toString(8)} ${hasher.hashTree(e)}`);
        flatten(e, path);
      }
    }
  };
  flatten(expected, '');
  assert.deepEqual(new Map([...back].sort()), new Map([...want].sort()));
}

const paths = (cs: readonly Conflict[]): string[] => cs.map((c) => c.path.toString());

const baseTree = (): DirEntry =>
  dir({
    'a.txt': f('a'),
    'b.txt': f('b'),
    'c.txt': f('c'),
    src: dir({ 'x.ts': f('x'), 'y.ts': f('y'), lib: dir({ 'z.ts': f('z') }) }),
    link: symlink('a.txt'),
    docs: dir({ 'readme.md': f('readme') }, 0o755),
  });

describe('mergeTrees', () => {
  it('combines non-overlapping changes of three inputs: an add, a modify and a delete, also nested', async () => {
    const A = dir({ ...baseTree().entries, 'new.txt': f('new'), src: dir({ 'x.ts': f('x2'), 'y.ts': f('y'), lib: dir({ 'z.ts': f('z') }) }) });
    const B = dir({ ...baseTree().entries, 'b.txt': f('b2'), src: dir({ 'x.ts': f('x'), 'y.ts': f('y'), lib: dir({ 'z.ts': f('z'), 'w.ts': f('w') }) }) });
    const { 'c.txt': _c, link: _l, ...rest } = baseTree().entries as Record<string, FsEntry>;
    const C = dir({ ...rest, src: dir({ 'x.ts': f('x'), lib: dir({ 'z.ts': f('z') }) }) });
    const outcome = await merge(baseTree(), [A, B, C]);
    const expected = dir({
      'a.txt': f('a'),
      'b.txt': f('b2'),
      'new.txt': f('new'),
      src: dir({ 'x.ts': f('x2'), lib: dir({ 'z.ts': f('z'), 'w.ts': f('w') }) }),
      docs: dir({ 'readme.md': f('readme') }),
    });
    assert.deepEqual(outcome.resolved, []);
    await assertMerged(outcome, expected);
    // New nodes: the root and src (three inputs changed src differently; src/lib only B: reused).
    assert.equal(outcome.nodes.length, 2);
    assert.equal(outcome.nodes.at(-1)!.hash, outcome.fsHash);
  });

  it('the same change in two inputs is no conflict: same modify, same delete, same new directory', async () => {
    const changed = (): DirEntry => {
      const { 'c.txt': _c, ...rest } = baseTree().entries as Record<string, FsEntry>;
      return dir({ ...rest, 'b.txt': f('b2'), added: dir({ deep: dir({ 'n.txt': f('n') }) }) });
    };
    const A = dir({ ...changed().entries, 'only-a': f('only a') });
    const B = changed();
    const outcome = await merge(baseTree(), [A, B]);
    assert.deepEqual(outcome.resolved, []);
    await assertMerged(outcome, A);
    // The merge reproduced A exactly: nothing new to store.
    assert.deepEqual(outcome.nodes, []);
  });

  it('two inputs adding one new directory with different files merge it entry by entry', async () => {
    const A = dir({ ...baseTree().entries, added: dir({ 'one.txt': f('1'), same: f('s') }) });
    const B = dir({ ...baseTree().entries, added: dir({ 'two.txt': f('2'), same: f('s') }) });
    const outcome = await merge(baseTree(), [A, B]);
    await assertMerged(outcome, dir({ ...baseTree().entries, added: dir({ 'one.txt': f('1'), 'two.txt': f('2'), same: f('s') }) }));
  });

  it('only one input changed anything: its tree, read nothing', async () => {
    const reader = new CountingReader(store);
    const A = dir({ ...baseTree().entries, 'b.txt': f('b2') });
    const outcome = await merge(baseTree(), [A, baseTree()], 'fail', reader);
    assert.equal(outcome.fsHash, hasher.hashTree(A));
    assert.deepEqual(outcome.nodes, []);
    assert.deepEqual(reader.calls, []);
    const none = await merge(baseTree(), [baseTree(), baseTree()], 'fail', reader);
    assert.equal(none.fsHash, hasher.hashTree(baseTree()));
    assert.deepEqual(reader.calls, []);
  });

  describe('a content conflict', () => {
    const A = (): DirEntry => dir({ ...baseTree().entries, 'b.txt': f('from A'), 'a.txt': f('a2') });
    const B = (): DirEntry => dir({ ...baseTree().entries, 'b.txt': f('from B'), 'c.txt': f('c2') });
    const conflict: Conflict = {
      path: Buffer.from('b.txt'),
      kind: 'content',
      sides: [
        { id: 'A', state: fileState('from A') },
        { id: 'B', state: fileState('from B') },
      ],
    };

    it("fail: no tree, the conflict with both sides' states", async () => {
      const outcome = await merge(baseTree(), [A(), B()], 'fail');
      assert.equal(outcome.fsHash, undefined);
      assert.deepEqual(outcome.nodes, []);
      assert.deepEqual(outcome.conflicts, [conflict]);
      assert.deepEqual(outcome.resolved, []);
      assert.match(outcome.conflicts[0]!.sides[0]!.state, /^file 0644 6 bytes [0-9a-f]{12}$/);
    });

    for (const [strategy, winner] of [
      ['ours', 'A'],
      ['theirs', 'B'],
      [{ prefer: 'A' }, 'A'],
      [{ prefer: 'B' }, 'B'],
    ] as const) {
      it(`${JSON.stringify(strategy)}: ${winner}'s content, reported as resolved`, async () => {
        const outcome = await merge(baseTree(), [A(), B()], strategy);
        assert.deepEqual(outcome.resolved, [{ ...conflict, winner }]);
        await assertMerged(outcome, dir({ ...baseTree().entries, 'a.txt': f('a2'), 'c.txt': f('c2'), 'b.txt': f(`from ${winner}`) }));
      });
    }

    it('prefer an input that did not change the path: unresolved there, resolved elsewhere', async () => {
      const C = dir({ ...baseTree().entries, 'a.txt': f('a3') });
      const outcome = await merge(baseTree(), [A(), B(), C], { prefer: 'C' });
      assert.equal(outcome.fsHash, undefined);
      assert.deepEqual(outcome.conflicts, [conflict]);
      assert.deepEqual(outcome.resolved, [
        { path: Buffer.from('a.txt'), kind: 'content', sides: [{ id: 'A', state: fileState('a2') }, { id: 'C', state: fileState('a3') }], winner: 'C' },
      ]);
    });

    it('prefer an id that is no input, or no inputs at all: VALIDATION_FAILED', async () => {
      const base = await put(baseTree());
      const failed = (e: unknown): boolean => isFaasError(e) && e.code === 'VALIDATION_FAILED';
      await assert.rejects(mergeTrees(new TreeReader(store), base, [{ id: 'A', fsHash: base }], { prefer: 'Z' }), failed);
      await assert.rejects(mergeTrees(new TreeReader(store), base, [], 'ours'), failed);
    });
  });

  it('delete vs modify: delete_modify, for a file and for a whole directory', async () => {
    const { 'b.txt': _b, docs: _d, ...rest } = baseTree().entries as Record<string, FsEntry>;
    const A = dir(rest);
    const B = dir({ ...baseTree().entries, 'b.txt': f('b2'), docs: dir({ 'readme.md': f('readme'), 'more.md': f('more') }) });
    const outcome = await merge(baseTree(), [A, B]);
    assert.deepEqual(outcome.conflicts, [
      { path: Buffer.from('b.txt'), kind: 'delete_modify', sides: [{ id: 'A', state: 'deleted' }, { id: 'B', state: fileState('b2') }] },
      { path: Buffer.from('docs'), kind: 'delete_modify', sides: [{ id: 'A', state: 'deleted' }, { id: 'B', state: 'dir 0755' }] },
    ]);
    const ours = await merge(baseTree(), [A, B], 'ours');
    await assertMerged(ours, A);
    assert.deepEqual(ours.resolved.map((c) => [c.path.toString(), c.winner]), [['b.txt', 'A'], ['docs', 'A']]);
    await assertMerged(await merge(baseTree(), [A, B], 'theirs'), B);
  });

  it('type conflicts: a new file vs a new directory, a file replaced by a directory vs modified, a symlink vs a file', async () => {
    const A = dir({ ...baseTree().entries, 'new': f('file'), 'a.txt': dir({ inner: f('i') }), link: f('was a link') });
    const B = dir({ ...baseTree().entries, 'new': dir({ 'x': f('x') }), 'a.txt': f('a2'), link: symlink('b.txt') });
    const outcome = await merge(baseTree(), [A, B]);
    assert.deepEqual(outcome.conflicts, [
      { path: Buffer.from('a.txt'), kind: 'type', sides: [{ id: 'A', state: 'dir 0755' }, { id: 'B', state: fileState('a2') }] },
      { path: Buffer.from('link'), kind: 'type', sides: [{ id: 'A', state: fileState('was a link') }, { id: 'B', state: 'symlink -> b.txt' }] },
      { path: Buffer.from('new'), kind: 'type', sides: [{ id: 'A', state: fileState('file') }, { id: 'B', state: 'dir 0755' }] },
    ]);
    await assertMerged(await merge(baseTree(), [A, B], { prefer: 'B' }), B);
  });

  it('symlink target changed differently: a content conflict', async () => {
    const A = dir({ ...baseTree().entries, link: symlink('b.txt') });
    const B = dir({ ...baseTree().entries, link: symlink('c.txt') });
    const outcome = await merge(baseTree(), [A, B]);
    assert.deepEqual(outcome.conflicts, [{ path: Buffer.from('link'), kind: 'content', sides: [{ id: 'A', state: 'symlink -> b.txt' }, { id: 'B', state: 'symlink -> c.txt' }] }]);
  });

  it('mode conflicts: a file chmod-ed differently; chmod on one side and an edit on the other is a (whole-state) conflict', async () => {
    const A = dir({ ...baseTree().entries, 'a.txt': f('a', 0o600), 'b.txt': f('b', 0o755) });
    const B = dir({ ...baseTree().entries, 'a.txt': f('a', 0o640), 'b.txt': f('b2') });
    const outcome = await merge(baseTree(), [A, B]);
    assert.deepEqual(outcome.conflicts, [
      { path: Buffer.from('a.txt'), kind: 'mode', sides: [{ id: 'A', state: fileState('a', '0600') }, { id: 'B', state: fileState('a', '0640') }] },
      { path: Buffer.from('b.txt'), kind: 'content', sides: [{ id: 'A', state: fileState('b', '0755') }, { id: 'B', state: fileState('b2') }] },
    ]);
    await assertMerged(await merge(baseTree(), [A, B], 'theirs'), B);
  });

  it('a directory mode conflict is its own conflict, and its entries still merge', async () => {
    const A = dir({ ...baseTree().entries, docs: dir({ 'readme.md': f('readme'), 'a.md': f('a') }, 0o700) });
    const B = dir({ ...baseTree().entries, docs: dir({ 'readme.md': f('readme'), 'b.md': f('b') }, 0o750) });
    const outcome = await merge(baseTree(), [A, B]);
    assert.deepEqual(outcome.conflicts, [{ path: Buffer.from('docs'), kind: 'mode', sides: [{ id: 'A', state: 'dir 0700' }, { id: 'B', state: 'dir 0750' }] }]);
    const ours = await merge(baseTree(), [A, B], 'ours');
    await assertMerged(ours, dir({ ...baseTree().entries, docs: dir({ 'readme.md': f('readme'), 'a.md': f('a'), 'b.md': f('b') }, 0o700) }));
    // One side changing the mode and the other the content: both kept, no conflict.
    const C = dir({ ...baseTree().entries, docs: dir({ 'readme.md': f('readme') }, 0o700) });
    const D = dir({ ...baseTree().entries, docs: dir({ 'readme.md': f('readme2') }) });
    await assertMerged(await merge(baseTree(), [C, D]), dir({ ...baseTree().entries, docs: dir({ 'readme.md': f('readme2') }, 0o700) }));
  });

  it('conflicts deep in the tree, beside changes that merge, with the full path', async () => {
    const deep = (leaf: FsEntry, extra: Record<string, FsEntry> = {}): DirEntry =>
      dir({ ...baseTree().entries, a: dir({ b: dir({ c: dir({ d: dir({ 'leaf.txt': leaf, ...extra }) }), 'side.txt': f('side') }) }) });
    const base = deep(f('leaf'));
    const A = deep(f('leaf A'), { 'a-only': f('a') });
    const B = deep(f('leaf B'), { 'b-only': f('b') });
    const failed = await merge(base, [A, B]);
    assert.deepEqual(paths(failed.conflicts), ['a/b/c/d/leaf.txt']);
    assert.deepEqual(failed.conflicts[0]!.sides, [{ id: 'A', state: fileState('leaf A') }, { id: 'B', state: fileState('leaf B') }]);
    const theirs = await merge(base, [A, B], 'theirs');
    assert.deepEqual(paths(theirs.resolved), ['a/b/c/d/leaf.txt']);
    await assertMerged(theirs, deep(f('leaf B'), { 'a-only': f('a'), 'b-only': f('b') }));
  });

  it('three inputs: a conflict lists every input that changed the path, ours/theirs take the first/last', async () => {
    const A = dir({ ...baseTree().entries, 'b.txt': f('one'), 'a.txt': f('a from A') });
    const B = dir({ ...baseTree().entries, 'b.txt': f('two') });
    const C = dir({ ...baseTree().entries, 'b.txt': f('one'), 'c.txt': f('c from C') });
    const outcome = await merge(baseTree(), [A, B, C]);
    assert.deepEqual(outcome.conflicts, [
      { path: Buffer.from('b.txt'), kind: 'content', sides: [{ id: 'A', state: fileState('one') }, { id: 'B', state: fileState('two') }, { id: 'C', state: fileState('one') }] },
    ]);
    const expected = (b: string): DirEntry => dir({ ...baseTree().entries, 'a.txt': f('a from A'), 'c.txt': f('c from C'), 'b.txt': f(b) });
    await assertMerged(await merge(baseTree(), [A, B, C], 'ours'), expected('one'));
    await assertMerged(await merge(baseTree(), [A, B, C], 'theirs'), expected('one'));
    await assertMerged(await merge(baseTree(), [A, B, C], { prefer: 'B' }), expected('two'));
    // An input that did not change the path is ignored, wherever it is in the order.
    const unchanged = dir({ ...baseTree().entries, 'c.txt': f('c from C') });
    const four = await merge(baseTree(), [unchanged, A, B, unchanged], 'ours');
    assert.deepEqual(four.resolved.map((c) => [c.sides.map((s) => s.id), c.winner]), [[['B', 'C'], 'B']]);
  });

  it('reads only the nodes of directories changed differently, never an unchanged subtree', async () => {
    // 100 directories of 3 levels and 5 files each.
    const big = (changes: Record<string, string> = {}): DirEntry => {
      const entries: Record<string, FsEntry> = {};
      for (let i = 0; i < 100; i++) {
        const name = `d${String(i).padStart(2, '0')}`;
        const files = (where: string): Record<string, FsEntry> =>
          Object.fromEntries(Array.from({ length: 5 }, (_, k) => [`f${k}`, f(changes[`${where}/f${k}`] ?? `${where}/f${k}`)]));
        entries[name] = dir({ ...files(name), sub: dir({ ...files(`${name}/sub`), deeper: dir(files(`${name}/sub/deeper`)) }) });
      }
      return dir(entries);
    };
    const baseHash = await put(big());
    const aHash = await put(big({ 'd03/sub/deeper/f1': 'A' }));
    const bHash = await put(big({ 'd42/sub/f2': 'B' }));
    const reader = new CountingReader(store);
    const outcome = await mergeTrees(reader, baseHash, [{ id: 'A', fsHash: aHash }, { id: 'B', fsHash: bHash }], 'fail');
    assert.equal(outcome.fsHash, hasher.hashTree(big({ 'd03/sub/deeper/f1': 'A', 'd42/sub/f2': 'B' })));
    // Only the three roots: d03 and d42 were each changed by one input and taken whole.
    assert.deepEqual(reader.calls.sort(), [aHash, baseHash, bHash].sort());
    assert.equal(outcome.nodes.length, 1);

    // Both change files of d07/sub: the roots, d07 and d07/sub of each (d07/sub/deeper untouched).
    const cHash = await put(big({ 'd07/sub/f0': 'C', 'd50/f1': 'C' }));
    const dHash = await put(big({ 'd07/sub/f4': 'D' }));
    const reader2 = new CountingReader(store);
    const both = await mergeTrees(reader2, baseHash, [{ id: 'C', fsHash: cHash }, { id: 'D', fsHash: dHash }], 'fail');
    const expected = big({ 'd07/sub/f0': 'C', 'd07/sub/f4': 'D', 'd50/f1': 'C' });
    assert.equal(both.fsHash, hasher.hashTree(expected));
    assert.equal(reader2.calls.length, 9);
    assert.equal(new Set(reader2.calls).size, 9);
    const d07 = (t: DirEntry): DirEntry => (t.entries as Record<string, FsEntry>)['d07'] as DirEntry;
    const want = [big(), big({ 'd07/sub/f0': 'C', 'd50/f1': 'C' }), big({ 'd07/sub/f4': 'D' })].flatMap((t) => [
      hasher.hashTree(t),
      hasher.hashTree(d07(t)),
      hasher.hashTree((d07(t).entries as Record<string, FsEntry>)['sub'] as DirEntry),
    ]);
    assert.deepEqual(reader2.calls.sort(), want.sort());
    // New nodes: root, d07, d07/sub.
    assert.equal(both.nodes.length, 3);
    await assertMerged(both, expected);
  });

  it('non-UTF-8 names merge and are reported as raw bytes', async () => {
    const odd = Buffer.from([0x66, 0xff, 0x6f]);
    const tree = (content: string): DirEntry => dir(new Map<EntryName, FsEntry>([[odd, f(content)], ['keep', f('k')]]));
    const outcome = await merge(tree('base'), [tree('one'), tree('two')]);
    assert.deepEqual(outcome.conflicts.map((c) => c.path), [odd]);
  });
});

describe('storeMergedTree', () => {
  it('writes only the new nodes and pins what they reuse; refuses an outcome with conflicts', async () => {
    const A = dir({ ...baseTree().entries, 'a.txt': f('a2') });
    const B = dir({ ...baseTree().entries, 'c.txt': f('c2') });
    const outcome = await merge(baseTree(), [A, B]);
    assert.equal(outcome.nodes.length, 1);
    const lease = store.lease();
    const batch = store.batch({ lease });
    const stored = await storeMergedTree(outcome, batch, lease);
    await batch.commit();
    assert.equal(stored.nodeCount, 1);
    assert.ok(stored.nodeBytes > 0);
    const pinned = new Set(lease.hashes);
    // The root node, and what the root refers to: src and docs subtrees, the files.
    assert.ok(pinned.has(outcome.fsHash!));
    const src = hasher.hashTree((baseTree().entries as Record<string, FsEntry>)['src'] as DirEntry);
    assert.ok(pinned.has(src));
    assert.ok(pinned.has(hasher.hashFile('a2')));
    lease.release();
    // Storing it again creates nothing.
    const lease2 = store.lease();
    const batch2 = store.batch({ lease: lease2 });
    assert.equal((await storeMergedTree(outcome, batch2, lease2)).nodeBytes, 0);
    await batch2.commit();
    lease2.release();

    const conflicted = await merge(baseTree(), [dir({ ...baseTree().entries, 'a.txt': f('1') }), dir({ ...baseTree().entries, 'a.txt': f('2') })]);
    const lease3 = store.lease();
    await assert.rejects(storeMergedTree(conflicted, store.batch({ lease: lease3 }), lease3), (e: unknown) => isFaasError(e) && e.code === 'MERGE_CONFLICT');
    lease3.release();
  });
});

describe('findCommonAncestor', () => {
  /** A DAG given as child -> parents. */
  const graph = (edges: Record<string, string[]>) => {
    const asked: string[] = [];
    return {
      asked,
      parentsOf: async (id: string): Promise<string[]> => {
        asked.push(id);
        return edges[id] ?? [];
      },
    };
  };

  it('on a chain: the older input (an input can be the ancestor), and a snapshot with itself', async () => {
    const g = graph({ c: ['b'], b: ['a'], a: [] });
    assert.equal(await findCommonAncestor(g.parentsOf, ['c', 'b']), 'b');
    assert.equal(await findCommonAncestor(g.parentsOf, ['a', 'c']), 'a');
    assert.equal(await findCommonAncestor(g.parentsOf, ['c', 'c']), 'c');
    assert.equal(await findCommonAncestor(g.parentsOf, ['c']), 'c');
    assert.equal(await findCommonAncestor(g.parentsOf, []), undefined);
  });

  it('on a fork: the fork point, for two and three branches of different lengths', async () => {
    // root - base - x1 - x2
    //            \- y1
    //            \- z1 - z2 - z3
    const g = graph({ x2: ['x1'], x1: ['base'], y1: ['base'], z3: ['z2'], z2: ['z1'], z1: ['base'], base: ['root'], root: [] });
    assert.equal(await findCommonAncestor(g.parentsOf, ['x2', 'y1']), 'base');
    // Stops at the answer: root's parents are never asked.
    assert.ok(!g.asked.includes('root'));
    assert.equal(await findCommonAncestor(g.parentsOf, ['x2', 'y1', 'z3']), 'base');
  });

  it('on a DAG with a merge node: the nearest common ancestor through either parent', async () => {
    //  r - a - b ------- m (merge of b and c) - n
    //       \- c -----/
    //           \- d
    const g = graph({ n: ['m'], m: ['b', 'c'], b: ['a'], c: ['a'], d: ['c'], a: ['r'], r: [] });
    // n reaches c through the merge (distance 2); d's parent is c.
    assert.equal(await findCommonAncestor(g.parentsOf, ['n', 'd']), 'c');
    assert.equal(await findCommonAncestor(g.parentsOf, ['m', 'b']), 'b');
    assert.equal(await findCommonAncestor(g.parentsOf, ['b', 'd']), 'a');
    // Each snapshot's parents are asked at most once.
    const g2 = graph({ n: ['m'], m: ['b', 'c'], b: ['a'], c: ['a'], d: ['c'], a: ['r'], r: [] });
    await findCommonAncestor(g2.parentsOf, ['n', 'd', 'b']);
    assert.equal(new Set(g2.asked).size, g2.asked.length);
  });

  it('criss-cross: two equally near candidates, the smaller sum and then the smaller id win', async () => {
    // x and y both have parents p and q (criss-cross merge): p and q are equally good.
    const g = graph({ x: ['q', 'p'], y: ['p', 'q'], p: ['r'], q: ['r'], r: [] });
    assert.equal(await findCommonAncestor(g.parentsOf, ['x', 'y']), 'p');
    // Reached from both in the first generation: p, whatever is further.
    const h = graph({ u: ['p', 'k'], k: ['q'], v: ['p', 'q'], p: [], q: [] });
    assert.equal(await findCommonAncestor(h.parentsOf, ['u', 'v']), 'p');
    // Max distance ties (2), sums differ: z (2+1) beats b (2+2) although b sorts first.
    const s = graph({ u: ['u1'], u1: ['z', 'b'], v: ['z', 'v1'], v1: ['b'], z: [], b: [] });
    assert.equal(await findCommonAncestor(s.parentsOf, ['u', 'v']), 'z');
  });

  it('on unrelated roots: undefined', async () => {
    const g = graph({ a2: ['a1'], a1: [], b2: ['b1'], b1: [] });
    assert.equal(await findCommonAncestor(g.parentsOf, ['a2', 'b2']), undefined);
    assert.equal(await findCommonAncestor(g.parentsOf, ['a2', 'a1', 'b1']), undefined);
  });
});
