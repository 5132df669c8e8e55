/**
 * File sync against rsync, on generated trees, in the same run:
 *
 * 1. local: `new FileSynchronizer(options).sync(src, dst)` (@faas/protocol/sync, in process)
 *    vs `rsync -a src/ dst/`, and with checksums: `{checksumOnly: true}` vs `rsync -ac`.
 * 2. loopback: the SDK's `syncFiles(client, instanceId, localDir, '/workspace/tree')` against a
 *    real server on 127.0.0.1, in a process of its own as the daemon is (bench/lib/server-process.ts) vs `rsync -a src/ rsync://127.0.0.1:PORT/bench/tree/` (an rsync
 *    daemon on 127.0.0.1 writing into a temp dir), and `-ac` vs `checksumOnly`. Skipped, with a
 *    line saying so, while the SDK has no syncFiles.
 * 3. one 1 GiB file: FileSynchronizer (and the SDK upload, when there is one) in MB/s beside
 *    `rsync -a` (and the daemon) and a plain `cat src > dst`.
 *
 * The tree (a): 5,000 small files (200 B-8 KiB) in 100 dirs plus 20 files of 5-20 MB, ~250 MB,
 * synced to a fresh destination; (b) the same again, nothing changed; (c) 1% of the files
 * changed (49 small ones, half of them same-size overwrites, half appends, plus one large file
 * with a same-size 4 KiB overwrite in the middle), mtimes moved 100 s on so a quick check
 * (size + mtime, rsync's second granularity included) sees every change. Each case runs
 * BENCH_SYNC_N times (default 5) per tool, the two tools alternating which goes first; p50 is
 * the figure (of 5: the write-heavy samples are bimodal here, see docs/benchmarks.md#sync). Before each timed sample `sync(1)` flushes dirty pages (untimed), so one tool's
 * writeback does not land in the other's time; the source stays in the page cache (warm, as
 * for a developer re-syncing a tree they just built). After each case both destinations are
 * checked against the source (`diff -r` for content, `rsync -ani` for sizes, mtimes, modes).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createXXHash128 } from 'hash-wasm';
import { buildManifest, FileSynchronizer, type FileSynchronizerOptions, type FileSyncResult } from '@faas/protocol/sync';
import { Api, type WireInstance } from './lib/api.ts';
import { startServerProcess, type ServerProcess } from './lib/server-process.ts';
import { envInt, ms, now, printTable, ratio, section, summarize, verdict } from './lib/stats.ts';

const MB = 1024 * 1024;
/** Targets: every case at most rsync's time; one large file at >= 500 MB/s (aim 1 GB/s). */
const TARGET_RATIO = 1.0;
const TARGET_MBPS = 500;
const AIM_MBPS = 1000;
const SMALL_DIRS = 100;
const SMALL_PER_DIR = 50;
const LARGE_COUNT = 20;
const CHANGED_SMALL = 49;
const BIG_FILE = 1024 * MB;

// ---------------------------------------------------------------------------------------------
// Trees

/** mulberry32: a seeded PRNG, so the tree and the changes are the same from run to run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Tree {
  root: string;
  small: string[];
  large: string[];
  files: number;
  bytes: number;
}

/** Writes `size` random bytes to `path`, 1 MiB at a time. */
function writeRandom(path: string, size: number, buf: Buffer): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      let off = 0;
      while (off < n) off += writeSync(fd, buf, off, n - off);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The ~250 MB tree: d000..d099 with 50 files of 200 B-8 KiB each, large/l00..l19 of 5-20 MB. */
function generateTree(root: string): Tree {
  const rnd = prng(1);
  const pool = randomFillSync(Buffer.allocUnsafe(16 * MB));
  const tree: Tree = { root, small: [], large: [], files: 0, bytes: 0 };
  for (let d = 0; d < SMALL_DIRS; d++) {
    const dir = `d${String(d).padStart(3, '0')}`;
    mkdirSync(join(root, dir), { recursive: true });
    for (let f = 0; f < SMALL_PER_DIR; f++) {
      const rel = `${dir}/f${String(f).padStart(3, '0')}.bin`;
      const size = 200 + Math.floor(rnd() * (8192 - 200 + 1));
      const off = Math.floor(rnd() * (pool.length - size));
      writeFileSync(join(root, rel), pool.subarray(off, off + size));
      tree.small.push(rel);
      tree.bytes += size;
    }
  }
  mkdirSync(join(root, 'large'));
  const buf = Buffer.allocUnsafe(MB);
  for (let i = 0; i < LARGE_COUNT; i++) {
    const rel = `large/l${String(i).padStart(2, '0')}.bin`;
    const size = (5 + Math.floor(rnd() * 16)) * MB;
    writeRandom(join(root, rel), size, buf);
    tree.large.push(rel);
    tree.bytes += size;
  }
  tree.files = tree.small.length + tree.large.length;
  return tree;
}

