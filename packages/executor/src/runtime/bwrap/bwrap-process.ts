import type { Readable } from 'node:stream';
import { posixSpawn, type SpawnedProcess } from '../process/posix-spawner.ts';
import type { Clock } from '../../util/clock.ts';
import type { CgroupDriver } from '../cgroups/cgroup-driver.ts';
import type { ProcessExit, ProcessSpec, RuntimeProcess } from '../types.ts';

/** After the main process exits while others still hold its output, wait this long for silence. */
const QUIET_AFTER_EXIT_MS = 25;
/** A progress line longer than this is cut (and the rest of it dropped). */
const MAX_PROGRESS_LINE = 4096;

interface SpawnOptions {
  shell: string;
  argv: string[];
  /** Environment of the launcher chain (host side): PATH only, unless the spec's is all server-set. */
  env: Record<string, string>;
  spec: ProcessSpec;
  clock: Clock;
  cgroups: CgroupDriver;
  instanceId: string;
}

/**
 * One exec in a bwrap instance. The host-side chain is sh (joins the exec's cgroup) → nsenter
 * (joins the namespaces, becomes the sandbox user) → env (inside: clean environment, working
 * dir) → the command. The exec's cgroup holds its whole tree, so kill and OOM are exact.
 */
export class BwrapProcess implements RuntimeProcess {
  private readonly started: number;
  private detached = false;
  private readonly result: Promise<ProcessExit>;

  private constructor(
    private readonly child: SpawnedProcess,
    private readonly opts: SpawnOptions,
    started: number,
  ) {
    this.started = started;
    this.result = this.track();
  }

  static spawn(opts: SpawnOptions): BwrapProcess {
    // Before the spawn: the child may be running (and done) by the time it returns.
    const started = opts.clock.monotonicMs();
    const child = posixSpawn({
      file: opts.shell,
      argv: [opts.shell, ...opts.argv],
      env: opts.env,
      stdio: [opts.spec.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    const proc = new BwrapProcess(child, opts, started);
    const stdin = child.stdio[0];
    if (opts.spec.stdin !== undefined && stdin) {
      // A process that exits without reading its stdin closes the pipe: not an error.
      stdin.on('error', () => undefined);
      stdin.end(opts.spec.stdin);
    }
    return proc;
  }

  wait(): Promise<ProcessExit> {
    return this.result;
  }

  async signal(signal: NodeJS.Signals): Promise<void> {
    const group = this.opts.spec.executionId;
    if (signal === 'SIGKILL') {
      // The launcher first: if it has not joined the exec's group yet it has started nothing,
      // and dead it never will; whatever it did start is in the group, killed next.
      this.child.kill('SIGKILL');
      await this.opts.cgroups.kill(this.opts.instanceId, group);
      return;
    }
    // Spare nsenter (the launcher, host side): it must live to report the command's status.
    this.opts.cgroups.signal(this.opts.instanceId, group, signal, this.child.pid);
  }

  private async track(): Promise<ProcessExit> {
    const { sink } = this.opts.spec;
    const [, stdout, stderr, progress] = this.child.stdio as [unknown, Readable, Readable, Readable];
    let lastData = this.opts.clock.monotonicMs();
    const forward = (stream: Readable, deliver: (chunk: Buffer) => void) =>
      stream.on('data', (chunk: Buffer) => {
        if (this.detached) return;
        lastData = this.opts.clock.monotonicMs();
        deliver(chunk);
      });
    forward(stdout, (c) => sink.stdout(c));
    forward(stderr, (c) => sink.stderr(c));
    forwardLines(progress, (line) => {
      if (!this.detached) sink.progress(line);
    });
    const ended = Promise.all([stdout, stderr, progress].map((s) => new Promise<void>((r) => (s.readableEnded || s.destroyed ? r() : s.once('close', () => r())))));

    const { exitCode, signal } = await this.child.exited;
    const durationMs = this.opts.clock.monotonicMs() - this.started;
    const group = this.opts.spec.executionId;
    if (this.opts.cgroups.pids(this.opts.instanceId, group).length === 0) {
      // Every writer is gone, so end of stream is imminent: read it all.
      await ended;
    } else {
      // Processes left running in the background still hold the streams; take what the main
      // process wrote (it is already in the pipe, read within the quiet period that starts at
      // its exit) and let the rest go.
      lastData = Math.max(lastData, this.opts.clock.monotonicMs());
      await Promise.race([ended, this.quiet(() => lastData)]);
      this.detached = true;
      for (const s of [stdout, stderr, progress]) s.resume();
    }
    this.child.stdio[0]?.destroy();
    const oomKilled = this.opts.cgroups.oomKills(this.opts.instanceId, group) > 0;
    await this.opts.cgroups.removeGroup(this.opts.instanceId, group);
    return { exitCode, signal, oomKilled, durationMs };
  }

  private async quiet(lastData: () => number): Promise<void> {
    for (;;) {
      const idle = this.opts.clock.monotonicMs() - lastData();
      if (idle >= QUIET_AFTER_EXIT_MS) return;
      await new Promise((r) => setTimeout(r, QUIET_AFTER_EXIT_MS - idle));
    }
  }
}

function forwardLines(stream: Readable, onLine: (line: string) => void): void {
  let pending = '';
  let overflow = false;
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    const parts = (pending + text).split('\n');
    pending = parts.pop() ?? '';
    for (const part of parts) {
      if (!overflow) onLine(part.slice(0, MAX_PROGRESS_LINE));
      overflow = false;
    }
    if (pending.length > MAX_PROGRESS_LINE) {
      if (!overflow) onLine(pending.slice(0, MAX_PROGRESS_LINE));
      overflow = true;
      pending = '';
    }
  });
  stream.on('end', () => {
    if (pending.length > 0 && !overflow) onLine(pending);
  });
}
