import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFaasError } from '../errors/index.ts';
import { FileSynchronizer } from './file-synchronizer.ts';
import { LocalDestination } from './local-destination.ts';
import { buildManifest } from './manifest.ts';
import { tempDir, treeState, writeTree } from './test-helpers.ts';
import type { SyncProgress, SyncResult } from './types.ts';

const faasCode = (code: string) => (err: unknown) => isFaasError(err) && err.code === code;

function setup(tree: Record<string, string | { link: string }>): { src: string; dst: string; outside: string; cleanup: () => void } {
  const { dir, cleanup } = tempDir();
  const src = join(dir, 'src');
  const outside = join(dir, 'outside');
  writeTree(src, tree);
  writeTree(outside, { 'secret.txt': 'outside content' });
  return { src, dst: join(dir, 'dst'), outside, cleanup };
}

const counts = (r: SyncResult) => ({ c: r.filesCopied, u: r.filesUpdated, d: r.filesDeleted, s: r.filesSkipped, b: r.bytesTransferred });

test('initial copy keeps content, modes, mtimes of files, dirs and symlinks; a resync changes nothing', async () => {
  const t = setup({ 'a.txt': 'hello', 'bin/run.sh': '#!/bin/sh\n', 'private/key': 'k', 'empty/': '', 'deep/er/est/f': 'x', 'ln-rel': { link: 'a.txt' }, 'dangling': { link: 'no/such' } });
  try {
    symlinkSync(t.outside, join(t.src, 'out-link')); // a dir outside the source: copied as a link, never followed
    chmodSync(join(t.src, 'bin/run.sh'), 0o755);
    chmodSync(join(t.src, 'private/key'), 0o600);
    chmodSync(join(t.src, 'private'), 0o700);
    chmodSync(join(t.src, 'empty'), 0o555); // read-only dir: created writable, then given its mode
    utimesSync(join(t.src, 'a.txt'), 1_000_000, 1_234_567_890.123456);
    const r1 = await new FileSynchronizer().sync(t.src, t.dst);
    assert.deepEqual(treeState(t.dst), treeState(t.src));
    assert.equal(readlinkSync(join(t.dst, 'out-link')), t.outside);
    assert.ok(lstatSync(join(t.dst, 'out-link')).isSymbolicLink());
    assert.equal(r1.filesCopied, Object.keys(treeState(t.src)).length);
    assert.equal(r1.bytesTransferred, 5 + 10 + 1 + 1);
    const r2 = await new FileSynchronizer().sync(t.src, t.dst);
    assert.deepEqual(counts(r2), { c: 0, u: 0, d: 0, s: r1.filesCopied, b: 0 });
    assert.deepEqual(treeState(t.dst), treeState(t.src));
  } finally {
    t.cleanup();
  }
});

test('an mtime in the past and one with sub-microsecond digits survive at microsecond precision', async () => {
  const t = setup({ f: 'x', g: 'y' });
  try {
    utimesSync(join(t.src, 'f'), 1, 86_400.000001); // 1970-01-02 + 1 µs
    utimesSync(join(t.src, 'g'), 1, 1_999_999_999.999999);
    await new FileSynchronizer().sync(t.src, t.dst);
    for (const n of ['f', 'g']) assert.equal(lstatSync(join(t.dst, n), { bigint: true }).mtimeNs / 1000n, lstatSync(join(t.src, n), { bigint: true }).mtimeNs / 1000n, n);
  } finally {
    t.cleanup();
  }
});

