import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { isFaasError } from '../errors/index.ts';
import { doc, parseVectors } from './doc-vectors.ts';
import { SnapshotHasher, dir, file, symlink, type DirEntry, type EntryName, type FsEntry } from './index.ts';

const hasher = new SnapshotHasher();
const MEM_A = '97f8ff96242099fc2c9fdba9698267f347371fd8b4f5fe06c92beb999ddd5661';
const MEM_B = '4e75506eeb0075a14aee7286bdf746cb85b117258d60661554d41bcc5c4d45e5';
const PARENT_A = '2fbf067e9c68d7aa61a5891ba0cfe87619f81b8540a1450bff5a5f0481218754';
const PARENT_B = '189793de2b346e3bb8869d0b80e5cb6f2743291c4aec0b329f4f57f08e87e9f3';

const vectors = parseVectors();

test('the doc has at least 6 test vectors, each with fs, env and snapshot hashes', () => {
  assert.ok(vectors.length >= 6, `found ${vectors.length}`);
  for (const v of vectors) assert.deepEqual(Object.keys(v.expected).sort(), ['env', 'fs', 'snapshot'], v.title);
});

for (const v of vectors) {
  test(`doc vector ${v.title}`, () => {
    const r = hasher.hashSnapshot(v.memory, v.root, v.env, v.parent);
    assert.equal(r.fsHash, v.expected.fs);
    assert.equal(r.envHash, v.expected.env);
    assert.equal(r.contentHash, v.expected.snapshot);
    assert.equal(r.memoryHash, v.memory);
    assert.equal(r.parentHash, v.parent);
    // Precomputed fs/env hashes give the same snapshot hash.
    assert.equal(hasher.hashSnapshot(v.memory, r.fsHash, r.envHash, v.parent).contentHash, v.expected.snapshot);
  });
}

test('the worked example in the doc matches the implementation', () => {
  const hello = hasher.hashFile('hello\n');
  assert.ok(doc.includes(`${hello}  SHA-256("hello\\n")`));
  const fs = hasher.hashTree(dir({ 'hello.txt': file(hello, 6, 0o644) }));
  assert.ok(doc.includes(`SHA-256 of the above = fs hash ${fs}`));
});

// A small tree built from entry specs, in the given order.
type Spec = [string, FsEntry];
const h = (s: string): string => hasher.hashFile(s);
const sample = (): Spec[] => [
  ['README', file(h('readme'), 6, 0o644)],
  ['src', dir(new Map<EntryName, FsEntry>([['a.ts', file(h('a'), 1, 0o644)], ['b.ts', file(h('b'), 1, 0o600)]]), 0o755)],
  ['link', symlink('src/a.ts')],
  ['empty', dir({}, 0o700)],
];
const tree = (specs: Spec[]): DirEntry => dir(new Map<EntryName, FsEntry>(specs));
const base = hasher.hashSnapshot(null, tree(sample()), { A: '1', B: '2' }, null).contentHash;
const snap = (specs: Spec[], env: Record<string, string> = { A: '1', B: '2' }, memory: string | null = null, parent: string | null = null): string =>
  hasher.hashSnapshot(memory, tree(specs), env, parent).contentHash;

test('insertion order does not matter: Map, reversed Map and record give one hash', () => {
  const forward = hasher.hashTree(tree(sample()));
  assert.equal(hasher.hashTree(tree(sample().reverse())), forward);
  assert.equal(hasher.hashTree(dir(Object.fromEntries(sample().reverse()))), forward);
  assert.equal(snap(sample().reverse(), { B: '2', A: '1' }), base);
});

