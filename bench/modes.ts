/**
 * Execution modes end to end over HTTP: a real server on loopback (the executor as `serve()`
 * builds it, listening on a free port), driving `POST /api/v1/execute` in its modes, the warm
 * pool and `POST /api/v1/branches/merge`. Each figure beside a baseline from the same run:
 *
 * 1. cached hit (`mode: cached`, same request after one miss) vs `GET /health` (the cheapest
 *    round trip the server answers: what HTTP + JSON alone cost) and vs the same request in
 *    ephemeral mode (what the cache saves).
 * 2. warm pool: `POST /api/v1/instances` and ephemeral `POST /execute {code: 'true'}` served from
 *    a ready pooled instance vs the same with the pool drained (cold start), beside raw bwrap
 *    `true` (as cold-start.ts).
 * 3. branched fan-out: 10 branched runs from one checkpoint started at once vs 10 ephemeral runs
 *    of the same code at once (same work, but a fresh empty instance and no snapshot after).
 * 4. merge of two branches of a 10,000-file tree vs `GET /snapshots/diff` of the same two
 *    branches: both resolve the snapshots and compare the two Merkle trees from the common
 *    root, skipping identical subtrees, so the diff is the tree-walk floor a three-way merge
 *    cannot go under; what the merge adds is the base lookup (the DAG), writing the merged tree
 *    and the new snapshot record.
 */
import { Api, type WireInstance } from './lib/api.ts';
import { RawBwrap } from './lib/baseline.ts';
import { buildApp, type BenchApp } from './lib/faas.ts';
import { Failures } from './lib/failures.ts';
import { Profiler } from './lib/profile.ts';
import { envInt, ms, now, percentile, printTable, ratio, section, summarize, verdict } from './lib/stats.ts';

/** Target: a cached hit answered in under 2 ms on the server (cache_latency_ms p50). */
const TARGET_CACHE_SERVER_P50_MS = 2;
const WARMUP = 10;
const FANOUT = 10;
const FANOUT_ROUNDS = 3;
const MERGES = 5;

interface WireExecution {
  id: string;
  instance_id: string;
  exit_code: number | null;
  stdout: string;
  stderr: string;
  duration_ms: number | null;
  mode?: string;
  cached?: boolean;
  cache_latency_ms?: number;
  snapshot_id?: string | null;
  base_snapshot_id?: string | null;
}

interface WireSnapshot {
  id: string;
  duration_ms: number;
  file_count: number;
  files_read: number;
  stored_bytes: number;
}

interface PoolStats {
  target: number;
  ready: number;
  hits: number;
  misses: number;
}

/** Built by one checkpointed run: `dirs` x `files` small files (64-256 B) under /workspace/tree. */
const buildTree = (dirs: number, files: number) => `
import os, random
random.seed(1)
for d in range(${dirs}):
    p = f'/workspace/tree/d{d:03d}'
    os.makedirs(p, exist_ok=True)
    for f in range(${files}):
        with open(f'{p}/f{f:03d}.txt', 'wb') as fh:
            fh.write(os.urandom(random.randint(32, 128)).hex().encode())
print(${dirs} * ${files})
`;

const p95 = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 95);
const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));

