import { finished } from 'node:stream/promises';
import type { AgentProcess } from './guest-agent/agent-client.ts';
import type { InteractiveProcess, OutputSink, ProcessExit, RuntimeProcess } from '../types.ts';

/**
 * After a SIGKILL the agent reports the exit within milliseconds; silence this long means the
 * guest itself hangs, and the only sure kill left is the machine's.
 */
export const KILL_GRACE_MS = 5_000;

/** Ends the whole machine (the runtime's hook); the exec then counts as killed. */
export type MachineKiller = () => Promise<void>;

/**
 * An exec of a vm instance: the agent's process with its output fed to the sink. The agent
 * sends the exit only after the output (by the quiet rule for background holders), so `wait`
 * resolves once both the exit and the last byte arrived here.
 */
export class VmProcess implements RuntimeProcess {
  private readonly done: Promise<ProcessExit>;
  private readonly started = Date.now();
  private settled = false;
  private forceExit: ((exit: ProcessExit) => void) | undefined;

  constructor(
    private readonly proc: AgentProcess,
    sink: OutputSink,
    private readonly killMachine: MachineKiller,
  ) {
    proc.stdout.on('data', (chunk: Buffer) => sink.stdout(chunk));
    proc.stderr.on('data', (chunk: Buffer) => sink.stderr(chunk));
    const drained = Promise.all([finished(proc.stdout), finished(proc.stderr)]).catch(() => undefined);
    const normal = proc.wait().then(
      async (exit) => {
        await drained;
        return exit;
      },
      // The machine went away under the process (stopped, crashed, killed as hung): to the
      // caller that is the process killed, as when a bwrap instance's namespace goes.
      (): ProcessExit => ({ exitCode: null, signal: 'SIGKILL', oomKilled: false, durationMs: Date.now() - this.started }),
    );
    const forced = new Promise<ProcessExit>((resolve) => (this.forceExit = resolve));
    this.done = Promise.race([normal, forced]).finally(() => (this.settled = true));
  }

  wait(): Promise<ProcessExit> {
    return this.done;
  }

  async signal(signal: NodeJS.Signals): Promise<void> {
    if (signal !== 'SIGKILL') return this.proc.signal(signal);
    const timer = setTimeout(() => void this.killHungGuest(), KILL_GRACE_MS);
    void this.done.then(() => clearTimeout(timer));
    // A hung agent never acknowledges: the forced exit ends the wait instead.
    await Promise.race([this.proc.signal(signal).catch(() => undefined), this.done.then(() => undefined)]);
  }

  private async killHungGuest(): Promise<void> {
    if (this.settled) return;
    await this.killMachine().catch(() => undefined);
    this.forceExit?.({ exitCode: null, signal: 'SIGKILL', oomKilled: false, durationMs: Date.now() - this.started });
  }
}

/** An interactive exec of a vm instance: the agent's streams as they are. */
export class VmInteractiveProcess implements InteractiveProcess {
  constructor(private readonly proc: AgentProcess) {}

  get stdin() {
    return this.proc.stdin;
  }

  get stdout() {
    return this.proc.stdout;
  }

  get stderr() {
    return this.proc.stderr;
  }

  resize(cols: number, rows: number): void {
    this.proc.resize(cols, rows);
  }

  signal(signal: NodeJS.Signals): Promise<void> {
    return this.proc.signal(signal);
  }

  async wait(): Promise<ProcessExit> {
    const started = Date.now();
    // As VmProcess: the machine going away is the process killed.
    const exit = await this.proc.wait().catch((): ProcessExit => ({ exitCode: null, signal: 'SIGKILL', oomKilled: false, durationMs: Date.now() - started }));
    // Output that came in the same read as the exit can still sit in a stream whose reader was
    // attached this tick (its flow starts on the next one): let a flowing reader have it first.
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      while (!stream.destroyed && stream.readableFlowing === true && stream.readableLength > 0) await new Promise((r) => setImmediate(r));
    }
    return exit;
  }
}
