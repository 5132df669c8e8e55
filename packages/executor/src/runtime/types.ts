import type { InstanceLimits } from '../store/types.ts';

/**
 * A Runtime turns instance specs into isolated sandboxes and runs processes in them.
 *
 * Lifecycle. `startInstance` builds the sandbox (filesystem, namespaces, limits) and leaves a
 * long-lived init inside it; from then on the instance is *running* and `exec` may start any
 * number of processes in it, concurrently. Processes started in the background by one exec
 * keep running and share the instance's PID, network and IPC namespaces with later execs.
 * `stopInstance` ends every process and releases mounts and limits but keeps the instance's
 * writable files; `destroyInstance` also removes them. Both are idempotent.
 *
 * Terms. The *base* is the read-only environment an instance starts from (`host`: the host's
 * /usr plus a minimal /etc); the *upper* is the instance's own writable layer, kept in the data
 * dir; an *exec* is one process tree, tracked so that a timeout or kill ends all of it.
 *
 * Recovery. After a crash, `recover` finds what a previous run of the server left behind
 * (mounts, limit groups, processes of instances it no longer runs) and cleans it up.
 */
export interface Runtime {
  readonly name: string;
  readonly capabilities: RuntimeCapabilities;
  /** Names of the environments (base filesystems) instances can start from. */
  readonly environments: readonly string[];
  /** Checks the host can run this backend; throws RUNTIME_ERROR naming what is missing. */
  checkHost(): Promise<void>;
  /** Cleans what a previous run left behind; `keep` are instance ids whose files must stay. */
  recover(keep: ReadonlySet<string>): Promise<RecoveryReport>;
  startInstance(spec: InstanceSpec): Promise<StartedInstance>;
  exec(instanceId: string, spec: ProcessSpec): Promise<RuntimeProcess>;
  /**
   * Starts a process with live streams (an SSH session, an sftp-server), isolated as `exec`:
   * the instance's namespaces, the sandbox user, no capabilities, its own limit group.
   * With `spec.pty` it runs under a pseudo-terminal (needs `capabilities.pty`).
   */
  execInteractive(instanceId: string, spec: InteractiveSpec): Promise<InteractiveProcess>;
  /**
   * A TCP connection to `host:port` as seen from inside the instance (its own loopback
   * included). Throws PORT_UNREACHABLE when refused, CONNECT_TIMEOUT after `timeoutMs`,
   * VALIDATION_FAILED for a port outside 1..65535 or a host neither loopback nor the instance's.
   */
  connect(instanceId: string, port: number, options?: ConnectOptions): Promise<import('node:net').Socket>;
  stopInstance(instanceId: string): Promise<void>;
  destroyInstance(instanceId: string): Promise<void>;
  /**
   * Host path of the instance's root filesystem as its processes see it, without what the
   * runtime binds over it (/usr, /proc, /dev): what a snapshot reads. Only while it runs.
   */
  rootDir(instanceId: string): string;
  /**
   * Paths (relative to the root) the runtime writes per instance itself, such as the host name
   * file: they belong to the instance, not to its state, so snapshots leave them out.
   */
  readonly instanceOwnedPaths: readonly string[];
  /** Host path of an environment's base tree (what a restored instance's root-owned files come from). */
  environmentRoot(env: string): string;
  /**
   * Pauses every process of the instance; the returned function resumes them. While frozen,
   * `rootDir` shows the instance's files as they are at this instant (a runtime whose files are
   * not readable from the host while it runs, such as `vm`, offers `rootDir` only then).
   */
  freeze(instanceId: string): Promise<() => void>;
  /**
   * Captures the frozen instance's memory and device state (only between `freeze` and its thaw;
   * needs `capabilities.memorySnapshots`). The instance keeps running after the thaw; an instance
   * started with the capture as its `memoryImage` continues from this instant, processes and all.
   */
  captureMemory?(instanceId: string): Promise<MemoryCapture>;
  /** Called when an instance's init dies on its own (e.g. everything inside was killed). */
  onInstanceExit(listener: (instanceId: string, reason: string) => void): void;
  close(): Promise<void>;
}

export interface RuntimeCapabilities {
  memorySnapshots: boolean;
  /** Network modes offered; "loopback" = own loopback only, no egress. */
  network: readonly string[];
  pty: boolean;
  /** Limits enforced on this host: any of memory, pids, cpu. */
  limits: readonly string[];
}

