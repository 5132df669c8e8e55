import { PassThrough, Readable, type Writable } from 'node:stream';
import { posixSpawn, type SpawnedProcess } from '../process/posix-spawner.ts';
import type { Pty } from '../process/pty.ts';
import type { Clock } from '../../util/clock.ts';
import type { CgroupDriver } from '../cgroups/cgroup-driver.ts';
import type { InteractiveProcess, ProcessExit } from '../types.ts';

/** After the main process exits while others still hold its output, wait this long for silence. */
const QUIET_AFTER_EXIT_MS = 25;

interface InteractiveOptions {
  shell: string;
  argv: string[];
  /** Environment of the host-side launcher chain (PATH only). */
  env: Record<string, string>;
  clock: Clock;
  cgroups: CgroupDriver;
  instanceId: string;
  /** The exec's own cgroup (under the instance's). */
  group: string;
  /** The terminal the process runs on; without it, three pipes. */
  pty?: Pty;
}

/**
 * One interactive exec in a bwrap instance: the same launcher chain as BwrapProcess (sh joins
 * the exec's cgroup → nsenter → the command inside), with live streams instead of a sink.
 *
 * Output reaches the caller through a PassThrough per stream, fed with backpressure (a slow
 * reader pauses the pipe or terminal, and so the writer inside). It is a separate stream so
 * that its end is ours to give: at end of file, or once the main process has exited and
 * background processes that still hold the descriptor have gone quiet (as `exec` does).
 */
export class BwrapInteractiveProcess implements InteractiveProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  private readonly relays: OutputRelay[];
  private readonly result: Promise<ProcessExit>;

  private constructor(
    private readonly child: SpawnedProcess,
    private readonly opts: InteractiveOptions,
    private readonly started: number,
  ) {
    const { pty, clock } = opts;
    if (pty) {
      this.stdin = pty.input;
      const out = new OutputRelay(pty.output, clock);
      this.relays = [out];
      this.stdout = out.stream;
      // A terminal merges both outputs: stderr is empty.
      this.stderr = Readable.from([], { objectMode: false });
    } else {
      const [stdin, stdout, stderr] = child.stdio as unknown as [Writable, Readable, Readable];
      this.stdin = stdin;
      const out = new OutputRelay(stdout, clock);
      const err = new OutputRelay(stderr, clock);
      this.relays = [out, err];
      this.stdout = out.stream;
      this.stderr = err.stream;
    }
    // A process that exits without reading all its input breaks the pipe: not a fault of the
    // server, and an 'error' without a listener would end it. Callers still see the event.
    this.stdin.on('error', () => undefined);
    this.result = this.track();
  }

  static spawn(opts: InteractiveOptions): BwrapInteractiveProcess {
    const started = opts.clock.monotonicMs();
    const { pty } = opts;
    let child: SpawnedProcess;
    try {
      child = posixSpawn({
        file: opts.shell,
        argv: [opts.shell, ...opts.argv],
        env: opts.env,
        stdio: pty ? [{ fd: pty.slave }, { fd: pty.slave }, { fd: pty.slave }] : ['pipe', 'pipe', 'pipe'],
      });
    } finally {
      pty?.closeSlave();
    }
    return new BwrapInteractiveProcess(child, opts, started);
  }

  resize(cols: number, rows: number): void {
    this.opts.pty?.resize(cols, rows);
  }

  async signal(signal: NodeJS.Signals): Promise<void> {
    if (signal === 'SIGKILL') {
      // As BwrapProcess: the launcher first, then everything in the exec's group.
      this.child.kill('SIGKILL');
      await this.opts.cgroups.kill(this.opts.instanceId, this.opts.group);
      return;
    }
    this.opts.cgroups.signal(this.opts.instanceId, this.opts.group, signal, this.child.pid);
  }

  wait(): Promise<ProcessExit> {
    return this.result;
  }

  private async track(): Promise<ProcessExit> {
    const { exitCode, signal } = await this.child.exited;
    const durationMs = this.opts.clock.monotonicMs() - this.started;
    const { cgroups, instanceId, group } = this.opts;
    const ended = Promise.all(this.relays.map((r) => r.ended));
    if (cgroups.pids(instanceId, group).length === 0) {
      await ended;
    } else {
      // Background processes hold the output: take what is there, then let them go.
      for (const r of this.relays) r.touch();
      await Promise.race([ended, this.quiet()]);
      for (const r of this.relays) r.detach();
    }
    if (this.opts.pty) this.opts.pty.destroy();
    else this.child.stdio[0]?.destroy();
    const oomKilled = cgroups.oomKills(instanceId, group) > 0;
    await cgroups.removeGroup(instanceId, group);
    return { exitCode, signal, oomKilled, durationMs };
  }

  private async quiet(): Promise<void> {
    for (;;) {
      // A paused source means the reader is behind: output is still waiting, not quiet.
      const busy = this.relays.some((r) => r.paused);
      const idle = this.opts.clock.monotonicMs() - Math.max(...this.relays.map((r) => r.lastData));
      if (!busy && idle >= QUIET_AFTER_EXIT_MS) return;
      await new Promise((r) => setTimeout(r, busy ? QUIET_AFTER_EXIT_MS : QUIET_AFTER_EXIT_MS - idle));
    }
  }
}

/** Moves one output descriptor into a PassThrough the caller reads, with backpressure. */
class OutputRelay {
  readonly stream = new PassThrough();
  /** Resolves once the source is done and all of it was handed to `stream`. */
  readonly ended: Promise<void>;
  lastData: number;
  private detached = false;

  constructor(
    private readonly source: Readable,
    private readonly clock: Clock,
  ) {
    this.lastData = clock.monotonicMs();
    // 'close' too: a caller that destroys the stream has stopped reading; nothing is owed then.
    this.ended = new Promise((resolve) => {
      this.stream.once('finish', () => resolve());
      this.stream.once('close', () => resolve());
    });
    source.on('data', (chunk: Buffer) => {
      if (this.detached) return;
      this.lastData = this.clock.monotonicMs();
      if (!this.stream.write(chunk)) source.pause();
    });
    this.stream.on('drain', () => {
      if (!this.detached) source.resume();
    });
    const finish = () => {
      if (!this.stream.writableEnded) this.stream.end();
    };
    source.once('end', finish);
    source.once('close', finish);
    // A terminal's EIO is its end of file; any other read error also ends the output (the
    // descriptor is unusable), and wait() still reports how the process ended.
    source.on('error', finish);
    // The caller may stop reading and destroy our stream: stop holding the source back then.
    this.stream.once('close', () => {
      if (!this.stream.writableFinished) this.detach();
    });
  }

  get paused(): boolean {
    return !this.detached && this.source.isPaused() && !this.source.readableEnded;
  }

  touch(): void {
    this.lastData = Math.max(this.lastData, this.clock.monotonicMs());
  }

  /** Ends `stream` now; whatever the source still yields is read and dropped. */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    if (!this.stream.writableEnded && !this.stream.destroyed) this.stream.end();
    this.source.resume();
  }
}
