/**
 * The vm runtime (a QEMU machine per instance; TCG on this host), each figure beside the bwrap
 * runtime's measured in the same run and given as a ratio, since the machine is shared:
 *
 * 1. Start latency.
 *    - Runtime level (`runtime.startInstance`, timed here, no store): a vm instance restored from
 *      the template of its machine shape (N, default 10), a vm cold boot (`baseTree` = the guest's
 *      skeleton, the path a files-only restore takes; n=3) and a bwrap instance start (N). The
 *      first vm start, which builds the template (boot + save), is reported apart. Then the first
 *      exec of `true` right after each start (`runtime.exec` to its exit).
 *    - Service level (`instances.create`, then `executions.start` of `true` to its finished
 *      record), vm against bwrap, alternating: what a client waits for.
 * 2. Memory snapshot (`snapshots.create`, n=5) of a running vm instance with a small workspace and
 *    a counter process: total time, how long the machine was paused (runtime.freeze -> thaw) and
 *    the stored bytes of its memory image (the sum of its parts' blobs); beside bwrap's snapshot
 *    of the same workspace (files only).
 * 3. Ten branches of one memory snapshot (`snapshots.branch(ref, 10)`): wall time, per branch, and
 *    until all ten answered an exec; checked to have resumed (the counter started before the
 *    snapshot runs in each, same pid, counting on). Beside bwrap's ten branches of the same files.
 * 4. Machine figures taken from (2): QEMU's saveState (device state), the whole capture while
 *    paused (saveState + copies of RAM and disk) and the packed RAM part beside the guest's RAM.
 *
 * N from BENCH_VM_N (not BENCH_N: a vm sample costs ~0.5 s). About 2 minutes on 2 cores. The
 * guest image is cached in FAAS_VM_IMAGE_DIR (default a bench dir under tmpdir) across runs;
 * templates live in the server's data dir, so every run builds (and reports) one.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlobStore } from '../packages/executor/src/blobs/types.ts';
import type { Runtime } from '../packages/executor/src/runtime/types.ts';
import { QemuMachine } from '../packages/executor/src/runtime/vm/qemu/qemu-machine.ts';
import { loadMemoryImage, memoryImageParts } from '../packages/executor/src/snapshots/memory-image-store.ts';
import type { InstanceLimits, InstanceRecord, SnapshotRecord } from '../packages/executor/src/store/types.ts';
import { systemClock } from '../packages/executor/src/util/clock.ts';
import { buildApp, type BenchApp } from './lib/faas.ts';
import { envInt, ms, now, printTable, ratio, section, summarize, SUMMARY_HEADERS, summaryCells, type Summary } from './lib/stats.ts';

const BOOTS = 3;
const SNAPSHOTS = 5;
const BRANCHES = 10;
const MB = 1024 * 1024;
/** Guest images depend only on the host's packages: one cache for every bench run. */
const IMAGE_DIR = join(tmpdir(), 'faas-vm-images-bench');

/** 50 files of 4 KiB and a counter file (the vm's counter process overwrites it). */
const WORKSPACE = 'mkdir -p /workspace/src && for i in $(seq 1 50); do head -c 4096 /dev/urandom > /workspace/src/f$i; done && echo "0 0" > /workspace/counter';
/** A counter in the background: its value lives in the shell's memory, mirrored to a file. */
const COUNTER = 'nohup sh -c \'i=0; while :; do i=$((i+1)); echo "$$ $i" > /workspace/counter.tmp; mv /workspace/counter.tmp /workspace/counter; sleep 0.05; done\' >/dev/null 2>&1 &';

const mb = (bytes: number): string => `${(bytes / MB).toFixed(1)} MB`;
const p50 = (xs: readonly number[]): number => summarize(xs).p50;

interface Sides {
  vm: BenchApp;
  bwrap: BenchApp;
}

/** Runs `code` (sh) in the instance through the execution service; its stdout. */
async function sh(b: BenchApp, instance: InstanceRecord, code: string): Promise<string> {
  const { executions } = b.app.services;
  const { done } = await executions.start(instance, { code, timeout_ms: 120_000 }, { ephemeral: false, requestStarted: systemClock.monotonicMs() });
  const record = await done;
  const view = await executions.get(record.id);
  if (record.exitCode !== 0) throw new Error(`${b.runtime.name}: ${JSON.stringify(code.slice(0, 60))} finished ${record.exitReason} with code ${record.exitCode}: ${view.stderr.trim()}`);
  return view.stdout;
}