export interface InstanceSpec {
  id: string;
  env: string;
  /** Unprivileged host uid the sandbox's user maps to. */
  hostUid: number;
  limits: InstanceLimits;
  /**
   * A materialized snapshot tree (read-only, files of the sandbox user owned by host uid
   * {@link SNAPSHOT_TREE_UID}) the instance's files start from instead of the bare environment.
   * It is never written: the instance gets a copy-on-write view of it.
   */
  baseTree?: string;
  /**
   * A memory image captured by `captureMemory` (of this runtime): the instance resumes it instead
   * of booting; `baseTree` is then ignored, the image holds the files too.
   */
  memoryImage?: MemoryImageSource;
}

/** What `captureMemory` hands over to be stored: named parts plus the machine shape they need. */
export interface MemoryCapture {
  /** Restore needs a machine of this shape (memory size, processors, image id...). */
  readonly machine: Readonly<Record<string, string | number | boolean>>;
  /**
   * The parts to store, each name once, each part's bytes deterministic by content and small
   * enough to hold (a large file comes as many region parts, so images that differ in a few
   * places share the other parts in the blob store). Iterated once.
   */
  parts(): AsyncIterable<{ name: string; data: Buffer }>;
  /** Frees what the capture holds on the host (temporary copies); after the parts were read. */
  release(): Promise<void>;
}

/** A stored memory image, as `startInstance` gets it back. */
export interface MemoryImageSource {
  /** SHA-256 naming the image (snapshots' memory_hash). */
  readonly hash: string;
  readonly machine: Readonly<Record<string, string | number | boolean>>;
  /** Streams a part's bytes as `MemoryCapture.parts()` gave them. */
  open(part: string): Promise<import('node:stream').Readable>;
}

/** Host uid/gid owning the sandbox user's files in materialized snapshot trees. */
export const SNAPSHOT_TREE_UID = 1000;

export interface StartedInstance {
  /** Measured time the runtime needed to start it. */
  startDurationMs: number;
}

export interface ProcessSpec {
  executionId: string;
  argv: readonly string[];
  /** The complete environment of the process (nothing is inherited from the server). */
  env: Readonly<Record<string, string>>;
  /**
   * Every variable of `env` was set by the server, none by a client: host-side helpers may
   * carry them (a client value such as LD_PRELOAD must only ever reach the sandbox).
   */
  envFromServerOnly?: boolean;
  workingDir: string;
  stdin?: Buffer;
  /** Receives output as it is read, in order per stream. Not called after `wait()` resolved. */
  sink: OutputSink;
}

export interface OutputSink {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /** One line written to the progress descriptor (FAAS_PROGRESS_FD), without its newline, at most 4 KiB. */
  progress(line: string): void;
}

export interface RuntimeProcess {
  /**
   * Resolves when the main process has ended and its output has been read: to end of stream,
   * or, when processes it left in the background still hold the streams, until they go quiet.
   */
  wait(): Promise<ProcessExit>;
  /** Sends `signal` to every process of this exec's tree. SIGKILL ends the tree atomically. */
  signal(signal: NodeJS.Signals): Promise<void>;
}

export interface InteractiveSpec {
  argv: readonly string[];
  /** The complete environment of the process (nothing inherited from the server). */
  env: Readonly<Record<string, string>>;
  workingDir: string;
  /** Run under a pseudo-terminal of this size: stdin/stdout are its master side, stderr is empty (merged by the terminal). */
  pty?: { cols: number; rows: number; term?: string };
}

export interface InteractiveProcess {
  /** end() = EOF to the process (with a pty: sends the terminal's EOF character). */
  readonly stdin: import('node:stream').Writable;
  readonly stdout: import('node:stream').Readable;
  readonly stderr: import('node:stream').Readable;
  /** New terminal size (SIGWINCH reaches the foreground process group); no-op without a pty. */
  resize(cols: number, rows: number): void;
  /** Sends `signal` to every process of this exec's tree (as RuntimeProcess.signal). */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** Resolves when the main process ended and its output was read (as RuntimeProcess.wait). */
  wait(): Promise<ProcessExit>;
}

export interface ConnectOptions {
  /**
   * Address to connect to, as seen inside the instance: a loopback address or one of the instance's own.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Give up (CONNECT_TIMEOUT) after this long.
   * @default 5000
   */
  timeoutMs?: number;
}

export interface ProcessExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** A process of this exec was killed by the kernel for passing the memory limit. */
  oomKilled: boolean;
  /** Measured from spawn to exit of the main process. */
  durationMs: number;
}

export interface RecoveryReport {
  mountsRemoved: number;
  groupsRemoved: number;
  processesKilled: number;
  dirsRemoved: number;
}