export async function modes(): Promise<void> {
  const cachedN = envInt('BENCH_MODES_CACHED_N', 200);
  const poolN = envInt('BENCH_MODES_POOL_N', 16);
  section('modes: cached hits, warm pool, branched fan-out and merge over HTTP');
  const raw = RawBwrap.prepare();
  const b = await buildApp();
  const snapshotIds: string[] = [];
  const instanceIds = new Set<string>();
  let api: Api | undefined;
  try {
    await b.app.fastify.listen({ host: '127.0.0.1', port: 0 });
    const address = b.app.fastify.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    api = new Api(`http://127.0.0.1:${port}`, 'bench');
    const a = api;

    const execute = async (body: Record<string, unknown>) => {
      const r = await a.timed<WireExecution>('POST', '/api/v1/execute', body, 200);
      if (r.body.exit_code !== 0) throw new Error(`${JSON.stringify(body).slice(0, 120)} exited ${r.body.exit_code}: ${r.body.stderr.trim().slice(0, 300)}`);
      return r;
    };
    const pool = async (): Promise<PoolStats> => {
      const r = await a.call<{ environments: { name: string; pool: PoolStats }[] }>('GET', '/api/v1/environments', undefined, 200);
      const host = r.environments.find((e) => e.name === 'host');
      if (host === undefined) throw new Error('no environment "host"');
      return host.pool;
    };
    /** Polls until `ok` holds (every 5 ms, untimed), e.g. the pool refilled. */
    const waitFor = async (what: string, ok: () => Promise<boolean>, timeoutMs = 60_000) => {
      const deadline = now() + timeoutMs;
      while (!(await ok())) {
        if (now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(5);
      }
    };
    const poolReady = (n: number) => waitFor(`pool ready = ${n}`, async () => (await pool()).ready === n);
    /** Ephemeral instances are destroyed after the response: wait until none is left running. */
    const noneRunning = () =>
      waitFor('ephemeral instances destroyed', async () => (await a.call<{ instances: unknown[] }>('GET', '/api/v1/instances?state=running', undefined, 200)).instances.length === 0);

    // ---------------------------------------------------------------------------------------
    // 1. Cached hits.
    const cachedReq = { mode: 'cached', code: 'echo hi', cache_key: 'bench' };
    const ephemeralReq = { code: 'echo hi' };
    const miss = await execute(cachedReq);
    if (miss.body.cached !== false) throw new Error(`first cached request was not a miss: cached=${miss.body.cached}`);
    await noneRunning();
    const hitMs: number[] = [];
    const hitServerMs: number[] = [];
    const healthMs: number[] = [];
    const ephMs: number[] = [];
    const cacheFailures = new Failures('cached hit / health / ephemeral', Math.max(5, Math.ceil(cachedN / 10)));
    const hit = async (keep: boolean) => {
      const r = await execute(cachedReq);
      if (r.body.cached !== true || r.body.stdout !== 'hi\n' || r.body.id !== miss.body.id) throw new Error(`not a hit: ${JSON.stringify(r.body).slice(0, 300)}`);
      if (keep) {
        hitMs.push(r.ms);
        hitServerMs.push(r.body.cache_latency_ms ?? Number.NaN);
      }
    };
    const health = async (keep: boolean) => {
      const r = await a.timed('GET', '/health', undefined, 200);
      if (keep) healthMs.push(r.ms);
    };
    const ephemeral = async (keep: boolean) => {
      const r = await execute(ephemeralReq);
      if (r.body.stdout !== 'hi\n') throw new Error(`ephemeral echo hi printed ${JSON.stringify(r.body.stdout)}`);
      if (keep) ephMs.push(r.ms);
      await noneRunning();
    };
    const guarded = (fn: (keep: boolean) => Promise<void>, keep: boolean) => fn(keep).catch((err: unknown) => cacheFailures.record(err));
    for (let i = 0; i < WARMUP; i++) {
      await guarded(hit, false);
      await guarded(health, false);
    }
    await guarded(ephemeral, false);
    // Ephemeral runs cost ~100x more: one every 4 iterations (N/4 samples), in rotating order.
    const ephEvery = 4;
    for (let i = 0; i < cachedN; i++) {
      const order: ((keep: boolean) => Promise<void>)[] = [hit, health];
      if (i % ephEvery === 0) order.push(ephemeral);
      for (let k = 0; k < order.length; k++) await guarded(order[(i + k) % order.length]!, true);
    }
    const cacheStats = await a.call<{ hits: number; misses: number; entries: number }>('GET', '/api/v1/cache', undefined, 200);
    const hs = summarize(hitMs);
    const hss = summarize(hitServerMs);
    const he = summarize(healthMs);
    const ep = summarize(ephMs);
    console.log('');
    console.log(`  1. cached hits: POST /execute ${JSON.stringify(cachedReq)} after one miss (${ms(miss.ms)} ms), N=${cachedN} after ${WARMUP} warm-ups,`);
    console.log(`     interleaved (rotating order) with GET /health and, every ${ephEvery}th iteration, the same code in ephemeral mode:`);
    printTable(['series', 'n', 'p50 ms', 'p95 ms', 'mean ms', 'min ms', 'max ms'], [
      ['cached hit, client side', hs.n, ms(hs.p50), ms(p95(hitMs)), ms(hs.mean), ms(hs.min), ms(hs.max)],
      ['  cache_latency_ms (server side)', hss.n, ms(hss.p50), ms(p95(hitServerMs)), ms(hss.mean), ms(hss.min), ms(hss.max)],
      ['GET /health (baseline: cheapest round trip)', he.n, ms(he.p50), ms(p95(healthMs)), ms(he.mean), ms(he.min), ms(he.max)],
      ['ephemeral echo hi (baseline: no cache)', ep.n, ms(ep.p50), ms(p95(ephMs)), ms(ep.mean), ms(ep.min), ms(ep.max)],
    ]);
    cacheFailures.print(cachedN * 2 + Math.ceil(cachedN / ephEvery) + 2 * WARMUP + 1);
    console.log(`  cache stats: ${cacheStats.entries} entries, ${cacheStats.hits} hits, ${cacheStats.misses} misses`);
    console.log(`  ratio hit/health p50: ${ratio(hs.p50, he.p50)};  hit/ephemeral p50: ${ratio(hs.p50, ep.p50)} (ephemeral is ${ratio(ep.p50, hs.p50)} the hit)`);

    // ---------------------------------------------------------------------------------------
    // 2. Warm pool vs cold. Rounds warm, cold, warm, cold (drift hits both alike); each sample
    // is followed (untimed) by the delete and, when warm, by waiting for the pool to refill.
    const POOL_TARGET = 4;
    const createMs = { warm: [] as number[], cold: [] as number[] };
    const execMs = { warm: [] as number[], cold: [] as number[] };
    const rawMs: number[] = [];
    const poolFailures = new Failures('warm / cold create and execute', Math.max(3, Math.ceil(poolN / 3)));
    let poolBefore: PoolStats | undefined;
    const sampleCreate = async (kind: 'warm' | 'cold', keep: boolean) => {
      const r = await a.timed<WireInstance>('POST', '/api/v1/instances', {}, 201);
      instanceIds.add(r.body.id);
      await a.deleteInstance(r.body.id);
      instanceIds.delete(r.body.id);
      if (keep) createMs[kind].push(r.ms);
    };
    const sampleExec = async (kind: 'warm' | 'cold', keep: boolean) => {
      const r = await execute({ code: 'true' });
      await noneRunning();
      if (keep) execMs[kind].push(r.ms);
    };
    const sampleRaw = async (keep: boolean) => {
      const r = await raw.run(['/usr/bin/true']);
      if (keep) rawMs.push(r.ms);
    };
    const rounds: ('warm' | 'cold')[] = ['warm', 'cold', 'warm', 'cold'];
    let warmHits = 0;
    let warmAttempts = 0;
    for (const [round, kind] of rounds.entries()) {
      const target = kind === 'warm' ? POOL_TARGET : 0;
      await a.call('POST', '/api/v1/environments/host/warm', { count: target }, 200);
      await poolReady(target);
      const before = await pool();
      poolBefore ??= before;
      const samples = Math.ceil(poolN / 2) + (round < 2 ? 2 : 0); // the first round of each kind starts with 2 warm-ups
      for (let i = 0; i < samples; i++) {
        const keep = round >= 2 || i >= 2;
        if (kind === 'warm') warmAttempts++;
        const order = [() => sampleCreate(kind, keep), () => sampleExec(kind, keep), () => sampleRaw(keep)];
        for (let k = 0; k < order.length; k++) {
          try {
            await order[(i + k) % order.length]!();
          } catch (err) {
            poolFailures.record(err);
          }
          if (kind === 'warm') await poolReady(POOL_TARGET);
        }
      }
      if (kind === 'warm') warmHits += (await pool()).hits - before.hits;
    }
    const poolAfter = await pool();
    const cw = summarize(createMs.warm);
    const cc = summarize(createMs.cold);
    const ew = summarize(execMs.warm);
    const ec = summarize(execMs.cold);
    const rw = summarize(rawMs);
    console.log('');
    console.log(`  2. warm pool (target ${POOL_TARGET}, refilled before each sample) vs drained (count 0); rounds warm, cold, warm, cold,`);
    console.log('     rotating order with raw bwrap; each instance deleted after (untimed), ephemeral ones awaited until destroyed:');
    printTable(['series', 'n', 'p50 ms', 'p95 ms', 'mean ms', 'min ms', 'max ms'], [
      ['POST /instances, warm (pool hit)', cw.n, ms(cw.p50), ms(p95(createMs.warm)), ms(cw.mean), ms(cw.min), ms(cw.max)],
      ['POST /instances, cold (pool drained)', cc.n, ms(cc.p50), ms(p95(createMs.cold)), ms(cc.mean), ms(cc.min), ms(cc.max)],
      ['POST /execute {code: true}, warm', ew.n, ms(ew.p50), ms(p95(execMs.warm)), ms(ew.mean), ms(ew.min), ms(ew.max)],
      ['POST /execute {code: true}, cold', ec.n, ms(ec.p50), ms(p95(execMs.cold)), ms(ec.mean), ms(ec.min), ms(ec.max)],
      ['raw bwrap /usr/bin/true (baseline)', rw.n, ms(rw.p50), ms(p95(rawMs)), ms(rw.mean), ms(rw.min), ms(rw.max)],
    ]);
    poolFailures.print(3 * (2 * Math.ceil(poolN / 2) + 4));
    console.log(`  pool counters over the warm rounds: ${warmHits} hits (2 per warm sample incl. warm-ups: ${2 * warmAttempts}); total hits ${poolAfter.hits - (poolBefore?.hits ?? 0)}, misses ${poolAfter.misses - (poolBefore?.misses ?? 0)}`);
    printTable(['ratio (p50)', 'warm/cold', 'warm/raw', 'cold/raw'], [
      ['POST /instances', ratio(cw.p50, cc.p50), ratio(cw.p50, rw.p50), ratio(cc.p50, rw.p50)],
      ['POST /execute true', ratio(ew.p50, ec.p50), ratio(ew.p50, rw.p50), ratio(ec.p50, rw.p50)],
    ]);

    // ---------------------------------------------------------------------------------------
    // 3. Branched fan-out from a checkpoint of a 1,000-file tree (pool drained: branches never use it).
    const t0 = now();
    const small = await execute({ mode: 'checkpointed', code: buildTree(10, 100), language: 'python', timeout_ms: 600_000 });
    const smallBuildMs = now() - t0;
    const smallSnap = small.body.snapshot_id;
    if (!smallSnap) throw new Error('the checkpointed run left no snapshot');
    snapshotIds.push(smallSnap);
    await noneRunning();
    const fanCode = (i: number) => `echo ${i} > /workspace/note-${i}.txt && cat /workspace/note-${i}.txt`;
    const fanOut = async (branched: boolean) => {
      const t = now();
      const runs = await Promise.all(
        Array.from({ length: FANOUT }, (_, i) => execute(branched ? { mode: 'branched', branch_from: smallSnap, code: fanCode(i) } : { code: fanCode(i) })),
      );
      const wall = now() - t;
      for (const r of runs) if (r.body.snapshot_id) snapshotIds.push(r.body.snapshot_id);
      if (branched && runs.some((r) => !r.body.snapshot_id)) throw new Error('a branched run left no snapshot');
      await noneRunning();
      return { wall, each: runs.map((r) => r.ms) };
    };
    const firstFan = await fanOut(true);
    await fanOut(false);
    const fanWall = { branched: [] as number[], ephemeral: [] as number[] };
    const fanEach = { branched: [] as number[], ephemeral: [] as number[] };
    for (let r = 0; r < FANOUT_ROUNDS; r++) {
      for (const branched of r % 2 === 0 ? [true, false] : [false, true]) {
        const f = await fanOut(branched);
        const k = branched ? 'branched' : 'ephemeral';
        fanWall[k].push(f.wall);
        fanEach[k].push(...f.each);
      }
    }
    // Where a branched run's time goes: the snapshot taken after it (its duration_ms and files_read).
    const fanSnaps = await Promise.all(snapshotIds.slice(-FANOUT).map((id) => a.call<WireSnapshot>('GET', `/api/v1/snapshots/${id}`, undefined, 200)));
    const bwall = summarize(fanWall.branched);
    const ewall = summarize(fanWall.ephemeral);
    const beach = summarize(fanEach.branched);
    const eeach = summarize(fanEach.ephemeral);
    console.log('');
    console.log(`  3. fan-out: ${FANOUT} runs at once, ${FANOUT_ROUNDS} rounds each (alternating), after one untimed round of each;`);
    console.log(`     branched from a checkpoint of ${small.body.stdout.trim()} files (checkpointed run incl. snapshot: ${ms(smallBuildMs)} ms), code: ${JSON.stringify(fanCode(0))}:`);
    printTable(['series', 'n', 'p50 ms', 'p95 ms', 'mean ms', 'min ms', 'max ms'], [
      [`first branched round, wall (materializes the tree)`, 1, ms(firstFan.wall), '', '', '', ''],
      [`branched x${FANOUT}, wall for all`, bwall.n, ms(bwall.p50), '', ms(bwall.mean), ms(bwall.min), ms(bwall.max)],
      [`ephemeral x${FANOUT}, wall for all (baseline)`, ewall.n, ms(ewall.p50), '', ms(ewall.mean), ms(ewall.min), ms(ewall.max)],
      ['branched, per run (client)', beach.n, ms(beach.p50), ms(p95(fanEach.branched)), ms(beach.mean), ms(beach.min), ms(beach.max)],
      ['ephemeral, per run (baseline)', eeach.n, ms(eeach.p50), ms(p95(fanEach.ephemeral)), ms(eeach.mean), ms(eeach.min), ms(eeach.max)],
    ]);
    const snapDur = summarize(fanSnaps.map((x) => x.duration_ms));
    console.log(`  the snapshot after each branched run (last round): duration_ms p50 ${ms(snapDur.p50)} (min ${ms(snapDur.min)}, max ${ms(snapDur.max)}), files_read ${[...new Set(fanSnaps.map((x) => x.files_read))].join('/')} of ${[...new Set(fanSnaps.map((x) => x.file_count))].join('/')} files`);
    console.log(`  ratio branched/ephemeral: wall p50 ${ratio(bwall.p50, ewall.p50)}, per run p50 ${ratio(beach.p50, eeach.p50)}`);

    // ---------------------------------------------------------------------------------------
    // 4. Merge of two branches of a 10,000-file tree.
    const t1 = now();
    const big = await execute({ mode: 'checkpointed', code: buildTree(100, 100), language: 'python', timeout_ms: 600_000 });
    const bigBuildMs = now() - t1;
    const bigSnap = big.body.snapshot_id;
    if (!bigSnap) throw new Error('the checkpointed run left no snapshot');
    snapshotIds.push(bigSnap);
    const bigSnapRec = await a.call<WireSnapshot>('GET', `/api/v1/snapshots/${bigSnap}`, undefined, 200);
    const branchA = await execute({ mode: 'branched', branch_from: bigSnap, code: 'cd /workspace/tree && echo A >> d001/f001.txt && echo A >> d002/f002.txt && echo A >> d003/f003.txt && echo new > d004/added-a.txt' });
    const branchB = await execute({ mode: 'branched', branch_from: bigSnap, code: 'cd /workspace/tree && echo B >> d050/f001.txt && echo B >> d060/f002.txt && echo B >> d070/f003.txt && echo new > d080/added-b.txt' });
    const snapA = branchA.body.snapshot_id;
    const snapB = branchB.body.snapshot_id;
    if (!snapA || !snapB) throw new Error('a branched run left no snapshot');
    snapshotIds.push(snapA, snapB);
    await noneRunning();
    const mergeMs: number[] = [];
    const mergeServerMs: number[] = [];
    const diffMs: number[] = [];
    let mergedFiles = 0;
    let diffSummary = '';
    const merge = async (keep: boolean) => {
      const r = await a.timed<{ snapshot: WireSnapshot; base_snapshot_id: string }>('POST', '/api/v1/branches/merge', { branch_ids: [branchA.body.id, branchB.body.id] }, 201);
      snapshotIds.push(r.body.snapshot.id);
      if (r.body.base_snapshot_id !== bigSnap) throw new Error(`merge base ${r.body.base_snapshot_id}, expected ${bigSnap}`);
      mergedFiles = r.body.snapshot.file_count;
      if (keep) {
        mergeMs.push(r.ms);
        mergeServerMs.push(r.body.snapshot.duration_ms);
      }
    };
    const diff = async (keep: boolean) => {
      const r = await a.timed<{ summary: { added: number; removed: number; modified: number } }>('GET', `/api/v1/snapshots/diff?from=${snapA}&to=${snapB}`, undefined, 200);
      diffSummary = `${r.body.summary.added} added, ${r.body.summary.removed} removed, ${r.body.summary.modified} modified`;
      if (keep) diffMs.push(r.ms);
    };
    await merge(false);
    await diff(false);
    for (let i = 0; i < MERGES; i++) {
      if (i % 2 === 0) {
        await merge(true);
        await diff(true);
      } else {
        await diff(true);
        await merge(true);
      }
    }
    const mc = summarize(mergeMs);
    const msrv = summarize(mergeServerMs);
    const dc = summarize(diffMs);
    console.log('');
    console.log(`  4. merge of two branches of ${bigSnapRec.file_count} files (checkpointed run incl. snapshot: ${ms(bigBuildMs)} ms; snapshot duration_ms ${ms(bigSnapRec.duration_ms)}),`);
    console.log(`     each changing 3 files and adding 1 in different dirs; ${MERGES} merges after 1 warm-up, alternating with the diff A -> B:`);
    printTable(['series', 'n', 'p50 ms', 'mean ms', 'min ms', 'max ms'], [
      ['POST /branches/merge, client side', mc.n, ms(mc.p50), ms(mc.mean), ms(mc.min), ms(mc.max)],
      ['  snapshot.duration_ms (server side)', msrv.n, ms(msrv.p50), ms(msrv.mean), ms(msrv.min), ms(msrv.max)],
      ['GET /snapshots/diff A -> B (baseline)', dc.n, ms(dc.p50), ms(dc.mean), ms(dc.min), ms(dc.max)],
    ]);
    console.log(`  merged snapshot: ${mergedFiles} files (expected ${bigSnapRec.file_count + 2});  diff A -> B: ${diffSummary}`);
    console.log(`  ratio merge/diff p50: ${ratio(mc.p50, dc.p50)}`);
    await profileMerge(b, () => merge(false), 3);

    console.log('');
    printTable(['target', 'measured', 'result'], [
      [`cached hit, server side (cache_latency_ms) p50 < ${TARGET_CACHE_SERVER_P50_MS} ms`, `${ms(hss.p50)} ms`, verdict(hss.p50 < TARGET_CACHE_SERVER_P50_MS)],
    ]);
  } finally {
    if (api !== undefined) {
      const a = api;
      const problems: string[] = [];
      const step = async (what: string, fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (err) {
          if (!/SNAPSHOT_NOT_FOUND/.test((err as Error).message)) problems.push(`${what}: ${(err as Error).message}`);
        }
      };
      await step('warm 0', () => a.call('POST', '/api/v1/environments/host/warm', { count: 0 }, 200));
      for (const id of instanceIds) await step('delete instance', () => a.deleteInstance(id));
      let deleted = 0;
      for (const id of snapshotIds) {
        // Later ones are mostly gone with the cascade of their ancestor.
        await step('delete snapshot', async () => {
          deleted += (await a.call<{ deleted: string[] }>('DELETE', `/api/v1/snapshots/${id}?cascade=true`, undefined, 200)).deleted.length;
        });
      }
      let invalidated = 0;
      await step('invalidate cache', async () => {
        invalidated = (await a.call<{ removed: number }>('POST', '/api/v1/cache/invalidate', { all: true }, 200)).removed;
      });
      await step('gc', async () => {
        const gc = await a.call<{ blobs_deleted: number; freed_bytes: number; trees_removed: number }>('POST', '/api/v1/snapshots/gc', { grace_ms: 0 }, 200);
        console.log(`  cleanup: pool drained, ${deleted} snapshots deleted (cascade), ${invalidated} cache entries invalidated, gc removed ${gc.blobs_deleted} blobs and ${gc.trees_removed} trees`);
      });
      if (problems.length > 0) console.log(`  cleanup problems: ${problems.join('; ')}`);
    }
    await b.close();
    raw.close();
  }
}

/**
 * A separate, instrumented pass of `n` merges: server internals wrapped (store reads and
 * writes, tree walks, the blob batch) to show where a merge spends its time beside the diff.
 * The three-way tree merge itself (mergeTrees, storeMergedTree) is a module function and not
 * wrappable: it is in the "rest" row, less what the wrapped reader calls show.
 */
async function profileMerge(b: BenchApp, merge: () => Promise<void>, n: number): Promise<void> {
  const p = new Profiler();
  const deps = (b.app.services as unknown as { snapshots?: { deps?: Record<string, unknown> } }).snapshots?.deps;
  p.wrap(b.store.snapshots, 'all', 'store: all snapshots (for the common ancestor)');
  p.wrap(b.store.snapshots, 'get', 'store: get snapshot');
  p.wrap(b.store.executions, 'get', 'store: get execution (branch id -> snapshot)');
  p.wrap(deps?.reader, 'walk', 'reader.walk (count files of the merged tree)');
  p.wrap(deps?.reader, 'node', 'reader.node (read + decode a tree node, cached)');
  p.wrap(deps?.blobs, 'batch', 'blobs.batch', (batch) => {
    p.wrap(batch, 'commit', 'blob batch commit (syncfs, publish)');
    return batch;
  });
  p.wrap(b.store.snapshots, 'insert', 'store: insert snapshot');
  for (let i = 0; i < n; i++) {
    p.begin();
    const start = now();
    await merge();
    p.end({ label: 'POST /branches/merge, client side', start, end: now() }, []);
  }
  console.log('');
  console.log(`  where a merge spends its time: a separate instrumented pass (N=${p.sampleCount}); a row nests under the tightest timed call`);
  console.log('  containing it; "rest" is what the timed calls leave over (HTTP, the three-way tree merge itself):');
  printTable(['span', 'p50 ms', 'mean ms', '% of mean'], p.rows());
  if (p.missing.length > 0) console.log(`  (not instrumented, method not found: ${p.missing.join(', ')})`);
}
