import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { isFaasError } from '../errors/index.ts';
import { doc, parseVectors } from './doc-vectors.ts';
import { SnapshotHasher, decodeTreeNode, dir, encodeTreeNode, file, symlink, type DirEntry, type EntryName, type FsEntry, type TreeNodeEntry } from './index.ts';

const hasher = new SnapshotHasher();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const h = (s: string): string => hasher.hashFile(s);

/** The doc vectors' trees and expected fs hashes. */
function vectorTrees(): { title: string; root: DirEntry; fs: string }[] {
  return parseVectors().map((v) => ({ title: v.title, root: v.root, fs: v.expected.fs! }));
}

interface Visit {
  hash: string;
  encoding: Buffer;
  path: string;
}
const visitAll = (root: DirEntry): { fs: string; visits: Visit[] } => {
  const visits: Visit[] = [];
  const fs = hasher.hashTree(root, { onNode: (hash, encoding, path) => visits.push({ hash, encoding, path }) });
  return { fs, visits };
};

/** The number of directories in a tree, counting the root and every occurrence. */
const countDirs = (d: DirEntry): number =>
  1 + [...(d.entries instanceof Map ? d.entries.values() : Object.values(d.entries))].reduce((n, e) => n + (e.type === 'dir' ? countDirs(e) : 0), 0);

test('the doc vectors parse', () => {
  assert.ok(vectorTrees().length >= 6);
});

for (const v of vectorTrees()) {
  test(`doc vector ${v.title}: the root node hashes to the fs hash, and every node is visited once`, () => {
    const { fs, visits } = visitAll(v.root);
    assert.equal(fs, v.fs);
    assert.equal(visits.length, countDirs(v.root));
    assert.equal(new Set(visits.map((x) => x.path)).size, visits.length, 'a directory was visited twice');
    const root = visits.at(-1)!;
    assert.equal(root.path, '');
    assert.equal(root.hash, fs);
    for (const x of visits) {
      assert.equal(sha(x.encoding), x.hash, x.path);
      // Re-encoding the decoded node gives the same bytes, and the node is what the hasher saw.
      assert.deepEqual(encodeTreeNode(decodeTreeNode(x.encoding)), x.encoding, x.path);
    }
  });
}

test('the worked example: the root node of vector 2 is the documented byte listing', () => {
  const example = /## Worked example[\s\S]*?```\n([\s\S]*?)\n\nSHA-256 of the above/.exec(doc)![1]!;
  const hex = example.split('\n').map((l) => l.split(/\s+/)[0]).join('');
  const { visits } = visitAll(dir({ 'hello.txt': file(h('hello\n'), 6, 0o644) }));
  assert.equal(visits.length, 1);
  assert.equal(visits[0]!.encoding.toString('hex'), hex);
  assert.deepEqual(decodeTreeNode(Buffer.from(hex, 'hex')), [{ name: Buffer.from('hello.txt'), type: 'file', mode: 0o644, size: 6, hash: h('hello\n') }]);
});

test('onNode: children before parents, root last, every dir once, dir entries point at visited nodes', () => {
  const root = dir({
    b: dir({ x: dir({}, 0o700), y: file(h('y'), 1, 0o644) }, 0o755),
    a: dir({ deep: dir({ deeper: dir({ f: file(h('f'), 1, 0o600) }) }) }),
    l: symlink('b/y'),
    e: dir({}, 0o755),
  });
  const { fs, visits } = visitAll(root);
  assert.deepEqual(visits.map((v) => v.path), ['a/deep/deeper', 'a/deep', 'a', 'b/x', 'b', 'e', '']);
  assert.equal(visits.at(-1)!.hash, fs);
  const seen = new Map<string, Buffer>();
  for (const v of visits) {
    assert.equal(sha(v.encoding), v.hash);
    for (const e of decodeTreeNode(v.encoding)) if (e.type === 'dir') assert.ok(seen.has(e.hash!), `${v.path}: child ${e.name} not visited before its parent`);
    seen.set(v.hash, v.encoding);
  }
  // Empty dirs x and e share one node: the same hash, so one blob in a store.
  assert.equal(visits[3]!.hash, visits[5]!.hash);
  assert.equal(visits[3]!.hash, sha(Buffer.from('faas/tree/v1\0\0\0\0\0', 'latin1')));
  // Without a visitor the hash is the same.
  assert.equal(hasher.hashTree(root), fs);
  assert.equal(hasher.hashTree(root, {}), fs);
});

