import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FaasError } from '@faas/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../../util/clock.ts';
import { unmount } from '../host-syscalls.ts';
import type {
  ConnectOptions,
  InstanceSpec,
  InteractiveProcess,
  InteractiveSpec,
  MemoryCapture,
  MemoryImageSource,
  ProcessSpec,
  RecoveryReport,
  Runtime,
  RuntimeCapabilities,
  RuntimeProcess,
  StartedInstance,
} from '../types.ts';
import { SANDBOX_UID } from '../bwrap/host-environment.ts';
import { AgentClient } from './guest-agent/agent-client.ts';
import { checkGuestImageHost, ensureGuestImage, type GuestImage } from './guest-image/build-guest-image.ts';
import { createDataDisk } from './guest-image/data-disk.ts';
import { rememberedAccelerator } from './remembered-accelerator.ts';
import { QemuMachine, killLeftovers } from './qemu/qemu-machine.ts';
import { copySparse, packSparseRegions } from './qemu/sparse-files.ts';
import { DiskView } from './disk-view.ts';
import { SocketPairs } from './socket-pairs.ts';
import { TemplateStore, type MachineShape } from './vm-templates.ts';
import { UnpackedImages } from './unpacked-images.ts';
import { REGION_BYTES, regionName } from './memory-regions.ts';
import { VmInteractiveProcess, VmProcess } from './vm-process.ts';

export interface VmRuntimeOptions {
  /** Disks, templates and the guest image live in `<dataDir>/vm`. */
  dataDir: string;
  clock: Clock;
  logger: Logger;
  /**
   * Machine files that must be fast (guest RAM, sockets, consoles) go below this dir, one per
   * data dir. @default "/dev/shm"
   */
  runRoot?: string;
  /** Size of each instance's data disk (sparse: only what is written takes space). @default 4 GiB */
  diskBytes?: number;
  /**
   * Where built guest images are kept (shareable between data dirs: an image depends only on the
   * host's packages). From FAAS_VM_IMAGE_DIR. @default "<dataDir>/vm/images"
   */
  imageDir?: string;
  /** Names the missing Debian packages the runtime needs (a seam for tests). @default checkGuestImageHost */
  missingPackages?: () => string[];
}

/** Version of what a memory image's parts mean; a change makes older images unusable here. */
const IMAGE_FORMAT = 2;

/** Guest memory besides what the instance may use: the kernel, page cache, the agent. */
const GUEST_OVERHEAD_MB = 256;
const MIN_GUEST_RAM_MB = 1024;
/** A cold boot under TCG takes a few seconds; the agent answering is the end of it. */
const BOOT_TIMEOUT_MS = 60_000;
const RESTORE_CONNECT_TIMEOUT_MS = 15_000;
const AGENT_PATH = join(dirname(fileURLToPath(import.meta.url)), 'guest-agent', 'agent.py');
/** Paths the runtime itself writes in the guest; not the instance's state. */
const OWNED_PATHS: readonly string[] = ['etc/hostname', 'etc/hosts', 'run/faas'];

interface InstanceDirs {
  /** Kept across stop/start: the data disk. */
  state: string;
  disk: string;
  /** Per run, in memory: RAM file, sockets, console, capture scratch, the frozen view. */
  run: string;
  ram: string;
  qmp: string;
  agent: string;
}

interface LiveMachine {
  id: string;
  dirs: InstanceDirs;
  shape: MachineShape;
  machine: QemuMachine;
  agent: AgentClient;
  stopping: boolean;
  /** Set between freeze and thaw. */
  view?: DiskView;
  /** The last thaw, which later operations wait for (thaw functions are synchronous). */
  thawed: Promise<void>;
  /** Why the runtime itself is ending the machine, reported instead of what that causes. */
  endReason?: string;
}

/**
 * The vm runtime: every instance is a QEMU machine (KVM where the host has a working one, TCG
 * otherwise) booted from the project's guest image, with its files on its own data disk and a
 * guest agent on virtio-serial running its processes. Because a machine's whole state can be
 * saved (device state + RAM file + data disk), instances start by restoring a booted template
 * and snapshots carry memory: restored instances continue where the snapshot was taken.
 * See docs/vm.md.
 */
