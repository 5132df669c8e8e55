/**
 * Snapshots end to end over HTTP: a real server on loopback (the executor as `serve()` builds
 * it, listening on a free port), one instance holding a ~100 MB tree built inside it, then
 * `POST /api/v1/snapshots` (full, then incremental after changing one small file) and
 * `POST /api/v1/branches` (first call materializes the tree; then single branches). Baselines
 * from the same run: `cp -a` + `sha256sum` of the same tree on the host for the full snapshot,
 * a `find | xargs stat` walk of the same tree for the incremental one, raw bwrap `true` and a
 * plain `POST /api/v1/instances` for a branch.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Api, type WireInstance } from './lib/api.ts';
import { RawBwrap } from './lib/baseline.ts';
import { buildApp, type BenchApp } from './lib/faas.ts';
import { Failures } from './lib/failures.ts';
import { Profiler } from './lib/profile.ts';
import { envInt, ms, now, percentile, printTable, ratio, section, summarize, verdict } from './lib/stats.ts';

/** Targets: an incremental snapshot under 5% of the full one (time); one branch p50 under 50 ms. */
const TARGET_INCREMENTAL = 0.05;
const TARGET_BRANCH_P50_MS = 50;
const INCREMENTAL_RUNS = 5;
const BRANCH_COUNT = 10;
const MB = 1024 * 1024;

/** Built inside the instance by one exec: 10,000 files of 200 B-8 KiB in 100 dirs, plus 3 x 25 MB. */
const BUILD_TREE = `
import os, random
random.seed(1)
root = '/workspace/tree'
for d in range(100):
    p = f'{root}/d{d:03d}'
    os.makedirs(p, exist_ok=True)
    for f in range(100):
        with open(f'{p}/f{f:03d}.bin', 'wb') as fh:
            fh.write(os.urandom(random.randint(200, 8192)))
os.makedirs(f'{root}/large', exist_ok=True)
for i in range(3):
    with open(f'{root}/large/large{i}.bin', 'wb') as fh:
        for _ in range(25):
            fh.write(os.urandom(1 << 20))
total = 0
count = 0
for dp, dn, fn in os.walk(root):
    for n in fn:
        total += os.path.getsize(os.path.join(dp, n))
        count += 1
print(count, total)
`;

interface WireSnapshot {
  id: string;
  duration_ms: number;
  stored_bytes: number;
  file_count: number;
  size: number;
}

/** `sh -c script` with positional args, timed from spawn to exit; throws on a non-zero exit. */
function timeShell(script: string, ...args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn('sh', ['-c', script, 'sh', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(now() - t0) : reject(new Error(`sh -c ${JSON.stringify(script)} exited ${code}: ${stderr.trim()}`))));
  });
}

const cpTree = (from: string, to: string) => timeShell('cp -a "$1" "$2"', from, to);
const sha256Tree = (dir: string) => timeShell('find "$1" -type f -print0 | xargs -0 sha256sum > /dev/null', dir);
/** lstat of every file (find's -printf of size, mtime, inode needs one per file): the floor of a stat-based change scan. */
const statWalk = (dir: string) => timeShell('find "$1" -type f -printf "%s %T@ %i\\n" > /dev/null', dir);