test('the whole tree is recoverable from the fs hash and the stored nodes', () => {
  const root = dir(
    new Map<EntryName, FsEntry>([
      [Buffer.from([0xff, 0x00 + 0x41]), file(h('bin'), 3, 0o4755)],
      ['src', dir({ 'main.ts': file(h('main'), 4, 0o644), lib: dir({ 'a.ts': file(h('a'), 1, 0o644) }, 0o750) })],
      ['link', symlink(Buffer.from([0x2e, 0x2e, 0x2f, 0xfe]))],
    ]),
  );
  const store = new Map<string, Buffer>();
  const fs = hasher.hashTree(root, { onNode: (hash, encoding) => store.set(hash, encoding) });
  const rebuild = (hash: string): DirEntry => {
    const bytes = store.get(hash);
    assert.ok(bytes, `node ${hash} missing`);
    assert.equal(sha(bytes), hash);
    const entries = new Map<EntryName, FsEntry>();
    for (const e of decodeTreeNode(bytes)) {
      if (e.type === 'file') entries.set(e.name, file(e.hash!, e.size, e.mode));
      else if (e.type === 'dir') entries.set(e.name, dir(rebuild(e.hash!).entries, e.mode));
      else entries.set(e.name, symlink(e.target!));
    }
    return dir(entries);
  };
  assert.equal(hasher.hashTree(rebuild(fs)), fs);
});

test('round trips, including non-UTF-8 names and targets and every type', () => {
  const x: TreeNodeEntry[] = [
    { name: Buffer.from('zeta'), type: 'file', mode: 0o644, size: 12, hash: h('z') },
    { name: Buffer.from([0xff, 0xfe, 0x80]), type: 'file', mode: 0o7777, size: Number.MAX_SAFE_INTEGER, hash: h('big') },
    { name: Buffer.from('B'), type: 'dir', mode: 0o755, size: 0, hash: h('sub') },
    { name: Buffer.from('a'), type: 'symlink', mode: 0o777, size: 3, target: Buffer.from([0xc3, 0x28, 0xa0]) },
    { name: Buffer.from('café'), type: 'file', mode: 0, size: 0, hash: h('') },
    { name: Buffer.from('new\nline'), type: 'symlink', mode: 0o777, size: 1, target: Buffer.from('/') },
  ];
  const sorted = [...x].sort((p, q) => Buffer.compare(p.name, q.name));
  const bytes = encodeTreeNode(x);
  assert.deepEqual(decodeTreeNode(bytes), sorted);
  assert.deepEqual(encodeTreeNode(decodeTreeNode(bytes)), bytes);
  assert.deepEqual(encodeTreeNode(sorted), bytes, 'input order does not matter');
  // The encoding is what the hasher hashes for the same directory.
  const asTree = dir(
    new Map<EntryName, FsEntry>(x.map((e): [EntryName, FsEntry] => [e.name, e.type === 'symlink' ? symlink(e.target!) : e.type === 'file' ? file(e.hash!, e.size, e.mode) : dir({}, e.mode)])),
  );
  const subHash = hasher.hashTree(dir());
  const withSub = encodeTreeNode(x.map((e) => (e.type === 'dir' ? { ...e, hash: subHash } : e)));
  assert.equal(sha(withSub), hasher.hashTree(asTree));
  // Empty directory, as the doc spells it.
  assert.ok(doc.includes(`is the node \`${encodeTreeNode([]).toString('hex')}\` (prefix, \`n = 0\`)`));
  assert.deepEqual(decodeTreeNode(encodeTreeNode([])), []);
  assert.equal(sha(encodeTreeNode([])), hasher.hashTree(dir()));
  // A Uint8Array is accepted as input, and decoded buffers are copies.
  const copy = new Uint8Array(bytes);
  const decoded = decodeTreeNode(copy);
  copy.fill(0);
  assert.deepEqual(decoded, sorted);
});

test('encodeTreeNode normalises a symlink mode to 0o777', () => {
  const bytes = encodeTreeNode([{ name: Buffer.from('l'), type: 'symlink', mode: 0o644, size: 1, target: Buffer.from('x') }]);
  assert.equal(sha(bytes), hasher.hashTree(dir({ l: symlink('x') })));
  assert.equal(decodeTreeNode(bytes)[0]!.mode, 0o777);
});

