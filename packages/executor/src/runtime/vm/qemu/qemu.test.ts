import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isFaasError } from '@faas/protocol';
import { buildQemuArgs, machinePaths, type MachineSpec } from './qemu-args.ts';
import { findLeftoverMachines, killLeftovers, QemuMachine } from './qemu-machine.ts';
import { copySparse, packSparse, packSparseRegions, unpackSparse } from './sparse-files.ts';
import { writeTinyInitramfs } from './tiny-initramfs.ts';
import { findGuestKernel } from '../guest-image/build-guest-image.ts';

// Whatever cloud kernel the host has (the test command installs linux-image-cloud-amd64).
const KERNEL = findGuestKernel().image;
const HERE = dirname(fileURLToPath(import.meta.url));

let root: string;
let markerInitrd: string;
let counterInitrd: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'faas-qemu-test-'));
  markerInitrd = join(root, 'marker.cpio');
  counterInitrd = join(root, 'counter.cpio');
  await writeTinyInitramfs(markerInitrd, 'busybox echo BOOT-MARKER\nwhile true; do busybox sleep 1; done');
  await writeTinyInitramfs(counterInitrd, 'i=0\nwhile true; do i=$((i+1)); echo "tick $i"; busybox sleep 0.2; done');
});

after(async () => {
  await killLeftovers(root);
  await rm(root, { recursive: true, force: true });
});

function spec(name: string, initrd: string, extra: Partial<MachineSpec> = {}): MachineSpec {
  const dir = join(root, name);
  return { dir, kernel: KERNEL, initrd, append: 'console=ttyS0 panic=-1 quiet', disks: [], ramMb: 256, vcpus: 1, ramFile: join(dir, 'ram'), accel: 'tcg', ...extra };
}