test('a string name and a Buffer name with the same bytes are the same name', () => {
  const specs = sample();
  const asBytes = dir(new Map<EntryName, FsEntry>(specs.map(([n, e]) => [Buffer.from(n), e])));
  assert.equal(hasher.hashTree(asBytes), hasher.hashTree(tree(specs)));
  assert.equal(hasher.hashTree(dir({ l: symlink(Buffer.from('x')) })), hasher.hashTree(dir({ l: symlink('x') })));
  assert.equal(hasher.hashTree(dir(new Map([[new Uint8Array([0x61]), file(h(''), 0, 0o644)]]))), hasher.hashTree(dir({ a: file(h(''), 0, 0o644) })));
});

test('the root directory mode is not part of the filesystem hash', () => {
  assert.equal(hasher.hashTree(dir(new Map(sample()), 0o700)), hasher.hashTree(dir(new Map(sample()), 0o755)));
});

test('every content change changes the snapshot hash', () => {
  const changed = (i: number, e: FsEntry): Spec[] => sample().map((s, j) => (j === i ? [s[0], e] : s));
  const variants: Record<string, string> = {
    'one content byte': snap(changed(0, file(h('readmf'), 6, 0o644))),
    'one mode bit': snap(changed(0, file(h('readme'), 6, 0o645))),
    'a dir mode bit': snap(changed(3, dir({}, 0o701))),
    'the size': snap(changed(0, file(h('readme'), 7, 0o644))),
    'a symlink target': snap(changed(2, symlink('src/b.ts'))),
    'a file becomes a symlink': snap(changed(0, symlink('readme'))),
    'an entry name': snap(sample().map(([n, e]) => [n === 'README' ? 'README.md' : n, e])),
    'an added empty dir': snap([...sample(), ['more', dir({}, 0o755)]]),
    'a removed entry': snap(sample().slice(1)),
    'an env var name': snap(sample(), { A: '1', C: '2' }),
    'an env var value': snap(sample(), { A: '1', B: '3' }),
    'an added env var': snap(sample(), { A: '1', B: '2', C: '' }),
    'env value moved into name': snap(sample(), { A: '1', B2: '' }),
    'memory present': snap(sample(), undefined, MEM_A),
    'another memory': snap(sample(), undefined, MEM_B),
    'parent present': snap(sample(), undefined, null, PARENT_A),
    'another parent': snap(sample(), undefined, null, PARENT_B),
    'memory and parent swapped': snap(sample(), undefined, PARENT_A, MEM_A),
    'memory as parent': snap(sample(), undefined, null, MEM_A),
  };
  for (const [what, hash] of Object.entries(variants)) assert.notEqual(hash, base, `${what} did not change the hash`);
  assert.equal(new Set(Object.values(variants)).size, Object.keys(variants).length, 'two different changes gave the same hash');
});

test('a symlink mode is ignored', () => {
  assert.equal(hasher.hashTree(dir({ l: { type: 'symlink', mode: 0o755, target: 'x' } })), hasher.hashTree(dir({ l: symlink('x') })));
});

test('the same subtree under a different name or mode is a different tree', () => {
  const sub = dir({ f: file(h('x'), 1, 0o644) }, 0o755);
  assert.notEqual(hasher.hashTree(dir({ a: sub })), hasher.hashTree(dir({ b: sub })));
  assert.notEqual(hasher.hashTree(dir({ a: sub })), hasher.hashTree(dir({ a: { ...sub, mode: 0o750 } })));
  // The same object reachable twice (not a cycle) is fine.
  assert.match(hasher.hashTree(dir({ a: sub, b: sub })), /^[0-9a-f]{64}$/);
});

