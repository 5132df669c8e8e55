import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isFaasError } from '@faas/protocol';
import { SnapshotHasher, dir, file, symlink, type DirEntry, type EntryName, type FsEntry } from '@faas/protocol/snapshot-hash';
import { openLocalBlobStore } from '../blobs/local/local-blob-store.ts';
import { scanTree } from './tree-scanner.ts';

const hasher = new SnapshotHasher();
const base = mkdtempSync(join(tmpdir(), 'faas-tree-scanner-'));
after(() => rmSync(base, { recursive: true, force: true }));
let seq = 0;
const fresh = (): string => {
  const d = join(base, `t${seq++}`);
  mkdirSync(d);
  return d;
};
const h = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/** Writes a file with an explicit mode (umask-proof). */
function put(path: string, content: string | Buffer, mode = 0o644): void {
  writeFileSync(path, content);
  chmodSync(path, mode);
}
function mkd(path: string, mode = 0o755): void {
  mkdirSync(path);
  chmodSync(path, mode);
}

/** The sample tree, created in the given order. */
function buildSample(root: string, reverse = false): void {
  const steps: Array<() => void> = [
    () => put(join(root, 'README'), 'readme'),
    () => {
      mkd(join(root, 'src'));
      put(join(root, 'src', 'a.ts'), 'a');
      put(join(root, 'src', 'b.ts'), 'b', 0o600);
    },
    () => symlinkSync('src/a.ts', join(root, 'link')),
    () => mkd(join(root, 'empty'), 0o700),
    () => put(join(root, 'run.sh'), '#!/bin/sh\n', 0o4755),
  ];
  for (const s of reverse ? steps.reverse() : steps) s();
}

const expectedSample = (): DirEntry =>
  dir(
    new Map<EntryName, FsEntry>([
      [Buffer.from('README'), file(h('readme'), 6, 0o644)],
      [Buffer.from('empty'), dir(new Map(), 0o700)],
      [Buffer.from('link'), symlink(Buffer.from('src/a.ts'))],
      [Buffer.from('run.sh'), file(h('#!/bin/sh\n'), 10, 0o4755)],
      [Buffer.from('src'), dir(new Map<EntryName, FsEntry>([[Buffer.from('a.ts'), file(h('a'), 1, 0o644)], [Buffer.from('b.ts'), file(h('b'), 1, 0o600)]]), 0o755)],
    ]),
    0o755,
  );

test('scanning a tree gives the expected FsEntry and its hash equals hashTree of a hand-built one', async () => {
  const root = fresh();
  chmodSync(root, 0o755);
  buildSample(root);
  const r = await scanTree(root);
  assert.deepEqual(r.tree, expectedSample());
  assert.equal(r.fsHash, hasher.hashTree(expectedSample()));
  // The same tree with string names hashes the same.
  assert.equal(
    r.fsHash,
    hasher.hashTree(
      dir({
        README: file(h('readme'), 6, 0o644),
        src: dir({ 'a.ts': file(h('a'), 1, 0o644), 'b.ts': file(h('b'), 1, 0o600) }, 0o755),
        link: symlink('src/a.ts'),
        empty: dir({}, 0o700),
        'run.sh': file(h('#!/bin/sh\n'), 10, 0o4755),
      }),
    ),
  );
  assert.deepEqual(
    { files: r.fileCount, dirs: r.dirCount, links: r.symlinkCount, total: r.totalBytes, stored: r.storedBytes, skipped: r.skippedCount },
    { files: 4, dirs: 2, links: 1, total: 18, stored: 0, skipped: 0 },
  );
});

test('creation order and timestamps do not change the hash', async () => {
  const a = fresh();
  const b = fresh();
  buildSample(a);
  buildSample(b, true);
  utimesSync(join(b, 'README'), new Date(2000, 0, 1), new Date(2001, 0, 1));
  utimesSync(join(b, 'src'), new Date(2010, 0, 1), new Date(2011, 0, 1));
  chmodSync(b, 0o700); // the root's own mode is not hashed
  assert.equal((await scanTree(a)).fsHash, (await scanTree(b)).fsHash);
});