async function waitForConsole(path: string, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = (await readFile(path, 'utf8').catch(() => '')).match(pattern);
    if (match) return match;
    if (Date.now() > deadline) throw new Error(`${pattern} not in ${path} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Complete "tick N" lines only: a line cut by the pause must not count. */
function ticks(log: string): number[] {
  return [...log.matchAll(/^tick (\d+)\r?\n/gm)].map((m) => Number(m[1]));
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of live QEMU processes whose command line mentions `dir`. */
async function qemuPidsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const state = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (cmdline.startsWith('qemu-system') && cmdline.includes(dir) && !/\) Z /.test(state)) pids.push(Number(entry));
  }
  return pids;
}

async function allocatedMb(path: string): Promise<number> {
  return ((await stat(path)).blocks * 512) / 2 ** 20;
}

test('boot prints the marker, QMP pauses and resumes, quit leaves no process, socket or pid file', async () => {
  const s = spec('boot', markerInitrd, { agentSocket: join(root, 'boot', 'agent.sock') });
  const started = performance.now();
  const machine = await QemuMachine.launch(s);
  await waitForConsole(machine.consoleLog, /BOOT-MARKER/);
  console.log(`boot to marker: ${(performance.now() - started).toFixed(0)} ms`);
  const paths = machinePaths(s.dir);
  assert.ok(existsSync(paths.pidFile) && existsSync(paths.qmpSocket) && existsSync(s.agentSocket as string));

  assert.equal(await machine.status(), 'running');
  const stopped = machine.qmp.waitForEvent('STOP', { timeoutMs: 5000 });
  await machine.pause();
  await stopped;
  assert.equal(await machine.status(), 'paused');
  await machine.resume();
  assert.equal(await machine.status(), 'running');
  console.log(`RAM file allocated after boot: ${(await allocatedMb(s.ramFile)).toFixed(1)} MB of ${s.ramMb} MB`);

  const exit = await machine.quit();
  assert.equal(exit.code, 0);
  assert.equal(processExists(machine.pid), false);
  for (const file of [paths.pidFile, paths.qmpSocket, s.agentSocket as string]) assert.equal(existsSync(file), false, `${file} left behind`);
  await assert.rejects(machine.status(), (e: unknown) => isFaasError(e) && e.code === 'RUNTIME_ERROR');
});

test('a saved counter guest restored twice from copies of one snapshot continues from the saved count', async () => {
  const source = spec('counter', counterInitrd);
  const machine = await QemuMachine.launch(source);
  await waitForConsole(machine.consoleLog, /^tick 5\r?\n/m);
  const snapshotDir = join(root, 'snapshot');
  await mkdir(snapshotDir);
  const saved = await machine.saveState(join(snapshotDir, 'state'));
  console.log(`saveState: ${saved.durationMs.toFixed(1)} ms, ${saved.bytes} bytes`);
  assert.equal(await machine.status(), 'postmigrate');
  const copyStarted = performance.now();
  await copySparse(source.ramFile, join(snapshotDir, 'ram'));
  console.log(`copySparse of the RAM file: ${(performance.now() - copyStarted).toFixed(0)} ms (${(await allocatedMb(source.ramFile)).toFixed(1)} MB allocated)`);
  const savedTick = Math.max(...ticks(await readFile(machine.consoleLog, 'utf8')));
  await machine.quit();

  const restored: QemuMachine[] = [];
  try {
    for (const name of ['restore-a', 'restore-b']) {
      // The kernel command line only matters at boot: a restore may pass another one.
      const s = spec(name, counterInitrd, { append: 'console=ttyS0 restored', incoming: { statePath: join(snapshotDir, 'state') } });
      await mkdir(s.dir);
      await copySparse(join(snapshotDir, 'ram'), s.ramFile);
      const started = performance.now();
      const m = await QemuMachine.launch(s);
      console.log(`restore ${name}: launch to running ${(performance.now() - started).toFixed(0)} ms`);
      assert.equal(await m.status(), 'running');
      restored.push(m);
    }
    for (const m of restored) {
      await waitForConsole(m.consoleLog, new RegExp(`^tick ${savedTick + 3}\\r?\\n`, 'm'));
      const seen = ticks(await readFile(m.consoleLog, 'utf8'));
      // The first complete line is savedTick + 1, or + 2 if "tick N+1" was cut by the pause.
      assert.ok(seen[0] === savedTick + 1 || seen[0] === savedTick + 2, `restored at ${seen[0]}, saved at ${savedTick}`);
      assert.deepEqual(seen, seen.map((_, i) => (seen[0] as number) + i));
    }
  } finally {
    await Promise.all(restored.map((m) => m.quit()));
  }
});

test('paths outside [A-Za-z0-9._/-] are refused with VALIDATION_FAILED before anything starts', async () => {
  const refused = (e: unknown): boolean => isFaasError(e) && e.code === 'VALIDATION_FAILED';
  await assert.rejects(QemuMachine.launch(spec('bad', markerInitrd, { ramFile: '/tmp/a b' })), refused);
  await assert.rejects(QemuMachine.launch(spec('bad', markerInitrd, { ramFile: 'relative/ram' })), refused);
  await assert.rejects(QemuMachine.launch(spec('bad', markerInitrd, { disks: [{ path: '/tmp/x,readonly=off', readOnly: true }] })), refused);
  await assert.rejects(QemuMachine.launch(spec('bad', markerInitrd, { incoming: { statePath: '/tmp/s; rm -rf /' } })), refused);
  assert.equal(existsSync(join(root, 'bad')), false);
});

test('restoring from a missing or corrupt state file is a RUNTIME_ERROR and leaves no QEMU behind', async () => {
  const missing = spec('missing', counterInitrd, { incoming: { statePath: join(root, 'no-such-state') } });
  await assert.rejects(QemuMachine.launch(missing), (e: unknown) => isFaasError(e) && e.code === 'RUNTIME_ERROR' && /missing/.test(e.message));

  const corrupt = spec('corrupt', counterInitrd, { incoming: { statePath: join(root, 'corrupt-state') } });
  await writeFile(corrupt.incoming!.statePath, randomBytes(4096));
  await assert.rejects(QemuMachine.launch(corrupt), (e: unknown) => {
    assert.ok(isFaasError(e) && e.code === 'RUNTIME_ERROR', String(e));
    console.log(`corrupt state error: ${e.message}`);
    return true;
  });
  assert.deepEqual(await qemuPidsUnder(corrupt.dir), []);
  assert.equal(existsSync(machinePaths(corrupt.dir).pidFile), false);
});

test('QEMU dies with a crashed owner, and killLeftovers clears the files it left', async () => {
  const s = spec('orphan', markerInitrd);
  const script = join(root, 'owner.mts');
  await writeFile(script, [
    `import { QemuMachine } from ${JSON.stringify(join(HERE, 'qemu-machine.ts'))};`,
    `const m = await QemuMachine.launch(${JSON.stringify(s)});`,
    `process.stdout.write(String(m.pid) + '\\n');`,
    'setInterval(() => {}, 1000);',
  ].join('\n'));
  const owner = spawn(process.execPath, ['--import', 'tsx', script], { cwd: HERE, stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = Number((await new Promise<Buffer>((resolve) => owner.stdout.once('data', resolve))).toString());
  assert.ok(processExists(pid));
  owner.kill('SIGKILL');
  for (let i = 0; i < 200 && (await qemuPidsUnder(s.dir)).length > 0; i++) await sleep(10);
  assert.deepEqual(await qemuPidsUnder(s.dir), [], 'QEMU outlived its owner');

  assert.deepEqual(await findLeftoverMachines(root), [{ dir: s.dir, pid, running: false }]);
  assert.equal(await killLeftovers(root), 0);
  assert.equal(existsSync(machinePaths(s.dir).pidFile), false);
  assert.equal(existsSync(machinePaths(s.dir).qmpSocket), false);
});

test('killLeftovers kills a running QEMU nobody owns and removes its pid file and socket', async () => {
  const s = spec('unowned', markerInitrd);
  await mkdir(s.dir);
  const paths = machinePaths(s.dir);
  // Started without the pdeathsig wrapper, as if the owner's crash had not taken it along.
  const qemu = spawn('qemu-system-x86_64', buildQemuArgs(s), { stdio: 'ignore', detached: true });
  await writeFile(paths.pidFile, `${qemu.pid}\n`);
  await waitForConsole(paths.consoleLog, /BOOT-MARKER/);

  assert.deepEqual(await findLeftoverMachines(root), [{ dir: s.dir, pid: qemu.pid, running: true }]);
  assert.equal(await killLeftovers(root), 1);
  assert.deepEqual(await qemuPidsUnder(s.dir), []);
  assert.equal(existsSync(paths.pidFile), false);
  assert.equal(existsSync(paths.qmpSocket), false);
});

async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Writes `extents` (offset -> bytes) into a file of `size`, either sparse or with every zero written. */
async function writeFileWith(path: string, size: number, extents: [number, Buffer][], dense: boolean): Promise<void> {
  const file = await open(path, 'w');
  try {
    if (dense) {
      const zeros = Buffer.alloc(1 << 20);
      for (let at = 0; at < size; at += zeros.length) await file.write(zeros, 0, Math.min(zeros.length, size - at), at);
    } else {
      await file.truncate(size);
    }
    for (const [offset, data] of extents) await file.write(data, 0, data.length, offset);
  } finally {
    await file.close();
  }
}

test('packSparse depends only on the bytes: a dense and a sparse file with equal content give the same stream', async () => {
  const size = 8 * 2 ** 20 + 1234; // not a multiple of the block size
  const extents: [number, Buffer][] = [
    [0, randomBytes(100)],
    [4096 * 3 + 17, randomBytes(3 * 4096)],
    [2 ** 20 - 10, randomBytes(2 ** 20 + 4096)], // crosses read chunks, longer than one extent
    [size - 50, randomBytes(50)],
  ];
  const dense = join(root, 'dense.img');
  const sparse = join(root, 'sparse.img');
  await writeFileWith(dense, size, extents, true);
  await writeFileWith(sparse, size, extents, false);
  assert.ok((await stat(sparse)).blocks < (await stat(dense)).blocks);

  assert.equal(await sha256(packSparse(dense)), await sha256(packSparse(sparse)));

  const unpacked = join(root, 'unpacked.img');
  await unpackSparse(packSparse(sparse), unpacked);
  assert.deepEqual(await readFile(unpacked), await readFile(dense));
  assert.ok((await stat(unpacked)).blocks <= (await stat(sparse)).blocks + 16);
});

test('packSparseRegions: one self-contained stream per region, equal regions equal bytes, a change touches only its region', async () => {
  const region = 2 ** 20;
  const size = 5 * region + 4096 * 3 + 100; // a last, partial region
  const extents: [number, Buffer][] = [
    [10, randomBytes(5000)],
    [region - 4096, randomBytes(3 * 4096)], // crosses into region 1
    [4 * region + 77, randomBytes(200)],
    [size - 30, randomBytes(30)],
  ];
  const path = join(root, 'regions.img');
  await writeFileWith(path, size, extents, false);
  const collect = async () => {
    const parts: Buffer[] = [];
    for await (const part of packSparseRegions(path, region)) parts.push(part);
    return parts;
  };
  const parts = await collect();
  assert.equal(parts.length, 6);
  // Regions 2 and 3 hold nothing: the same bytes (stored once by content).
  assert.deepEqual(parts[2], parts[3]);
  const out = join(root, 'regions-out.img');
  await writeFile(out, '');
  const handle = await open(out, 'r+');
  await handle.truncate(size);
  await handle.close();
  for (const part of parts) await unpackSparse(Readable.from([part]), out, { into: true });
  assert.deepEqual(await readFile(out), await readFile(path));

  const file = await open(path, 'r+');
  await file.write(Buffer.from('x'), 0, 1, 4 * region + 5);
  await file.close();
  const after = await collect();
  const changed = after.map((p, i) => !p.equals(parts[i]!)).flatMap((c, i) => (c ? [i] : []));
  assert.deepEqual(changed, [4]);
  // Into a file of another size: refused, nothing half written.
  const other = join(root, 'regions-other.img');
  await writeFile(other, Buffer.alloc(4096));
  await assert.rejects(unpackSparse(Readable.from([parts[0]!]), other, { into: true }), (e: unknown) => isFaasError(e) && e.code === 'VALIDATION_FAILED');
});

test('unpackSparse refuses a truncated or garbled stream with VALIDATION_FAILED', async () => {
  const path = join(root, 'small.img');
  await writeFileWith(path, 65536, [[5000, randomBytes(3000)]], false);
  const chunks: Buffer[] = [];
  for await (const chunk of packSparse(path)) chunks.push(chunk as Buffer);
  const stream = Buffer.concat(chunks);
  const refused = (e: unknown): boolean => isFaasError(e) && e.code === 'VALIDATION_FAILED';
  await assert.rejects(unpackSparse(Readable.from([stream.subarray(0, stream.length - 5)]), join(root, 'out.img')), refused);
  await assert.rejects(unpackSparse(Readable.from([Buffer.from('NOTSPARSE'), stream.subarray(9)]), join(root, 'out.img')), refused);
});

test('a 1 GiB file with 64 MB of data packs in well under a few seconds, and copySparse copies it', async () => {
  const path = join(root, 'big.img');
  const extents: [number, Buffer][] = [];
  for (let i = 0; i < 16; i++) extents.push([i * 64 * 2 ** 20, randomBytes(4 * 2 ** 20)]);
  await writeFileWith(path, 2 ** 30, extents, false);

  let started = performance.now();
  const packed = await sha256(packSparse(path));
  const packMs = performance.now() - started;
  console.log(`packSparse 1 GiB / 64 MB data: ${packMs.toFixed(0)} ms`);
  assert.ok(packMs < 5000);

  started = performance.now();
  await copySparse(path, join(root, 'big-copy.img'));
  console.log(`copySparse 1 GiB / 64 MB data: ${(performance.now() - started).toFixed(0)} ms`);
  assert.equal(await sha256(packSparse(join(root, 'big-copy.img'))), packed);
  assert.ok((await stat(join(root, 'big-copy.img'))).blocks * 512 < 80 * 2 ** 20);
});