const pct = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${((100 * a) / b).toFixed(2)}%` : 'n/a');
const p95 = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 95);
const mb = (bytes: number): string => `${(bytes / MB).toFixed(1)} MB`;

export async function snapshots(): Promise<void> {
  const branchN = envInt('BENCH_SNAPSHOT_BRANCH_N', 15);
  section(`snapshots: POST /snapshots (full, incremental) and POST /branches over HTTP, ~100 MB tree`);
  const raw = RawBwrap.prepare();
  const b = await buildApp();
  const scratch = mkdtempSync(join(tmpdir(), 'faas-bench-snapcopy-'));
  const snapshotIds: string[] = [];
  const instanceIds = new Set<string>();
  let api: Api | undefined;
  try {
    await b.app.fastify.listen({ host: '127.0.0.1', port: 0 });
    const address = b.app.fastify.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    api = new Api(`http://127.0.0.1:${port}`, 'bench');
    const a = api;
    const fullProfile = instrument(b);
    const branchProfile = instrument(b);

    // 1. The tree, built inside the instance (memory raised: the page cache of 100 MB of writes is charged to it).
    const source = await a.call<WireInstance>('POST', '/api/v1/instances', { limits: { memory_mb: 2048 } }, 201);
    instanceIds.add(source.id);
    let t0 = now();
    const [fileCount, treeBytes] = (await a.exec(source.id, BUILD_TREE, 'python')).trim().split(/\s+/).map(Number) as [number, number];
    const buildMs = now() - t0;
    const merged = join(b.config.dataDir, 'instances', source.id, 'merged');
    const tree = join(merged, 'workspace', 'tree');
    console.log(`  tree:    /workspace/tree in ${source.id}: ${fileCount} files, ${mb(treeBytes)}, built by one python3 exec in ${ms(buildMs)} ms`);
    console.log(`           seen on the host at ${tree}`);

    // 2. Full snapshot, between two baseline rounds (cp -a, then sha256sum of every file; page cache warmed first).
    await sha256Tree(tree);
    const cpMs: number[] = [];
    const shaMs: number[] = [];
    const baselineRound = async (i: number) => {
      const dest = join(scratch, `copy${i}`);
      cpMs.push(await cpTree(tree, dest));
      shaMs.push(await sha256Tree(tree));
      rmSync(dest, { recursive: true, force: true });
    };
    await baselineRound(0);
    fullProfile.begin();
    const full = await a.timed<WireSnapshot>('POST', '/api/v1/snapshots', { instance_id: source.id }, 201);
    fullProfile.end('POST /snapshots full, client side');
    snapshotIds.push(full.body.id);
    await baselineRound(1);
    const cpMean = (cpMs[0]! + cpMs[1]!) / 2;
    const shaMean = (shaMs[0]! + shaMs[1]!) / 2;

    // 3. Incremental: change one small file, snapshot; alternating with a stat walk of the same tree.
    const incMs: number[] = [];
    const incServerMs: number[] = [];
    const incStored: number[] = [];
    const incFiles: number[] = [];
    const walkMs: number[] = [];
    await statWalk(merged);
    for (let i = 0; i < INCREMENTAL_RUNS; i++) {
      const file = `/workspace/tree/d${String(10 * i + 7).padStart(3, '0')}/f${String(3 * i + 11).padStart(3, '0')}.bin`;
      await a.exec(source.id, `printf 'change %s\\n' ${i} >> ${file}`);
      if (i % 2 === 1) walkMs.push(await statWalk(merged));
      const inc = await a.timed<WireSnapshot>('POST', '/api/v1/snapshots', { instance_id: source.id }, 201);
      if (i % 2 === 0) walkMs.push(await statWalk(merged));
      snapshotIds.push(inc.body.id);
      incMs.push(inc.ms);
      incServerMs.push(inc.body.duration_ms);
      incStored.push(inc.body.stored_bytes);
      incFiles.push(inc.body.file_count);
    }
    const inc = summarize(incMs);
    const incServer = summarize(incServerMs);
    const walk = summarize(walkMs);
    const incStoredP50 = summarize(incStored).p50;

    console.log('');
    console.log(`  full snapshot vs host copy + hash of the same tree (baseline: 2 rounds, one before and one after the snapshot; mean shown):`);
    printTable(['series', 'ms', 'stored_bytes', 'file_count', 'size'], [
      ['POST /snapshots full, client side', ms(full.ms), full.body.stored_bytes, full.body.file_count, full.body.size],
      ['  duration_ms in the response', ms(full.body.duration_ms), '', '', ''],
      [`cp -a tree (baseline; ${cpMs.map(ms).join(', ')})`, ms(cpMean), '', '', ''],
      [`sha256sum every file (baseline; ${shaMs.map(ms).join(', ')})`, ms(shaMean), '', '', ''],
      ['cp -a + sha256sum (baseline)', ms(cpMean + shaMean), '', '', ''],
    ]);
    console.log(`  ratio full snapshot / (cp -a + sha256sum): ${ratio(full.ms, cpMean + shaMean)};  / cp -a alone: ${ratio(full.ms, cpMean)}`);

    console.log('');
    console.log(`  incremental snapshot after changing one small file, ${INCREMENTAL_RUNS} times (a different file each time), alternating with a stat walk:`);
    printTable(['series', 'n', 'p50 ms', 'min ms', 'max ms', 'stored_bytes p50'], [
      ['POST /snapshots incremental, client side', inc.n, ms(inc.p50), ms(inc.min), ms(inc.max), incStoredP50],
      ['  duration_ms in the response', incServer.n, ms(incServer.p50), ms(incServer.min), ms(incServer.max), ''],
      ['find -printf size/mtime/inode (lstat walk, baseline)', walk.n, ms(walk.p50), ms(walk.min), ms(walk.max), ''],
    ]);
    console.log(`  stored_bytes per incremental: ${incStored.join(', ')};  file_count: ${[...new Set(incFiles)].join(', ')}`);
    const caches = (b.app.services as unknown as { snapshots?: { caches?: Map<string, { size: number }> } }).snapshots?.caches;
    const cached = caches?.get(source.id)?.size;
    if (cached !== undefined) console.log(`  (server's file-hash cache for the instance after ${INCREMENTAL_RUNS + 1} snapshots: ${cached} entries; 0 means every snapshot re-read every file)`);
    console.log(`  ratio incremental/full: time ${pct(inc.p50, full.ms)}, stored bytes ${pct(incStoredP50, full.body.stored_bytes)};  incremental/stat walk: ${ratio(inc.p50, walk.p50)}`);

    // 4. Branches from the full snapshot.
    const branchFailures = new Failures('branch / create', Math.max(3, Math.ceil(branchN / 5)));
    const deleteAll = async (ids: string[]) => {
      for (const id of ids) {
        await a.deleteInstance(id);
        instanceIds.delete(id);
      }
    };
    const branch = async (count: number) => {
      const r = await a.timed<{ branches: WireInstance[] }>('POST', '/api/v1/branches', { snapshot_id: full.body.id, count }, 201);
      for (const i of r.body.branches) instanceIds.add(i.id);
      if (r.body.branches.length !== count) throw new Error(`asked for ${count} branches, got ${r.body.branches.length}`);
      return { ms: r.ms, ids: r.body.branches.map((i) => i.id) };
    };
    branchProfile.begin();
    const first = await branch(BRANCH_COUNT);
    branchProfile.end(`first POST /branches count=${BRANCH_COUNT}, client side`);
    await deleteAll(first.ids);
    const again = await branch(BRANCH_COUNT);
    await deleteAll(again.ids);

    const branchMs: number[] = [];
    const createMs: number[] = [];
    const rawMs: number[] = [];
    const plainCreate = async () => {
      const r = await a.timed<WireInstance>('POST', '/api/v1/instances', {}, 201);
      instanceIds.add(r.body.id);
      await deleteAll([r.body.id]);
      return r.ms;
    };
    const sample = async (fn: () => Promise<number>, into: number[], keep: boolean) => {
      try {
        const v = await fn();
        if (keep) into.push(v);
      } catch (err) {
        branchFailures.record(err);
      }
    };
    const oneBranch = async () => {
      const r = await branch(1);
      await deleteAll(r.ids);
      return r.ms;
    };
    const rawTrue = async () => (await raw.run(['/usr/bin/true'])).ms;
    for (let i = 0; i < 3; i++) {
      await sample(oneBranch, branchMs, false);
      await sample(plainCreate, createMs, false);
      await sample(rawTrue, rawMs, false);
    }
    for (let i = 0; i < branchN; i++) {
      // Rotate the order so drift and after-effects (deletes) hit every series alike.
      const order = [
        () => sample(oneBranch, branchMs, true),
        () => sample(plainCreate, createMs, true),
        () => sample(rawTrue, rawMs, true),
      ];
      for (let k = 0; k < order.length; k++) await order[(i + k) % order.length]!();
    }
    const br = summarize(branchMs);
    const cr = summarize(createMs);
    const rw = summarize(rawMs);
    console.log('');
    console.log(`  branches from the full snapshot (${full.body.file_count} files, ${mb(full.body.size)}); single calls N=${branchN} after 3 warm-ups, each instance deleted after (untimed):`);
    printTable(['series', 'n', 'p50 ms', 'p95 ms', 'mean ms', 'min ms', 'max ms'], [
      [`first POST /branches count=${BRANCH_COUNT} (materializes the tree)`, 1, ms(first.ms), '', '', '', ''],
      [`  per branch (/${BRANCH_COUNT})`, '', ms(first.ms / BRANCH_COUNT), '', '', '', ''],
      [`second POST /branches count=${BRANCH_COUNT} (tree materialized)`, 1, ms(again.ms), '', '', '', ''],
      [`  per branch (/${BRANCH_COUNT})`, '', ms(again.ms / BRANCH_COUNT), '', '', '', ''],
      ['POST /branches count=1', br.n, ms(br.p50), ms(p95(branchMs)), ms(br.mean), ms(br.min), ms(br.max)],
      ['POST /instances, plain create (baseline)', cr.n, ms(cr.p50), ms(p95(createMs)), ms(cr.mean), ms(cr.min), ms(cr.max)],
      ['raw bwrap /usr/bin/true (baseline)', rw.n, ms(rw.p50), ms(p95(rawMs)), ms(rw.mean), ms(rw.min), ms(rw.max)],
    ]);
    branchFailures.print(3 * (branchN + 3));
    console.log(`  ratio branch p50 / plain create p50: ${ratio(br.p50, cr.p50)};  / raw bwrap true p50: ${ratio(br.p50, rw.p50)}`);

    console.log('');
    printTable(['target', 'measured', 'result'], [
      [`incremental < ${TARGET_INCREMENTAL * 100}% of full (time, p50 vs full)`, pct(inc.p50, full.ms), verdict(inc.p50 < TARGET_INCREMENTAL * full.ms)],
      [`incremental < ${TARGET_INCREMENTAL * 100}% of full (stored bytes, p50)`, pct(incStoredP50, full.body.stored_bytes), verdict(incStoredP50 < TARGET_INCREMENTAL * full.body.stored_bytes)],
      [`branch (count=1) p50 < ${TARGET_BRANCH_P50_MS} ms`, `${ms(br.p50)} ms`, verdict(br.p50 < TARGET_BRANCH_P50_MS)],
    ]);

    console.log('');
    console.log('  where the time goes (server internals wrapped during the timed calls above, one sample each; a sequential');
    console.log('  step nests under the call; concurrent calls (blob puts, instance creates) are shown after it as wall time busy):');
    printTable(['span', 'ms', '% of call'], [...fullProfile.rows(), ...branchProfile.rows()]);
    const missing = [...new Set([...fullProfile.missing, ...branchProfile.missing])];
    if (missing.length > 0) console.log(`  (not instrumented, method not found: ${missing.join(', ')})`);
  } finally {
    // Cleanup: the source instance, any branch left over, the snapshots (cascade), then gc.
    if (api !== undefined) {
      const a = api;
      const problems: string[] = [];
      for (const id of instanceIds) await a.deleteInstance(id).catch((err: unknown) => problems.push((err as Error).message));
      for (const id of snapshotIds) {
        await a.call('DELETE', `/api/v1/snapshots/${id}?cascade=true`, undefined, 200).catch((err: unknown) => {
          // Deleted already by the cascade of its parent.
          if (!/SNAPSHOT_NOT_FOUND|404/.test((err as Error).message)) problems.push((err as Error).message);
        });
      }
      try {
        const gc = await a.call<{ blobs_deleted: number; freed_bytes: number; trees_removed: number }>('POST', '/api/v1/snapshots/gc', { grace_ms: 0 }, 200);
        console.log(`  cleanup: ${snapshotIds.length} snapshots deleted (cascade), gc removed ${gc.blobs_deleted} blobs (${mb(gc.freed_bytes)}) and ${gc.trees_removed} trees`);
      } catch (err) {
        problems.push((err as Error).message);
      }
      if (problems.length > 0) console.log(`  cleanup problems: ${problems.join('; ')}`);
    }
    rmSync(scratch, { recursive: true, force: true });
    await b.close();
    raw.close();
  }
}

