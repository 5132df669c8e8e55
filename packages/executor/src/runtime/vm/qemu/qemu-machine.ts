import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaasError, isFaasError } from '@faas/protocol';
import { assertSafePath, buildQemuArgs, machinePaths, removeMachineFiles, type MachinePaths, type MachineSpec } from './qemu-args.ts';
import { QmpClient, type QmpEvent } from './qmp-client.ts';

export type { MachineSpec } from './qemu-args.ts';
export { findLeftoverMachines, killLeftovers, type LeftoverMachine } from './leftovers.ts';

export interface MachineExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SavedState {
  durationMs: number;
  bytes: number;
}

export interface LaunchOptions {
  /** Until QMP answers (boot) or the state is loaded and the guest runs (restore). @default 30000 */
  timeoutMs?: number;
}

const QEMU_BINARY = 'qemu-system-x86_64';
const MIGRATION_TIMEOUT_MS = 60_000;
const QUIT_GRACE_MS = 5_000;
const LOG_TAIL_BYTES = 2_000;

/**
 * One running QEMU process and its QMP connection.
 *
 * Guest RAM is a shared file mapping (`spec.ramFile`), and migrations run with `x-ignore-shared`,
 * so a memory snapshot is: `saveState()` (device state, a few hundred KB) plus a copy of the RAM
 * file taken while the machine is paused. A restored machine maps its RAM file shared and
 * writes to it: restore from a *copy* whenever the snapshot is to be used again.
 *
 * QEMU is started through `setpriv --pdeathsig SIGKILL`, so the kernel kills it when the thread
 * that spawned it (the server's main thread) dies; a pid file in `spec.dir` lets
 * `killLeftovers` find it after a crash anyway.
 */
export class QemuMachine {
  readonly pid: number;
  readonly consoleLog: string;
  readonly exited: Promise<MachineExit>;
  /** Escape hatch for commands this class does not wrap. */
  readonly qmp: QmpClient;
  readonly #child: ChildProcess;
  readonly #paths: MachinePaths;

  private constructor(child: ChildProcess, exited: Promise<MachineExit>, qmp: QmpClient, paths: MachinePaths) {
    this.#child = child;
    this.pid = child.pid as number;
    this.exited = exited;
    this.qmp = qmp;
    this.#paths = paths;
    this.consoleLog = paths.consoleLog;
  }

  /** Boots `spec` (or restores `spec.incoming`); resolves once the guest is running. */
  static async launch(spec: MachineSpec, options: LaunchOptions = {}): Promise<QemuMachine> {
    const args = buildQemuArgs(spec);
    if (spec.incoming) await assertStateFile(spec.incoming.statePath);
    const paths = machinePaths(spec.dir);
    await mkdir(spec.dir, { recursive: true });
    await rm(paths.qmpSocket, { force: true });
    const { child, exited } = await spawnQemu(args, paths, spec.agentSocket);
    const died = new AbortController();
    void exited.then(() => died.abort('QEMU exited'));
    const timeoutMs = options.timeoutMs ?? 30_000;
    let qmp: QmpClient | undefined;
    try {
      qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs, signal: died.signal });
      if (spec.incoming) await loadState(qmp, spec.incoming.statePath, timeoutMs);
    } catch (error) {
      qmp?.close();
      child.kill('SIGKILL');
      await exited;
      throw await withQemuLog(error, paths.qemuLog);
    }
    const machine = new QemuMachine(child, exited, qmp, paths);
    void exited.then(() => qmp.close());
    return machine;
  }

  /** QEMU's run state: 'running', 'paused', 'postmigrate' (after saveState), 'shutdown'... */
  async status(): Promise<string> {
    const result = await this.qmp.execute<{ status: string }>('query-status');
    return result.status;
  }

  async pause(): Promise<void> {
    await this.qmp.execute('stop');
  }

  async resume(): Promise<void> {
    await this.qmp.execute('cont');
  }

  /**
   * Writes the device state to `statePath` (not the RAM: that is `spec.ramFile`). Stops the
   * guest first if it runs; it stays stopped, so copy the RAM file now. `resume()` continues it.
   */
  async saveState(statePath: string): Promise<SavedState> {
    assertSafePath(statePath, 'state file');
    const started = performance.now();
    const partial = `${statePath}.partial`;
    await rm(statePath, { force: true });
    if ((await this.status()) === 'running') await this.pause();
    await setMigrationCapabilities(this.qmp);
    // QEMU reports "completed" before it has reaped `cat`, so the last bytes may still be on
    // their way; the rename after cat exits is the reliable end marker.
    const uri = `exec:cat > ${partial} && mv ${partial} ${statePath}`;
    await runMigration(this.qmp, () => this.qmp.execute('migrate', { uri }), MIGRATION_TIMEOUT_MS);
    const bytes = await waitForFile(statePath, MIGRATION_TIMEOUT_MS);
    return { durationMs: performance.now() - started, bytes };
  }

  /** Asks QEMU to quit; SIGKILL after `graceMs`. */
  async quit(graceMs = QUIT_GRACE_MS): Promise<MachineExit> {
    // The reply races with QEMU closing the socket; either way the exit is what counts.
    this.qmp.execute('quit').catch(() => {});
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(): Promise<MachineExit> {
    this.#child.kill('SIGKILL');
    return this.exited;
  }

  onExit(listener: (exit: MachineExit) => void): void {
    void this.exited.then(listener);
  }

  /** QEMU's own stderr (errors, warnings), for diagnostics. */
  get qemuLog(): string {
    return this.#paths.qemuLog;
  }
}