test('entries sort by raw bytes, not locale or UTF-16', () => {
  const names = ['a', 'B', 'é', 'z', '\u{1F600}', '\uFFFD', 'ab', 'A'];
  const entries = names.map((n): Spec => [n, file(h(n), Buffer.byteLength(n), 0o644)]);
  const byBytes = [...entries].sort((x, y) => Buffer.compare(Buffer.from(x[0]), Buffer.from(y[0])));
  assert.deepEqual(byBytes.map((e) => e[0]), ['A', 'B', 'a', 'ab', 'z', 'é', '\uFFFD', '\u{1F600}']);
  // UTF-16 order would put U+FFFD after the surrogate pair of U+1F600; byte order puts it before.
  assert.ok('\uFFFD' > '\u{1F600}');
  assert.equal(hasher.hashTree(tree(entries)), hasher.hashTree(tree(byBytes)));
  // Against a hand-built encoding: 'B' (0x42) before 'a' (0x61) before 'é' (0xC3 0xA9).
  const f = (name: string, content: string): Buffer => {
    const n = Buffer.from(name);
    const head = Buffer.alloc(4 + n.length + 13);
    head.writeUInt32BE(n.length);
    n.copy(head, 4);
    head.writeUInt8(1, 4 + n.length);
    head.writeUInt32BE(0o644, 5 + n.length);
    head.writeBigUInt64BE(BigInt(Buffer.byteLength(content)), 9 + n.length);
    return Buffer.concat([head, Buffer.from(h(content), 'hex')]);
  };
  const expected = createHash('sha256')
    .update(Buffer.concat([Buffer.from('faas/tree/v1\0'), Buffer.from([0, 0, 0, 3]), f('B', 'x'), f('a', 'y'), f('é', 'z')]))
    .digest('hex');
  assert.equal(hasher.hashTree(dir({ 'é': file(h('z'), 1, 0o644), a: file(h('y'), 1, 0o644), B: file(h('x'), 1, 0o644) })), expected);
});

test('names need not be UTF-8', () => {
  const bad = Buffer.from([0xff, 0xfe]);
  const a = hasher.hashTree(dir(new Map([[bad, file(h(''), 0, 0o644)]])));
  const b = hasher.hashTree(dir({ '\uFFFD\uFFFD': file(h(''), 0, 0o644) }));
  assert.notEqual(a, b);
});

test('env sorts by UTF-8 bytes of names', () => {
  assert.equal(hasher.hashEnv({ a: '1', B: '2', 'é': '3' }), hasher.hashEnv({ 'é': '3', B: '2', a: '1' }));
  assert.notEqual(hasher.hashEnv({ A: '' }), hasher.hashEnv({}));
});