const rejects = (fn: () => unknown, pattern: RegExp): void => {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isFaasError(e), `not a FaasError: ${String(e)}`);
    assert.equal(e.code, 'VALIDATION_FAILED');
    assert.match(e.message, pattern);
    return true;
  });
};

test('encodeTreeNode validates like the hasher', () => {
  const f = (name: string | Buffer, over: Partial<TreeNodeEntry> = {}): TreeNodeEntry => ({ name: Buffer.from(name), type: 'file', mode: 0o644, size: 1, hash: h('x'), ...over });
  rejects(() => encodeTreeNode([f('')]), /must not be empty/);
  rejects(() => encodeTreeNode([f('a/b')]), /"a\/b" must not contain '\/'/);
  rejects(() => encodeTreeNode([f('a\0b')]), /must not contain NUL/);
  rejects(() => encodeTreeNode([f('.')]), /must not be '\.' or '\.\.'/);
  rejects(() => encodeTreeNode([f('..')]), /must not be '\.' or '\.\.'/);
  rejects(() => encodeTreeNode([f('a'), f('b'), f('a')]), /duplicate entry name "a"/);
  rejects(() => encodeTreeNode([f('f', { mode: 0o10000 })]), /mode of "f" must be an integer in 0\.\.0o7777/);
  rejects(() => encodeTreeNode([f('f', { mode: -1 })]), /mode of "f"/);
  rejects(() => encodeTreeNode([f('f', { size: -1 })]), /size of "f" must be a non-negative safe integer/);
  rejects(() => encodeTreeNode([f('f', { size: 2 ** 53 })]), /size of "f"/);
  rejects(() => encodeTreeNode([f('f', { hash: h('x').toUpperCase() })]), /content hash of "f" must be 64 lowercase hex/);
  rejects(() => encodeTreeNode([f('f', { hash: undefined })]), /content hash of "f"/);
  rejects(() => encodeTreeNode([f('f', { target: Buffer.from('x') })]), /file entry "f" must not have a symlink target/);
  rejects(() => encodeTreeNode([f('d', { type: 'dir', size: 0, hash: 'abc' })]), /subtree hash of "d"/);
  rejects(() => encodeTreeNode([f('d', { type: 'dir', size: 5 })]), /size of dir entry "d" must be 0/);
  const l = (over: Partial<TreeNodeEntry>): TreeNodeEntry => ({ name: Buffer.from('l'), type: 'symlink', mode: 0o777, size: 1, target: Buffer.from('x'), ...over });
  rejects(() => encodeTreeNode([l({ target: Buffer.alloc(0), size: 0 })]), /symlink target of "l" must not be empty/);
  rejects(() => encodeTreeNode([l({ target: Buffer.from('a\0'), size: 2 })]), /symlink target of "l" must not contain NUL/);
  rejects(() => encodeTreeNode([l({ size: 2 })]), /size of symlink "l" must be its target length 1, got 2/);
  rejects(() => encodeTreeNode([l({ hash: h('x') })]), /symlink entry "l" must not have a hash/);
  rejects(() => encodeTreeNode([l({ mode: 0o10000 })]), /mode of "l"/);
  rejects(() => encodeTreeNode([l({ target: undefined })]), /symlink target of "l" must be a string or bytes/);
  rejects(() => encodeTreeNode([f('x', { type: 'fifo' as 'file' })]), /entry "x" has unknown type "fifo"/);
  rejects(() => encodeTreeNode([null as unknown as TreeNodeEntry]), /must be an object/);
  rejects(() => encodeTreeNode('nope' as unknown as TreeNodeEntry[]), /must be an array/);
});

test('hashTree rejects a non-function onNode', () => {
  rejects(() => hasher.hashTree(dir(), { onNode: 1 as unknown as () => void }), /onNode must be a function/);
});

// Hand-built node bytes, so decode can be fed malformed input the encoder never produces.
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const PREFIX = Buffer.from('faas/tree/v1\0', 'latin1');
const raw = (name: string | Buffer, tag: number, mode: number, size: number, payload: Buffer): Buffer => {
  const n = Buffer.from(name);
  return Buffer.concat([u32(n.length), n, Buffer.from([tag]), u32(mode), u64(size), payload]);
};
const rawFile = (name: string | Buffer, mode = 0o644, size = 1): Buffer => raw(name, 1, mode, size, Buffer.from(h('x'), 'hex'));
const rawLink = (name: string, target: string, mode = 0o777, size = Buffer.byteLength(target)): Buffer =>
  raw(name, 3, mode, size, Buffer.concat([u32(Buffer.byteLength(target)), Buffer.from(target)]));
