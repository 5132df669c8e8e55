import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFaasError } from '../errors/index.ts';
import { checkRelativePath, comparePaths } from './paths.ts';
import { planSync } from './plan.ts';
import type { ManifestEntry } from './types.ts';

const T = '1700000000123456789';
const file = (path: string, extra: Partial<ManifestEntry> = {}): ManifestEntry => ({ path, type: 'file', mode: 0o644, size: 3, mtimeNs: T, ...extra });
const dir = (path: string, extra: Partial<ManifestEntry> = {}): ManifestEntry => ({ path, type: 'dir', mode: 0o755, size: 0, mtimeNs: T, ...extra });
const link = (path: string, target: string, extra: Partial<ManifestEntry> = {}): ManifestEntry => ({ path, type: 'symlink', mode: 0o777, size: target.length, mtimeNs: T, target, ...extra });
const brief = (steps: ReturnType<typeof planSync>['steps']): string[] => steps.map((s) => `${s.action} ${s.path} ${s.reason} ${s.bytes}`);

test('checkRelativePath refuses absolute, empty, dot, dot-dot, empty components, NUL, lone surrogates', () => {
  for (const bad of ['', '/etc/passwd', '.', '..', 'a/../b', 'a/./b', 'a//b', 'a/', '/', 'a\0b', '../x', 'x/..', 'bad\uD800']) {
    assert.throws(() => checkRelativePath(bad), (err: unknown) => isFaasError(err) && err.code === 'INVALID_PATH', JSON.stringify(bad));
  }
  for (const good of ['a', 'a/b/c', '..a', 'a..', '...', 'back\\slash', 'a\\..\\b', '.hidden/x', 'ünï/😀']) checkRelativePath(good);
});

test('comparePaths is UTF-8 byte order (directory before its content)', () => {
  const paths = ['a/b', 'a', 'a-b', 'a.b', '\uFFFD', '😀', 'z', 'a/b/c'];
  const byBytes = [...paths].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual([...paths].sort(comparePaths), byBytes);
});

test('plan: copy new, skip unchanged, update by size or mtime (quick check), mode as attribute', () => {
  const src = [dir('d'), file('d/new'), file('d/same'), file('d/size', { size: 4 }), file('d/time', { mtimeNs: '1700000001000000000' }), file('d/mode', { mode: 0o600 }), file('d/ns', { mtimeNs: '1700000000123456000' })];
  const dst = [dir('d'), file('d/same'), file('d/size'), file('d/time'), file('d/mode'), file('d/ns')];
  assert.deepEqual(brief(planSync(src, dst).steps), [
    'skip d unchanged 0',
    'update d/mode mode 0',
    'copy d/new new 3',
    'skip d/ns unchanged 0', // same microsecond
    'skip d/same unchanged 0',
    'update d/size size 4',
    'update d/time mtime 3',
  ]);
});

test('plan: with hashes on both sides content decides; equal content with another mtime is an attribute update', () => {
  const h1 = 'a'.repeat(64);
  const h2 = 'b'.repeat(64);
  const src = [file('edit', { hash: h2 }), file('touch', { hash: h1, mtimeNs: '1800000000000000000' }), file('same', { hash: h1 })];
  const dst = [file('edit', { hash: h1 }), file('touch', { hash: h1 }), file('same', { hash: h1 })];
  const steps = planSync(src, dst, { checksumOnly: true }).steps;
  assert.deepEqual(brief(steps), ['update edit content 3', 'skip same unchanged 0', 'update touch mtime 0']);
  assert.equal(steps[0]!.hash, h2);
});

test('plan: preserveTimestamps false transfers only when the source is newer and never updates for mtime alone', () => {
  const src = [file('newer', { mtimeNs: '1800000000000000000' }), file('older'), dir('d', { mtimeNs: '1' }), link('l', 'x', { mtimeNs: '5' })];
  const dst = [file('newer'), file('older', { mtimeNs: '1800000000000000000' }), dir('d'), link('l', 'x')];
  assert.deepEqual(brief(planSync(src, dst, { preserveTimestamps: false }).steps), ['skip d unchanged 0', 'skip l unchanged 0', 'update newer mtime 3', 'skip older unchanged 0']);
});

