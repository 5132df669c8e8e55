/**
 * A 1 GiB file (sparse in the source, but read and written in full) syncs with bounded
 * memory. Its own file, so the process's RSS is not disturbed by other tests.
 */
import assert from 'node:assert/strict';
import { closeSync, lstatSync, mkdirSync, openSync, readSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSynchronizer } from './file-synchronizer.ts';
import { tempDir } from './test-helpers.ts';

const SIZE = 1024 * 1024 * 1024;

function bytesAt(path: string, position: number, length: number): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, position);
    return buf.toString('latin1');
  } finally {
    closeSync(fd);
  }
}

test('a 1 GiB file syncs with RSS growth under 100 MB', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = join(dir, 'src');
    const big = join(src, 'big.bin');
    mkdirSync(src);
    const fd = openSync(big, 'w');
    writeSync(fd, 'head');
    writeSync(fd, 'middle', SIZE / 2);
    closeSync(fd);
    truncateSync(big, SIZE);
    (globalThis as { gc?: () => void }).gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    const started = performance.now();
    const r = await new FileSynchronizer().sync(src, join(dir, 'dst'));
    const ms = performance.now() - started;
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    const after = process.memoryUsage().rss;
    assert.equal(r.bytesTransferred, SIZE);
    const dst = join(dir, 'dst', 'big.bin');
    assert.equal(lstatSync(dst).size, SIZE);
    // every byte was read (bytesTransferred counts what the source yielded); spot-check the content
    assert.equal(bytesAt(dst, 0, 6), 'head\0\0');
    assert.equal(bytesAt(dst, SIZE / 2 - 1, 8), '\0middle\0');
    assert.equal(bytesAt(dst, SIZE - 3, 3), '\0\0\0');
    const mb = (n: number) => Math.round(n / 1e6);
    console.log(`# 1 GiB sync: ${Math.round(ms)} ms, rss before ${mb(before)} MB, peak ${mb(peak)} MB, after ${mb(after)} MB`);
    assert.ok(peak - before < 100e6, `RSS grew by ${mb(peak - before)} MB`);
  } finally {
    cleanup();
  }
});