const node = (...entries: Buffer[]): Buffer => Buffer.concat([PREFIX, u32(entries.length), ...entries]);

test('the hand-built bytes are what the encoder produces', () => {
  const bytes = node(rawFile('a'), raw('d', 2, 0o755, 0, Buffer.from(h('d'), 'hex')), rawLink('l', 'target'));
  assert.deepEqual(decodeTreeNode(bytes), [
    { name: Buffer.from('a'), type: 'file', mode: 0o644, size: 1, hash: h('x') },
    { name: Buffer.from('d'), type: 'dir', mode: 0o755, size: 0, hash: h('d') },
    { name: Buffer.from('l'), type: 'symlink', mode: 0o777, size: 6, target: Buffer.from('target') },
  ]);
  assert.deepEqual(encodeTreeNode(decodeTreeNode(bytes)), bytes);
});

test('decodeTreeNode rejects malformed nodes with a precise message', () => {
  const good = node(rawFile('a'), rawFile('b'));
  decodeTreeNode(good);
  rejects(() => decodeTreeNode(Buffer.alloc(0)), /tree node: truncated: the "faas\/tree\/v1\\0" prefix needs 13 bytes, 0 left/);
  rejects(() => decodeTreeNode(Buffer.concat([Buffer.from('faas/tree/v2\0'), u32(0)])), /does not start with the "faas\/tree\/v1\\0" prefix \(at byte 0\)/);
  rejects(() => decodeTreeNode(Buffer.concat([Buffer.from('faas/env/v1\0\0'), u32(0)])), /does not start with the/);
  rejects(() => decodeTreeNode(PREFIX), /truncated: the entry count needs 4 bytes, 0 left \(at byte 13\)/);
  for (let cut = PREFIX.length + 4 + 1; cut < good.length; cut += 7) rejects(() => decodeTreeNode(good.subarray(0, cut)), /truncated: .* of entry [12] of 2|entry count is 2 but only 1 entries are present/);
  rejects(() => decodeTreeNode(good.subarray(0, good.length - 1)), /truncated: the content hash of entry 2 of 2 \("b"\) needs 32 bytes, 31 left/);
  rejects(() => decodeTreeNode(Buffer.concat([good, Buffer.from([0])])), /1 trailing bytes after the last of 2 entries \(at byte 117\)/);
  rejects(() => decodeTreeNode(Buffer.concat([PREFIX, u32(0), Buffer.from('x')])), /1 trailing bytes after the last of 0 entries/);
  rejects(() => decodeTreeNode(Buffer.concat([PREFIX, u32(3), rawFile('a'), rawFile('b')])), /entry count is 3 but only 2 entries are present/);
  rejects(() => decodeTreeNode(Buffer.concat([PREFIX, u32(0xffffffff)])), /entry count is 4294967295 but only 0 entries are present/);
  rejects(() => decodeTreeNode(Buffer.concat([PREFIX, u32(1), u32(1000), Buffer.from('ab')])), /truncated: the name of entry 1 of 1 needs 1000 bytes, 2 left/);
  rejects(() => decodeTreeNode(node(rawFile('b'), rawFile('a'))), /name "a" of entry 2 of 2 is not after the previous name in byte order/);
  rejects(() => decodeTreeNode(node(rawFile('a'), rawFile('B'))), /name "B" of entry 2 of 2 is not after the previous name/);
  rejects(() => decodeTreeNode(node(rawFile('ab'), rawFile('a'))), /name "a" of entry 2 of 2 is not after/);
  rejects(() => decodeTreeNode(node(rawFile('a'), rawFile('a'))), /duplicate name "a" in entry 2 of 2/);
  rejects(() => decodeTreeNode(node(rawFile('a'), rawLink('a', 'x'))), /duplicate name "a"/);
  rejects(() => decodeTreeNode(node(rawFile('a/b'))), /name "a\/b" of entry 1 of 1 must not contain '\/'/);
  rejects(() => decodeTreeNode(node(rawFile('a\0'))), /name "a\\u0000" of entry 1 of 1 must not contain NUL/);
  rejects(() => decodeTreeNode(node(rawFile('.'))), /name "\." of entry 1 of 1 must not be '\.' or '\.\.'/);
  rejects(() => decodeTreeNode(node(rawFile('..'))), /name "\.\." of entry 1 of 1 must not be '\.' or '\.\.'/);
  decodeTreeNode(node(rawFile('...')));
  decodeTreeNode(node(rawFile('.a')));
  rejects(() => decodeTreeNode(node(rawFile(''))), /name "" of entry 1 of 1 must not be empty/);
  rejects(() => decodeTreeNode(node(rawFile('f', 0o10000))), /mode 0o10000 of entry 1 of 1 \("f"\) is above 0o7777/);
  rejects(() => decodeTreeNode(node(rawFile('f', 0o100644))), /mode 0o100644 of entry 1 of 1 \("f"\) is above 0o7777/);
  rejects(() => decodeTreeNode(node(raw('x', 0, 0o644, 1, Buffer.from(h('x'), 'hex')))), /unknown type tag 0x00 in entry 1 of 1 \("x"\)/);
  rejects(() => decodeTreeNode(node(raw('x', 4, 0o644, 1, Buffer.from(h('x'), 'hex')))), /unknown type tag 0x04/);
  rejects(() => decodeTreeNode(node(raw('x', 0xff, 0o644, 1, Buffer.from(h('x'), 'hex')))), /unknown type tag 0xff/);
  rejects(() => decodeTreeNode(node(rawLink('l', 'x', 0o755))), /symlink mode of entry 1 of 1 \("l"\) must be 0o777, got 0o755/);
  rejects(() => decodeTreeNode(node(rawLink('l', '', 0o777))), /symlink target of entry 1 of 1 \("l"\) is empty/);
  rejects(() => decodeTreeNode(node(rawLink('l', 'abc', 0o777, 2))), /target length 3 of symlink entry 1 of 1 \("l"\) differs from its size 2/);
  rejects(() => decodeTreeNode(node(rawLink('l', 'a\0'))), /symlink target of entry 1 of 1 \("l"\) contains NUL/);
  rejects(() => decodeTreeNode(node(rawLink('l', 'abc')).subarray(0, -1)), /truncated: the target of entry 1 of 1 \("l"\) needs 3 bytes, 2 left/);
  rejects(() => decodeTreeNode(node(raw('d', 2, 0o755, 1, Buffer.from(h('d'), 'hex')))), /size of dir entry 1 of 1 \("d"\) must be 0, got 1/);
  const tooBig = node(raw('f', 1, 0o644, 0, Buffer.from(h('x'), 'hex')));
  tooBig.writeUInt32BE(0x0020_0000, PREFIX.length + 4 + 4 + 1 + 1 + 4);
  rejects(() => decodeTreeNode(tooBig), /size of entry 1 of 1 \("f"\) is above 2\^53-1/);
  rejects(() => decodeTreeNode('faas' as unknown as Buffer), /input must be bytes/);
});