test('the streaming file hasher equals the one-shot hash', () => {
  const content = Buffer.alloc(1 << 20);
  for (let i = 0; i < content.length; i++) content[i] = (i * 31) & 0xff;
  const fh = hasher.createFileHasher();
  for (let at = 0; at < content.length; at += 65_537) fh.update(content.subarray(at, at + 65_537));
  assert.equal(fh.size, content.length);
  assert.equal(fh.digest(), hasher.hashFile(content));
  assert.equal(fh.digest(), hasher.hashFile(content), 'digest is idempotent');
  assert.throws(() => fh.update('more'), (e: unknown) => isFaasError(e) && e.code === 'VALIDATION_FAILED');
  assert.equal(hasher.createFileHasher().update('hel').update('lo\n').digest(), hasher.hashFile('hello\n'));
  assert.equal(hasher.hashFile(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

const validation = (fn: () => unknown, pattern: RegExp): void => {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isFaasError(e), `not a FaasError: ${String(e)}`);
    assert.equal(e.code, 'VALIDATION_FAILED');
    assert.match(e.message, pattern);
    return true;
  });
};

test('invalid input throws VALIDATION_FAILED with a precise message', () => {
  const ok = h('x');
  const one = (name: EntryName, entry: FsEntry = file(ok, 1, 0o644)): DirEntry => dir(new Map([[name, entry]]));
  validation(() => hasher.hashTree(one('')), /must not be empty/);
  validation(() => hasher.hashTree(one('a/b')), /"a\/b" must not contain '\/'/);
  validation(() => hasher.hashTree(one('a\0b')), /must not contain NUL/);
  validation(() => hasher.hashTree(one('.')), /must not be '\.' or '\.\.'/);
  validation(() => hasher.hashTree(one(Buffer.from('..'))), /must not be '\.' or '\.\.'/);
  validation(() => hasher.hashTree(one('\uD800')), /lone UTF-16 surrogate/);
  validation(() => hasher.hashTree(dir(new Map<EntryName, FsEntry>([['a', file(ok, 1, 0o644)], [Buffer.from('a'), file(ok, 1, 0o644)]]))), /duplicate entry name "a"/);
  validation(() => hasher.hashTree(one('f', file(ok, 1, 0o10000))), /mode of "f" must be an integer in 0\.\.0o7777/);
  validation(() => hasher.hashTree(one('f', file(ok, 1, -1))), /mode of "f"/);
  validation(() => hasher.hashTree(one('f', file(ok, 1, 1.5))), /mode of "f"/);
  validation(() => hasher.hashTree(one('d', dir({ f: file(ok, 1, 0o100644) }))), /mode of "d\/f"/);
  validation(() => hasher.hashTree(one('f', file(ok.toUpperCase(), 1, 0o644))), /content hash of "f" must be 64 lowercase hex/);
  validation(() => hasher.hashTree(one('f', file('abc', 1, 0o644))), /content hash of "f"/);
  validation(() => hasher.hashTree(one('f', file(ok, -1, 0o644))), /size of "f" must be a non-negative safe integer/);
  validation(() => hasher.hashTree(one('l', symlink(''))), /symlink target of "l" must not be empty/);
  validation(() => hasher.hashTree(one('l', symlink('a\0'))), /symlink target of "l" must not contain NUL/);
  validation(() => hasher.hashTree(one('l', { type: 'symlink', mode: 0o20000, target: 'x' })), /mode of "l"/);
  validation(() => hasher.hashTree(one('x', { type: 'fifo' } as unknown as FsEntry)), /entry "x" has unknown type "fifo"/);
  validation(() => hasher.hashTree(file(ok, 1, 0o644)), /root must be a dir entry/);
  const loop = { type: 'dir', mode: 0o755, entries: new Map<EntryName, FsEntry>() } as const;
  loop.entries.set('self', loop);
  validation(() => hasher.hashTree(dir(new Map([['loop', loop]]))), /directory "loop\/self" contains itself/);

  validation(() => hasher.hashEnv({ '': 'x' }), /env var name must not be empty/);
  validation(() => hasher.hashEnv({ 'A=B': 'x' }), /env var name "A=B" must not contain '=' or NUL/);
  validation(() => hasher.hashEnv({ A: 'x\0' }), /env var "A" value must not contain NUL/);
  validation(() => hasher.hashEnv({ A: 1 } as unknown as Record<string, string>), /env var "A" must have a string value/);

  validation(() => hasher.hashSnapshot('nope', dir(), {}, null), /memory hash must be 64 lowercase hex/);
  validation(() => hasher.hashSnapshot(null, dir(), {}, MEM_A.slice(1)), /parent hash must be 64 lowercase hex/);
  validation(() => hasher.hashSnapshot(null, 'x'.repeat(64), {}, null), /filesystem hash must be 64 lowercase hex/);
  validation(() => hasher.hashSnapshot(null, dir(), MEM_A.toUpperCase(), null), /env hash must be 64 lowercase hex/);
});

test('hashTree of a 10k-entry tree completes in under 500 ms', () => {
  const content = h('content');
  const top = new Map<EntryName, FsEntry>();
  for (let d = 0; d < 100; d++) {
    const children = new Map<EntryName, FsEntry>();
    for (let f = 0; f < 99; f++) children.set(`file-${(f * 7919) % 99}`, file(content, 7, 0o644));
    top.set(`dir-${(d * 37) % 100}`, dir(children, 0o755));
  }
  const start = performance.now();
  const hash = hasher.hashTree(dir(top));
  const elapsed = performance.now() - start;
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.ok(elapsed < 500, `took ${elapsed.toFixed(0)} ms`);
});