/** Opens, writes `data` at `position`, closes (no truncation). */
function pwrite(path: string, data: Buffer, position: number, append = false): void {
  const fd = openSync(path, append ? 'a' : 'r+');
  try {
    writeSync(fd, data, 0, data.length, append ? null : position);
  } finally {
    closeSync(fd);
  }
}

/**
 * Changes 1% of the files (round `round` picks other ones): CHANGED_SMALL small files, even
 * ones overwritten in place (same size), odd ones appended to, and one large file overwritten
 * (4 KiB, same size) in the middle. Each changed file's mtime is set 100 s after its old one.
 */
function changeOnePercent(tree: Tree, round: number): string[] {
  const rnd = prng(1000 + round);
  const picked = new Set<string>();
  while (picked.size < CHANGED_SMALL) picked.add(tree.small[Math.floor(rnd() * tree.small.length)]!);
  const changed: string[] = [];
  let k = 0;
  for (const rel of picked) {
    const abs = join(tree.root, rel);
    const st = statSync(abs);
    if (k++ % 2 === 0) {
      const n = Math.min(64, st.size);
      pwrite(abs, randomFillSync(Buffer.allocUnsafe(n)), Math.floor(rnd() * (st.size - n)));
    } else {
      pwrite(abs, randomFillSync(Buffer.allocUnsafe(100)), 0, true);
      tree.bytes += 100;
    }
    utimesSync(abs, st.atime, new Date(st.mtimeMs + 100_000));
    changed.push(rel);
  }
  const big = tree.large[round % tree.large.length]!;
  const abs = join(tree.root, big);
  const st = statSync(abs);
  pwrite(abs, randomFillSync(Buffer.allocUnsafe(4096)), Math.floor(st.size / 2));
  utimesSync(abs, st.atime, new Date(st.mtimeMs + 100_000));
  changed.push(big);
  return changed;
}

// ---------------------------------------------------------------------------------------------
// Running and checking

