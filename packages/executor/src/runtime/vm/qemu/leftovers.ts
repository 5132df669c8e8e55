import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { machinePaths, removeMachineFiles } from './qemu-args.ts';

/**
 * Finding QEMU processes a crashed server left behind. `setpriv --pdeathsig` normally kills
 * them with the server; this covers the rest (a server killed between spawn and pdeathsig,
 * a wrapper missing, a pid file of a machine that already died).
 */

export interface LeftoverMachine {
  /** The machine dir holding `qemu.pid`. */
  dir: string;
  pid: number;
  /** False when the pid file is stale: no such process, or not this machine's QEMU. */
  running: boolean;
}

/** How deep under the root machine dirs may sit (e.g. `<root>/instances/<id>/vm`). */
const MAX_DEPTH = 4;

export async function findLeftoverMachines(rootDir: string): Promise<LeftoverMachine[]> {
  const leftovers: LeftoverMachine[] = [];
  for (const dir of await dirsWithPidFile(rootDir, MAX_DEPTH)) {
    const pid = Number.parseInt(await readFile(machinePaths(dir).pidFile, 'utf8').catch(() => ''), 10);
    if (!Number.isInteger(pid) || pid <= 0) {
      leftovers.push({ dir, pid: 0, running: false });
      continue;
    }
    leftovers.push({ dir, pid, running: await isQemuOf(pid, dir) });
  }
  return leftovers;
}

/**
 * SIGKILLs every leftover QEMU under `rootDir`, waits for it to go, and removes the pid file
 * and QMP socket of every machine dir found (the agent socket's path is not known here: the
 * caller removes it with the rest of the dir). Returns how many processes were killed.
 */
export async function killLeftovers(rootDir: string): Promise<number> {
  let killed = 0;
  for (const leftover of await findLeftoverMachines(rootDir)) {
    if (leftover.running && (await killAndWait(leftover.pid))) killed++;
    await removeMachineFiles(machinePaths(leftover.dir));
  }
  return killed;
}

async function dirsWithPidFile(dir: string, depth: number): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const found: string[] = entries.some((e) => e.isFile() && e.name === basename(machinePaths(dir).pidFile)) ? [dir] : [];
  if (depth === 0) return found;
  for (const entry of entries) {
    if (entry.isDirectory()) found.push(...(await dirsWithPidFile(join(dir, entry.name), depth - 1)));
  }
  return found;
}

/**
 * A pid is only ours if it runs qemu-system-* with this dir's QMP socket on its command
 * line: after a reboot or a long time the number may belong to something else.
 */
async function isQemuOf(pid: number, dir: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const argv = cmdline.split('\0');
  const qmpArg = `unix:${machinePaths(dir).qmpSocket},server=on,wait=off`;
  return basename(argv[0] ?? '').startsWith('qemu-system-') && argv.includes(qmpArg);
}

/** False when the process was already gone. */
async function killAndWait(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return false;
  }
  // An orphan is reaped by init (or a subreaper) soon after; wait so callers may reuse its files.
  for (let i = 0; i < 500; i++) {
    const state = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (state === '' || / [ZX] /.test(state.slice(state.lastIndexOf(')')))) return true;
    await sleep(10);
  }
  return true;
}
