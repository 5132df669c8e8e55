/**
 * Cold start: create an instance, exec `true` in it, get the finished record. Measured in
 * process at the service layer (no HTTP), against raw bwrap running /usr/bin/true.
 */
import { systemClock } from '../packages/executor/src/util/clock.ts';
import { RawBwrap } from './lib/baseline.ts';
import { buildApp, type BenchApp } from './lib/faas.ts';
import { Failures } from './lib/failures.ts';
import { Profiler } from './lib/profile.ts';
import { envInt, ms, now, printTable, ratio, section, summarize, SUMMARY_HEADERS, summaryCells, verdict } from './lib/stats.ts';

const WARMUP = 10;
/** Issue targets: create+exec p50 at most 2x raw bwrap, and under 20 ms. */
const TARGET_RATIO = 2;
const TARGET_P50_MS = 20;

interface FaasSample {
  total: number;
  create: number;
  execStart: number;
  execDone: number;
  deleteMs: number;
  processMs: number;
}

async function faasOnce(b: BenchApp, profiler?: Profiler): Promise<FaasSample> {
  const { instances, executions } = b.app.services;
  let instanceId: string | undefined;
  let sample: FaasSample | undefined;
  try {
    profiler?.begin();
    const t0 = now();
    // The service's own clock, as the routes pass it (it feeds the exec-start metric).
    const requestStarted = systemClock.monotonicMs();
    const instance = await instances.create({});
    instanceId = instance.id;
    const t1 = now();
    const { done } = await executions.start(instance, { command: ['true'] }, { ephemeral: false, requestStarted });
    const t2 = now();
    const record = await done;
    const t3 = now();
    if (record.exitCode !== 0) {
      const view = await executions.get(record.id);
      throw new Error(`exec of true finished ${record.exitReason} with code ${record.exitCode}: ${view.stderr.trim()}`);
    }
    profiler?.end({ label: 'create + exec true', start: t0, end: t3 }, [
      { label: 'create (instances.create)', start: t0, end: t1 },
      { label: 'exec (executions.start -> finished record)', start: t1, end: t3 },
    ]);
    sample = { total: t3 - t0, create: t1 - t0, execStart: t2 - t1, execDone: t3 - t2, deleteMs: Number.NaN, processMs: record.durationMs ?? Number.NaN };
  } finally {
    profiler?.abort();
    // Outside the timed region.
    if (instanceId !== undefined) {
      const d0 = now();
      try {
        await instances.delete(instanceId);
      } catch (err) {
        throw new Error(`delete: ${(err as Error).message}`);
      }
      if (sample) sample.deleteMs = now() - d0;
    }
  }
  return sample!;
}

export async function coldStart(): Promise<void> {
  const n = envInt('BENCH_N', 200);
  const profileN = envInt('BENCH_PROFILE_N', 50);
  section(`cold start: create instance + exec \`true\` + result (service layer, N=${n})`);
  const raw = RawBwrap.prepare();
  const b = await buildApp();
  try {
    const rawTrue = () => raw.run(['/usr/bin/true']);
    const rawMs: number[] = [];
    const faas: FaasSample[] = [];
    const failures = new Failures('faas create + exec', Math.max(5, Math.ceil(n / 10)));
    const faasSample = async (keep = true) => {
      try {
        const sample = await faasOnce(b);
        if (keep) faas.push(sample);
      } catch (err) {
        failures.record(err);
      }
    };
    for (let i = 0; i < WARMUP; i++) {
      await rawTrue();
      await faasSample(false);
    }
    // Alternate which goes first so drift and after-effects (deletion, GC) hit both alike.
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) {
        rawMs.push((await rawTrue()).ms);
        await faasSample();
      } else {
        await faasSample();
        rawMs.push((await rawTrue()).ms);
      }
    }

    const r = summarize(rawMs);
    const f = summarize(faas.map((s) => s.total));
    console.log('');
    printTable(['series', ...SUMMARY_HEADERS], [
      ['raw bwrap /usr/bin/true (baseline)', ...summaryCells(r)],
      ['faas create + exec true', ...summaryCells(f)],
      ['  create (instances.create)', ...summaryCells(summarize(faas.map((s) => s.create)))],
      ['  exec start (start -> spawned)', ...summaryCells(summarize(faas.map((s) => s.execStart)))],
      ['  exec finish (spawned -> record)', ...summaryCells(summarize(faas.map((s) => s.execDone)))],
      ['  exec total (start -> record)', ...summaryCells(summarize(faas.map((s) => s.execStart + s.execDone)))],
      ['  process duration_ms (as recorded)', ...summaryCells(summarize(faas.map((s) => s.processMs)))],
      ['delete (untimed, for info)', ...summaryCells(summarize(faas.map((s) => s.deleteMs)))],
    ]);
    failures.print(n + WARMUP);
    console.log('');
    printTable(['ratio faas/raw', 'p50', 'p99'], [['create + exec true', ratio(f.p50, r.p50), ratio(f.p99, r.p99)]]);
    console.log('');
    printTable(['target', 'measured', 'result'], [
      [`create+exec p50 <= ${TARGET_RATIO}x raw bwrap p50`, ratio(f.p50, r.p50), verdict(f.p50 <= TARGET_RATIO * r.p50)],
      [`create+exec p50 < ${TARGET_P50_MS} ms`, `${ms(f.p50)} ms`, verdict(f.p50 < TARGET_P50_MS)],
    ]);

    await profile(b, profileN, f.p50);
  } finally {
    await b.close();
    raw.close();
  }
}

