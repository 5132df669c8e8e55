import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFaasError } from '../errors/index.ts';
import { FileComparer } from './compare-files.ts';
import { FileSynchronizer } from './file-synchronizer.ts';
import { buildManifest, checksumEntries, checksumFile, CHUNK } from './manifest.ts';
import { tempDir, treeState } from './test-helpers.ts';
import type { ManifestEntry } from './types.ts';

const faasCode = (code: string) => (err: unknown) => isFaasError(err) && err.code === code;

/** 300 files (enough for both threads to take some), a few large ones, and an identical copy. */
function pairOfTrees(): { src: string; dst: string; dir: string; cleanup: () => void } {
  const { dir, cleanup } = tempDir();
  const src = join(dir, 'src');
  const dst = join(dir, 'dst');
  for (const root of [src, dst]) mkdirSync(join(root, 'd'), { recursive: true });
  for (let i = 0; i < 300; i++) {
    const content = randomBytes(i < 3 ? 2 * CHUNK + 17 : 100 + i);
    writeFileSync(join(src, 'd', `f${i}`), content);
    writeFileSync(join(dst, 'd', `f${i}`), content);
  }
  return { src, dst, dir, cleanup };
}

async function files(root: string): Promise<ManifestEntry[]> {
  return (await buildManifest(root)).entries.filter((e) => e.type === 'file');
}

/** Compares with the worker given time to start (as it has while a sync walks both trees). */
async function compare(src: string, dst: string, entries: ManifestEntry[], stats?: { worker: number }): Promise<Map<string, boolean>> {
  const comparer = FileComparer.start();
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return await comparer.compare(src, dst, entries);
  } finally {
    if (stats) stats.worker = comparer.workerCompared;
    comparer.close();
  }
}

test('FileComparer: equal pairs are equal, a difference anywhere (first byte, last byte of a large file) is found, on both threads', async () => {
  const t = pairOfTrees();
  try {
    writeFileSync(join(t.dst, 'd/f5'), Buffer.concat([Buffer.from('X'), randomBytes(104)])); // differs from the start (same size)
    const big = readFileSync(join(t.dst, 'd/f1'));
    big[big.length - 1]! ^= 0xff; // the last byte, in the third chunk
    writeFileSync(join(t.dst, 'd/f1'), big);
    const stats = { worker: 0 };
    const result = await compare(t.src, t.dst, await files(t.src), stats);
    assert.equal(result.size, 300);
    assert.deepEqual([...result].filter(([, same]) => !same).map(([p]) => p).sort(), ['d/f1', 'd/f5']);
    assert.ok(stats.worker > 0, 'the worker thread compared some of the pairs');
  } finally {
    t.cleanup();
  }
});

test('FileComparer: an error on either thread is the main thread error: VALIDATION_FAILED for a symlink, PATH_OUTSIDE_ROOT through a symlinked dir, ENOENT for a vanished file', async () => {
  const t = pairOfTrees();
  try {
    const entries = await files(t.src);
    // Whichever thread takes it, the error is the same (many rounds: the worker takes a share).
    for (let round = 0; round < 3; round++) {
      rmSync(join(t.dst, 'd/f150'));
      symlinkSync(join(t.src, 'd/f150'), join(t.dst, 'd/f150'));
      await assert.rejects(compare(t.src, t.dst, entries), faasCode('VALIDATION_FAILED'));
      rmSync(join(t.dst, 'd/f150'));
      await assert.rejects(compare(t.src, t.dst, entries), (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT');
      writeFileSync(join(t.dst, 'd/f150'), 'x');
    }
    mkdirSync(join(t.dir, 'elsewhere'));
    rmSync(join(t.dst, 'd'), { recursive: true });
    symlinkSync(join(t.src, 'd'), join(t.dst, 'd'));
    await assert.rejects(compare(t.src, t.dst, entries), faasCode('PATH_OUTSIDE_ROOT'));
  } finally {
    t.cleanup();
  }
});

test('checksum mode (FileSynchronizer) on two threads: same-size same-mtime edits found, a missing source is the same error as in quick mode', async () => {
  const t = pairOfTrees();
  try {
    await new FileSynchronizer().sync(t.src, t.dst); // attributes equal
    for (const i of [0, 7, 299]) {
      const p = join(t.src, 'd', `f${i}`);
      const size = i === 0 ? 2 * CHUNK + 17 : 100 + i;
      writeFileSync(p, randomBytes(size));
      utimesSync(p, 1, 1_700_000_000.5);
      utimesSync(join(t.dst, 'd', `f${i}`), 1, 1_700_000_000.5);
    }
    const quick = await new FileSynchronizer().sync(t.src, t.dst);
    assert.equal(quick.filesUpdated, 0);
    const dry = await new FileSynchronizer({ checksumOnly: true, dryRun: true }).sync(t.src, t.dst);
    const real = await new FileSynchronizer({ checksumOnly: true }).sync(t.src, t.dst);
    assert.deepEqual(real.plan ?? dry.plan, dry.plan);
    assert.deepEqual(
      dry.plan!.steps.filter((s) => s.action !== 'skip').map((s) => [s.path, s.reason]),
      [
        ['d/f0', 'content'],
        ['d/f299', 'content'],
        ['d/f7', 'content'],
      ],
    );
    assert.equal(real.filesUpdated, 3);
    assert.deepEqual(treeState(t.dst), treeState(t.src));
    const missing = join(t.dir, 'no-such-dir');
    const quickError = await new FileSynchronizer().sync(missing, t.dst).catch((e: unknown) => e);
    const checksumError = await new FileSynchronizer({ checksumOnly: true }).sync(missing, t.dst).catch((e: unknown) => e);
    assert.equal((checksumError as NodeJS.ErrnoException).code, 'ENOENT');
    assert.equal((checksumError as Error).message, (quickError as Error).message);
  } finally {
    t.cleanup();
  }
});

test('checksums are XXH3-128 in canonical hex; checksumEntries sets checksum and size, never follows a symlink', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'empty'), '');
    writeFileSync(join(dir, 'abc'), 'abc');
    const big = randomBytes(3 * CHUNK + 5);
    writeFileSync(join(dir, 'big'), big);
    writeFileSync(join(dir, 'big-copy'), big);
    assert.deepEqual(await checksumFile(dir, 'empty'), { checksum: '99aa06d3014798d86001c324468d497f', size: 0 });
    assert.deepEqual(await checksumFile(dir, 'abc'), { checksum: '06b05ab6733a618578af5f94892f3950', size: 3 });
    const entries = await files(dir);
    for (const e of entries) e.size = 1; // sizes come from what is read
    await checksumEntries(dir, entries);
    const by = new Map(entries.map((e) => [e.path, e]));
    assert.equal(by.get('big')!.checksum, by.get('big-copy')!.checksum);
    assert.equal(by.get('big')!.size, big.length);
    assert.match(by.get('big')!.checksum!, /^[0-9a-f]{32}$/);
    symlinkSync('abc', join(dir, 'link'));
    await assert.rejects(checksumFile(dir, 'link'), faasCode('VALIDATION_FAILED'));
  } finally {
    cleanup();
  }
});