test('decode then encode is the identity on the nodes of a random tree', () => {
  let seed = 42;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const randomName = (): Buffer => {
    const b = Buffer.alloc(1 + rand(6));
    for (let i = 0; i < b.length; i++) {
      let c = 1 + rand(255);
      if (c === 0x2f) c = 0x30;
      b[i] = c;
    }
    return b[0] === 0x2e ? Buffer.concat([b, Buffer.from('x')]) : b;
  };
  const randomDir = (depth: number): DirEntry => {
    const entries = new Map<EntryName, FsEntry>();
    const n = rand(8);
    for (let i = 0; i < n; i++) {
      const kind = rand(depth > 0 ? 3 : 2);
      const e: FsEntry = kind === 0 ? file(h(String(rand(1000))), rand(1 << 20), rand(0o10000)) : kind === 1 ? symlink(randomName()) : dir(randomDir(depth - 1).entries, rand(0o10000));
      entries.set(randomName().toString('latin1'), e);
    }
    return dir(entries);
  };
  for (let round = 0; round < 20; round++) {
    const { fs, visits } = visitAll(randomDir(3));
    assert.equal(visits.at(-1)!.hash, fs);
    for (const v of visits) {
      assert.equal(sha(v.encoding), v.hash);
      assert.deepEqual(encodeTreeNode(decodeTreeNode(v.encoding)), v.encoding);
    }
  }
});