export class VmRuntime implements Runtime {
  readonly name = 'vm';
  readonly capabilities: RuntimeCapabilities = { memorySnapshots: true, network: ['loopback'], pty: true, limits: ['memory', 'pids', 'cpu'] };
  readonly environments = ['host'] as const;
  readonly instanceOwnedPaths = OWNED_PATHS;
  private readonly live = new Map<string, LiveMachine>();
  private readonly exitListeners: Array<(id: string, reason: string) => void> = [];
  private readonly templates: TemplateStore;
  private readonly runDir: string;
  private readonly pairs: SocketPairs;
  private readonly unpacked: UnpackedImages;
  private image: GuestImage | undefined;
  private accel: 'kvm' | 'tcg' | undefined;

  constructor(private readonly options: VmRuntimeOptions) {
    this.runDir = join(options.runRoot ?? '/dev/shm', `faas-vm-${shortHash(options.dataDir)}`);
    this.templates = new TemplateStore(join(this.stateDir, 'templates'), (shape, dir) => this.buildTemplate(shape, dir));
    this.pairs = new SocketPairs(join(this.runDir, 'pairs.sock'));
    this.unpacked = new UnpackedImages(join(this.runDir, 'images'));
  }

  async checkHost(): Promise<void> {
    if (process.getuid?.() !== 0) throw new FaasError('RUNTIME_ERROR', 'the vm runtime must run as root: it mounts instance disks to snapshot them');
    const missing = (this.options.missingPackages ?? checkGuestImageHost)();
    if (missing.length > 0) {
      throw new FaasError('RUNTIME_ERROR', `the vm runtime needs these Debian packages: ${missing.join(', ')} (apt-get install ${missing.join(' ')})`, { missing });
    }
    mkdirSync(this.runDir, { recursive: true, mode: 0o700 });
    mkdirSync(join(this.stateDir, 'instances'), { recursive: true, mode: 0o700 });
    const imageDir = this.options.imageDir ?? process.env.FAAS_VM_IMAGE_DIR ?? join(this.stateDir, 'images');
    this.image = await ensureGuestImage({ cacheDir: imageDir, agentPath: AGENT_PATH, logger: this.options.logger });
    this.accel = await rememberedAccelerator(imageDir, this.image.kernel);
    this.options.logger.info({ accel: this.accel, image: this.image.id }, 'vm runtime ready');
  }

  onInstanceExit(listener: (instanceId: string, reason: string) => void): void {
    this.exitListeners.push(listener);
  }

  async startInstance(spec: InstanceSpec): Promise<StartedInstance> {
    if (spec.env !== 'host') throw new FaasError('ENVIRONMENT_NOT_FOUND', `no environment named ${JSON.stringify(spec.env)}`, { env: spec.env, available: [...this.environments] });
    const image = this.requireImage();
    const started = this.options.clock.monotonicMs();
    const dirs = this.dirs(spec.id);
    if (this.live.has(spec.id)) throw new FaasError('RUNTIME_ERROR', `instance ${spec.id} is already running`, { instance_id: spec.id });
    try {
      rmSync(dirs.run, { recursive: true, force: true });
      mkdirSync(dirs.run, { recursive: true, mode: 0o700 });
      mkdirSync(dirs.state, { recursive: true, mode: 0o700 });
      let live: LiveMachine;
      if (spec.memoryImage !== undefined) {
        live = await this.resume(spec, dirs, spec.memoryImage);
      } else if (spec.baseTree === undefined && !existsSync(dirs.disk)) {
        live = await this.fromTemplate(spec, dirs, this.shapeFor(spec.limits, image));
      } else {
        // A snapshot's files (or a stopped instance's own disk): the template's memory does not
        // match this disk, so the machine boots.
        if (!existsSync(dirs.disk)) await createDataDisk(dirs.disk, this.diskBytes, spec.baseTree);
        live = await this.boot(spec, dirs, this.shapeFor(spec.limits, image));
      }
      this.live.set(spec.id, live);
      return { startDurationMs: this.options.clock.monotonicMs() - started };
    } catch (err) {
      await this.stopInstance(spec.id).catch((cleanupErr: unknown) => this.options.logger.error({ err: cleanupErr, instance: spec.id }, 'cleanup after failed start failed'));
      rmSync(dirs.run, { recursive: true, force: true });
      if (err instanceof FaasError) throw err;
      throw new FaasError('RUNTIME_ERROR', `instance ${spec.id} failed to start: ${(err as Error).message}`, { instance_id: spec.id }, { cause: err });
    }
  }

