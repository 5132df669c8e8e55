import { FaasError } from '@faas/protocol';
import type { Readable, Writable } from 'node:stream';
import { decodeCredit, encodeCredit, encodeFrame, encodeJson, FrameType, type ChannelHandler, type ChannelLink, type Frame } from './agent-frames.ts';
import { InboundReadable, OutboundWritable, SendWindow } from './agent-streams.ts';

/** What to run in the guest. */
export interface AgentExecSpec {
  argv: readonly string[];
  /** The complete environment (nothing is inherited from the agent). */
  env: Readonly<Record<string, string>>;
  cwd: string;
  /** Switched to when the agent runs as root (always in the guest). */
  uid: number;
  gid: number;
  /**
   * A Buffer is written and then closed; 'stream' exposes `stdin` to write; without it the
   * process reads end of file at once (with a pty: nothing is typed).
   */
  stdin?: Buffer | 'stream';
  /** Run under a pseudo-terminal of this size; stderr is merged into stdout. */
  pty?: { cols: number; rows: number; term?: string };
  /** Receives each line the process writes to fd 3 (without its newline, at most 4 KiB). */
  onProgress?: (line: string) => void;
}

export interface AgentExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  oomKilled: boolean;
  durationMs: number;
}

/** A process running in the guest. */
export interface AgentProcess {
  readonly pid: number;
  /** Only useful with `stdin: 'stream'`; end() closes the process's input (^D under a pty). */
  readonly stdin: Writable;
  /** Credit follows reading: a consumer that stops reading stops the process's writes. */
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Sends `sig` to every process of the exec's tree (SIGKILL: atomically, via its cgroup). */
  signal(sig: NodeJS.Signals): Promise<void>;
  resize(cols: number, rows: number): void;
  /**
   * Resolves when the main process exited and its output was delivered (to end of stream, or
   * until background processes holding it were quiet for 25 ms). Rejects with RUNTIME_ERROR
   * when the connection to the agent is lost first.
   */
  wait(): Promise<AgentExit>;
}

interface ExitBody {
  exit_code: number | null;
  signal: string | null;
  oom_killed: boolean;
  duration_ms: number;
}

/** The host end of one exec channel. */
export class ExecChannel implements AgentProcess, ChannelHandler {
  pid = 0;
  readonly stdin: OutboundWritable;
  readonly stdout: InboundReadable;
  readonly stderr: InboundReadable;
  private readonly stdinWindow: SendWindow;
  private readonly started: Promise<void>;
  private readonly exited: Promise<AgentExit>;
  private settleStart!: { resolve: () => void; reject: (error: Error) => void };
  private settleExit!: { resolve: (exit: AgentExit) => void; reject: (error: Error) => void };
  private open = true;

  constructor(
    private readonly link: ChannelLink,
    private readonly spec: AgentExecSpec,
  ) {
    const grant = (stream: FrameType) => (bytes: number) => {
      if (this.open) link.send(encodeCredit(link.channel, stream, bytes));
    };
    this.stdout = new InboundReadable(grant(FrameType.STDOUT));
    this.stderr = new InboundReadable(grant(FrameType.STDERR));
    this.stdinWindow = new SendWindow((chunk) => link.send(encodeFrame(FrameType.STDIN, link.channel, chunk)));
    this.stdin = new OutboundWritable(this.stdinWindow, () => link.send(encodeFrame(FrameType.STDIN_EOF, link.channel)));
    this.started = new Promise((resolve, reject) => (this.settleStart = { resolve, reject }));
    this.exited = new Promise((resolve, reject) => (this.settleExit = { resolve, reject }));
    // wait() may never be called (the process failed to start, or the caller only streams).
    this.exited.catch(() => undefined);
  }

  /** Sends EXEC (and stdin) and resolves once the agent has started the process. */
  async start(): Promise<AgentProcess> {
    const { argv, env, cwd, uid, gid, pty, onProgress, stdin } = this.spec;
    this.link.send(encodeJson(FrameType.EXEC, this.link.channel, { argv, env, cwd, uid, gid, pty, progress: onProgress !== undefined }));
    // Frames keep their order, so stdin may follow EXEC before STARTED arrives.
    if (Buffer.isBuffer(stdin)) this.stdin.end(stdin);
    else if (stdin === undefined && pty === undefined) this.stdin.end();
    await this.started;
    return this;
  }

  wait(): Promise<AgentExit> {
    return this.exited;
  }

  signal(sig: NodeJS.Signals): Promise<void> {
    if (this.open) this.link.send(encodeJson(FrameType.SIGNAL, this.link.channel, { signal: sig }));
    return Promise.resolve();
  }

  resize(cols: number, rows: number): void {
    if (this.open) this.link.send(encodeJson(FrameType.RESIZE, this.link.channel, { cols, rows }));
  }

  onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.STARTED:
        this.pid = (JSON.parse(frame.payload.toString('utf8')) as { pid: number }).pid;
        this.settleStart.resolve();
        return;
      case FrameType.EXEC_FAILED:
        this.end(execFailure(frame.payload, this.spec.argv));
        return;
      case FrameType.STDOUT:
        this.stdout.deliver(frame.payload);
        return;
      case FrameType.STDERR:
        this.stderr.deliver(frame.payload);
        return;
      case FrameType.PROGRESS:
        this.spec.onProgress?.(frame.payload.toString('utf8'));
        return;
      case FrameType.CREDIT: {
        const { stream, bytes } = decodeCredit(frame.payload);
        if (stream === FrameType.STDIN) this.stdinWindow.add(bytes);
        return;
      }
      case FrameType.EXIT:
        this.settleExit.resolve(toExit(JSON.parse(frame.payload.toString('utf8')) as ExitBody));
        this.end();
        return;
    }
  }

  onDisconnect(error: Error): void {
    this.end(error);
  }

  /**
   * The channel is over: after EXIT, a failed start, or a lost connection (`error`). Output
   * streams end normally (an 'error' nobody listens for would crash the server); the error
   * reaches the caller through exec() and wait().
   */
  private end(error?: Error): void {
    if (!this.open) return;
    this.open = false;
    this.link.release();
    this.stdinWindow.close();
    this.stdout.push(null);
    this.stderr.push(null);
    if (error) {
      this.settleStart.reject(error);
      this.settleExit.reject(error);
    }
  }
}

function toExit(body: ExitBody): AgentExit {
  return {
    exitCode: body.exit_code,
    signal: body.signal as NodeJS.Signals | null,
    oomKilled: body.oom_killed,
    durationMs: body.duration_ms,
  };
}

/**
 * @faas/protocol has no code for a command that cannot be started (not found, not executable,
 * bad working directory): RUNTIME_ERROR, with the agent's own code as `details.reason`.
 */
function execFailure(payload: Buffer, argv: readonly string[]): FaasError {
  const { code, message } = JSON.parse(payload.toString('utf8')) as { code: string; message: string };
  return new FaasError('RUNTIME_ERROR', message, { reason: code, argv0: argv[0] });
}