/** `true` through the execution service, to its finished record. */
async function serviceTrue(b: BenchApp, instance: InstanceRecord): Promise<void> {
  const { executions } = b.app.services;
  const { done } = await executions.start(instance, { command: ['true'] }, { ephemeral: false, requestStarted: systemClock.monotonicMs() });
  const record = await done;
  if (record.exitCode !== 0) throw new Error(`${b.runtime.name}: true finished ${record.exitReason} with code ${record.exitCode}`);
}

let execCounter = 0;
/** `true` through the runtime alone, to its exit. */
async function runtimeTrue(rt: Runtime, id: string): Promise<void> {
  const ignore = () => undefined;
  const proc = await rt.exec(id, { executionId: `exec-benchvm${execCounter++}`, argv: ['true'], env: { PATH: '/usr/bin:/bin' }, workingDir: '/workspace', sink: { stdout: ignore, stderr: ignore, progress: ignore } });
  const exit = await proc.wait();
  if (exit.exitCode !== 0) throw new Error(`${rt.name}: true exited ${exit.exitCode} (${exit.signal ?? 'no signal'})`);
}

async function readCounter(b: BenchApp, instance: InstanceRecord): Promise<{ pid: number; value: number }> {
  // The counter rewrites its file (truncate, then write): a read in between sees it empty.
  for (let i = 0; ; i++) {
    const out = (await sh(b, instance, 'cat /workspace/counter')).trim();
    const [pid, value] = out.split(' ').map(Number);
    if (Number.isInteger(pid) && Number.isInteger(value)) return { pid: pid!, value: value! };
    if (i === 20) throw new Error(`the counter file of ${instance.id} holds ${JSON.stringify(out)}`);
  }
}

