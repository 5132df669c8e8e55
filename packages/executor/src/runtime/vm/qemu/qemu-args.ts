import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FaasError } from '@faas/protocol';

/** What one QEMU machine is made of. A restore must use the same spec (bar `incoming`) as the save. */
export interface MachineSpec {
  /** Per-machine directory: QMP socket, pid file, console and QEMU logs. */
  dir: string;
  kernel: string;
  initrd: string;
  append: string;
  /** virtio-blk disks in this order: the guest sees vda, vdb, ... */
  disks: { path: string; readOnly: boolean }[];
  ramMb: number;
  vcpus: number;
  /** Guest RAM lives in this file (shared mapping), so a memory snapshot is a copy of it. */
  ramFile: string;
  accel: 'kvm' | 'tcg';
  /** Host end of the agent's virtio serial port (CONTRACT.md), a unix socket QEMU listens on. */
  agentSocket?: string;
  /** Restore the state saved by `saveState` instead of booting. */
  incoming?: { statePath: string };
}

export interface MachinePaths {
  qmpSocket: string;
  pidFile: string;
  consoleLog: string;
  qemuLog: string;
}

export function machinePaths(dir: string): MachinePaths {
  return {
    qmpSocket: join(dir, 'qmp.sock'),
    pidFile: join(dir, 'qemu.pid'),
    consoleLog: join(dir, 'console.log'),
    qemuLog: join(dir, 'qemu.log'),
  };
}

/** Removes the pid file and the sockets QEMU does not unlink when it is killed. */
export async function removeMachineFiles(paths: MachinePaths, agentSocket?: string): Promise<void> {
  await Promise.all([paths.pidFile, paths.qmpSocket, agentSocket].map((file) => (file ? rm(file, { force: true }) : undefined)));
}

// Paths end up inside QEMU option strings (where ',' separates options) and inside `exec:`
// migration URIs (run by /bin/sh). Refusing everything but a plain character set is simpler
// and safer than escaping for two different parsers.
const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;

/** Throws VALIDATION_FAILED unless `path` is absolute and made only of [A-Za-z0-9._/-]. */
export function assertSafePath(path: string, what: string): void {
  if (!SAFE_PATH.test(path)) {
    throw new FaasError('VALIDATION_FAILED', `${what} must be an absolute path of [A-Za-z0-9._/-] only: ${JSON.stringify(path)}`, { path });
  }
}

function assertSafeSpec(spec: MachineSpec): void {
  assertSafePath(spec.dir, 'machine dir');
  assertSafePath(spec.kernel, 'kernel');
  assertSafePath(spec.initrd, 'initrd');
  assertSafePath(spec.ramFile, 'RAM file');
  spec.disks.forEach((disk, i) => assertSafePath(disk.path, `disk ${i}`));
  if (spec.agentSocket !== undefined) assertSafePath(spec.agentSocket, 'agent socket');
  if (spec.incoming) assertSafePath(spec.incoming.statePath, 'state file');
  if (!Number.isInteger(spec.ramMb) || spec.ramMb < 16) throw new FaasError('VALIDATION_FAILED', `ramMb must be an integer >= 16: ${spec.ramMb}`);
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1) throw new FaasError('VALIDATION_FAILED', `vcpus must be a positive integer: ${spec.vcpus}`);
}

// Fixed PCI slots: the guest names virtio disks in probe (= slot) order, and a migration
// target must present exactly the same devices at the same addresses as the source.
const AGENT_SERIAL_SLOT = 3;
const FIRST_DISK_SLOT = 4;

/** The QEMU command line (without the binary) for `spec`. Validates every path first. */
export function buildQemuArgs(spec: MachineSpec): string[] {
  assertSafeSpec(spec);
  const paths = machinePaths(spec.dir);
  const args = [
    '-nodefaults', '-no-user-config', '-display', 'none',
    // A guest reboot or panic (panic=-1) ends the process instead of looping.
    '-no-reboot',
    '-M', 'pc,memory-backend=ram',
    '-object', `memory-backend-file,id=ram,size=${spec.ramMb}M,mem-path=${spec.ramFile},share=on`,
    '-m', `${spec.ramMb}M`,
    '-smp', String(spec.vcpus),
    ...accelArgs(spec),
    '-kernel', spec.kernel, '-initrd', spec.initrd, '-append', spec.append,
    // append=on: a machine restored into the same dir keeps the earlier console output.
    '-chardev', `file,id=console,path=${paths.consoleLog},append=on`,
    '-serial', 'chardev:console',
    '-nic', 'none',
    '-qmp', `unix:${paths.qmpSocket},server=on,wait=off`,
    ...spec.disks.flatMap((disk, i) => diskArgs(disk, i)),
    ...agentArgs(spec.agentSocket),
  ];
  // -S: stay paused after loading the state, so the caller decides when the guest runs.
  if (spec.incoming) args.push('-incoming', 'defer', '-S');
  return args;
}

function accelArgs(spec: MachineSpec): string[] {
  if (spec.accel === 'kvm') return ['-accel', 'kvm', '-cpu', 'host'];
  // The default CPU model (qemu64) booted as fast as `max` or `Nehalem` here (2.15-2.3 s to
  // poweroff) and is the most stable choice for saved states. x86-on-x86 is safe for MTTCG.
  return ['-accel', spec.vcpus > 1 ? 'tcg,thread=multi' : 'tcg'];
}

function diskArgs(disk: { path: string; readOnly: boolean }, index: number): string[] {
  const node = `disk${index}`;
  // Writeback cache (the default, stated here on purpose): guest writes land in the host page
  // cache as soon as virtio-blk completes them, so after the guest's sync/FIFREEZE the raw file
  // as the host reads it holds everything; guest flushes still reach the disk (unlike
  // cache=unsafe), and cache=none's O_DIRECT buys nothing here.
  const readOnly = disk.readOnly ? 'on' : 'off';
  return [
    '-blockdev', `driver=file,node-name=${node}-file,filename=${disk.path},read-only=${readOnly},cache.direct=off,cache.no-flush=off`,
    '-blockdev', `driver=raw,node-name=${node},file=${node}-file,read-only=${readOnly}`,
    '-device', `virtio-blk-pci,drive=${node},addr=${FIRST_DISK_SLOT + index}`,
  ];
}

function agentArgs(agentSocket: string | undefined): string[] {
  if (agentSocket === undefined) return [];
  return [
    '-device', `virtio-serial-pci,id=agent-serial,addr=${AGENT_SERIAL_SLOT}`,
    '-chardev', `socket,id=agent,path=${agentSocket},server=on,wait=off`,
    '-device', 'virtserialport,bus=agent-serial.0,chardev=agent,name=org.faas.agent.0',
  ];
}
