/**
 * Snapshot hashing: `scanTree` (walk + SHA-256 of every file + Merkle tree) against
 * `sha256sum` over the same files in the same run, a 1 MB snapshot's latency, and a full vs
 * an incremental snapshot into a fresh LocalBlobStore. The test trees are built once and
 * cached under os.tmpdir() (reused across runs; delete the directory to rebuild).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotHasher } from '@faas/protocol/snapshot-hash';
import { openLocalBlobStore } from '../packages/executor/src/blobs/local/local-blob-store.ts';
import { scanTree } from '../packages/executor/src/snapshots/tree-scanner.ts';
import { FileHashCache } from '../packages/executor/src/snapshots/file-hash-cache.ts';
import { ms, now, printTable, ratio, section, summarize, verdict } from './lib/stats.ts';

const CACHE = join(tmpdir(), 'faas-bench-snapshot-hash-v1');
const BIG_TREE = join(CACHE, 'tree');
const SMALL_TREE = join(CACHE, 'small');
const ROUNDS = 5;
const SMALL_RUNS = 50;
/** Targets: hashing throughput >= 0.8x sha256sum; a 1 MB snapshot well under 5 ms; incremental < 5% of full. */
const TARGET_THROUGHPUT = 0.8;
const TARGET_SMALL_MS = 5;
const TARGET_INCREMENTAL = 0.05;
const MB = 1024 * 1024;

interface TreeInfo {
  files: number;
  bytes: number;
  /** A small file to change for the incremental snapshot (relative to the tree). */
  sample: string;
}

