import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { chmodSync, closeSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { FaasError } from '@faas/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../../util/clock.ts';
import { CgroupDriver, INIT_GROUP } from '../cgroups/cgroup-driver.ts';
import { favorDynamicCgroupMoves } from '../cgroups/favor-dynmods.ts';
import { unescapeMountPath, type CgroupLayout } from '../cgroups/layout.ts';
import { SNAPSHOT_TREE_UID, type ConnectOptions, type InteractiveProcess, type InteractiveSpec, type InstanceSpec, type ProcessSpec, type RecoveryReport, type Runtime, type RuntimeCapabilities, type RuntimeProcess, type StartedInstance } from '../types.ts';
import { checkHostPrograms, HOST_PATH, type HostPrograms } from './host-check.ts';
import { HostEnvironment, IDENTITY_FILES, SANDBOX_UID, WORKSPACE } from './host-environment.ts';
import { mountIdmapped } from '../idmap.ts';
import { mountOverlay, setNoNewPrivs, unmount } from '../host-syscalls.ts';
import { BwrapProcess } from './bwrap-process.ts';
import { posixSpawn, type SpawnedProcess } from '../process/posix-spawner.ts';
import { Pty } from '../process/pty.ts';
import { BwrapInteractiveProcess } from './bwrap-interactive.ts';
import { NetNsConnector, openNetNs } from './netns-connect.ts';

export interface BwrapRuntimeOptions {
  /** Everything of this runtime lives below it: envs/, instances/. */
  dataDir: string;
  layout: CgroupLayout;
  /** Name of this server's own cgroup directory (unique per data dir). */
  cgroupPrefix: string;
  clock: Clock;
  logger: Logger;
  /** Set the kernel's cgroup favordynmods flag at start-up (see favor-dynmods.ts). @default true */
  favorDynamicCgroups?: boolean;
}

interface LiveInstance {
  id: string;
  bwrap: SpawnedProcess;
  /** Host pid of the sandbox's init (bwrap's pid 1 inside the new PID namespace). */
  initPid: number;
  /** The sandbox's network namespace, held open (close-on-exec) for connect() while it runs. */
  netNs: number;
  exited: Promise<void>;
  stopping: boolean;
}

/** Launches a process after writing its own pid into cgroup.procs files, so everything it starts is counted. */
const JOIN_CGROUPS = 'p=$$; while [ "$1" != -- ]; do echo $p > "$1" || exit 125; shift; done; shift; exec "$@"';
const START_TIMEOUT_MS = 10_000;

/**
 * The bubblewrap runtime. An instance is an overlay (read-only base + its own upper dir),
 * mounted on the host and bound as the root of a bwrap sandbox with new user, mount, PID, IPC,
 * UTS, network and cgroup namespaces, running as an unprivileged host uid with no capabilities.
 * Execs join the sandbox's namespaces with nsenter, inside a per-exec cgroup.
 */
export class BwrapRuntime implements Runtime {
  readonly name = 'bwrap';
  readonly capabilities: RuntimeCapabilities;
  private readonly cgroups: CgroupDriver;
  private readonly env: HostEnvironment;
  private readonly live = new Map<string, LiveInstance>();
  private readonly exitListeners: Array<(id: string, reason: string) => void> = [];
  private programs!: HostPrograms;
  private noNewPrivs = false;
  private connector: NetNsConnector | undefined;

  constructor(private readonly options: BwrapRuntimeOptions) {
    this.cgroups = new CgroupDriver(options.layout, options.cgroupPrefix);
    this.env = new HostEnvironment(join(options.dataDir, 'envs', 'host'));
    this.capabilities = { memorySnapshots: false, network: ['loopback'], pty: true, limits: this.cgroups.enforcedLimits };
  }

  get environments(): string[] {
    return [this.env.name];
  }

  async checkHost(): Promise<void> {
    if (process.getuid?.() !== 0) {
      throw new FaasError('RUNTIME_ERROR', 'the bwrap runtime must run as root: it mounts overlays and manages cgroups (the sandboxed code itself runs unprivileged)');
    }
    this.programs = checkHostPrograms();
    // Children inherit no_new_privs from the thread that forks them (the main thread here), so
    // execs need no setpriv step to stay unable to gain privileges.
    setNoNewPrivs();
    this.noNewPrivs = /^NoNewPrivs:\s+1$/m.test(readFileSync('/proc/self/status', 'utf8'));
    this.cgroups.setUp();
    this.connector ??= NetNsConnector.open();
    if (this.options.favorDynamicCgroups !== false) {
      this.options.logger.info({ favordynmods: favorDynamicCgroupMoves(this.options.layout) }, 'cgroup moves');
    }
    this.env.build();
    // bwrap runs as the instance's unprivileged uid and opens instances/<id>/merged by path:
    // the dirs above it must be traversable (0711), not listable.
    mkdirSync(this.instancesDir, { recursive: true, mode: 0o711 });
    chmodSync(this.options.dataDir, 0o711);
    chmodSync(this.instancesDir, 0o711);
  }

  onInstanceExit(listener: (instanceId: string, reason: string) => void): void {
    this.exitListeners.push(listener);
  }

  async startInstance(spec: InstanceSpec): Promise<StartedInstance> {
    if (spec.env !== this.env.name) throw new FaasError('ENVIRONMENT_NOT_FOUND', `no environment named ${JSON.stringify(spec.env)}`, { env: spec.env, available: this.environments });
    const started = this.options.clock.monotonicMs();
    const dirs = this.dirs(spec.id);
    try {
      mkdirSync(dirs.root, { recursive: true, mode: 0o711 });
      // A restart of a kept instance: the overlay's scratch dir of the last run is stale.
      rmSync(dirs.work, { recursive: true, force: true });
      mkdirSync(dirs.work, { recursive: true, mode: 0o700 });
      mkdirSync(dirs.merged, { recursive: true, mode: 0o755 });
      // The upper dir's own mode becomes the mode of the sandbox's "/".
      mkdirSync(dirs.upper, { recursive: true, mode: 0o755 });
      const lowers = [this.env.root];
      if (spec.baseTree !== undefined) {
        this.env.writeIdentity(dirs.upper, spec.id);
        // The tree's owner appears as the instance's uid, so its files are its own and copy up
        // owned by it; the tree itself is shared and never written. The environment stays
        // below it to supply mount points a tree might lack.
        mkdirSync(dirs.lower, { recursive: true, mode: 0o700 });
        mountIdmapped(spec.baseTree, dirs.lower, [
          { from: 0, to: 0, count: 1 },
          { from: SNAPSHOT_TREE_UID, to: spec.hostUid, count: 1 },
        ], this.programs.unshare);
        lowers.unshift(dirs.lower);
      } else {
        this.env.prepareUpper(dirs.upper, spec.id, spec.hostUid);
      }
      mountOverlay(dirs.merged, lowers, dirs.upper, dirs.work);
      // overlayfs holds private clones of its layers: the idmapped mount point can go at once.
      if (spec.baseTree !== undefined) unmount(dirs.lower, true);
      const live = await this.launch(spec, dirs.merged);
      this.live.set(spec.id, live);
      return { startDurationMs: this.options.clock.monotonicMs() - started };
    } catch (err) {
      await this.stopInstance(spec.id).catch((cleanupErr: unknown) => this.options.logger.error({ err: cleanupErr, instance: spec.id }, 'cleanup after failed start failed'));
      if (err instanceof FaasError) throw err;
      throw new FaasError('RUNTIME_ERROR', `instance ${spec.id} failed to start: ${(err as Error).message}`, { instance_id: spec.id }, { cause: err });
    }
  }

  async exec(instanceId: string, spec: ProcessSpec): Promise<RuntimeProcess> {
    const live = this.live.get(instanceId);
    if (live === undefined || live.stopping) throw new FaasError('INSTANCE_NOT_RUNNING', `instance ${instanceId} is not running`, { instance_id: instanceId });
    const procsFiles = await this.cgroups.createExecGroup(instanceId, spec.executionId);
    const argv = this.launcherArgv(live, procsFiles, inSandboxEnv(spec.workingDir, spec.env, spec.argv));
    let env: Record<string, string> = { PATH: HOST_PATH };
    if (spec.envFromServerOnly === true && spec.workingDir === WORKSPACE) {
      // Fast path, one exec fewer: the server's own variables may pass through the host-side
      // helpers, and nsenter -w starts in the init's working dir, which is /workspace.
      const envAt = argv.indexOf('/usr/bin/env');
      argv.splice(envAt, argv.length - envAt, ...spec.argv);
      argv.splice(argv.indexOf('-S'), 0, '-w');
      env = { ...spec.env };
    }
    return BwrapProcess.spawn({
      shell: this.programs.sh,
      argv,
      env,
      spec,
      clock: this.options.clock,
      cgroups: this.cgroups,
      instanceId,
    });
  }

  async execInteractive(instanceId: string, spec: InteractiveSpec): Promise<InteractiveProcess> {
    const live = this.running(instanceId);
    const group = `interactive-${randomUUID()}`;
    const procsFiles = await this.cgroups.createExecGroup(instanceId, group);
    let pty: Pty | undefined;
    try {
      let inner = inSandboxEnv(spec.workingDir, spec.pty?.term !== undefined && spec.env.TERM === undefined ? { ...spec.env, TERM: spec.pty.term } : spec.env, spec.argv);
      if (spec.pty) {
        // The terminal comes from the instance's own devpts, so inside it is a /dev/pts/N of
        // its own. setsid runs inside, as the sandbox user: the command leads a new session
        // with the terminal as its controlling tty, and the host-side launchers (in the
        // server's session) get none of its signals (^C, ^Z, hang-up).
        pty = Pty.openIn(`/proc/${live.initPid}/root`, spec.pty.cols, spec.pty.rows);
        inner = ['/usr/bin/setsid', '--ctty', ...inner];
      }
      return BwrapInteractiveProcess.spawn({
        shell: this.programs.sh,
        argv: this.launcherArgv(live, procsFiles, inner),
        env: { PATH: HOST_PATH },
        clock: this.options.clock,
        cgroups: this.cgroups,
        instanceId,
        group,
        pty,
      });
    } catch (err) {
      pty?.destroy();
      await this.cgroups.removeGroup(instanceId, group).catch(() => undefined);
      if (err instanceof FaasError) throw err;
      throw new FaasError('RUNTIME_ERROR', `cannot start an interactive process in instance ${instanceId}: ${(err as Error).message}`, { instance_id: instanceId }, { cause: err });
    }
  }

  async connect(instanceId: string, port: number, options?: ConnectOptions): Promise<Socket> {
    const live = this.running(instanceId);
    if (this.connector === undefined) throw new FaasError('RUNTIME_ERROR', 'checkHost() was not called', { instance_id: instanceId });
    return this.connector.connect({ instanceId, nsFd: live.netNs, pid: live.initPid }, port, options);
  }

  rootDir(instanceId: string): string {
    if (!this.live.has(instanceId)) throw new FaasError('INSTANCE_NOT_RUNNING', `instance ${instanceId} is not running`, { instance_id: instanceId });
    return this.dirs(instanceId).merged;
  }

  readonly instanceOwnedPaths = IDENTITY_FILES;

  environmentRoot(env: string): string {
    if (env !== this.env.name) throw new FaasError('ENVIRONMENT_NOT_FOUND', `no environment named ${JSON.stringify(env)}`, { env, available: this.environments });
    return this.env.root;
  }

  async freeze(instanceId: string): Promise<() => void> {
    const live = this.live.get(instanceId);
    if (live === undefined || live.stopping) throw new FaasError('INSTANCE_NOT_RUNNING', `instance ${instanceId} is not running`, { instance_id: instanceId });
    await this.cgroups.freeze(instanceId);
    let thawed = false;
    return () => {
      if (thawed) return;
      thawed = true;
      this.cgroups.thaw(instanceId);
    };
  }

  async stopInstance(instanceId: string): Promise<void> {
    const live = this.live.get(instanceId);
    if (live) live.stopping = true;
    let failure: unknown;
    let dying = false;
    if (live) {
      // SIGKILL to the namespace's init ends every process in it at once, with no freezer
      // round trip; the cgroup sweep below catches the host-side launchers.
      try {
        process.kill(live.initPid, 'SIGKILL');
        dying = true;
      } catch {
        // already gone
      }
    }
    try {
      await this.cgroups.destroyInstanceGroup(instanceId, { dying });
    } catch (err) {
      // Still release the mount and the init below; the caller hears of the failure after.
      failure = err;
    }
    if (live) {
      live.bwrap.kill('SIGKILL');
      await live.exited;
      this.live.delete(instanceId);
      closeNetNs(live);
    }
    // Lazy detach: a host process (a file sync, a snapshot reader) may still hold it; the
    // kernel drops it when they let go, and nothing new can enter it.
    unmount(this.dirs(instanceId).merged, true);
    if (failure !== undefined) throw failure;
  }

  async destroyInstance(instanceId: string): Promise<void> {
    await this.stopInstance(instanceId);
    // Off the event loop: a big upper dir takes a while to remove.
    await rm(this.dirs(instanceId).root, { recursive: true, force: true, maxRetries: 3 });
  }

  async recover(keep: ReadonlySet<string>): Promise<RecoveryReport> {
    const report: RecoveryReport = { mountsRemoved: 0, groupsRemoved: 0, processesKilled: 0, dirsRemoved: 0 };
    for (const id of this.cgroups.instanceGroups()) {
      if (this.live.has(id)) continue;
      report.processesKilled += await this.cgroups.destroyInstanceGroup(id);
      report.groupsRemoved++;
    }
    const prefix = `${this.instancesDir}/`;
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => unescapeMountPath(line.split(' ')[4] ?? ''))
      .filter((mp) => mp.startsWith(prefix) && !this.live.has(mp.slice(prefix.length).split('/')[0]!))
      // Deepest first, so nested mounts go before their parents.
      .sort((a, b) => b.length - a.length);
    for (const mp of mounts) if (unmount(mp, true)) report.mountsRemoved++;
    for (const entry of existsSync(this.instancesDir) ? readdirSync(this.instancesDir) : []) {
      if (keep.has(entry) || this.live.has(entry)) {
        // Kept instances keep their files; their work dir (overlay scratch) is rebuilt on start.
        continue;
      }
      rmSync(join(this.instancesDir, entry), { recursive: true, force: true });
      report.dirsRemoved++;
    }
    return report;
  }

  async close(): Promise<void> {
    await Promise.all([...this.live.keys()].map((id) => this.stopInstance(id).catch((err: unknown) => this.options.logger.error({ err, instance: id }, 'stop on close failed'))));
    this.cgroups.tearDown();
    this.connector?.close();
    this.connector = undefined;
  }

  /** Ids of the instances whose sandbox runs now. */
  liveInstances(): string[] {
    return [...this.live.keys()];
  }

  private running(instanceId: string): LiveInstance {
    const live = this.live.get(instanceId);
    if (live === undefined || live.stopping) throw new FaasError('INSTANCE_NOT_RUNNING', `instance ${instanceId} is not running`, { instance_id: instanceId });
    return live;
  }

  /**
   * Arguments of the host-side launcher chain (for `sh`): join the exec's cgroups, then nsenter
   * into every namespace of the instance as the sandbox user, then `inner` inside it.
   */
  private launcherArgv(live: LiveInstance, procsFiles: readonly string[], inner: readonly string[]): string[] {
    return [
      '-c', JOIN_CGROUPS, 'faas-join', ...procsFiles, '--',
      this.programs.nsenter, '-t', String(live.initPid), '--user', '--mount', '--pid', '--net', '--uts', '--ipc', '--cgroup',
      '-S', String(SANDBOX_UID), '-G', String(SANDBOX_UID), '--',
      ...(this.noNewPrivs ? [] : [this.programs.setpriv, '--no-new-privs', '--bounding-set=-all', '--inh-caps=-all', '--']),
      ...inner,
    ];
  }

  private get instancesDir(): string {
    return join(this.options.dataDir, 'instances');
  }

  private dirs(instanceId: string) {
    const root = join(this.instancesDir, instanceId);
    return { root, upper: join(root, 'upper'), work: join(root, 'work'), merged: join(root, 'merged'), lower: join(root, 'lower') };
  }

  /** Starts bwrap as the instance's host uid and waits for it to report its namespace init. */
  private async launch(spec: InstanceSpec, merged: string): Promise<LiveInstance> {
    const args = [
      '--bind', merged, '/',
      ...this.env.bindArgs(),
      '--proc', '/proc',
      '--dev', '/dev',
      '--perms', '1777', '--tmpfs', '/dev/shm',
      '--unshare-user', '--uid', String(SANDBOX_UID), '--gid', String(SANDBOX_UID),
      '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
      '--hostname', spec.id,
      '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
      '--chdir', '/workspace',
      '--info-fd', '3',
      // The command runs only once the sandbox is fully built (maps, mounts, pivot): its line on
      // fd 5 marks the instance ready. bwrap reports its init on fd 3 before that.
      '--', '/bin/sh', '-c', 'echo ready >&5; exec 5>&-; exec /usr/bin/sleep infinity',
    ];
    // setpriv drops to the instance's uid: bwrap must never run as root (it would map the
    // sandbox user onto host root).
    const uid = String(spec.hostUid);
    const bwrap = posixSpawn({
      file: this.programs.setpriv,
      argv: ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', this.programs.bwrap, ...args],
      env: { PATH: HOST_PATH },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'ignore', 'pipe'],
    });
    const ready = readyLine(bwrap);
    // Made while bwrap sets the sandbox up (the main thread would only wait): the groups are
    // needed once its init exists.
    this.cgroups.createInstanceGroup(spec.id, spec.limits);
    let stderr = '';
    bwrap.stdio[2]!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
    const exited = bwrap.exited.then(() => undefined);
    const info = await readInfo(bwrap, () => stderr);
    const initPid = info['child-pid'];
    if (typeof initPid !== 'number') throw new Error(`bwrap reported no child-pid: ${JSON.stringify(info)}`);
    // Nothing but bwrap's own init runs yet, so moving these pids (init first, then any child
    // it already forked) puts the whole sandbox under the instance's limits without a race.
    this.cgroups.movePids(spec.id, INIT_GROUP, [bwrap.pid, initPid]);
    this.cgroups.movePids(spec.id, INIT_GROUP, childrenOf(initPid));
    await ready;
    // Both reports are in: their pipes need no descriptor for the life of the instance (only
    // stderr stays open, to say why the init died if it does).
    bwrap.stdio[3]?.destroy();
    bwrap.stdio[5]?.destroy();
    // Opened while the init surely is the sandbox's (it reported ready and cannot have been
    // replaced: it is our child's child and bwrap dies with it).
    const live: LiveInstance = { id: spec.id, bwrap, initPid, netNs: openNetNs(`/proc/${initPid}/ns/net`), exited, stopping: false };
    void bwrap.exited.then(({ exitCode: code, signal }) => {
      if (live.stopping) return;
      this.live.delete(spec.id);
      closeNetNs(live);
      const reason = `init_exited: ${signal ?? `exit code ${code}`}${stderr ? `: ${stderr.trim()}` : ''}`;
      this.options.logger.warn({ instance: spec.id, code, signal }, 'instance init exited on its own');
      void this.cgroups.destroyInstanceGroup(spec.id).then(() => unmount(this.dirs(spec.id).merged, true)).catch(() => undefined);
      for (const l of this.exitListeners) l(spec.id, reason);
    });
    return live;
  }
}