/** `argv`, timed from spawn to close; throws on a non-zero exit. */
function timeCommand(argv: readonly string[], env?: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], ...(env ? { env } : {}) });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(now() - t0) : reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr.trim().slice(0, 500)}`))));
  });
}

/** Flushes dirty pages (untimed), so the writeback of one sample does not land in the next. */
function flush(): void {
  spawnSync('sync');
}

/**
 * Throws unless `dst` holds what `src` holds: `diff -r` for content, `rsync -ani` (dry run,
 * itemized) for sizes, mtimes (to the second), modes and types, not owners (the server writes
 * an instance's files as its user; rsync as root keeps root). The roots' own attributes are
 * not compared (FileSynchronizer leaves the destination root's mtime alone).
 */
function verifySame(src: string, dst: string, what: string): void {
  const diff = spawnSync('diff', ['-r', '-q', src, dst], { encoding: 'utf8' });
  if (diff.status !== 0) throw new Error(`${what}: destination differs from the source: ${(diff.stdout + diff.stderr).trim().slice(0, 500)}`);
  const itemized = spawnSync('rsync', ['-ani', '--no-o', '--no-g', '--out-format=%i %n', `${src}/`, `${dst}/`], { encoding: 'utf8' });
  if (itemized.status !== 0) throw new Error(`${what}: rsync -ani exited ${itemized.status}: ${itemized.stderr.trim()}`);
  const lines = itemized.stdout.split('\n').filter((l) => l !== '' && !l.endsWith(' ./'));
  if (lines.length > 0) throw new Error(`${what}: attributes differ from the source: ${lines.slice(0, 5).join('; ')}${lines.length > 5 ? ` (+${lines.length - 5})` : ''}`);
}

/** A free TCP port on 127.0.0.1 (closed again: rsync binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** An rsync daemon on 127.0.0.1, module `bench` = a temp dir, writable, as root, no chroot. */
class RsyncDaemon {
  private constructor(
    readonly port: number,
    readonly moduleDir: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(base: string): Promise<RsyncDaemon> {
    const moduleDir = join(base, 'module');
    mkdirSync(moduleDir, { recursive: true });
    const conf = join(base, 'rsyncd.conf');
    writeFileSync(
      conf,
      [
        `pid file = ${join(base, 'rsyncd.pid')}`,
        `log file = ${join(base, 'rsyncd.log')}`,
        'use chroot = no',
        '[bench]',
        `  path = ${moduleDir}`,
        '  read only = false',
        '  uid = root',
        '  gid = root',
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const child = spawn('rsync', ['--daemon', '--no-detach', `--port=${port}`, `--address=127.0.0.1`, `--config=${conf}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const daemon = new RsyncDaemon(port, moduleDir, child);
    const deadline = now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`rsync --daemon exited ${child.exitCode}: ${stderr.trim()}`);
      const ok = await new Promise<boolean>((resolve) => {
        const c = connect(port, '127.0.0.1');
        c.once('connect', () => {
          c.destroy();
          resolve(true);
        });
        c.once('error', () => resolve(false));
      });
      if (ok) return daemon;
      if (now() > deadline) {
        daemon.close();
        throw new Error(`rsync --daemon did not listen on ${port} within 10 s: ${stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  url(path: string): string {
    return `rsync://127.0.0.1:${this.port}/bench/${path}`;
  }

  close(): void {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
  }
}

// ---------------------------------------------------------------------------------------------
// Pairings

interface Tool {
  name: string;
  /** One timed sync of the tree at `src` onto this tool's destination; returns ms. */
  run(src: string): Promise<number>;
  /** Removes the destination (untimed), for a fresh-destination case. */
  reset(): Promise<void>;
  /** The destination as a host path, for the checks. */
  hostDir: string;
}

interface CaseResult {
  label: string;
  ours: number[];
  theirs: number[];
}

/**
 * The three cases for one pair of tools on `tree`: (a) fresh destination, (b) no change,
 * (c) 1% changed. `roundBase` offsets the change rounds so each pairing changes other files.
 */
async function runCases(tree: Tree, ours: Tool, theirs: Tool, n: number, roundBase: number, note: (s: string) => void): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const pair = async (i: number, r: CaseResult) => {
    const order = i % 2 === 0 ? ([ours, theirs] as const) : ([theirs, ours] as const);
    for (const tool of order) {
      flush();
      const t = await tool.run(tree.root);
      (tool === ours ? r.ours : r.theirs).push(t);
    }
  };
  const a: CaseResult = { label: '(a) fresh destination', ours: [], theirs: [] };
  for (let i = 0; i < n; i++) {
    await ours.reset();
    await theirs.reset();
    await pair(i, a);
  }
  verifySame(tree.root, ours.hostDir, `${ours.name} (a)`);
  verifySame(tree.root, theirs.hostDir, `${theirs.name} (a)`);
  results.push(a);

  const b: CaseResult = { label: '(b) no change', ours: [], theirs: [] };
  for (let i = 0; i < n; i++) await pair(i, b);
  results.push(b);

  const c: CaseResult = { label: '(c) 1% of files changed', ours: [], theirs: [] };
  let changed = 0;
  for (let i = 0; i < n; i++) {
    changed = changeOnePercent(tree, roundBase + i).length;
    await pair(i, c);
  }
  verifySame(tree.root, ours.hostDir, `${ours.name} (c)`);
  verifySame(tree.root, theirs.hostDir, `${theirs.name} (c)`);
  note(`(c) changes ${changed} files per round (${CHANGED_SMALL} small: half same-size overwrites, half appends; 1 large: a same-size 4 KiB overwrite)`);
  results.push(c);
  return results;
}

