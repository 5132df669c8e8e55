import { access, constants, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaasError } from '@faas/protocol';
import { QemuMachine } from './qemu-machine.ts';
import { writeTinyInitramfs } from './tiny-initramfs.ts';

export type Accelerator = 'kvm' | 'tcg';

export interface DetectAcceleratorOptions {
  /** The kernel the machines will run: a /dev/kvm that cannot run *this* kernel is no use. */
  kernel: string;
  /** How long the KVM probe guest may take to print its marker. @default 10000 */
  timeoutMs?: number;
}

const MARKER = 'FAAS-KVM-PROBE-OK';
let cached: Promise<Accelerator> | undefined;

/**
 * KVM when it can really run the kernel, else TCG. `FAAS_VM_ACCEL=kvm|tcg` overrides.
 *
 * /dev/kvm existing proves little: nested or paravirtual hosts expose one that fails with
 * "emulation failure" on this kernel. So a tiny guest (busybox, prints a marker, powers off)
 * is booted under KVM and KVM is accepted only if the marker appears in time. The answer is
 * cached for the life of the process (the first call's kernel decides).
 */
export function detectAccelerator(options: DetectAcceleratorOptions): Promise<Accelerator> {
  const forced = process.env['FAAS_VM_ACCEL'];
  if (forced !== undefined && forced !== '') {
    if (forced !== 'kvm' && forced !== 'tcg') return Promise.reject(new FaasError('VALIDATION_FAILED', `FAAS_VM_ACCEL must be kvm or tcg, not ${JSON.stringify(forced)}`));
    return Promise.resolve(forced);
  }
  cached ??= probe(options);
  return cached;
}

async function probe(options: DetectAcceleratorOptions): Promise<Accelerator> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return 'tcg';
  }
  return (await kvmBootsKernel(options.kernel, options.timeoutMs ?? 10_000)) ? 'kvm' : 'tcg';
}

async function kvmBootsKernel(kernel: string, timeoutMs: number): Promise<boolean> {
  const dir = await mkdtemp(join(tmpdir(), 'faas-kvm-probe-'));
  try {
    const initrd = join(dir, 'initrd.cpio');
    const ramFile = join(dir, 'ram');
    await writeTinyInitramfs(initrd, `/bin/busybox echo ${MARKER}\n/bin/busybox poweroff -f`);
    await writeFile(ramFile, '');
    const machine = await QemuMachine.launch({ dir, kernel, initrd, append: 'console=ttyS0 panic=-1 quiet', disks: [], ramMb: 128, vcpus: 1, ramFile, accel: 'kvm' });
    try {
      return await consoleShows(machine, MARKER, timeoutMs);
    } finally {
      await machine.kill();
    }
  } catch {
    // QEMU refusing to start under KVM is a "no" too.
    return false;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function consoleShows(machine: QemuMachine, marker: string, timeoutMs: number): Promise<boolean> {
  let exited = false;
  void machine.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // Read after checking `exited`, so output written just before the exit is still seen.
    const wasExited = exited;
    if ((await readFile(machine.consoleLog, 'utf8').catch(() => '')).includes(marker)) return true;
    if (wasExited) return false;
    await sleep(50);
  }
  return false;
}
