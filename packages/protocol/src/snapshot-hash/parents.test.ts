import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isFaasError } from '../errors/index.ts';
import { PARENTS_PREFIX, SnapshotHasher, dir, file, hashParents, parentInput } from './index.ts';

const hasher = new SnapshotHasher();
const doc = readFileSync(new URL('../../../../docs/snapshot-hash.md', import.meta.url), 'utf8');
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const A = sha('parent-a');
const B = sha('parent-b');

/** The "Merge snapshots" vector: `parent` lines (in order), then `parents`, `reversed` and `snapshot`. */
function mergeVector(): { parents: string[]; expected: Record<string, string> } {
  const m = /## Merge snapshots[\s\S]*?```merge-vector\n([\s\S]*?)```/.exec(doc);
  assert.ok(m, 'the doc has a merge-vector block under "Merge snapshots"');
  const parents: string[] = [];
  const expected: Record<string, string> = {};
  for (const line of m[1]!.trim().split('\n')) {
    const [key, value] = line.split(/\s+/) as [string, string];
    if (key === 'parent') parents.push(value);
    else expected[key] = value;
  }
  return { parents, expected };
}

test('doc merge vector: parents hash, reversed order and the snapshot hash of vector 2 with it', () => {
  const v = mergeVector();
  assert.deepEqual(v.parents, [A, B]);
  assert.deepEqual(Object.keys(v.expected).sort(), ['parents', 'reversed', 'snapshot']);
  assert.equal(hashParents(v.parents), v.expected.parents);
  assert.equal(hashParents([...v.parents].reverse()), v.expected.reversed);
  const tree = dir({ 'hello.txt': file(hasher.hashFile('hello\n'), 6, 0o644) });
  assert.equal(hasher.hashSnapshot(null, tree, {}, v.expected.parents!).contentHash, v.expected.snapshot);
  assert.equal(hasher.hashSnapshot(null, tree, {}, parentInput(v.parents)).contentHash, v.expected.snapshot);
});

test('the definition: SHA-256 of the prefix, u32 count and the raw hashes, in order', () => {
  const three = [A, B, sha('parent-c')];
  const manual = createHash('sha256')
    .update(Buffer.from('faas/parents/v1\0', 'ascii'))
    .update(Buffer.from([0, 0, 0, 3]))
    .update(Buffer.concat(three.map((h) => Buffer.from(h, 'hex'))))
    .digest('hex');
  assert.equal(hashParents(three), manual);
  assert.ok(doc.includes(`| \`faas/parents/v1\\0\` | \`${PARENTS_PREFIX.toString('hex')}\` |`), 'the prefix table lists the parents prefix');
  // Repeats are kept, and order matters.
  assert.notEqual(hashParents([A, A]), hashParents([A, A, A]));
  assert.notEqual(hashParents([A, B]), hashParents([B, A]));
});

test('parentInput: none, one (the parent itself) or several (the parents hash)', () => {
  assert.equal(parentInput([]), null);
  assert.equal(parentInput([A]), A);
  assert.equal(parentInput([A, B]), hashParents([A, B]));
  // A one-parent snapshot and a merge snapshot of the same content differ.
  const tree = dir({});
  assert.notEqual(hasher.hashSnapshot(null, tree, {}, parentInput([A])).contentHash, hasher.hashSnapshot(null, tree, {}, parentInput([A, B])).contentHash);
});

test('invalid input is VALIDATION_FAILED', () => {
  const bad = (f: () => unknown): void => assert.throws(f, (e: unknown) => isFaasError(e) && e.code === 'VALIDATION_FAILED');
  bad(() => hashParents([]));
  bad(() => hashParents([A]));
  bad(() => hashParents([A, 'nothex']));
  bad(() => hashParents([A, B.toUpperCase()]));
  bad(() => hashParents('ab' as unknown as string[]));
  bad(() => parentInput(['short']));
});