function printCases(title: string, oursName: string, theirsName: string, rows: CaseResult[], targets: string[][]): void {
  console.log('');
  console.log(title);
  const range = (xs: number[]) => {
    const s = summarize(xs);
    return `${ms(s.min)}-${ms(s.max)}`;
  };
  printTable(
    ['case', `${oursName} p50 ms`, 'min-max', `${theirsName} p50 ms`, 'min-max', 'ratio'],
    rows.map((r) => [r.label, ms(summarize(r.ours).p50), range(r.ours), ms(summarize(r.theirs).p50), range(r.theirs), ratio(summarize(r.ours).p50, summarize(r.theirs).p50)]),
  );
  for (const r of rows) {
    const o = summarize(r.ours).p50;
    const t = summarize(r.theirs).p50;
    targets.push([`${oursName} ${r.label} <= ${theirsName}`, ratio(o, t), verdict(o / t <= TARGET_RATIO)]);
  }
}

/** FileSynchronizer onto a local dir. */
function localTool(options: FileSynchronizerOptions, dst: string, last: { result?: FileSyncResult }): Tool {
  return {
    name: `FileSynchronizer(${JSON.stringify(options)})`,
    hostDir: dst,
    async run(src) {
      const t0 = now();
      last.result = await new FileSynchronizer(options).sync(src, dst);
      return now() - t0;
    },
    async reset() {
      rmSync(dst, { recursive: true, force: true });
    },
  };
}

