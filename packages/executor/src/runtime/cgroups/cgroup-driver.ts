import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { InstanceLimits } from '../../store/types.ts';
import type { CgroupLayout, Controller, Hierarchy } from './layout.ts';
import { FaasError } from '@faas/protocol';

const CPU_PERIOD_US = 100_000;
/** The sub-group holding an instance's init; v2 forbids processes in a group that has children groups. */
export const INIT_GROUP = 'init';

/**
 * Creates, limits, lists, freezes and kills the cgroups of instances. Every server owns one
 * directory (`prefix`) in each hierarchy it uses, so servers with different data dirs on one
 * host never touch each other's groups. Layout:
 *
 *   <prefix>/<instance>/           limits are set here; on v1 the sandbox's init lives here too
 *   <prefix>/<instance>/init/      v2 only: the init (v2 allows no process beside child groups)
 *   <prefix>/<instance>/<exec>/    one per execution, in the hierarchies that need it: the
 *                                  tracking one (its whole tree, for kill) and memory (OOM
 *                                  kills counted per execution); elsewhere an exec joins the
 *                                  instance group, which saves creating groups nobody reads.
 */
export class CgroupDriver {
  constructor(
    readonly layout: CgroupLayout,
    readonly prefix: string,
  ) {}

  /** Creates the server's own directory (and, on v2, delegates the controllers to it). */
  setUp(): void {
    for (const h of this.layout.hierarchies) {
      const dir = join(h.mountPoint, this.prefix);
      mkdirSync(dir, { recursive: true });
      if (h.version === 2) {
        this.enableV2Controllers(h, h.mountPoint);
        this.enableV2Controllers(h, dir);
      }
    }
  }

  /** Removes the server's own directories when no instance group is left in them. */
  tearDown(): void {
    for (const h of this.layout.hierarchies) {
      try {
        rmdirSync(join(h.mountPoint, this.prefix));
      } catch {
        // still holds instance groups, or already gone
      }
    }
  }

  get enforcedLimits(): Controller[] {
    return (['memory', 'pids', 'cpu'] as const).filter((c) => this.layout.byController[c] !== undefined);
  }

  /**
   * Creates the instance's groups (with its init group on v2) and sets its limits. Synchronous
   * on purpose: the runtime calls it right after starting bwrap, while the main thread would
   * otherwise wait; ~0.5 ms of syscalls beat thread-pool round trips here.
   */
  createInstanceGroup(instanceId: string, limits: InstanceLimits): void {
    for (const h of this.layout.hierarchies) {
      const dir = this.path(h, instanceId);
      mkdirSync(dir, { recursive: true });
      if (h.version === 2) {
        this.enableV2Controllers(h, dir);
        mkdirSync(join(dir, INIT_GROUP), { recursive: true });
      }
    }
    this.applyLimits(instanceId, limits);
  }

  /** Creates the exec's group and returns the `cgroup.procs` files a process writes its pid to. */
  async createExecGroup(instanceId: string, group: string): Promise<string[]> {
    await Promise.all(this.layout.hierarchies.filter((h) => this.hasExecGroups(h)).map((h) => mkdir(this.path(h, instanceId, group), { recursive: true })));
    return this.procsFiles(instanceId, group);
  }

  /** The `cgroup.procs` file of a group in every hierarchy (where the group's processes go). */
  procsFiles(instanceId: string, group: string): string[] {
    return this.layout.hierarchies.map((h) => join(this.path(h, instanceId, group), 'cgroup.procs'));
  }