/**
 * Calls of one method that may run concurrently (blob puts, instance creates): their count, the
 * wall time with at least one in flight, and the summed time of all calls. Records only while on.
 */
class Busy {
  calls = 0;
  busyMs = 0;
  summedMs = 0;
  on = false;
  private inFlight = 0;
  private since = 0;

  constructor(
    readonly label: string,
    readonly found: boolean,
  ) {}

  static wrap(target: unknown, method: string, label: string): Busy {
    const obj = target as Record<string, unknown> | undefined;
    const orig = obj?.[method];
    const busy = new Busy(label, typeof orig === 'function');
    if (!busy.found) return busy;
    obj![method] = function (this: unknown, ...args: unknown[]) {
      if (!busy.on) return (orig as (...a: unknown[]) => unknown).apply(this, args);
      const t0 = now();
      busy.calls++;
      if (busy.inFlight++ === 0) busy.since = t0;
      const done = () => {
        const t1 = now();
        busy.summedMs += t1 - t0;
        if (--busy.inFlight === 0) busy.busyMs += t1 - busy.since;
      };
      return Promise.resolve((orig as (...a: unknown[]) => unknown).apply(this, args)).finally(done);
    };
    return busy;
  }

  row(callMs: number): string[] {
    const mean = this.busyMs > 0 ? (this.summedMs / this.busyMs).toFixed(1) : 'n/a';
    return [`  ${this.label}: ${this.calls} calls, wall with >= 1 in flight (mean ${mean} in flight)`, ms(this.busyMs), `${((100 * this.busyMs) / callMs).toFixed(1)}%`];
  }
}

