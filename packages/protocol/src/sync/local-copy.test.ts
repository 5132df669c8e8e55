/**
 * Local-to-local content goes through the kernel (LocalDestination.copyLocalFile): these tests
 * pin that path down, its safety (the source is never followed, nothing is left behind) and its
 * progress reports.
 */
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFaasError } from '../errors/index.ts';
import { applyPlan } from './apply.ts';
import { LocalSource } from './file-synchronizer.ts';
import { LocalDestination } from './local-destination.ts';
import { buildManifest } from './manifest.ts';
import { planSync } from './plan.ts';
import { tempDir, treeState, writeTree } from './test-helpers.ts';
import type { SyncProgress } from './types.ts';

/** A LocalDestination whose streaming write fails: only the kernel copy can succeed. */
function kernelOnly(root: string): LocalDestination {
  const dest = new LocalDestination(root);
  dest.writeFile = () => Promise.reject(new Error('content streamed through JavaScript'));
  return dest;
}

async function planOf(src: string, dst: string) {
  const source = await buildManifest(src);
  const dest = await new LocalDestination(dst).manifest({}, () => false);
  mkdirSync(dst, { recursive: true }); // FileSynchronizer creates the root before applying
  return { plan: planSync(source.entries, dest), entries: source.entries };
}

/** Runs `fn` with `src` and `dst` paths in a fresh temp dir (removed afterwards). */
async function inTempDirs(fn: (dirs: { dir: string; src: string; dst: string }) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  try {
    await fn({ dir, src: join(dir, 'src'), dst: join(dir, 'dst') });
  } finally {
    cleanup();
  }
}

test('a local copy never streams content: files, modes (setuid included) and mtimes arrive through the kernel copy', () =>
  inTempDirs(async ({ src, dst }) => {
    writeTree(src, { 'a.txt': 'hello', 'bin/tool': '#!/bin/sh\n', 'empty': '', 'sub/deep/f': 'x'.repeat(100_000) });
    chmodSync(join(src, 'bin/tool'), 0o4755);
    chmodSync(join(src, 'a.txt'), 0o600);
    utimesSync(join(src, 'sub/deep/f'), 1, 1_234_567_890.123456);
    const { plan, entries } = await planOf(src, dst);
    const r = await applyPlan(plan, new LocalSource(src, entries), kernelOnly(dst));
    assert.deepEqual(treeState(dst), treeState(src));
    assert.equal(statSync(join(dst, 'bin/tool')).mode & 0o7777, 0o4755);
    assert.equal(r.bytesTransferred, 5 + 10 + 0 + 100_000);
  }));

test('a source file that became a symlink after the walk is refused, its target never read, no temp file left', () =>
  inTempDirs(async ({ dir, src, dst }) => {
    writeTree(src, { 'f.txt': 'original' });
    writeTree(join(dir, 'outside'), { 'secret': 'outside content' });
    const { plan, entries } = await planOf(src, dst);
    rmSync(join(src, 'f.txt'));
    symlinkSync(join(dir, 'outside', 'secret'), join(src, 'f.txt'));
    await assert.rejects(applyPlan(plan, new LocalSource(src, entries), kernelOnly(dst)), (err: unknown) => isFaasError(err) && err.code === 'VALIDATION_FAILED' && /became a symlink/.test(err.message));
    assert.deepEqual(readdirSync(dst), []);
    assert.equal(readFileSync(join(dir, 'outside', 'secret'), 'utf8'), 'outside content');
  }));

test('a destination name taken by a symlink is replaced, never written through', () =>
  inTempDirs(async ({ dir, src, dst }) => {
    writeTree(src, { 'f.txt': 'new content' });
    writeTree(join(dir, 'outside'), { 'target': 'untouched' });
    writeTree(dst, { 'f.txt': { link: join(dir, 'outside', 'target') } });
    const { plan, entries } = await planOf(src, dst);
    await applyPlan(plan, new LocalSource(src, entries), kernelOnly(dst));
    assert.ok(lstatSync(join(dst, 'f.txt')).isFile());
    assert.equal(readFileSync(join(dst, 'f.txt'), 'utf8'), 'new content');
    assert.equal(readFileSync(join(dir, 'outside', 'target'), 'utf8'), 'untouched');
    assert.deepEqual(readdirSync(dst), ['f.txt']);
  }));

test('a large kernel copy reports its bytes while it runs, never backwards, and ends at the total', () =>
  inTempDirs(async ({ src, dst }) => {
    writeTree(src, {});
    const size = 256 * 1024 * 1024;
    writeFileSync(join(src, 'big.bin'), Buffer.alloc(size, 7));
    const { plan, entries } = await planOf(src, dst);
    const events: SyncProgress[] = [];
    const r = await applyPlan(plan, new LocalSource(src, entries), kernelOnly(dst), { progressIntervalMs: 1 }, (p) => events.push({ ...p }));
    assert.equal(r.bytesTransferred, size);
    assert.equal(events.at(-1)!.bytesDone, size);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytesDone >= events[i - 1]!.bytesDone);
    const midway = events.filter((e) => e.bytesDone > 0 && e.bytesDone < size);
    assert.ok(midway.length > 0, `reports while copying: ${events.map((e) => e.bytesDone).join(', ')}`);
    assert.equal(statSync(join(dst, 'big.bin')).size, size);
  }));