/** Builds a tree once into `dir` (via a temp dir and a rename, so a half-built tree is never reused). */
async function cached(dir: string, build: (into: string) => Promise<TreeInfo>): Promise<TreeInfo> {
  const infoFile = `${dir}.json`;
  if (existsSync(dir) && existsSync(infoFile)) return JSON.parse(await readFile(infoFile, 'utf8')) as TreeInfo;
  await mkdir(CACHE, { recursive: true });
  await rm(dir, { recursive: true, force: true });
  const temp = `${dir}.building-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp);
  const info = await build(temp);
  await rename(temp, dir);
  await writeFile(infoFile, JSON.stringify(info));
  return info;
}

const randInt = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1));

/** 10,000 files of 1 B-16 KiB in 20 x 10 nested dirs, plus 4 files of 15-20 MB. */
async function buildBig(into: string): Promise<TreeInfo> {
  let files = 0;
  let bytes = 0;
  for (let a = 0; a < 20; a++) {
    for (let b = 0; b < 10; b++) {
      const d = join(into, `d${a}`, `s${b}`);
      await mkdir(d, { recursive: true });
      for (let f = 0; f < 50; f++) {
        const content = randomBytes(randInt(1, 16 * 1024));
        await writeFile(join(d, `f${f}.bin`), content);
        files++;
        bytes += content.length;
      }
    }
  }
  await mkdir(join(into, 'large'));
  for (let i = 0; i < 4; i++) {
    const content = randomBytes(randInt(15 * MB, 20 * MB));
    await writeFile(join(into, 'large', `large${i}.bin`), content);
    files++;
    bytes += content.length;
  }
  return { files, bytes, sample: 'd7/s3/f10.bin' };
}

/** ~100 files totalling 1 MB in 4 dirs. */
async function buildSmall(into: string): Promise<TreeInfo> {
  let bytes = 0;
  for (let i = 0; i < 100; i++) {
    const d = join(into, `d${i % 4}`);
    await mkdir(d, { recursive: true });
    const content = randomBytes(Math.floor(MB / 100));
    await writeFile(join(d, `f${i}.txt`), content);
    bytes += content.length;
  }
  return { files: 100, bytes, sample: 'd0/f0.txt' };
}

/** `sha256sum` over every file of `dir`, timed from spawn to exit. */
function sha256sum(dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 sha256sum > /dev/null', 'sh', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(now() - t0) : reject(new Error(`sha256sum pipeline exited ${code}`))));
  });
}

async function timeScan(dir: string): Promise<number> {
  const t0 = now();
  await scanTree(dir);
  return now() - t0;
}

const mbps = (bytes: number, msTaken: number): number => bytes / MB / (msTaken / 1000);

export async function snapshotHash(): Promise<void> {
  section('snapshot-hash: scanTree (walk + SHA-256 + Merkle tree) vs sha256sum, same files, same run');
  const t0 = now();
  const big = await cached(BIG_TREE, buildBig);
  const small = await cached(SMALL_TREE, buildSmall);
  console.log(`  trees:   ${BIG_TREE} (${big.files} files, ${(big.bytes / MB).toFixed(1)} MB), ${SMALL_TREE} (${small.files} files, ${(small.bytes / MB).toFixed(2)} MB)`);
  console.log(`           ready in ${ms(now() - t0)} ms (cached across runs)`);

  // Throughput: one warm-up of each (page cache), then alternating rounds.
  await timeScan(BIG_TREE);
  await sha256sum(BIG_TREE);
  const faasMs: number[] = [];
  const baseMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    faasMs.push(await timeScan(BIG_TREE));
    baseMs.push(await sha256sum(BIG_TREE));
  }
  const faas = summarize(faasMs);
  const base = summarize(baseMs);
  const faasRate = mbps(big.bytes, faas.p50);
  const baseRate = mbps(big.bytes, base.p50);
  console.log('');
  console.log(`  hashing throughput over ${big.files} files / ${(big.bytes / MB).toFixed(1)} MB, ${ROUNDS} rounds each, alternating (p50):`);
  printTable(['series', 'p50 ms', 'min ms', 'max ms', 'MB/s (p50)'], [
    ['faas scanTree (hash only)', ms(faas.p50), ms(faas.min), ms(faas.max), faasRate.toFixed(0)],
    ['sha256sum (find | xargs)', ms(base.p50), ms(base.min), ms(base.max), baseRate.toFixed(0)],
  ]);
  const tput = faasRate / baseRate;
  console.log(`  ratio faas/sha256sum throughput: ${ratio(faasRate, baseRate)}  (target >= ${TARGET_THROUGHPUT}x: ${verdict(tput >= TARGET_THROUGHPUT)})`);

  // 1 MB snapshot: scanTree + hashSnapshot.
  const hasher = new SnapshotHasher();
  const snapOnce = async (): Promise<number> => {
    const s = now();
    const { fsHash } = await scanTree(SMALL_TREE);
    hasher.hashSnapshot(null, fsHash, {}, null);
    return now() - s;
  };
  for (let i = 0; i < 5; i++) {
    await snapOnce();
    await sha256sum(SMALL_TREE);
  }
  const snapMs: number[] = [];
  const smallBaseMs: number[] = [];
  for (let i = 0; i < SMALL_RUNS; i++) {
    snapMs.push(await snapOnce());
    smallBaseMs.push(await sha256sum(SMALL_TREE));
  }
  const snap = summarize(snapMs);
  const smallBase = summarize(smallBaseMs);
  console.log('');
  console.log(`  1 MB snapshot (${small.files} files), ${SMALL_RUNS} runs each, alternating:`);
  printTable(['series', 'p50 ms', 'p90 ms', 'p99 ms', 'min ms'], [
    ['faas scanTree + hashSnapshot', ms(snap.p50), ms(snap.p90), ms(snap.p99), ms(snap.min)],
    ['sha256sum (spawn to exit)', ms(smallBase.p50), ms(smallBase.p90), ms(smallBase.p99), ms(smallBase.min)],
  ]);
  console.log(`  ratio faas/sha256sum p50: ${ratio(snap.p50, smallBase.p50)}  (target p50 < ${TARGET_SMALL_MS} ms: ${verdict(snap.p50 < TARGET_SMALL_MS)})`);

  // Full then incremental snapshot into a fresh LocalBlobStore.
  const storeDir = await mkdtemp(join(tmpdir(), 'faas-bench-cas-'));
  const samplePath = join(BIG_TREE, big.sample);
  const original = await readFile(samplePath);
  try {
    const blobs = await openLocalBlobStore({ root: storeDir });
    // As the server does per instance: the first scan fills a file hash cache, the next reads
    // only files whose stat changed.
    const cache = new FileHashCache();
    cache.begin(Date.now());
    let s = now();
    const full = await scanTree(BIG_TREE, { blobs, cache });
    const fullMs = now() - s;
    cache.commit('full');
    const changed = Buffer.from(original);
    changed[0] = (changed[0]! + 1) & 0xff;
    await writeFile(samplePath, changed);
    cache.begin(Date.now());
    s = now();
    const inc = await scanTree(BIG_TREE, { blobs, cache });
    const incMs = now() - s;
    if (inc.fsHash === full.fsHash) throw new Error('the incremental snapshot has the same fs hash as the full one');
    console.log('');
    console.log(`  snapshot into a fresh LocalBlobStore (${storeDir}), then again after changing one ${original.length}-byte file:`);
    printTable(['snapshot', 'ms', 'storedBytes', 'files'], [
      ['full', ms(fullMs), full.storedBytes, full.fileCount],
      [`incremental (1 file changed; ${inc.fileCount - inc.cacheHits.length} read)`, ms(incMs), inc.storedBytes, inc.fileCount],
    ]);
    const timeRatio = incMs / fullMs;
    const bytesRatio = inc.storedBytes / full.storedBytes;
    console.log(`  ratio incremental/full: time ${(timeRatio * 100).toFixed(1)}% (target < ${TARGET_INCREMENTAL * 100}%: ${verdict(timeRatio < TARGET_INCREMENTAL)}), ` +
      `stored bytes ${(bytesRatio * 100).toFixed(4)}% (target < ${TARGET_INCREMENTAL * 100}%: ${verdict(bytesRatio < TARGET_INCREMENTAL)})`);
    console.log(`  (blobs are put one by one here, each made durable alone; the server batches them: see the snapshots section)`);
  } finally {
    await writeFile(samplePath, original);
    await rm(storeDir, { recursive: true, force: true });
  }
}