/**
 * Wraps a few internals to show where one call spends its time: begin() before the HTTP call,
 * end() after it. Sequential steps (freeze, batch commit, materialize) go through the Profiler
 * and nest under the call; concurrent ones (blob has/put, instance create) are reported as
 * busy time. Each instance records only between its own begin() and end().
 */
function instrument(b: BenchApp): { begin(): void; end(label: string): void; rows(): string[][]; missing: string[] } {
  const p = new Profiler();
  const services = b.app.services as unknown as Record<string, unknown>;
  const deps = (services.snapshots as Record<string, unknown> | undefined)?.deps as Record<string, unknown> | undefined;
  const busy: Busy[] = [];
  let on = false;
  p.wrap(b.runtime, 'freeze', 'runtime.freeze (cgroup freezer)');
  p.wrap(deps?.blobs, 'batch', 'blobs.batch', (batch) => {
    if (on) {
      busy.push(Busy.wrap(batch, 'has', 'blob batch has'), Busy.wrap(batch, 'put', 'blob batch put (hash + write a temporary)'));
      for (const x of busy) x.on = true;
    }
    p.wrap(batch, 'commit', 'blob batch commit (syncfs, publish)');
    return batch;
  });
  p.wrap(b.store.snapshots, 'insert', 'store: insert snapshot');
  p.wrap(deps?.trees, 'materialize', 'trees.materialize (write the tree out)');
  const creates = Busy.wrap(deps?.instances, 'create', 'instances.create');
  busy.push(creates);
  let start = 0;
  let callMs = 0;
  return {
    begin() {
      on = true;
      creates.on = true;
      start = now();
      p.begin();
    },
    end(label) {
      const end = now();
      callMs = end - start;
      p.end({ label, start, end }, []);
      on = false;
      for (const x of busy) x.on = false;
    },
    rows: () => [...p.rows().map((r) => [r[0]!, r[2]!, r[3]!]), ...busy.filter((x) => x.found && x.calls > 0).map((x) => x.row(callMs))],
    missing: [...p.missing, ...busy.filter((x) => !x.found).map((x) => x.label)],
  };
}