async function assertStateFile(statePath: string): Promise<void> {
  try {
    await stat(statePath);
  } catch (error) {
    throw new FaasError('RUNTIME_ERROR', `cannot restore: state file ${statePath} is missing`, { statePath }, { cause: error });
  }
}

/**
 * Spawns QEMU with stdio detached from ours (stderr to qemu.log) in its own session, so a
 * terminal's Ctrl-C reaches the server, which then decides what to do with its machines.
 * Resolves once the pid file is written; `exited` also removes the files QEMU leaves behind.
 */
async function spawnQemu(args: string[], paths: MachinePaths, agentSocket: string | undefined): Promise<{ child: ChildProcess; exited: Promise<MachineExit> }> {
  const logFd = openSync(paths.qemuLog, 'a');
  let child: ChildProcess;
  try {
    child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', QEMU_BINARY, ...args], { stdio: ['ignore', 'ignore', logFd], detached: true });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<MachineExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  }).then(async (exit) => {
    await removeMachineFiles(paths, agentSocket);
    return exit;
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new FaasError('RUNTIME_ERROR', `cannot start QEMU: ${error.message}`, {}, { cause: error })));
  });
  await writeFile(paths.pidFile, `${child.pid}\n`);
  return { child, exited };
}

async function setMigrationCapabilities(qmp: QmpClient): Promise<void> {
  await qmp.execute('migrate-set-capabilities', {
    capabilities: [
      // RAM sits in a shared file both sides map: migrate device state only.
      { capability: 'x-ignore-shared', state: true },
      // MIGRATION events tell us when it is over, without polling query-migrate.
      { capability: 'events', state: true },
    ],
  });
}

async function loadState(qmp: QmpClient, statePath: string, timeoutMs: number): Promise<void> {
  await setMigrationCapabilities(qmp);
  // On a bad state QEMU 7.2 prints "load of migration failed" and exits: the wait then rejects
  // with "connection closed", and launch() adds the log's tail to the error.
  await runMigration(qmp, () => qmp.execute('migrate-incoming', { uri: `exec:cat < ${statePath}` }), timeoutMs);
  await qmp.execute('cont');
}

/** Starts a migration with `start` and waits for its MIGRATION event to say completed or failed. */
async function runMigration(qmp: QmpClient, start: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  const isOver = (event: QmpEvent): boolean => ['completed', 'failed', 'cancelled'].includes(String(event.data?.['status']));
  const over = qmp.waitForEvent('MIGRATION', { timeoutMs, filter: isOver });
  // Keeps an early rejection of `over` from being reported as unhandled while start() runs.
  over.catch(() => {});
  await start();
  const event = await over;
  if (event.data?.['status'] === 'completed') return;
  const info = await qmp.execute<{ 'error-desc'?: string }>('query-migrate').catch(() => ({ 'error-desc': undefined }));
  throw new FaasError('RUNTIME_ERROR', `migration ${String(event.data?.['status'])}: ${info['error-desc'] ?? 'no detail from QEMU'}`);
}

async function waitForFile(path: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return (await stat(path)).size;
    } catch {
      if (Date.now() > deadline) throw new FaasError('RUNTIME_ERROR', `state file ${path} did not appear`);
      await sleep(1);
    }
  }
}

/** Appends the tail of QEMU's stderr to a launch failure: that is where QEMU says why. */
async function withQemuLog(error: unknown, qemuLog: string): Promise<unknown> {
  const log = await readFile(qemuLog, 'utf8').catch(() => '');
  const tail = log.slice(-LOG_TAIL_BYTES).trim();
  const message = isFaasError(error) ? error.message : String(error);
  return new FaasError('RUNTIME_ERROR', tail === '' ? message : `${message}; QEMU said: ${tail}`, { qemuLog }, { cause: error });
}