test('a content byte, a mode bit, a dir mode bit or a symlink target changes the hash', async () => {
  const root = fresh();
  buildSample(root);
  const hashes = [(await scanTree(root)).fsHash];
  put(join(root, 'src', 'a.ts'), 'A');
  hashes.push((await scanTree(root)).fsHash);
  chmodSync(join(root, 'src', 'b.ts'), 0o640);
  hashes.push((await scanTree(root)).fsHash);
  chmodSync(join(root, 'empty'), 0o750);
  hashes.push((await scanTree(root)).fsHash);
  rmSync(join(root, 'link'));
  symlinkSync('src/b.ts', join(root, 'link'));
  hashes.push((await scanTree(root)).fsHash);
  assert.equal(new Set(hashes).size, hashes.length);
});

test('a symlink pointing outside is recorded, not followed; a symlinked root is refused', async () => {
  const root = fresh();
  symlinkSync('/etc', join(root, 'etc'));
  symlinkSync('/etc/passwd', join(root, 'passwd'));
  symlinkSync('/nonexistent/dangling', join(root, 'dangling'));
  const r = await scanTree(root);
  assert.equal(r.fileCount, 0);
  assert.equal(r.dirCount, 0);
  assert.equal(r.symlinkCount, 3);
  assert.deepEqual(r.tree.entries, new Map([
    [Buffer.from('dangling'), symlink(Buffer.from('/nonexistent/dangling'))],
    [Buffer.from('etc'), symlink(Buffer.from('/etc'))],
    [Buffer.from('passwd'), symlink(Buffer.from('/etc/passwd'))],
  ]));
  const linkRoot = join(fresh(), 'l');
  symlinkSync(root, linkRoot);
  await assert.rejects(scanTree(linkRoot), (e: unknown) => isFaasError(e) && e.code === 'VALIDATION_FAILED' && /symlink/.test(e.message));
});

test('a non-UTF-8 name survives as raw bytes; empty dirs are kept', async () => {
  const root = fresh();
  const bad = Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x62]);
  writeFileSync(Buffer.concat([Buffer.from(root + '/'), bad]), 'bytes');
  chmodSync(Buffer.concat([Buffer.from(root + '/'), bad]), 0o644);
  mkd(join(root, 'e1'));
  mkd(join(root, 'e1', 'e2'));
  const r = await scanTree(root);
  const names = [...(r.tree.entries as Map<Buffer, FsEntry>).keys()];
  assert.ok(names.some((n) => Buffer.isBuffer(n) && n.equals(bad)), 'the raw name is kept');
  const expected = dir(new Map<EntryName, FsEntry>([
    [bad, file(h('bytes'), 5, 0o644)],
    ['e1', dir(new Map([['e2', dir({}, 0o755)]]), 0o755)],
  ]));
  assert.equal(r.fsHash, hasher.hashTree(expected));
  assert.notEqual(r.fsHash, hasher.hashTree(dir({ [bad.toString('utf8')]: file(h('bytes'), 5, 0o644), e1: dir({ e2: dir({}, 0o755) }, 0o755) })));
  assert.equal(r.dirCount, 2);
});

test('a FIFO is refused by default (naming it) and skipped with skipSpecial', async () => {
  const root = fresh();
  mkd(join(root, 'sub'));
  put(join(root, 'sub', 'f'), 'f');
  execFileSync('mkfifo', [join(root, 'sub', 'pipe')]);
  await assert.rejects(scanTree(root), (e: unknown) => {
    assert.ok(isFaasError(e));
    assert.equal(e.code, 'VALIDATION_FAILED');
    assert.match(e.message, /"sub\/pipe".*FIFO/);
    return true;
  });
  const r = await scanTree(root, { skipSpecial: true });
  assert.equal(r.skippedCount, 1);
  assert.equal(r.fileCount, 1);
  assert.equal(r.fsHash, hasher.hashTree(dir({ sub: dir({ f: file(h('f'), 1, 0o644) }, 0o755) })));
});

test('exclude leaves out entries by relative path', async () => {
  const root = fresh();
  buildSample(root);
  const r = await scanTree(root, { exclude: (p) => p === 'src' || p === 'README' });
  assert.equal(r.fileCount, 1);
  assert.deepEqual([...(r.tree.entries as Map<Buffer, FsEntry>).keys()].map(String).sort(), ['empty', 'link', 'run.sh']);
});