test('dry run changes nothing and reports exactly what the real run then does', async () => {
  const t = setup({ 'keep.txt': 'same', 'change.txt': 'v1', 'dir/new.txt': 'n', 'typechange': 'file now', '.gitignore': '*.log\n' });
  try {
    mkdirSync(t.dst);
    writeTree(t.dst, { 'keep.txt': 'same', 'change.txt': 'version 1', 'extra/x': 'e', 'typechange/inner': 'i', 'kept.log': 'excluded: never deleted', '.gitignore': '*.log\n' });
    // identical mtimes for the identical files
    for (const root of [t.src, t.dst]) for (const n of ['keep.txt', '.gitignore']) utimesSync(join(root, n), 1, 1_700_000_000.5);
    const before = treeState(t.dst);
    const options = { deleteUnmatched: true };
    const dry = await new FileSynchronizer({ ...options, dryRun: true }).sync(t.src, t.dst);
    assert.deepEqual(treeState(t.dst), before, 'dry run touched the destination');
    assert.equal(dry.dryRun, true);
    assert.ok(dry.plan);
    const real = await new FileSynchronizer(options).sync(t.src, t.dst);
    assert.equal(real.dryRun, false);
    assert.equal(real.plan, undefined);
    assert.deepEqual(counts(real), counts(dry));
    const after = treeState(t.dst);
    // the plan names every path whose state changed, and nothing else changed
    const changed = new Set([...Object.keys(before), ...Object.keys(after)].filter((p) => JSON.stringify(before[p], (_, v) => (typeof v === 'bigint' ? v.toString() : v)) !== JSON.stringify(after[p], (_, v) => (typeof v === 'bigint' ? v.toString() : v))));
    const planned = new Set(dry.plan.steps.filter((s) => s.action !== 'skip').map((s) => s.path));
    for (const p of changed) {
      if (after[p]?.type === 'dir' && before[p]?.type === 'dir') continue; // dir mtimes are restored, may differ from before
      assert.ok(planned.has(p), `${p} changed but was not planned`);
    }
    assert.deepEqual(
      dry.plan.steps.filter((s) => s.action !== 'skip').map((s) => `${s.action} ${s.path}`),
      ['delete typechange/inner', 'delete typechange', 'delete extra/x', 'delete extra', 'update change.txt', 'copy dir', 'copy dir/new.txt', 'copy typechange'],
    );
    assert.equal(readFileSync(join(t.dst, 'kept.log'), 'utf8'), 'excluded: never deleted');
    const { ['kept.log']: _kept, ...rest } = after;
    assert.deepEqual(rest, treeState(t.src));
    // a dry run into a missing destination creates nothing
    const missing = join(t.dst, '..', 'missing');
    const r = await new FileSynchronizer({ dryRun: true }).sync(t.src, missing);
    assert.equal(r.filesCopied, Object.keys(treeState(t.src)).length);
    assert.ok(!existsSync(missing));
  } finally {
    t.cleanup();
  }
});

test('checksum mode catches a same-size, same-mtime edit that the quick check misses', async () => {
  const t = setup({ 'f.txt': 'aaaa', 'touched.txt': 'same' });
  try {
    const f = join(t.src, 'f.txt');
    utimesSync(f, 1, 1_700_000_000.25);
    await new FileSynchronizer().sync(t.src, t.dst);
    writeFileSync(f, 'bbbb');
    utimesSync(f, 1, 1_700_000_000.25);
    const quick = await new FileSynchronizer().sync(t.src, t.dst);
    assert.equal(quick.filesUpdated, 0);
    assert.equal(readFileSync(join(t.dst, 'f.txt'), 'utf8'), 'aaaa');
    utimesSync(join(t.src, 'touched.txt'), 1, 1_800_000_000); // mtime only
    const dry = await new FileSynchronizer({ checksumOnly: true, dryRun: true }).sync(t.src, t.dst);
    assert.deepEqual(
      dry.plan!.steps.filter((s) => s.action === 'update').map((s) => [s.path, s.reason, s.bytes]),
      [
        ['f.txt', 'content', 4],
        ['touched.txt', 'mtime', 0],
      ],
    );
    const sum = await new FileSynchronizer({ checksumOnly: true }).sync(t.src, t.dst);
    assert.deepEqual(counts(sum), { c: 0, u: 2, d: 0, s: 0, b: 4 });
    assert.deepEqual(treeState(t.dst), treeState(t.src));
  } finally {
    t.cleanup();
  }
});