  async exec(instanceId: string, spec: ProcessSpec): Promise<RuntimeProcess> {
    const live = await this.ready(instanceId);
    let proc;
    try {
      proc = await live.agent.exec({
        argv: spec.argv,
        env: spec.env,
        cwd: spec.workingDir,
        uid: SANDBOX_UID,
        gid: SANDBOX_UID,
        stdin: spec.stdin ?? Buffer.alloc(0),
        onProgress: (line) => spec.sink.progress(line),
      });
    } catch (err) {
      const exit = shellExitFor(err, spec.argv[0] ?? '');
      if (exit === undefined) throw err;
      // As a shell (and the bwrap runtime) reports it: an exit status and a line on stderr.
      spec.sink.stderr(Buffer.from(exit.message));
      return { wait: async () => ({ exitCode: exit.code, signal: null, oomKilled: false, durationMs: 0 }), signal: async () => undefined };
    }
    return new VmProcess(proc, spec.sink, () => this.killHung(live));
  }

  async execInteractive(instanceId: string, spec: InteractiveSpec): Promise<InteractiveProcess> {
    const live = await this.ready(instanceId);
    const env = spec.pty?.term !== undefined && spec.env.TERM === undefined ? { ...spec.env, TERM: spec.pty.term } : spec.env;
    const proc = await live.agent.exec({ argv: spec.argv, env, cwd: spec.workingDir, uid: SANDBOX_UID, gid: SANDBOX_UID, stdin: 'stream', ...(spec.pty ? { pty: spec.pty } : {}) });
    return new VmInteractiveProcess(proc);
  }

  async connect(instanceId: string, port: number, options: ConnectOptions = {}): Promise<Socket> {
    const host = options.host ?? '127.0.0.1';
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new FaasError('VALIDATION_FAILED', `port must be an integer in 1..65535, not ${port}`, { port });
    const live = await this.ready(instanceId);
    const channel = await live.agent.connectTcp(host, port, options.timeoutMs ?? 5_000);
    return this.pairs.socketFor(channel);
  }

  rootDir(instanceId: string): string {
    const live = this.running(instanceId);
    if (live.view === undefined) {
      throw new FaasError('RUNTIME_UNSUPPORTED', `the files of vm instance ${instanceId} are readable on the host only while it is frozen (snapshots freeze it)`, { instance_id: instanceId });
    }
    return live.view.root;
  }

  environmentRoot(env: string): string {
    if (env !== 'host') throw new FaasError('ENVIRONMENT_NOT_FOUND', `no environment named ${JSON.stringify(env)}`, { env, available: [...this.environments] });
    return this.requireImage().skeleton;
  }

  /**
   * Freezes the guest's data filesystem (everything written reaches the disk image, journal
   * clean), pauses the machine and mounts the disk read-only on the host for `rootDir`.
   */
  async freeze(instanceId: string): Promise<() => void> {
    const live = await this.ready(instanceId);
    if (live.view !== undefined) throw new FaasError('RUNTIME_ERROR', `instance ${instanceId} is already frozen`, { instance_id: instanceId });
    await live.agent.freezeFs();
    try {
      await live.machine.pause();
      live.view = await DiskView.open(live.dirs.disk, join(live.dirs.run, 'view'), this.requireImage().skeleton);
    } catch (err) {
      await this.resumeMachine(live);
      throw err;
    }
    let thawed = false;
    return () => {
      if (thawed) return;
      thawed = true;
      live.view?.close();
      live.view = undefined;
      live.thawed = this.resumeMachine(live);
    };
  }