test('entries removed between readdir and their read are left out and counted (a live snapshot of a busy tree), not an error', async () => {
  const root = fresh();
  buildSample(root);
  // exclude() runs for each entry just before it is read, in name order: README comes first,
  // and removing the rest there makes their readdir entries stale (file, dir, symlink, empty dir).
  const r = await scanTree(root, {
    exclude: (p) => {
      if (p === 'README') for (const name of ['empty', 'link', 'run.sh', 'src']) rmSync(join(root, name), { recursive: true });
      return false;
    },
  });
  assert.equal(r.vanishedCount, 4);
  assert.deepEqual([...(r.tree.entries as Map<Buffer, FsEntry>).keys()].map(String), ['README']);
  assert.equal(r.fileCount, 1);
  assert.equal(r.dirCount, 0);
  assert.equal(r.symlinkCount, 0);
  const only = fresh();
  put(join(only, 'README'), 'readme');
  assert.equal(r.fsHash, (await scanTree(only)).fsHash);
  assert.equal((await scanTree(only)).vanishedCount, 0);
});

test('with a LocalBlobStore: every blob exists, a rescan stores nothing, one change stores just that file', async () => {
  const root = fresh();
  buildSample(root);
  mkd(join(root, 'big'));
  const bigContent = randomBytes(3 * 1024 * 1024 + 17);
  put(join(root, 'big', 'blob.bin'), bigContent);
  put(join(root, 'big', 'copy.bin'), bigContent); // same content twice: stored once
  const blobs = await openLocalBlobStore({ root: join(fresh(), 'cas') });
  const lease = blobs.lease();
  const first = await scanTree(root, { blobs, lease, concurrency: 2 });
  const walk = (e: FsEntry, out: Array<{ contentHash: string; size: number }>): typeof out => {
    if (e.type === 'file') out.push(e);
    if (e.type === 'dir') for (const c of (e.entries as Map<Buffer, FsEntry>).values()) walk(c, out);
    return out;
  };
  const files = walk(first.tree, []);
  assert.equal(files.length, 6);
  for (const f of files) {
    assert.deepEqual(await blobs.stat(f.contentHash), { size: f.size });
    assert.ok(lease.hashes.has(f.contentHash));
  }
  assert.equal(first.storedBytes, 6 + 1 + 1 + 10 + bigContent.length);
  assert.equal(first.totalBytes, first.storedBytes + bigContent.length);
  assert.ok((await blobs.readFile(h(bigContent), { maxBytes: 1 << 23 })).equals(bigContent));
  lease.release();

  const second = await scanTree(root, { blobs });
  assert.equal(second.storedBytes, 0);
  assert.equal(second.fsHash, first.fsHash);

  put(join(root, 'src', 'a.ts'), 'changed content');
  const third = await scanTree(root, { blobs });
  assert.equal(third.storedBytes, 'changed content'.length);
  assert.notEqual(third.fsHash, first.fsHash);
  assert.ok(await blobs.has(h('changed content')));
});

test('a 50 MB file is hashed correctly without large memory growth', async () => {
  const root = fresh();
  const path = join(root, 'big.bin');
  const expected = createHash('sha256');
  const out = createWriteStream(path);
  for (let i = 0; i < 50; i++) {
    const chunk = randomBytes(1024 * 1024);
    expected.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const digest = expected.digest('hex');
  global.gc?.();
  const before = process.memoryUsage();
  const r = await scanTree(root);
  const afterMem = process.memoryUsage();
  const entry = (r.tree.entries as Map<Buffer, FsEntry>).get([...(r.tree.entries as Map<Buffer, FsEntry>).keys()][0]!)!;
  assert.deepEqual(entry, { type: 'file', mode: entry.type === 'file' ? entry.mode : 0, size: 50 * 1024 * 1024, contentHash: digest });
  const grown = afterMem.rss + afterMem.arrayBuffers - (before.rss + before.arrayBuffers);
  assert.ok(grown < 25 * 1024 * 1024, `memory grew by ${(grown / 1024 / 1024).toFixed(1)} MB`);
});