test('deleteUnmatched deletes what the source lacks, never excluded entries nor .git; without it nothing is deleted', async () => {
  const t = setup({ '.gitignore': 'build/\n', a: '1' });
  try {
    writeTree(t.dst, { a: '1', 'old/x': 'x', 'old/y/z': 'z', stray: 's', 'build/out': 'o', '.git/HEAD': 'h', 'sub/.git': 'gitdir: x' });
    const r0 = await new FileSynchronizer().sync(t.src, t.dst);
    assert.equal(r0.filesDeleted, 0);
    assert.ok(existsSync(join(t.dst, 'stray')));
    const r1 = await new FileSynchronizer({ deleteUnmatched: true }).sync(t.src, t.dst);
    assert.equal(r1.filesDeleted, 6); // old/y/z old/y old/x old stray sub
    assert.deepEqual(Object.keys(treeState(t.dst)).sort(), ['.git', '.git/HEAD', '.gitignore', 'a', 'build', 'build/out']);
  } finally {
    t.cleanup();
  }
});

test('includes, excludes, no gitignore, no timestamps, combined with delete and dry run', async () => {
  const t = setup({ '.gitignore': '*.log\n', 'src/a.ts': 'a', 'src/a.test.ts': 't', 'src/b.js': 'b', 'x.log': 'l', 'docs/d.md': 'd' });
  try {
    writeTree(t.dst, { 'src/old.ts': 'o', 'src/keep.js': 'not included: kept', 'y.log': 'y' });
    const options = { includePatterns: ['*.ts', '*.log'], excludePatterns: ['*.test.ts'], useGitignore: false, deleteUnmatched: true, preserveTimestamps: false };
    const dry = await new FileSynchronizer({ ...options, dryRun: true }).sync(t.src, t.dst);
    assert.deepEqual(
      dry.plan!.steps.map((s) => `${s.action} ${s.path}`),
      ['delete y.log', 'delete src/old.ts', 'skip src', 'copy src/a.ts', 'copy x.log'],
    );
    const r = await new FileSynchronizer(options).sync(t.src, t.dst);
    assert.deepEqual(counts(r), counts(dry));
    const state = treeState(t.dst, { mtimes: false });
    assert.deepEqual(Object.keys(state).sort(), ['src', 'src/a.ts', 'src/keep.js', 'x.log']);
    assert.ok(lstatSync(join(t.dst, 'src/a.ts')).mtimeMs > lstatSync(join(t.src, 'src/a.ts')).mtimeMs - 1, 'fresh mtime');
    const again = await new FileSynchronizer(options).sync(t.src, t.dst);
    assert.deepEqual(counts(again), { c: 0, u: 0, d: 0, s: 3, b: 0 });
  } finally {
    t.cleanup();
  }
});

test('type changes end to end: file -> dir, dir -> file, file -> symlink, symlink -> dir', async () => {
  const t = setup({ a: 'file', 'b/x': 'in dir', c: 'file', 'd/': '' });
  try {
    writeTree(t.dst, { 'a/inner': 'dir', b: 'file', c: { link: 'a' }, d: { link: '../outside' } });
    await new FileSynchronizer().sync(t.src, t.dst);
    assert.deepEqual(treeState(t.dst), treeState(t.src));
  } finally {
    t.cleanup();
  }
});

test('a destination symlink is replaced, never written through', async () => {
  const t = setup({ 'f': 'new content', 'd/inner': 'i' });
  try {
    writeTree(t.dst, {});
    symlinkSync(join(t.outside, 'secret.txt'), join(t.dst, 'f'));
    symlinkSync(t.outside, join(t.dst, 'd'));
    await new FileSynchronizer().sync(t.src, t.dst);
    assert.equal(readFileSync(join(t.outside, 'secret.txt'), 'utf8'), 'outside content');
    assert.ok(!existsSync(join(t.outside, 'inner')));
    assert.deepEqual(treeState(t.dst), treeState(t.src));
  } finally {
    t.cleanup();
  }
});