  /**
   * Saves the frozen machine: device state, a copy of its RAM and of its data disk, all taken
   * before the thaw so they belong to the same instant as the files `rootDir` shows.
   */
  async captureMemory(instanceId: string): Promise<MemoryCapture> {
    const live = this.running(instanceId);
    if (live.view === undefined) throw new FaasError('RUNTIME_ERROR', `captureMemory needs instance ${instanceId} frozen`, { instance_id: instanceId });
    const dir = join(live.dirs.run, `capture-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(dir, { mode: 0o700 });
    const diskCopy = join(live.dirs.state, `${dir.split('/').pop()!}.disk`);
    try {
      await live.machine.saveState(join(dir, 'state'));
      await copySparse(live.dirs.ram, join(dir, 'ram'));
      await copySparse(live.dirs.disk, diskCopy);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      rmSync(diskCopy, { force: true });
      throw err;
    }
    const diskBytes = statSync(diskCopy).size;
    return {
      machine: { format: IMAGE_FORMAT, ramMb: live.shape.ramMb, vcpus: live.shape.vcpus, imageId: live.shape.imageId, accel: live.shape.accel, diskBytes, ramRegionBytes: REGION_BYTES.ram, diskRegionBytes: REGION_BYTES.disk },
      parts: async function* () {
        yield { name: 'state', data: await readFile(join(dir, 'state')) };
        let i = 0;
        for await (const data of packSparseRegions(join(dir, 'ram'), REGION_BYTES.ram)) yield { name: regionName('ram', i++), data };
        i = 0;
        for await (const data of packSparseRegions(diskCopy, REGION_BYTES.disk)) yield { name: regionName('disk', i++), data };
      },
      release: async () => {
        await rm(dir, { recursive: true, force: true });
        await rm(diskCopy, { force: true });
      },
    };
  }

  async stopInstance(instanceId: string): Promise<void> {
    const live = this.live.get(instanceId);
    if (live === undefined) return;
    live.stopping = true;
    try {
      live.view?.close();
      live.view = undefined;
      // Everything the guest wrote reaches the disk before the machine goes, so a restart
      // (or a snapshot of the stopped instance's files) finds it.
      await live.agent.freezeFs().catch(() => undefined);
      live.agent.close();
      await live.machine.quit();
    } finally {
      this.live.delete(instanceId);
      rmSync(live.dirs.run, { recursive: true, force: true });
    }
  }

  async destroyInstance(instanceId: string): Promise<void> {
    await this.stopInstance(instanceId);
    const dirs = this.dirs(instanceId);
    rmSync(dirs.run, { recursive: true, force: true });
    await rm(dirs.state, { recursive: true, force: true, maxRetries: 3 });
  }

  async recover(keep: ReadonlySet<string>): Promise<RecoveryReport> {
    const report: RecoveryReport = { mountsRemoved: 0, groupsRemoved: 0, processesKilled: 0, dirsRemoved: 0 };
    if (existsSync(this.runDir)) {
      report.processesKilled += await killLeftovers(this.runDir);
      for (const entry of readdirSync(this.runDir)) {
        const run = join(this.runDir, entry);
        for (const mount of [join(run, 'view', 'root'), join(run, 'view', 'disk')]) if (unmount(mount, true)) report.mountsRemoved++;
        if ([...this.live.values()].some((l) => l.dirs.run === run)) continue;
        rmSync(run, { recursive: true, force: true });
      }
    }
    const instances = join(this.stateDir, 'instances');
    for (const entry of existsSync(instances) ? readdirSync(instances) : []) {
      if (keep.has(entry) || this.live.has(entry)) continue;
      rmSync(join(instances, entry), { recursive: true, force: true });
      report.dirsRemoved++;
    }
    return report;
  }

  async close(): Promise<void> {
    await Promise.all([...this.live.keys()].map((id) => this.stopInstance(id).catch((err: unknown) => this.options.logger.error({ err, instance: id }, 'stop on close failed'))));
    this.pairs.close();
    this.unpacked.clear();
    // The run dir held only this server's machines; all have stopped.
    rmSync(this.runDir, { recursive: true, force: true });
  }

  /** Ids of the instances whose machine runs now. */
  liveInstances(): string[] {
    return [...this.live.keys()];
  }

  /** Host pid of the instance's QEMU process while it runs (diagnostics and tests). */
  machinePid(instanceId: string): number | undefined {
    return this.live.get(instanceId)?.machine.pid;
  }

  /** Where machines keep their in-memory files (RAM, sockets, consoles). */
  runDirectory(): string {
    return this.runDir;
  }

  // --- starting machines --------------------------------------------------------------------

  /** A new instance from the template of its shape: copies of its RAM and disk, restored. */
  private async fromTemplate(spec: InstanceSpec, dirs: InstanceDirs, shape: MachineShape): Promise<LiveMachine> {
    const template = await this.templates.get(shape);
    await Promise.all([copySparse(template.ram, dirs.ram), copySparse(template.disk, dirs.disk)]);
    return this.launch(spec, dirs, shape, { statePath: template.state });
  }

  /** A new instance from a snapshot's memory image: its machine continues where it was saved. */
  private async resume(spec: InstanceSpec, dirs: InstanceDirs, image: MemoryImageSource): Promise<LiveMachine> {
    const shape = this.shapeOfImage(image);
    return this.unpacked.use(image, async (files) => {
      await Promise.all([copySparse(files.ram, dirs.ram), copySparse(files.disk, dirs.disk)]);
      return this.launch(spec, dirs, shape, { statePath: files.state });
    });
  }

  private async boot(spec: InstanceSpec, dirs: InstanceDirs, shape: MachineShape): Promise<LiveMachine> {
    return this.launch(spec, dirs, shape);
  }

  private async launch(spec: InstanceSpec, dirs: InstanceDirs, shape: MachineShape, incoming?: { statePath: string }): Promise<LiveMachine> {
    const image = this.requireImage();
    const machine = await QemuMachine.launch({
      dir: dirs.run,
      kernel: image.kernel,
      initrd: image.initrd,
      // A restored machine keeps the command line it booted with; its host name comes from HELLO.
      append: kernelCommandLine(incoming ? 'restored' : spec.id),
      disks: [
        { path: image.systemDisk, readOnly: true },
        { path: dirs.disk, readOnly: false },
      ],
      ramMb: shape.ramMb,
      vcpus: shape.vcpus,
      ramFile: dirs.ram,
      accel: shape.accel,
      agentSocket: dirs.agent,
      ...(incoming ? { incoming } : {}),
    });
    let agent: AgentClient;
    try {
      agent = await AgentClient.connect(dirs.agent, { nowMs: Date.now(), hostname: spec.id, limits: spec.limits }, { timeoutMs: incoming ? RESTORE_CONNECT_TIMEOUT_MS : BOOT_TIMEOUT_MS });
    } catch (err) {
      await machine.kill();
      throw new FaasError('RUNTIME_ERROR', `the guest agent of instance ${spec.id} did not answer: ${(err as Error).message} (console: ${machine.consoleLog})`, { instance_id: spec.id }, { cause: err });
    }
    const live: LiveMachine = { id: spec.id, dirs, shape, machine, agent, stopping: false, thawed: Promise.resolve() };
    machine.onExit((exit) => this.machineExited(live, `machine exited (${exit.signal ?? `code ${exit.code}`})`));
    agent.onClose(() => this.machineExited(live, 'guest agent connection lost'));
    return live;
  }

  /** Boots a machine of `shape` on a fresh data disk and saves it, paused, into `dir`. */
  private async buildTemplate(shape: MachineShape, dir: string): Promise<void> {
    const started = this.options.clock.monotonicMs();
    const id = `template-${TemplateStore.keyOf(shape).slice(0, 12)}`;
    const run = join(this.runDir, id);
    rmSync(run, { recursive: true, force: true });
    mkdirSync(run, { recursive: true, mode: 0o700 });
    const dirs: InstanceDirs = { state: dir, disk: join(dir, 'disk'), run, ram: join(run, 'ram'), qmp: join(run, 'qmp.sock'), agent: join(run, 'agent.sock') };
    try {
      await createDataDisk(dirs.disk, this.diskBytes);
      const live = await this.boot({ id, env: 'host', hostUid: 0, limits: { memoryMb: shape.ramMb - GUEST_OVERHEAD_MB, cpuCores: shape.vcpus, pidsMax: 65_536 } }, dirs, shape);
      try {
        await shrinkGuestMemory(live.agent);
        // Not frozen: nothing reads a template's files, and a paused machine's RAM and disk
        // agree (QEMU drains the disk's requests on stop), so restores need no thaw.
        await live.machine.pause();
        await live.machine.saveState(join(dir, 'state'));
        await copySparse(dirs.ram, join(dir, 'ram'));
      } finally {
        live.stopping = true;
        live.agent.close();
        await live.machine.kill();
      }
      this.options.logger.info({ shape, ms: Math.round(this.options.clock.monotonicMs() - started) }, 'vm template built');
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  }

  // --- helpers ------------------------------------------------------------------------------

  private machineExited(live: LiveMachine, reason: string): void {
    if (live.stopping || this.live.get(live.id) !== live) return;
    live.stopping = true;
    this.live.delete(live.id);
    live.agent.close();
    void live.machine.kill().catch(() => undefined);
    live.view?.close();
    rmSync(live.dirs.run, { recursive: true, force: true });
    for (const listener of this.exitListeners) listener(live.id, live.endReason ?? reason);
  }

  /** The guest stopped answering even a SIGKILL: the machine goes, the instance with it. */
  private async killHung(live: LiveMachine): Promise<void> {
    this.options.logger.warn({ instance: live.id }, 'guest did not answer a kill: stopping its machine');
    live.endReason = 'guest hung: its machine was killed';
    await live.machine.kill();
    this.machineExited(live, live.endReason);
  }

  private async resumeMachine(live: LiveMachine): Promise<void> {
    try {
      await live.machine.resume();
      await live.agent.thawFs();
    } catch (err) {
      this.options.logger.error({ err, instance: live.id }, 'vm thaw failed');
    }
  }

  /** The running instance, after any thaw in progress finished. */
  private async ready(instanceId: string): Promise<LiveMachine> {
    const live = this.running(instanceId);
    await live.thawed;
    if (live.stopping) throw notRunning(instanceId);
    return live;
  }

  private running(instanceId: string): LiveMachine {
    const live = this.live.get(instanceId);
    if (live === undefined || live.stopping) throw notRunning(instanceId);
    return live;
  }

  /** RAM for the guest: what the instance may use plus the guest's own overhead. */
  private shapeFor(limits: InstanceSpec['limits'], image: GuestImage): MachineShape {
    const ramMb = Math.max(MIN_GUEST_RAM_MB, Math.ceil((limits.memoryMb + GUEST_OVERHEAD_MB) / 256) * 256);
    const vcpus = Math.max(1, Math.min(cpus().length, Math.ceil(limits.cpuCores)));
    return { ramMb, vcpus, imageId: image.id, accel: this.accel! };
  }

  private shapeOfImage(image: MemoryImageSource): MachineShape {
    const m = image.machine;
    const current = this.requireImage().id;
    if (m.format !== IMAGE_FORMAT || typeof m.ramMb !== 'number' || typeof m.vcpus !== 'number' || typeof m.imageId !== 'string' || (m.accel !== 'kvm' && m.accel !== 'tcg') || typeof m.diskBytes !== 'number' || m.ramRegionBytes !== REGION_BYTES.ram || m.diskRegionBytes !== REGION_BYTES.disk) {
      throw new FaasError('SNAPSHOT_CORRUPT', `memory image ${image.hash} has an unknown machine description`, { memory_hash: image.hash });
    }
    if (m.imageId !== current || m.accel !== this.accel) {
      throw new FaasError('RUNTIME_UNSUPPORTED', `memory image ${image.hash} was saved by a machine of guest image ${m.imageId.slice(0, 12)} under ${m.accel}; this server runs image ${current.slice(0, 12)} under ${this.accel}, so only its files can be restored`, { memory_hash: image.hash });
    }
    return { ramMb: m.ramMb, vcpus: m.vcpus, imageId: m.imageId, accel: m.accel };
  }

  private requireImage(): GuestImage {
    if (this.image === undefined) throw new FaasError('RUNTIME_ERROR', 'checkHost() was not called');
    return this.image;
  }

  private dirs(instanceId: string): InstanceDirs {
    const state = join(this.stateDir, 'instances', instanceId);
    // Unix socket paths are limited to 107 bytes: the run dir is named by a short hash.
    const run = join(this.runDir, shortHash(instanceId));
    return { state, disk: join(state, 'disk.img'), run, ram: join(run, 'ram'), qmp: join(run, 'qmp.sock'), agent: join(run, 'agent.sock') };
  }

  private get stateDir(): string {
    return join(this.options.dataDir, 'vm');
  }

  private get diskBytes(): number {
    return this.options.diskBytes ?? 4 * 1024 ** 3;
  }
}

/** The shell's answer to a command that cannot start: 127 not found, 126 not executable. */
function shellExitFor(err: unknown, argv0: string): { code: number; message: string } | undefined {
  const reason = err instanceof FaasError ? (err.details as { reason?: string }).reason : undefined;
  if (reason === 'COMMAND_NOT_FOUND') return { code: 127, message: `${argv0}: command not found\n` };
  if (reason === 'PERMISSION_DENIED') return { code: 126, message: `${argv0}: permission denied\n` };
  return undefined;
}

function kernelCommandLine(hostname: string): string {
  // init_on_free: memory the guest frees is zeroed, so its RAM file holds zeros (holes once
  // copied sparse) rather than stale pages: every restore copies, and every snapshot stores, less.
  return `console=ttyS0 panic=-1 quiet init_on_free=1 faas.hostname=${hostname}`;
}

/** Drops the boot's page cache before a template is saved: what every instance copies at start. */
async function shrinkGuestMemory(agent: AgentClient): Promise<void> {
  const proc = await agent.exec({ argv: ['/bin/sh', '-c', 'sync; echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory'], env: { PATH: '/usr/bin:/bin' }, cwd: '/', uid: 0, gid: 0 });
  proc.stdout.resume();
  proc.stderr.resume();
  await proc.wait();
}

function notRunning(instanceId: string): FaasError {
  return new FaasError('INSTANCE_NOT_RUNNING', `instance ${instanceId} is not running`, { instance_id: instanceId });
}

function shortHash(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 16);
}