function rsyncTool(flags: string, src: (s: string) => string, target: string, hostDir: string): Tool {
  return {
    name: `rsync ${flags}`,
    hostDir,
    run: (s) => timeCommand(['rsync', flags, src(s), target]),
    async reset() {
      rmSync(hostDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The SDK's syncFiles, found at run time (it may not exist yet)

type SdkSyncFiles = (instanceId: string, localDir: string, remoteDir: string, options: Record<string, unknown>) => Promise<unknown>;

/**
 * The SDK's `syncFiles`, as a method of FaaSPlatformClient or an export of `@faas/sdk/sync`
 * (function, or a class taking the client); undefined when there is none.
 */
async function findSdkSyncFiles(url: string, apiKey: string): Promise<{ fn: SdkSyncFiles; where: string } | undefined> {
  let sdk: Record<string, unknown>;
  try {
    sdk = (await import('@faas/sdk')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const Client = sdk.FaaSPlatformClient as new (o: Record<string, unknown>) => Record<string, unknown>;
  const client = new Client({ platformUrl: url, apiKey, timeout: 600_000 });
  const method = client.syncFiles;
  if (typeof method === 'function') return { fn: (...args) => (method as SdkSyncFiles).apply(client, args), where: 'client.syncFiles(' };
  const subpath: string = '@faas/sdk/sync';
  let mod: Record<string, unknown> | undefined;
  try {
    mod = (await import(subpath)) as Record<string, unknown>;
  } catch {
    mod = undefined;
  }
  const exported = mod?.syncFiles ?? sdk.syncFiles;
  if (typeof exported === 'function') {
    // syncFiles(client, instanceId, localDir, remoteDir, options), as packages/sdk/src/sync/sync-files.ts has it.
    const f = exported as (...a: unknown[]) => Promise<unknown>;
    return { fn: (...args) => f(client, ...args), where: 'syncFiles(client, ' };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------

export async function sync(): Promise<void> {
  const n = envInt('BENCH_SYNC_N', 5);
  // BENCH_SYNC_PARTS=local,loopback,big (default all): run only some pairings, e.g. while tuning one.
  const parts = new Set((process.env.BENCH_SYNC_PARTS ?? 'local,loopback,big').split(',').map((p) => p.trim()));
  section('sync: FileSynchronizer and SDK syncFiles vs rsync, ~250 MB tree and one 1 GiB file');
  const base = mkdtempSync(join(tmpdir(), 'faas-bench-sync-'));
  const targets: string[][] = [];
  let daemon: RsyncDaemon | undefined;
  let server: ServerProcess | undefined;
  let api: Api | undefined;
  const instanceIds: string[] = [];
  try {
    let t0 = now();
    const tree = generateTree(join(base, 'src'));
    console.log(`  tree:  ${tree.files} files (${SMALL_DIRS} dirs x ${SMALL_PER_DIR} of 200 B-8 KiB, ${LARGE_COUNT} of 5-20 MB), ${(tree.bytes / MB).toFixed(1)} MB, generated in ${ms(now() - t0)} ms`);
    console.log(`  rsync: ${spawnSync('rsync', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]}; N=${n} per case and tool, p50; the two tools alternate which goes first`);

    // 1. Local.
    const last: { result?: FileSyncResult } = {};
    const fsDst = join(base, 'dst-fs');
    const rsDst = join(base, 'dst-rsync');
    const local = (flags: string, options: FileSynchronizerOptions) => ({
      ours: localTool(options, fsDst, last),
      theirs: rsyncTool(flags, (s) => `${s}/`, `${rsDst}/`, rsDst),
    });
    let round = 0;
    const infos: string[] = [];
    for (const [flags, options, label] of parts.has('local')
      ? ([
          ['-a', {}, 'quick check (size + mtime)'],
          ['-ac', { checksumOnly: true }, 'checksums'],
        ] as const)
      : []) {
      const p = local(flags, options);
      const rows = await runCases(tree, p.ours, p.theirs, n, round, (s) => infos.push(s));
      round += n;
      const r = last.result;
      printCases(
        `  1. local, ${label}: new FileSynchronizer(${JSON.stringify(options)}).sync(src, dst) vs rsync ${flags} src/ dst/:`,
        'FileSynchronizer',
        `rsync ${flags}`,
        rows,
        targets,
      );
      if (r) console.log(`     last FileSynchronizer result (case c): ${r.filesCopied} copied, ${r.filesUpdated} updated, ${r.filesSkipped} skipped, ${(r.bytesTransferred / MB).toFixed(1)} MB written`);
    }
    if (infos[0]) console.log(`     ${infos[0]}`);

    // Where a no-change sync spends its time: one side's manifest, with and without hashes, beside an lstat walk.
    const where: Array<[string, () => Promise<number>, number[]]> = [
      ['buildManifest(src): walk + lstat of one side (a no-change sync walks both, one after the other)', async () => {
        const t = now();
        await buildManifest(tree.root);
        return now() - t;
      }, []],
      ['buildManifest(src, {checksumOnly: true}): one side walked and XXH3-128 checksummed', async () => {
        const t = now();
        await buildManifest(tree.root, { checksumOnly: true });
        return now() - t;
      }, []],
      ['find src -printf size/mtime (lstat walk, baseline)', () => timeCommand(['find', tree.root, '-printf', '%s %T@\\n']), []],
      ['rsync -a --dry-run src/ dst/ (no change; sender and generator walk at once)', () => timeCommand(['rsync', '-a', '--dry-run', `${tree.root}/`, `${rsDst}/`]), []],
    ];
    if (parts.has('local')) {
      for (let i = 0; i < n; i++) for (let k = 0; k < where.length; k++) where[(i + k) % where.length]![2].push(await where[(i + k) % where.length]![1]());
      console.log('');
      console.log(`  where the time of a no-change local sync goes (same tree, N=${n} each, rotating order):`);
      printTable(['part', 'p50 ms', 'min ms', 'max ms'], where.map(([label, , xs]) => [label, ms(summarize(xs).p50), ms(summarize(xs).min), ms(summarize(xs).max)]));
    }

    // 2. Loopback: server + SDK vs rsync daemon.
    daemon = await RsyncDaemon.start(join(base, 'daemon'));
    server = await startServerProcess('bench');
    const url = server.url;
    api = new Api(url, 'bench');
    const sdk = await findSdkSyncFiles(url, 'bench');
    console.log('');
    const d = daemon;
    if (sdk === undefined) {
      console.log(`  2. loopback: skipped: SDK syncFiles not available (rsync daemon on 127.0.0.1:${d.port} was started and is ready)`);
      targets.push(['SDK syncFiles (a), (b), (c) <= rsync daemon', 'skipped', 'n/a']);
    } else if (parts.has('loopback') || parts.has('big')) {
      const inst = await api.call<WireInstance>('POST', '/api/v1/instances', { limits: { memory_mb: 2048 } }, 201);
      console.log(`  2. loopback: faas server (pid ${server.pid}, its own process) at ${url}, instance ${inst.id}; rsync daemon (its own process) on 127.0.0.1:${d.port}`);
      instanceIds.push(inst.id);
      const a = api;
      const merged = join(server.dataDir, 'instances', inst.id, 'merged');
      // The same work for both: rsync's daemon also writes into an instance's overlay (a second
      // instance's /workspace, seen on the host), not into a plain directory.
      const rsyncInst = await api.call<WireInstance>('POST', '/api/v1/instances', { limits: { memory_mb: 2048 } }, 201);
      instanceIds.push(rsyncInst.id);
      rmSync(d.moduleDir, { recursive: true, force: true });
      symlinkSync(join(server.dataDir, 'instances', rsyncInst.id, 'merged', 'workspace'), d.moduleDir);
      console.log(`     rsync's module is instance ${rsyncInst.id}'s /workspace, so both write through an overlay`);
      for (const [flags, options, label] of parts.has('loopback')
        ? ([
            ['-a', {}, 'quick check (size + mtime)'],
            ['-ac', { checksumOnly: true }, 'checksums'],
          ] as const)
        : []) {
        const ours: Tool = {
          name: `SDK syncFiles ${JSON.stringify(options)}`,
          hostDir: join(merged, 'workspace', 'tree'),
          async run(src) {
            const t = now();
            await sdk.fn(inst.id, src, '/workspace/tree', { ...options });
            return now() - t;
          },
          async reset() {
            await a.exec(inst.id, 'rm -rf /workspace/tree');
          },
        };
        const theirs = rsyncTool(flags, (s) => `${s}/`, d.url('tree/'), join(d.moduleDir, 'tree'));
        const rows = await runCases(tree, ours, theirs, n, round, () => {});
        round += n;
        printCases(
          `  2. loopback, ${label}: ${sdk.where}id, src, '/workspace/tree', ${JSON.stringify(options)}) vs rsync ${flags} src/ rsync://127.0.0.1:${d.port}/bench/tree/:`,
          'SDK syncFiles',
          `rsync ${flags} daemon`,
          rows,
          targets,
        );
        if (options.checksumOnly === true) {
          console.log('     checksums: the first (b) sample reads every candidate on both sides; later samples reuse the checksums each side');
          console.log('     remembers by file identity (inode, size, mtime, ctime; docs/sync-protocol.md); rsync -c re-reads every time');
        }
      }
    }
    rmSync(tree.root, { recursive: true, force: true });
    rmSync(fsDst, { recursive: true, force: true });
    rmSync(rsDst, { recursive: true, force: true });
    rmSync(join(d.moduleDir, 'tree'), { recursive: true, force: true });

    // 3. One 1 GiB file.
    if (!parts.has('big')) {
      console.log('');
      printTable(['target', 'measured', 'result'], targets);
      return;
    }
    const bigSrc = join(base, 'big');
    mkdirSync(bigSrc);
    t0 = now();
    writeRandom(join(bigSrc, 'big.bin'), BIG_FILE, Buffer.allocUnsafe(MB));
    const genMs = now() - t0;
    const dst = (name: string) => join(base, `big-${name}`);
    const series: Array<{ name: string; run: () => Promise<number>; reset: () => Promise<void>; samples: number[]; baseline: boolean }> = [
      {
        name: 'FileSynchronizer().sync',
        run: async () => {
          const t = now();
          await new FileSynchronizer().sync(bigSrc, dst('fs'));
          return now() - t;
        },
        reset: async () => rmSync(dst('fs'), { recursive: true, force: true }),
        samples: [],
        baseline: false,
      },
      {
        name: 'rsync -a big/ dst/ (baseline)',
        run: () => timeCommand(['rsync', '-a', `${bigSrc}/`, `${dst('rsync')}/`]),
        reset: async () => rmSync(dst('rsync'), { recursive: true, force: true }),
        samples: [],
        baseline: true,
      },
      {
        name: 'cat big.bin > dst (baseline)',
        run: () => timeCommand(['sh', '-c', 'cat "$1" > "$2"', 'sh', join(bigSrc, 'big.bin'), dst('cat')]),
        reset: async () => rmSync(dst('cat'), { force: true }),
        samples: [],
        baseline: true,
      },
    ];
    if (sdk !== undefined && api !== undefined) {
      const a = api;
      const id = instanceIds[0]!;
      series.push(
        {
          name: 'SDK syncFiles upload',
          run: async () => {
            const t = now();
            await sdk.fn(id, bigSrc, '/workspace/big', {});
            return now() - t;
          },
          reset: async () => {
            await a.exec(id, 'rm -rf /workspace/big /workspace/tree');
          },
          samples: [],
          baseline: false,
        },
        {
          name: 'rsync -a big/ rsync://127.0.0.1/... (baseline)',
          run: () => timeCommand(['rsync', '-a', `${bigSrc}/`, d.url('big/')]),
          reset: async () => rmSync(join(d.moduleDir, 'big'), { recursive: true, force: true }),
          samples: [],
          baseline: true,
        },
      );
    }
    for (let i = 0; i < n; i++) {
      // Rotate the order so each series goes first once in a while.
      for (let k = 0; k < series.length; k++) {
        const s = series[(i + k) % series.length]!;
        await s.reset();
        flush();
        s.samples.push(await s.run());
        await s.reset();
      }
    }
    flush();
    const mbps = (msec: number) => BIG_FILE / MB / (msec / 1000);
    console.log('');
    console.log(`  3. one 1 GiB file (random content, generated in ${ms(genMs)} ms) to a fresh destination, N=${n} per series, rotating order:`);
    const p50 = (name: string) => summarize(series.find((s) => s.name.startsWith(name))!.samples).p50;
    printTable(
      ['series', 'p50 ms', 'min ms', 'max ms', 'MB/s (p50)', 'vs rsync', 'vs cat'],
      series.map((s) => {
        const sum = summarize(s.samples);
        const rs = s.name.startsWith('SDK') || s.name.includes('rsync://') ? p50('rsync -a big/ rsync://') : p50('rsync -a big/ dst/');
        return [s.name, ms(sum.p50), ms(sum.min), ms(sum.max), mbps(sum.p50).toFixed(0), ratio(sum.p50, rs), ratio(sum.p50, p50('cat'))];
      }),
    );
    if (sdk !== undefined) {
      const hashMs: number[] = [];
      const xxh = await createXXHash128();
      const buf = Buffer.allocUnsafe(MB);
      for (let i = 0; i < n; i++) {
        const t = now();
        const fd = openSync(join(bigSrc, 'big.bin'), 'r');
        xxh.init();
        for (let got; (got = readSync(fd, buf, 0, MB, null)) > 0; ) xxh.update(buf.subarray(0, got));
        xxh.digest('hex');
        closeSync(fd);
        hashMs.push(now() - t);
      }
      const h = summarize(hashMs).p50;
      console.log(`  (info) read + XXH3-128 of the 1 GiB file alone (N=${n}): p50 ${ms(h)} ms (${mbps(h).toFixed(0)} MB/s): what each side of an upload spends checking the transfer`);
    }
    const fsBig = p50('FileSynchronizer');
    targets.push([`FileSynchronizer 1 GiB >= ${TARGET_MBPS} MB/s (aim ${AIM_MBPS})`, `${mbps(fsBig).toFixed(0)} MB/s`, verdict(mbps(fsBig) >= TARGET_MBPS)]);
    targets.push(['FileSynchronizer 1 GiB <= rsync -a', ratio(fsBig, p50('rsync -a big/ dst/')), verdict(fsBig <= p50('rsync -a big/ dst/'))]);
    if (sdk !== undefined) {
      const up = p50('SDK');
      targets.push([`SDK upload 1 GiB >= ${TARGET_MBPS} MB/s (aim ${AIM_MBPS})`, `${mbps(up).toFixed(0)} MB/s`, verdict(mbps(up) >= TARGET_MBPS)]);
      targets.push(['SDK upload 1 GiB <= rsync daemon', ratio(up, p50('rsync -a big/ rsync://')), verdict(up <= p50('rsync -a big/ rsync://'))]);
    } else {
      targets.push([`SDK upload 1 GiB >= ${TARGET_MBPS} MB/s`, 'skipped', 'n/a']);
    }

    console.log('');
    printTable(['target', 'measured', 'result'], targets);
  } finally {
    if (api !== undefined) for (const id of instanceIds) await api.deleteInstance(id).catch((err: unknown) => console.log(`  cleanup problem: ${(err as Error).message}`));
    if (server !== undefined) await server.close();
    daemon?.close();
    rmSync(base, { recursive: true, force: true });
  }
}