test('LocalDestination refuses paths through a symlink (PATH_OUTSIDE_ROOT) and malformed paths (INVALID_PATH)', async () => {
  const t = setup({});
  try {
    writeTree(t.dst, { 'real/': '' });
    symlinkSync(t.outside, join(t.dst, 'evil'));
    symlinkSync('real', join(t.dst, 'inside-link'));
    const dest = new LocalDestination(t.dst);
    const content = async function* () {
      yield Buffer.from('pwned');
    };
    await assert.rejects(dest.writeFile('evil/secret.txt', content(), 0o644, undefined), faasCode('PATH_OUTSIDE_ROOT'));
    await assert.rejects(dest.writeFile('inside-link/x', content(), 0o644, undefined), faasCode('PATH_OUTSIDE_ROOT'));
    await assert.rejects(dest.mkdir('evil/d', 0o755), faasCode('PATH_OUTSIDE_ROOT'));
    await assert.rejects(dest.symlink('evil/l', '/'), faasCode('PATH_OUTSIDE_ROOT'));
    await assert.rejects(dest.remove('evil/secret.txt'), faasCode('PATH_OUTSIDE_ROOT'));
    await assert.rejects(dest.setAttributes('evil/secret.txt', 0o777, '0'), faasCode('PATH_OUTSIDE_ROOT'));
    for (const bad of ['../outside/secret.txt', '/etc/passwd', 'real/../../x', 'real/./x', '', 'a//b']) {
      await assert.rejects(dest.writeFile(bad, content(), 0o644, undefined), faasCode('INVALID_PATH'), bad);
    }
    assert.equal(readFileSync(join(t.outside, 'secret.txt'), 'utf8'), 'outside content');
    assert.equal(lstatSync(join(t.outside, 'secret.txt')).mode & 0o777, 0o644);
    // the final component is never followed: attributes of a symlink are its own, removal unlinks it
    await dest.setAttributes('evil', 0o600, '1000000000000000000');
    assert.equal(lstatSync(join(t.outside)).mode & 0o777, 0o755);
    await dest.remove('evil');
    assert.ok(existsSync(join(t.outside, 'secret.txt')));
  } finally {
    t.cleanup();
  }
});

test('names that are not UTF-8 and special files are skipped and reported', async () => {
  const t = setup({ ok: '1' });
  try {
    writeFileSync(Buffer.concat([Buffer.from(`${t.src}/`), Buffer.from([0x62, 0xff, 0x61, 0x64])]), 'bad name');
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(t.src, 'fifo')]);
    const { entries, skipped } = await buildManifest(t.src);
    assert.deepEqual(
      entries.map((e) => e.path),
      ['ok'],
    );
    assert.deepEqual(skipped, [
      { path: 'b\uFFFDad', reason: 'name not UTF-8' },
      { path: 'fifo', reason: 'special file' },
    ]);
    const r = await new FileSynchronizer().sync(t.src, t.dst);
    assert.equal(r.skipped.length, 2);
    assert.deepEqual(Object.keys(treeState(t.dst)), ['ok']);
  } finally {
    t.cleanup();
  }
});

test('progress: throttled reports, a final one with everything done', async () => {
  const t = setup({});
  try {
    for (let i = 0; i < 6; i++) writeFileSync(join(t.src, `big${i}`), Buffer.alloc(3 * 1024 * 1024, i));
    for (let i = 0; i < 200; i++) writeTree(t.src, { [`small/${i}`]: `${i}` });
    const events: SyncProgress[] = [];
    const r = await new FileSynchronizer({ onProgress: (p) => events.push(p) }).sync(t.src, t.dst);
    const last = events.at(-1)!;
    assert.equal(last.filesDone, last.filesTotal);
    assert.equal(last.bytesDone, last.bytesTotal);
    assert.equal(last.bytesDone, r.bytesTransferred);
    assert.equal(last.filesTotal, r.filesCopied);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytesDone >= events[i - 1]!.bytesDone);
    assert.ok(events.length < 50, `${events.length} events`);
  } finally {
    t.cleanup();
  }
});