async function counterPast(b: BenchApp, instance: InstanceRecord, min: number): Promise<{ pid: number; value: number }> {
  const deadline = now() + 20_000;
  while (now() < deadline) {
    const c = await readCounter(b, instance);
    if (c.value > min) return c;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the counter of ${instance.id} did not pass ${min} within 20 s`);
}

/** Replaces `obj[method]` by a wrapper that reports each call's duration (and result) to `record`. */
function timeCalls<T>(obj: object, method: string, record: (ms: number, result: T) => void): () => void {
  const target = obj as Record<string, unknown>;
  const own = Object.prototype.hasOwnProperty.call(target, method);
  const orig = target[method] as (...args: unknown[]) => Promise<T>;
  if (typeof orig !== 'function') throw new Error(`cannot time ${method}: not a method`);
  target[method] = async function (this: unknown, ...args: unknown[]) {
    const t0 = now();
    const result = await orig.apply(this, args);
    record(now() - t0, result);
    return result;
  };
  return () => {
    if (own) target[method] = orig;
    else delete target[method];
  };
}

/** Wraps runtime.freeze so that every freeze -> thaw interval lands in `pauses`. */
function timePauses(rt: Runtime, pauses: number[]): () => void {
  const freeze = rt.freeze.bind(rt);
  rt.freeze = async (id: string) => {
    const t0 = now();
    const thaw = await freeze(id);
    return () => {
      thaw();
      pauses.push(now() - t0);
    };
  };
  return () => {
    delete (rt as unknown as Record<string, unknown>).freeze;
  };
}

async function startLatency(s: Sides, n: number): Promise<void> {
  const vmRt = s.vm.runtime;
  const bwRt = s.bwrap.runtime;
  const d = s.vm.config.defaults;
  // The shape a plain `instances.create({})` gets, so the service-level creates below restore the same template.
  const limits: InstanceLimits = { memoryMb: d.memoryMb, cpuCores: d.cpuCores, pidsMax: d.pidsMax };
  const { uidBase, uidCount } = s.bwrap.config;
  let seq = 0;
  const timed = async (rt: Runtime, extra: { baseTree?: string } = {}): Promise<{ start: number; exec: number }> => {
    const id = `inst-benchvm${seq++}`;
    // The top of the bwrap server's uid range: its own instances take uids from the bottom.
    const hostUid = rt === bwRt ? uidBase + uidCount - 1 - (seq % 1000) : 0;
    const t0 = now();
    try {
      await rt.startInstance({ id, env: 'host', hostUid, limits, ...extra });
      const t1 = now();
      await runtimeTrue(rt, id);
      return { start: t1 - t0, exec: now() - t1 };
    } finally {
      // Untimed; not in the store, so the server's close would not find it.
      await rt.destroyInstance(id);
    }
  };

  // The first vm start builds the template of its shape: a boot, then a save.
  const builds: number[] = [];
  const unwrap = timeCalls<void>(vmRt, 'buildTemplate', (t) => builds.push(t));
  const first = await timed(vmRt);
  unwrap();
  if (builds.length !== 1) throw new Error(`expected the first vm start to build one template, it built ${builds.length}`);
  await timed(bwRt); // warm-up of the bwrap side

  const restore: Array<{ start: number; exec: number }> = [];
  const bwrap: Array<{ start: number; exec: number }> = [];
  for (let i = 0; i < n; i++) {
    // Alternate which goes first so drift hits both alike.
    if (i % 2 === 0) {
      restore.push(await timed(vmRt));
      bwrap.push(await timed(bwRt));
    } else {
      bwrap.push(await timed(bwRt));
      restore.push(await timed(vmRt));
    }
  }
  const boots: Array<{ start: number; exec: number }> = [];
  for (let i = 0; i < BOOTS; i++) boots.push(await timed(vmRt, { baseTree: vmRt.environmentRoot('host') }));

  const bw = summarize(bwrap.map((x) => x.start));
  const bwExec = summarize(bwrap.map((x) => x.exec));
  const row = (label: string, xs: ReadonlyArray<{ start: number; exec: number }>): string[] => {
    const st = summarize(xs.map((x) => x.start));
    const ex = summarize(xs.map((x) => x.exec));
    return [label, String(st.n), ms(st.p50), ms(st.p90), ms(ex.p50), ratio(st.p50, bw.p50), ratio(ex.p50, bwExec.p50)];
  };
  section(`vm: instance start, runtime level (runtime.startInstance, then runtime.exec of true), N=${n}`);
  printTable(['series', 'n', 'start p50 ms', 'start p90 ms', 'exec true p50 ms', 'start / bwrap', 'exec / bwrap'], [
    row('bwrap start (baseline)', bwrap),
    row('vm restore from template', restore),
    row('vm cold boot (baseTree = guest skeleton)', boots),
    ['vm first start, whole (builds the template)', '1', ms(first.start), '', ms(first.exec), ratio(first.start, bw.p50), ratio(first.exec, bwExec.p50)],
    ['  template build (boot + save)', '1', ms(builds[0]!), '', '', ratio(builds[0]!, bw.p50), ''],
    ['  restore of the new template (the rest)', '1', ms(first.start - builds[0]!), '', '', ratio(first.start - builds[0]!, bw.p50), ''],
  ]);
  const rs = summarize(restore.map((x) => x.start));
  const bootP50 = p50(boots.map((x) => x.start));
  console.log(`  restore vs cold boot (p50): ${ms(rs.p50)} ms vs ${ms(bootP50)} ms, boot / restore = ${ratio(bootP50, rs.p50)}`);
  console.log(`  start + first exec (p50 of the sums): vm restore ${ms(p50(restore.map((x) => x.start + x.exec)))} ms, bwrap ${ms(p50(bwrap.map((x) => x.start + x.exec)))} ms, vm / bwrap = ${ratio(p50(restore.map((x) => x.start + x.exec)), p50(bwrap.map((x) => x.start + x.exec)))}`);

  // Service level: what a client of the in-process API waits for.
  interface Sample {
    create: number;
    exec: number;
  }
  const serviceOnce = async (b: BenchApp): Promise<Sample> => {
    const t0 = now();
    const instance = await b.app.services.instances.create({});
    const t1 = now();
    await serviceTrue(b, instance);
    const t2 = now();
    await b.app.services.instances.delete(instance.id);
    return { create: t1 - t0, exec: t2 - t1 };
  };
  await serviceOnce(s.bwrap);
  await serviceOnce(s.vm);
  const vmS: Sample[] = [];
  const bwS: Sample[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      vmS.push(await serviceOnce(s.vm));
      bwS.push(await serviceOnce(s.bwrap));
    } else {
      bwS.push(await serviceOnce(s.bwrap));
      vmS.push(await serviceOnce(s.vm));
    }
  }
  const of = (xs: readonly Sample[], f: (x: Sample) => number): Summary => summarize(xs.map(f));
  const total = (x: Sample) => x.create + x.exec;
  const create = (x: Sample) => x.create;
  const exec = (x: Sample) => x.exec;
  section(`vm: instance start, service level (instances.create + exec true to its record), N=${n}`);
  printTable(['series', ...SUMMARY_HEADERS], [
    ['bwrap create + exec true (baseline)', ...summaryCells(of(bwS, total))],
    ['  create (instances.create)', ...summaryCells(of(bwS, create))],
    ['  exec true (start -> record)', ...summaryCells(of(bwS, exec))],
    ['vm create + exec true', ...summaryCells(of(vmS, total))],
    ['  create (instances.create: template restore)', ...summaryCells(of(vmS, create))],
    ['  exec true (start -> record)', ...summaryCells(of(vmS, exec))],
  ]);
  console.log('');
  const ratioRow = (label: string, f: (x: Sample) => number): string[] => {
    const [v, b] = [of(vmS, f), of(bwS, f)];
    return [label, ratio(v.p50, b.p50), ratio(v.p90, b.p90)];
  };
  printTable(['ratio vm / bwrap', 'p50', 'p90'], [ratioRow('create + exec true', total), ratioRow('  create', create), ratioRow('  exec true', exec)]);
}

interface SnapshotRound {
  record: SnapshotRecord;
  ms: number;
  /** freeze -> thaw, summed over the freezes of this snapshot (one, unless the scan was redone). */
  pausedMs: number;
}

/** The blob store the snapshot service writes to (not part of App's public surface). */
function blobsOf(b: BenchApp): BlobStore {
  return (b.app.services.snapshots as unknown as { deps: { blobs: BlobStore } }).deps.blobs;
}

/** Stored bytes of the image's parts by file (`state`, and `ram` and `disk` summed over their regions). */
async function partSizes(b: BenchApp, memoryHash: string): Promise<Record<string, number>> {
  const blobs = blobsOf(b);
  const sizes: Record<string, number> = {};
  for (const [name, hash] of Object.entries(await memoryImageParts(blobs, memoryHash))) {
    const file = name.split('/')[0]!;
    sizes[file] = (sizes[file] ?? 0) + ((await blobs.stat(hash))?.size ?? Number.NaN);
  }
  return sizes;
}

/** New bytes each snapshot committed (after dedup against what is stored): the first one, then the later ones. */
function committedRows(name: string, rounds: readonly SnapshotRound[]): string[][] {
  const first = rounds[0]!.record.storedBytes;
  const later = p50(rounds.slice(1).map((r) => r.record.storedBytes));
  return [
    [`${name}: new bytes committed, first snapshot`, String(first), mb(first), ''],
    [`${name}: new bytes committed, later ones (p50)`, String(Math.round(later)), mb(later), ''],
  ];
}

async function snapshotsAndBranches(s: Sides): Promise<void> {
  const vmPauses: number[] = [];
  const bwPauses: number[] = [];
  const captures: number[] = [];
  const saves: Array<{ ms: number; bytes: number }> = [];
  const restore = [
    timePauses(s.vm.runtime, vmPauses),
    timePauses(s.bwrap.runtime, bwPauses),
    timeCalls(s.vm.runtime, 'captureMemory', (t) => captures.push(t)),
    timeCalls<{ durationMs: number; bytes: number }>(QemuMachine.prototype, 'saveState', (_t, r) => saves.push({ ms: r.durationMs, bytes: r.bytes })),
  ];
  try {
    const vmSource = await s.vm.app.services.instances.create({});
    const bwSource = await s.bwrap.app.services.instances.create({});
    await sh(s.vm, vmSource, WORKSPACE);
    await sh(s.bwrap, bwSource, WORKSPACE);
    await sh(s.vm, vmSource, COUNTER);
    await counterPast(s.vm, vmSource, 3);

    const snap = async (b: BenchApp, instance: InstanceRecord, pauses: number[]): Promise<SnapshotRound> => {
      const before = pauses.length;
      const t0 = now();
      const record = await b.app.services.snapshots.create({ instanceId: instance.id });
      const total = now() - t0;
      return { record, ms: total, pausedMs: pauses.slice(before).reduce((a, x) => a + x, 0) };
    };
    const vmRounds: SnapshotRound[] = [];
    const bwRounds: SnapshotRound[] = [];
    let saved = { pid: 0, value: 0 };
    for (let i = 0; i < SNAPSHOTS; i++) {
      // Read before the snapshot: a branch of it can start no lower.
      const vmRound = async () => {
        saved = await readCounter(s.vm, vmSource);
        vmRounds.push(await snap(s.vm, vmSource, vmPauses));
      };
      const bwRound = async () => void bwRounds.push(await snap(s.bwrap, bwSource, bwPauses));
      if (i % 2 === 0) {
        await vmRound();
        await bwRound();
      } else {
        await bwRound();
        await vmRound();
      }
    }
    const sizes = await Promise.all(vmRounds.map((r) => partSizes(s.vm, r.record.memoryHash!)));
    const imageBytes = sizes.map((p) => Object.values(p).reduce((a, x) => a + x, 0));
    const part = (name: string) => p50(sizes.map((p) => p[name] ?? Number.NaN));
    const lastVm = vmRounds.at(-1)!.record;
    const image = await loadMemoryImage(blobsOf(s.vm), lastVm.memoryHash!, s.vm.runtime.name);
    const ramMb = Number(image.machine.ramMb);

    const vmT = summarize(vmRounds.map((r) => r.ms));
    const bwT = summarize(bwRounds.map((r) => r.ms));
    const vmP = summarize(vmRounds.map((r) => r.pausedMs));
    const bwP = summarize(bwRounds.map((r) => r.pausedMs));
    section(`vm: snapshot of a running instance (snapshots.create, n=${SNAPSHOTS}), 50 x 4 KiB workspace`);
    printTable(['series', 'n', 'total p50 ms', 'total p90 ms', 'paused p50 ms', 'paused p90 ms', 'total / bwrap', 'paused / bwrap'], [
      ['bwrap snapshot, files only (baseline)', String(bwT.n), ms(bwT.p50), ms(bwT.p90), ms(bwP.p50), ms(bwP.p90), '1.00x', '1.00x'],
      ['vm snapshot, files + memory', String(vmT.n), ms(vmT.p50), ms(vmT.p90), ms(vmP.p50), ms(vmP.p90), ratio(vmT.p50, bwT.p50), ratio(vmP.p50, bwP.p50)],
    ]);
    console.log('');
    printTable(['stored (p50 over the snapshots)', 'bytes', 'MB', 'vs guest RAM'], [
      [`memory image: sum of its parts (${Object.keys(sizes[0]!).join(', ')}; ram in 256 KiB and disk in 4 MiB regions)`, String(Math.round(p50(imageBytes))), mb(p50(imageBytes)), `${((100 * p50(imageBytes)) / (ramMb * MB)).toFixed(1)}%`],
      ...Object.keys(sizes[0]!).map((name) => [`  ${name}`, String(Math.round(part(name))), mb(part(name)), `${((100 * part(name)) / (ramMb * MB)).toFixed(1)}%`]),
      ...committedRows('vm', vmRounds),
      ...committedRows('bwrap', bwRounds),
    ]);
    console.log(`  files in both: vm ${lastVm.fileCount} files / ${lastVm.size} bytes, bwrap ${bwRounds.at(-1)!.record.fileCount} files / ${bwRounds.at(-1)!.record.size} bytes`);

    section(`vm: machine figures from the ${SNAPSHOTS} snapshots above (guest ${ramMb} MB RAM, ${String(image.machine.vcpus)} vcpu, ${String(image.machine.accel)})`);
    const save = summarize(saves.map((x) => x.ms));
    const cap = summarize(captures);
    printTable(['figure', 'n', 'p50', 'baseline', 'ratio'], [
      ['QemuMachine.saveState (device state), ms', String(save.n), ms(save.p50), `paused p50 ${ms(vmP.p50)} ms`, ratio(save.p50, vmP.p50)],
      ['captureMemory while paused (saveState + RAM + disk copies), ms', String(cap.n), ms(cap.p50), `paused p50 ${ms(vmP.p50)} ms`, ratio(cap.p50, vmP.p50)],
      ['device state size (saveState), bytes', String(saves.length), String(Math.round(p50(saves.map((x) => x.bytes)))), '', ''],
      ['RAM part, packed, MB', String(sizes.length), mb(part('ram')), `guest RAM ${ramMb} MB`, ratio(part('ram'), ramMb * MB)],
      ['snapshot after the pause (pack, hash, store), ms', String(vmT.n), ms(vmT.p50 - vmP.p50), `bwrap total ${ms(bwT.p50)} ms`, ratio(vmT.p50 - vmP.p50, bwT.p50)],
    ]);

    await branches(s, { vm: lastVm, bwrap: bwRounds.at(-1)!.record }, saved);
    await s.vm.app.services.instances.delete(vmSource.id);
    await s.bwrap.app.services.instances.delete(bwSource.id);
  } finally {
    for (const undo of restore) undo();
  }
}

async function branches(s: Sides, snaps: { vm: SnapshotRecord; bwrap: SnapshotRecord }, saved: { pid: number; value: number }): Promise<void> {
  interface Fork {
    wall: number;
    starts: number[];
    answered: number;
    /** Each branch's first counter read, and (vm) a later one that passed it. */
    first: Array<{ pid: number; value: number }>;
    later: Array<{ pid: number; value: number }>;
  }
  const fork = async (b: BenchApp, snap: SnapshotRecord): Promise<Fork> => {
    const t0 = now();
    const records = await b.app.services.snapshots.branch(snap.id, BRANCHES);
    const t1 = now();
    // All at once, as a client fanning work out to its branches would.
    const first = await Promise.all(records.map((r) => readCounter(b, r)));
    const t2 = now();
    // Counting on: the process runs, it was not merely saved. (bwrap branches have files only.)
    const later = b === s.vm ? await Promise.all(records.map((r, i) => counterPast(b, r, first[i]!.value))) : [];
    await Promise.all(records.map((r) => b.app.services.instances.delete(r.id)));
    return { wall: t1 - t0, starts: records.map((r) => r.startDurationMs ?? Number.NaN), answered: t2 - t0, first, later };
  };
  // bwrap first: ten running QEMU machines would load the machine under it.
  const bw = await fork(s.bwrap, snaps.bwrap);
  const vm = await fork(s.vm, snaps.vm);
  section(`vm: ${BRANCHES} branches of one memory snapshot (snapshots.branch(ref, ${BRANCHES}))`);
  const row = (label: string, f: Fork, base: Fork | undefined): string[] => {
    const st = summarize(f.starts);
    return [label, ms(f.wall), ms(f.wall / BRANCHES), ms(st.p50), ms(st.max), ms(f.answered), base ? ratio(f.wall, base.wall) : '1.00x', base ? ratio(f.answered, base.answered) : '1.00x'];
  };
  printTable(['series', 'branch ms', 'per branch ms', 'start p50 ms', 'start max ms', 'all answered ms', 'branch / bwrap', 'answered / bwrap'], [
    row('bwrap, files only (baseline)', bw, undefined),
    row('vm, files + memory', vm, bw),
  ]);
  console.log('  (start = each instance\'s runtime start as recorded, concurrent within the call; answered = from the call until all');
  console.log(`   ${BRANCHES} returned an exec of \`cat /workspace/counter\`, issued together)`);
  const samePid = vm.first.filter((c, i) => c.pid === saved.pid && vm.later[i]?.pid === saved.pid).length;
  const values = vm.first.map((c) => c.value);
  const noLower = values.filter((v) => v >= saved.value).length;
  const ok = samePid === BRANCHES && noLower === BRANCHES && vm.later.length === BRANCHES;
  console.log(`  resumed check: ${samePid}/${BRANCHES} branches run the snapshot's counter process (pid ${saved.pid}) and it counts on; ${noLower}/${BRANCHES}`);
  console.log(`  started at or above the value read before the snapshot (${saved.value}; first reads ${Math.min(...values)}..${Math.max(...values)}): ${ok ? 'PASS' : 'FAIL'}`);
}

