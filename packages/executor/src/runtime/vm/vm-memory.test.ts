import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MemoryCapture, MemoryImageSource, ProcessExit } from '../types.ts';
import { openTestVmRuntime, TEST_IMAGE_DIR } from './vm-test-fixture.ts';
import pino from 'pino';
import { systemClock } from '../../util/clock.ts';
import { VmRuntime } from './vm-runtime.ts';

let runtime: VmRuntime;
let dispose: () => Promise<void>;
const scratch = mkdtempSync(join(tmpdir(), 'faas-vm-mem-'));
let counter = 0;

before(async () => {
  ({ runtime, dispose } = await openTestVmRuntime());
});
after(async () => {
  await dispose?.();
  rmSync(scratch, { recursive: true, force: true });
});

const limits = { memoryMb: 256, cpuCores: 1, pidsMax: 256 };

async function newInstance(memoryImage?: MemoryImageSource): Promise<string> {
  const id = `inst-vmmem${process.pid}x${counter++}`;
  await runtime.startInstance({ id, env: 'host', hostUid: 0, limits, ...(memoryImage ? { memoryImage } : {}) });
  return id;
}

async function run(id: string, script: string): Promise<ProcessExit & { stdout: string; stderr: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const proc = await runtime.exec(id, {
    executionId: `exec-vmmem${counter++}`,
    argv: ['sh', '-c', script],
    env: { PATH: '/usr/bin:/bin' },
    workingDir: '/workspace',
    sink: { stdout: (c) => out.push(c), stderr: (c) => err.push(c), progress: () => undefined },
  });
  const exit = await proc.wait();
  return { ...exit, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** Stores a capture's parts as files (as the blob store would) and gives them back as an image. */
async function keep(capture: MemoryCapture): Promise<MemoryImageSource & { partHashes: Record<string, string> }> {
  const dir = mkdtempSync(join(scratch, 'image-'));
  const partHashes: Record<string, string> = {};
  for await (const part of capture.parts()) {
    const file = join(dir, part.name.replace('/', '-'));
    writeFileSync(file, part.data);
    partHashes[part.name] = createHash('sha256').update(part.data).digest('hex');
  }
  await capture.release();
  const hash = createHash('sha256').update(JSON.stringify(partHashes)).digest('hex');
  return { hash, machine: capture.machine, partHashes, open: async (name) => createReadStream(join(dir, name.replace('/', '-'))) };
}

/** One hash over the hashes of every part of `file` (its regions), in order. */
function digestOf(partHashes: Record<string, string>, file: 'ram' | 'disk'): string {
  const names = Object.keys(partHashes).filter((n) => n.startsWith(`${file}/`)).sort();
  return createHash('sha256').update(names.map((n) => partHashes[n]).join()).digest('hex');
}

/** Freezes the instance, runs `whileFrozen` and captures its memory, then thaws it. */
async function captureFrozen(id: string, whileFrozen: () => void = () => undefined): Promise<MemoryCapture> {
  const thaw = await runtime.freeze(id);
  try {
    whileFrozen();
    return await runtime.captureMemory(id);
  } finally {
    thaw();
  }
}

async function snapshotMemory(id: string): Promise<{ image: Awaited<ReturnType<typeof keep>>; fileValue: string }> {
  let fileValue = '';
  const capture = await captureFrozen(id, () => (fileValue = readFileSync(join(runtime.rootDir(id), 'workspace', 'counter'), 'utf8').trim()));
  return { image: await keep(capture), fileValue };
}

/** The value lives in the shell's memory; the file is renamed into place, so a read never sees it half written. */
const COUNTER = 'nohup sh -c \'i=0; while :; do i=$((i+1)); echo "$$ $i" > /workspace/counter.tmp; mv /workspace/counter.tmp /workspace/counter; sleep 0.05; done\' >/dev/null 2>&1 & echo started';

async function readCounter(id: string): Promise<{ pid: number; value: number }> {
  const r = await run(id, 'cat /workspace/counter');
  const [pid, value] = r.stdout.trim().split(' ').map(Number);
  return { pid: pid!, value: value! };
}

async function waitPast(id: string, min: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const c = await readCounter(id).catch(() => ({ pid: 0, value: -1 }));
    if (c.value > min) return c.value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`counter of ${id} did not pass ${min}`);
}

describe('vm runtime: memory snapshots', () => {
  it('a counter saved in a memory snapshot continues from its saved value in two restored instances, which then diverge', async () => {
    const source = await newInstance();
    assert.equal((await run(source, COUNTER)).stdout, 'started\n');
    await waitPast(source, 3);
    const { image, fileValue } = await snapshotMemory(source);
    const [savedPid, savedValue] = fileValue.split(' ').map(Number) as [number, number];

    const branches = [await newInstance(image), await newInstance(image)];
    for (const branch of branches) {
      const first = await readCounter(branch);
      assert.equal(first.pid, savedPid, 'the snapshot\'s process runs on');
      // It counts on from the saved value (a restarted loop would begin at 1).
      assert.ok(first.value >= savedValue && first.value < savedValue + 200, `branch starts at ${first.value}, saved ${savedValue}`);
      assert.ok((await waitPast(branch, first.value)) > first.value);
    }
    await run(branches[0]!, 'echo zero > /workspace/who');
    await run(branches[1]!, 'echo one > /workspace/who');
    assert.equal((await run(branches[0]!, 'cat /workspace/who')).stdout, 'zero\n');
    assert.equal((await run(branches[1]!, 'cat /workspace/who')).stdout, 'one\n');
    assert.equal((await run(source, 'cat /workspace/who 2>/dev/null || echo none')).stdout, 'none\n');
    for (const id of [source, ...branches]) await runtime.destroyInstance(id);
  });

  it('the memory image changes with memory alone: same files, different RAM, different RAM part hash', async () => {
    const id = await newInstance();
    await run(id, 'echo fixed > /workspace/counter; sync');
    const first = await snapshotMemory(id);
    // Memory only: a tmpfs file is RAM, not disk.
    await run(id, 'head -c 4000000 /dev/urandom > /dev/shm/noise');
    const second = await snapshotMemory(id);
    assert.equal(first.fileValue, second.fileValue);
    assert.notEqual(digestOf(first.image.partHashes, 'ram'), digestOf(second.image.partHashes, 'ram'));
    // Most regions did not change between the two: they are the same parts (stored once).
    const ramNames = Object.keys(second.image.partHashes).filter((n) => n.startsWith('ram/'));
    const shared = ramNames.filter((n) => first.image.partHashes[n] === second.image.partHashes[n]).length;
    assert.ok(shared > ramNames.length / 2, `${shared} of ${ramNames.length} RAM regions unchanged`);
    // The same capture read twice gives the same bytes: the hash is a function of the content.
    const capture = await captureFrozen(id);
    const hashes = async () => {
      const all: Record<string, string> = {};
      for await (const part of capture.parts()) all[part.name] = createHash('sha256').update(part.data).digest('hex');
      return all;
    };
    assert.deepEqual(await hashes(), await hashes());
    await capture.release();
    await runtime.destroyInstance(id);
  });

  it('destroy leaves no QEMU process, socket or RAM file behind', async () => {
    const id = await newInstance();
    const pid = runtime.machinePid(id);
    assert.ok(pid !== undefined && existsSync(`/proc/${pid}`));
    await runtime.destroyInstance(id);
    assert.equal(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), false, 'qemu is gone');
    assert.equal(runtime.machinePid(id), undefined);
    const runDir = runtime.runDirectory();
    // Unpacked memory images (images/) are the runtime's restore cache, not the instance's: bounded, and dropped when idle.
    const leftovers = existsSync(runDir) ? readdirSync(runDir, { recursive: true }).map(String).filter((p) => /ram|\.sock$|qmp|agent/.test(p) && !p.includes('pairs.sock') && !p.startsWith('images')) : [];
    assert.deepEqual(leftovers, []);
  });

  it('a guest that hangs is killed by the timeout: the kill ends the machine and the exec', async () => {
    const id = await newInstance();
    const exits: string[] = [];
    runtime.onInstanceExit((instanceId, reason) => instanceId === id && exits.push(reason));
    const proc = await runtime.exec(id, { executionId: `exec-hang${counter++}`, argv: ['sleep', '1000'], env: { PATH: '/usr/bin:/bin' }, workingDir: '/', sink: { stdout: () => undefined, stderr: () => undefined, progress: () => undefined } });
    const pid = runtime.machinePid(id)!;
    process.kill(pid, 'SIGSTOP'); // the whole guest stops answering
    const started = Date.now();
    await proc.signal('SIGKILL');
    const exit = await proc.wait();
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(Date.now() - started < 20_000);
    assert.equal(exits.length, 1, 'the instance is reported as ended');
    assert.match(exits[0]!, /hung/);
    await assert.rejects(run(id, 'true'), (e: { code?: string }) => e.code === 'INSTANCE_NOT_RUNNING');
    await runtime.destroyInstance(id);
  });

  it('recover() after a crash kills the machines a previous run left and removes their files, keeping kept instances\' disks', async () => {
    const crashed = await openTestVmRuntime();
    const kept = `inst-kept${process.pid}`;
    const lost = `inst-lost${process.pid}`;
    for (const id of [kept, lost]) await crashed.runtime.startInstance({ id, env: 'host', hostUid: 0, limits });
    const pids = [crashed.runtime.machinePid(kept)!, crashed.runtime.machinePid(lost)!];
    // A new server on the same data dir, as after a crash of the first (which is never closed).
    const next = new VmRuntime({ dataDir: crashed.dataDir, clock: systemClock, logger: pino({ level: 'silent' }), imageDir: TEST_IMAGE_DIR });
    await next.checkHost();
    const report = await next.recover(new Set([kept]));
    assert.equal(report.processesKilled, 2);
    assert.equal(report.dirsRemoved, 1);
    for (const pid of pids) assert.ok(!existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), `qemu ${pid} is gone`);
    assert.ok(existsSync(join(crashed.dataDir, 'vm', 'instances', kept, 'disk.img')), 'the kept instance keeps its disk');
    assert.ok(!existsSync(join(crashed.dataDir, 'vm', 'instances', lost)));
    // The "crashed" runtime is still alive in this process (a real crash runs no handlers): let
    // it finish reacting to the kills, which removes its run dirs, before the same instance id
    // gets a new machine whose run dir it would otherwise remove.
    const deadline = Date.now() + 10_000;
    while ((crashed.runtime.machinePid(kept) !== undefined || crashed.runtime.machinePid(lost) !== undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(crashed.runtime.machinePid(kept), undefined);
    // The kept instance starts again on its disk (a boot: its memory is gone with the crash).
    await next.startInstance({ id: kept, env: 'host', hostUid: 0, limits });
    await next.destroyInstance(kept);
    await next.close();
    await crashed.dispose();
  });

  it('a host without QEMU is refused at start-up, naming the packages to install', async () => {
    const missing = new VmRuntime({ dataDir: scratch, clock: systemClock, logger: pino({ level: 'silent' }), missingPackages: () => ['qemu-system-x86', 'busybox-static'] });
    await assert.rejects(missing.checkHost(), (e: { code?: string; message?: string }) => e.code === 'RUNTIME_ERROR' && /qemu-system-x86, busybox-static/.test(e.message!) && /apt-get install/.test(e.message!));
  });

  it('bad input: capture of an unfrozen instance, a memory image of another guest image, an unknown instance', async () => {
    const id = await newInstance();
    await assert.rejects(runtime.captureMemory(id), (e: { code?: string }) => e.code === 'RUNTIME_ERROR');
    assert.throws(() => runtime.rootDir(id), (e: { code?: string }) => e.code === 'RUNTIME_UNSUPPORTED');
    const image = await keep(await captureFrozen(id));
    const foreign = { ...image, machine: { ...image.machine, imageId: '0'.repeat(64) } };
    await assert.rejects(newInstance(foreign), (e: { code?: string }) => e.code === 'RUNTIME_UNSUPPORTED');
    await assert.rejects(runtime.freeze('inst-nope'), (e: { code?: string }) => e.code === 'INSTANCE_NOT_RUNNING');
    await runtime.destroyInstance(id);
  });
});