  /** Moves processes (already running, trusted, not yet running user code) into a group. */
  movePids(instanceId: string, group: string, pids: readonly number[]): void {
    for (const h of this.layout.hierarchies) {
      const procs = join(this.path(h, instanceId, group), 'cgroup.procs');
      for (const pid of pids) {
        try {
          writeFileSync(procs, String(pid));
        } catch (err) {
          // A process that already exited cannot be moved and needs no limit.
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
    }
  }

  pids(instanceId: string, group?: string): number[] {
    const file = join(this.path(this.layout.tracking, instanceId, group), 'cgroup.procs');
    try {
      return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** All pids of an instance, its init and every exec group. */
  allPids(instanceId: string): number[] {
    const out = new Set<number>();
    for (const group of [undefined, ...this.subgroups(instanceId)]) for (const pid of this.pids(instanceId, group)) out.add(pid);
    return [...out];
  }

  /** Child groups of an instance in any hierarchy (a removal may have succeeded in some only). */
  subgroups(instanceId: string): string[] {
    const names = new Set<string>();
    for (const h of this.layout.hierarchies) {
      try {
        for (const d of readdirSync(this.path(h, instanceId), { withFileTypes: true })) if (d.isDirectory()) names.add(d.name);
      } catch {
        // not created in this hierarchy, or already removed
      }
    }
    return [...names];
  }

  /** Instance groups that exist under this server's prefix (for recovery). */
  instanceGroups(): string[] {
    const names = new Set<string>();
    for (const h of this.layout.hierarchies) {
      try {
        for (const d of readdirSync(join(h.mountPoint, this.prefix), { withFileTypes: true })) if (d.isDirectory()) names.add(d.name);
      } catch {
        // hierarchy dir missing: nothing to recover there
      }
    }
    return [...names];
  }

  /** Sends a signal to every process of a group except `spare` (e.g. the host-side launcher). */
  signal(instanceId: string, group: string | undefined, signal: NodeJS.Signals, spare?: number): number {
    let sent = 0;
    for (const pid of this.pids(instanceId, group)) {
      if (pid === spare) continue;
      try {
        process.kill(pid, signal);
        sent++;
      } catch {
        // exited meanwhile
      }
    }
    return sent;
  }

  /**
   * Kills every process of a group (or of the whole instance when `group` is undefined) so
   * that none can escape by forking: v2 uses cgroup.kill, v1 freezes, kills, thaws.
   */
  async kill(instanceId: string, group?: string): Promise<number> {
    try {
      return await this.killGroup(instanceId, group);
    } catch (err) {
      // The group went away meanwhile (its last process exited and it was removed): nothing
      // is left to kill.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  }

  /**
   * Freezes every process of an instance (for a consistent read of its files). Resolves
   * once all are frozen; throws RUNTIME_UNSUPPORTED when the host has no freezer, RUNTIME_ERROR
   * when the group does not settle within a few seconds (it is thawed again then).
   */
  async freeze(instanceId: string): Promise<void> {
    const h = this.layout.tracking;
    const dir = this.path(h, instanceId);
    if (h.version === 2) {
      writeFileSync(join(dir, 'cgroup.freeze'), '1');
      for (let i = 0; i < 600; i++) {
        if (/^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'))) return;
        await sleep(i < 20 ? 1 : 5);
      }
    } else {
      if (this.layout.byController.freezer !== h) throw new FaasError('RUNTIME_UNSUPPORTED', 'this host has no cgroup freezer: instances cannot be paused for a consistent snapshot (pass deterministic: false)');
      if (await this.freezeV1(dir)) return;
    }
    this.thaw(instanceId);
    throw new FaasError('RUNTIME_ERROR', `instance ${instanceId} did not freeze within 3 s (a process in uninterruptible sleep?)`, { instance_id: instanceId });
  }

  /** Undoes {@link freeze}; a group that is gone meanwhile is not an error. */
  thaw(instanceId: string): void {
    const h = this.layout.tracking;
    const dir = this.path(h, instanceId);
    try {
      writeFileSync(join(dir, h.version === 2 ? 'cgroup.freeze' : 'freezer.state'), h.version === 2 ? '0' : 'THAWED');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private async killGroup(instanceId: string, group?: string): Promise<number> {
    const h = this.layout.tracking;
    const dir = this.path(h, instanceId, group);
    if (!existsSync(dir)) return 0;
    if (h.version === 2 && existsSync(join(dir, 'cgroup.kill'))) {
      const count = group === undefined ? this.allPids(instanceId).length : this.pids(instanceId, group).length;
      writeFileSync(join(dir, 'cgroup.kill'), '1');
      return count;
    }
    const freezer = this.layout.byController.freezer;
    const list = () => (group === undefined ? this.allPids(instanceId) : this.pids(instanceId, group));
    let killed = 0;
    if (freezer?.version === 1) {
      const frozen = await this.freezeV1(dir);
      killed += this.killListed(list());
      writeFileSync(join(dir, 'freezer.state'), 'THAWED');
      if (frozen) return killed;
      // Freezing can stall on a task in uninterruptible sleep; fall through to kill until empty.
    }
    // Kill until nothing is left; bounded by the pids limit, so it converges.
    for (let round = 0; round < 200; round++) {
      const pids = list();
      if (pids.length === 0) break;
      killed += this.killListed(pids);
      await sleep(2);
    }
    return killed;
  }

  /** Number of processes of the group the kernel killed for passing the memory limit. */
  oomKills(instanceId: string, group: string): number {
    const h = this.layout.byController.memory;
    if (h === undefined) return 0;
    const dir = this.path(h, instanceId, group);
    try {
      const text = readFileSync(join(dir, h.version === 1 ? 'memory.oom_control' : 'memory.events'), 'utf8');
      const match = /^oom_kill (\d+)$/m.exec(text);
      return match ? Number(match[1]) : 0;
    } catch {
      return 0;
    }
  }

  /** Removes a group if it is empty; returns false when processes still live in it. */
  async removeGroup(instanceId: string, group: string): Promise<boolean> {
    const results = await Promise.all(
      // Only where the group has a directory of its own: elsewhere its path is the instance's.
      this.layout.hierarchies.filter((h) => this.path(h, instanceId, group) !== this.path(h, instanceId)).map((h) =>
        rmdir(this.path(h, instanceId, group)).then(
          () => true,
          (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
        ),
      ),
    );
    return results.every(Boolean);
  }

  /** Kills everything in the instance and removes all its groups. */
  /**
   * `dying`: the caller has just killed the sandbox's PID-namespace init, so the kernel is
   * already taking every process down; the first rounds only wait for that instead of freezing
   * and killing what is dying anyway.
   */
  async destroyInstanceGroup(instanceId: string, options: { dying?: boolean } = {}): Promise<number> {
    let killed = 0;
    for (let attempt = 0; attempt < 50; attempt++) {
      const waitOnly = options.dying === true && attempt < 3;
      if (!waitOnly && this.allPids(instanceId).length > 0) killed += await this.kill(instanceId);
      await Promise.all(this.subgroups(instanceId).map((sub) => this.removeGroup(instanceId, sub)));
      const removed = await Promise.all(
        this.layout.hierarchies.map((h) =>
          rmdir(this.path(h, instanceId)).then(
            () => true,
            (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
          ),
        ),
      );
      if (removed.every(Boolean)) return killed;
      // Killed processes leave their group only once reaped; give the kernel a moment.
      await sleep(Math.min(1 + attempt * 2, 20));
    }
    const left = this.allPids(instanceId).map((pid) => `${pid}:${describePid(pid)}`);
    throw new Error(`cgroup of instance ${instanceId} could not be removed: processes remain (${left.join(', ') || 'none listed; child groups remain'})`);
  }

  /** Where a group's processes live in a hierarchy (see the layout above). */
  private path(h: Hierarchy, instanceId: string, group?: string): string {
    const own = group !== undefined && (group === INIT_GROUP ? h.version === 2 : this.hasExecGroups(h));
    return own ? join(h.mountPoint, this.prefix, instanceId, group) : join(h.mountPoint, this.prefix, instanceId);
  }

  /** Hierarchies where an execution gets a group of its own. */
  private hasExecGroups(h: Hierarchy): boolean {
    return h.version === 2 || h === this.layout.tracking || h === this.layout.byController.memory;
  }

  private applyLimits(instanceId: string, limits: InstanceLimits): void {
    const bytes = String(limits.memoryMb * 1024 * 1024);
    const mem = this.layout.byController.memory;
    if (mem) {
      const dir = this.path(mem, instanceId);
      if (mem.version === 1) {
        writeFileSync(join(dir, 'memory.limit_in_bytes'), bytes);
        // memory+swap equal to memory: the sandbox cannot swap its way past the limit (the
        // kernel refuses memsw below memory, so memory goes first).
        if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), bytes);
      } else {
        writeFileSync(join(dir, 'memory.max'), bytes);
        if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
      }
    }
    const pids = this.layout.byController.pids;
    if (pids) writeFileSync(join(this.path(pids, instanceId), 'pids.max'), String(limits.pidsMax));
    const cpu = this.layout.byController.cpu;
    if (cpu) {
      const quota = Math.max(1000, Math.round(limits.cpuCores * CPU_PERIOD_US));
      const dir = this.path(cpu, instanceId);
      if (cpu.version === 1) {
        writeFileSync(join(dir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
        writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
      } else {
        writeFileSync(join(dir, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
      }
    }
  }

  private enableV2Controllers(h: Hierarchy, dir: string): void {
    const wanted = (['memory', 'pids', 'cpu'] as const).filter((c) => this.layout.byController[c] === h);
    if (wanted.length > 0) writeFileSync(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
  }

  /** Freezes a v1 group; false when it did not settle in time (the caller kills anyway). */
  private async freezeV1(dir: string): Promise<boolean> {
    const state = join(dir, 'freezer.state');
    writeFileSync(state, 'FROZEN');
    for (let i = 0; i < 600; i++) {
      if (readFileSync(state, 'utf8').trim() === 'FROZEN') return true;
      await sleep(i < 20 ? 1 : 5);
    }
    return false;
  }

  private killListed(pids: readonly number[]): number {
    let killed = 0;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // already gone
      }
    }
    return killed;
  }
}

function describePid(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) + ' ' + stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return 'gone';
  }
}