test('plan: type changes: dir <-> file is delete + copy in order, file <-> symlink an update', () => {
  const src = [file('a'), dir('b'), file('b/x'), link('c', 'a'), file('d'), link('e', 'new')];
  const dst = [dir('a'), file('a/inner'), dir('a/sub'), file('a/sub/deep'), file('b'), file('c'), link('d', 'a'), link('e', 'old')];
  assert.deepEqual(brief(planSync(src, dst).steps), [
    'delete b type 0',
    'delete a/sub/deep not_in_source 0',
    'delete a/sub not_in_source 0',
    'delete a/inner not_in_source 0',
    'delete a type 0',
    'copy a type 3',
    'copy b type 0',
    'copy b/x new 3',
    'update c type 0',
    'update d type 3',
    'update e target 0',
  ]);
});

test('plan: deleteUnmatched removes what the source lacks, children before their directory', () => {
  const src = [file('keep')];
  const dst = [dir('gone'), file('gone/a'), dir('gone/b'), file('gone/b/c'), file('keep'), file('zzz')];
  assert.deepEqual(brief(planSync(src, dst).steps), ['skip keep unchanged 0']);
  assert.deepEqual(brief(planSync(src, dst, { deleteUnmatched: true }).steps), [
    'delete zzz not_in_source 0',
    'delete gone/b/c not_in_source 0',
    'delete gone/b not_in_source 0',
    'delete gone/a not_in_source 0',
    'delete gone not_in_source 0',
    'skip keep unchanged 0',
  ]);
});

test('plan: deterministic whatever the input order', () => {
  const src = [dir('x'), file('x/1'), file('x/2', { size: 9 }), link('y', 't'), file('z')];
  const dst = [file('x/2'), dir('x'), file('q')];
  const a = planSync(src, dst, { deleteUnmatched: true });
  const b = planSync([...src].reverse(), [...dst].reverse(), { deleteUnmatched: true });
  assert.deepEqual(a, b);
});

test('plan: checksums decide over hashes and mtimes; a checksum on one side only falls back to the hash, then the quick check', () => {
  const c1 = '1'.repeat(32);
  const c2 = '2'.repeat(32);
  const h1 = 'a'.repeat(64);
  const h2 = 'b'.repeat(64);
  const later = '1800000000000000000';
  const src = [
    file('edit', { checksum: c2, hash: h1 }), // checksums differ, hashes (stale) agree: checksum wins
    file('same', { checksum: c1, hash: h2, mtimeNs: later }), // checksums agree: attribute update only
    file('half', { checksum: c1, hash: h2 }), // no checksum on the other side: the hashes decide
    file('none', { checksum: c1, mtimeNs: later }), // nothing to compare: quick check
  ];
  const dst = [file('edit', { checksum: c1, hash: h1 }), file('half', { hash: h1 }), file('none'), file('same', { checksum: c1, hash: h1 })];
  assert.deepEqual(brief(planSync(src, dst, { checksumOnly: true }).steps), ['update edit content 3', 'update half content 3', 'update none mtime 3', 'update same mtime 0']);
});

test('plan: a byte comparison (sameContent) decides over checksums, and only for the paths it has', () => {
  const c1 = '1'.repeat(32);
  const src = [file('compared-different', { checksum: c1 }), file('compared-same', { mtimeNs: '1800000000000000000' }), file('not-compared', { checksum: c1 })];
  const dst = [file('compared-different', { checksum: c1 }), file('compared-same'), file('not-compared', { checksum: '2'.repeat(32) })];
  const sameContent = new Map([
    ['compared-different', false],
    ['compared-same', true],
  ]);
  assert.deepEqual(brief(planSync(src, dst, { checksumOnly: true }, sameContent).steps), ['update compared-different content 3', 'update compared-same mtime 0', 'update not-compared content 3']);
});