/** env runs inside the sandbox: a client's variables never reach a host-side process. */
function inSandboxEnv(workingDir: string, env: Readonly<Record<string, string>>, argv: readonly string[]): string[] {
  return ['/usr/bin/env', '-i', '-C', workingDir, '--', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
}

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

function closeNetNs(live: LiveInstance): void {
  if (live.netNs < 0) return;
  closeSync(live.netNs);
  live.netNs = -1;
}

/** Resolves when the sandbox command reports itself on fd 5; rejects if bwrap exits first. */
function readyLine(bwrap: SpawnedProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = bwrap.stdio[5]!;
    const timer = setTimeout(() => reject(new Error(`sandbox not ready within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    stream.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.once('end', () => {
      clearTimeout(timer);
      reject(new Error('bwrap exited during set-up'));
    });
  });
}

function readInfo(bwrap: SpawnedProcess, stderr: () => string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let text = '';
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`bwrap did not report its init within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const infoStream = bwrap.stdio[3]!;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      bwrap.kill('SIGKILL');
      reject(err);
    };
    const tryParse = (): boolean => {
      try {
        const parsed = JSON.parse(text) as Record<string, unknown>;
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          resolve(parsed);
        }
        return true;
      } catch {
        return false;
      }
    };
    infoStream.setEncoding('utf8');
    infoStream.on('data', (d: string) => {
      text += d;
      tryParse();
    });
    infoStream.on('end', () => {
      if (!tryParse()) fail(new Error(`bwrap failed: ${stderr().trim() || 'no start-up report'}`));
    });
    void bwrap.exited.then(({ exitCode, signal }) => {
      // Wait a tick: the info stream's data may still be queued behind the exit.
      setImmediate(() => {
        if (!tryParse()) fail(new Error(`bwrap exited (${signal ?? exitCode}) before starting: ${stderr().trim()}`));
      });
    });
  });
}