export async function vm(): Promise<void> {
  const n = envInt('BENCH_VM_N', 10);
  const hadImageDir = process.env.FAAS_VM_IMAGE_DIR;
  const imageDir = hadImageDir ?? IMAGE_DIR;
  process.env.FAAS_VM_IMAGE_DIR = imageDir;
  const bwrap = await buildApp();
  let vmApp: BenchApp | undefined;
  let runDir: string | undefined;
  try {
    const cached = existsSync(imageDir) && readdirSync(imageDir).length > 0;
    const t0 = now();
    vmApp = await buildApp({ runtime: 'vm' });
    const readyMs = now() - t0;
    runDir = (vmApp.runtime as unknown as { runDirectory(): string }).runDirectory();
    section('vm: runtime');
    console.log(`  vm server ready in ${ms(readyMs)} ms: guest image ${cached ? 'found' : 'built, and the accelerator probed,'} in ${imageDir} (kept for later runs)`);
    console.log(`  baseline server (bwrap) built the same way, alongside; samples alternate between the two`);
    const s: Sides = { vm: vmApp, bwrap };
    await startLatency(s, n);
    await snapshotsAndBranches(s);
  } finally {
    await vmApp?.close();
    // The machines' in-memory dir (/dev/shm/faas-vm-<hash>) outlives close(); it is this server's own.
    if (runDir !== undefined) rmSync(runDir, { recursive: true, force: true });
    await bwrap.close();
    if (hadImageDir === undefined) delete process.env.FAAS_VM_IMAGE_DIR;
  }
}