/** A separate, instrumented pass: where create + exec spends its time. */
async function profile(b: BenchApp, n: number, headlineP50: number): Promise<void> {
  const p = new Profiler();
  const rt = b.runtime as unknown as Record<string, unknown>;
  const cgroups = rt.cgroups;
  p.wrap(b.store.instances, 'usedHostUids', 'store: used host uids');
  p.wrap(b.store.instances, 'insert', 'store: insert instance');
  p.wrap(b.store.instances, 'update', 'store: update instance');
  p.wrap(b.store.executions, 'insert', 'store: insert execution');
  p.wrap(b.store.executions, 'update', 'store: update execution');
  p.wrap(rt, 'startInstance', 'runtime.startInstance');
  p.wrap(rt.env, 'prepareUpper', 'upper dir files (hostname, hosts, home, workspace)');
  p.wrap(rt, 'launch', 'launch: spawn bwrap as the host uid, wait for its init');
  p.wrap(cgroups, 'createInstanceGroup', 'cgroups: instance + init groups, limits');
  p.wrap(cgroups, 'movePids', 'cgroups: move pids (write cgroup.procs)');
  p.wrap(cgroups, 'createExecGroup', 'cgroups: exec group');
  p.wrap(cgroups, 'pids', 'cgroups: list pids');
  p.wrap(cgroups, 'oomKills', 'cgroups: oom count');
  p.wrap(cgroups, 'removeGroup', 'cgroups: remove exec group');
  p.wrap(rt, 'exec', 'runtime.exec: spawn sh -> nsenter -> env -> cmd', (proc) => {
    p.wrap(proc, 'wait', 'process wait(): until exit, output drained, cleaned up', (exit) => {
      p.note('process spawn -> exit, as the runtime measures it', (exit as { durationMs: number }).durationMs);
      return exit;
    });
    return proc;
  });
  const failures = new Failures('profiling pass', Math.max(5, Math.ceil(n / 10)));
  const warm = Math.min(5, n);
  for (let i = 0; i < warm; i++) await faasOnce(b).catch((err: unknown) => failures.record(err));
  for (let i = 0; i < n; i++) await faasOnce(b, p).catch((err: unknown) => failures.record(err));

  console.log('');
  console.log(`  where the time goes: a separate instrumented pass (N=${p.sampleCount}), faas only, no baseline runs in between,`);
  console.log(`  so read the shares; absolute figures drift from the headline p50 (${ms(headlineP50)} ms). A row nests under the`);
  console.log('  tightest timed call that contains it; "rest" rows are what the timed calls leave over, so means add up.');
  printTable(['span', 'p50 ms', 'mean ms', '% of mean'], p.rows());
  if (failures.count > 0) failures.print(n + warm);
  if (p.missing.length > 0) console.log(`  (not instrumented, method not found: ${p.missing.join(', ')})`);
}
