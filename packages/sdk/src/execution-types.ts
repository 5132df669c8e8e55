/**
 * The camelCase shapes of executions and their events as the SDK hands them out. The
 * snake_case wire forms live in @faas/protocol; `wire-mapping.ts` is the only place that
 * converts between the two.
 */
import type { SessionEvent } from './session-types.ts';

/**
 * Interpreter for `code`.
 *
 * @default 'sh'
 * @example
 * await client.execute({ code: 'print(1 + 1)', language: 'python' });
 */
export type Language = 'sh' | 'bash' | 'python' | 'node';

/**
 * Execution mode of a one-shot execution (docs/execution-modes.md): `ephemeral` (a fresh
 * instance, destroyed after), `cached` (a repeat of the exact same request gets the stored
 * result), `checkpointed` (snapshot after; `checkpoint` restores one first), `branched` (a
 * copy-on-write copy of `branchFrom`, snapshotted after) or `persistent` (a long-lived instance
 * named by `functionId` or `instanceId`).
 *
 * @default 'ephemeral'
 * @example
 * await client.execute({ command: ['true'], mode: 'ephemeral' });
 * await client.execute({ code: 'make', mode: 'checkpointed', checkpoint: 'snap-0a1b2c3d4e5f6g7h' });
 */
export type ExecutionMode = 'ephemeral' | 'cached' | 'checkpointed' | 'branched' | 'persistent';

/**
 * Why an execution ended: `exited` (see `exitCode`), `signaled` (a signal faas did not
 * send), `timeout`, `oom` (memory limit) or `killed` (the kill API).
 *
 * @example
 * if (result.exitReason === 'timeout') console.error('too slow');
 */
export type ExitReason = 'exited' | 'signaled' | 'timeout' | 'oom' | 'killed';

/**
 * `running` while it runs; `interrupted` when the executor restarted under it.
 *
 * @example
 * const done = result.status !== 'running';
 */
export type ExecutionStatus = 'running' | 'completed' | 'interrupted';

/** Signals the kill API can send. @default 'SIGKILL' @example await client.killExecution(id, { signal: 'SIGTERM', graceMs: 2000 }); */
export type KillSignal = 'SIGKILL' | 'SIGTERM' | 'SIGINT' | 'SIGHUP';

/**
 * What to run inside an instance: exactly one of `command` (argv, no shell) or `code`
 * (source for `language`).
 *
 * @example
 * const request: ExecRequest = { command: ['ls', '-la'], workingDir: '/tmp' };
 */
export interface ExecRequest {
  /**
   * Client-chosen execution id (3-63 chars of a-z, 0-9, "-"). A retry with the same id and
   * body is answered with the same execution, which is what makes a retry safe.
   */
  id?: string;
  /** Source code run by the interpreter of `language`. */
  code?: string;
  /** argv; the first item is looked up in PATH. */
  command?: string[];
  /** @default 'sh' */
  language?: Language;
  /** Environment variables, applied on top of the instance's. */
  envVars?: Record<string, string>;
  /** Absolute path inside the instance. @default '/workspace' */
  workingDir?: string;
  /** Text written to the process's standard input, which is then closed. */
  stdin?: string;
  /** Kill the whole process tree after this many ms. @default the server's default */
  timeoutMs?: number;
}

/**
 * A one-shot execution in a fresh instance that is destroyed afterwards.
 *
 * @example
 * const request: ExecuteRequest = { code: 'echo $GREETING', envVars: { GREETING: 'hi' }, memoryMb: 256 };
 */
export interface ExecuteRequest extends ExecRequest {
  /** @default 'ephemeral' */
  mode?: ExecutionMode;
  /** cached: an extra key input, e.g. a version of the data the command reads. */
  cacheKey?: string;
  /** cached: also cache results with a non-zero exit code (never timeouts, OOM or kills). @default false */
  cacheFailures?: boolean;
  /** checkpointed: restore this snapshot (id or content hash) first. @default a clean instance */
  checkpoint?: string;
  /** branched (required): the snapshot (id or content hash) to copy, or an execution that left one. */
  branchFrom?: string;
  /** persistent: run in this existing instance (exclusive with `functionId`). */
  instanceId?: string;
  /** persistent: a stable name (a-z, 0-9, "-"); its instance is created on first use. */
  functionId?: string;
  /** Environment (base filesystem) name. @default 'host' */
  env?: string;
  /** Memory limit in MiB. @default the server's default */
  memoryMb?: number;
  /** CPU quota in cores (0.5 = half a core). @default the server's default */
  cpuCores?: number;
  /** Maximum number of processes and threads. @default the server's default */
  pidsMax?: number;
}

/**
 * A finished execution (or, with `status: 'running'`, a live one).
 *
 * @example
 * const result = await client.execute({ command: ['echo', 'hi'] });
 * result.stdout; // "hi\n"
 */
export interface ExecutionResult {
  id: string;
  instanceId: string;
  status: ExecutionStatus;
  /** The argv that ran (code is shown as its interpreter invocation). */
  command: string[];
  workingDir: string;
  /** The exit code; null unless `exitReason` is `exited`. */
  exitCode: number | null;
  /** null while running. */
  exitReason: ExitReason | null;
  /** "SIGKILL" etc. when a signal ended it. */
  signal: string | null;
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
  /** True when the output passed the per-execution cap; the rest was discarded. */
  outputTruncated: boolean;
  /** Last reported progress, 0-100. */
  progress: number | null;
  /** Sequence number of the last event in the execution's log. */
  lastSeq: number;
  startedAt: Date;
  finishedAt: Date | null;
  /** Measured from process start to exit. */
  durationMs: number | null;
  /**
   * The mode it ran in. Present on the answers of `execute` (and the helpers built on it);
   * absent on records read later (`getExecution`, `wait`, background starts), which the server
   * does not annotate.
   */
  mode?: ExecutionMode;
  /** cached mode: true when this is a stored result (with the original run's `id` and `durationMs`). */
  cached?: boolean;
  /** cached hit: what answering from the cache took on the server, in ms. */
  cacheLatencyMs?: number;
  /** checkpointed and branched: the snapshot of the state the run left (null if none was taken). */
  snapshotId?: string | null;
  /** checkpointed and branched: that snapshot's content hash. */
  contentHash?: string | null;
  /** checkpointed and branched: the snapshot the run started from (null: a clean instance). */
  baseSnapshotId?: string | null;
}

/**
 * The answer to a background start: the execution runs on, its events can be streamed.
 *
 * @example
 * const started = await client.instances.start(instanceId, { command: ['sleep', '5'] });
 */
export interface ExecutionStarted {
  id: string;
  instanceId: string;
  status: ExecutionStatus;
  /** Server-relative URL of the SSE event stream. */
  eventsUrl: string;
  /** Server-relative URL of the WebSocket event stream. */
  streamUrl: string;
}

/**
 * How to end a running execution.
 *
 * @example
 * await client.killExecution(id, { signal: 'SIGTERM', graceMs: 5000 });
 */
export interface KillOptions {
  /** @default 'SIGKILL' */
  signal?: KillSignal;
  /** With a signal other than SIGKILL: SIGKILL the whole tree after this many ms. */
  graceMs?: number;
}

/** Fields every execution event has. */
interface EventBase {
  /** 1, 2, 3, ... without gaps within one execution. */
  seq: number;
  time: Date;
}

/**
 * A chunk of output. `data` is always text; `bytes` holds the exact bytes, which differ from
 * `data` only when the chunk was not valid UTF-8 (the server then sent base64 and `data` holds
 * the lossy decoding with U+FFFD).
 *
 * @example
 * if (event.type === 'output') process.stdout.write(event.bytes);
 */
export interface OutputEvent extends EventBase {
  type: 'output';
  stream: 'stdout' | 'stderr';
  data: string;
  bytes: Uint8Array;
}

/** Progress reported by the process on `FAAS_PROGRESS_FD`. @example if (event.type === 'progress') bar.update(event.progress); */
export interface ProgressEvent extends EventBase {
  type: 'progress';
  /** 0-100 */
  progress: number;
  message?: string;
}

/** The last event of an execution that finished. @example if (event.type === 'completed') process.exitCode = event.exitCode ?? 1; */
export interface CompletedEvent extends EventBase {
  type: 'completed';
  exitCode: number | null;
  exitReason: ExitReason;
  signal: string | null;
  durationMs: number;
  outputTruncated: boolean;
}

/** The last event of an execution that could not finish normally. @example if (event.type === 'error') console.error(event.code); */
export interface ErrorEvent extends EventBase {
  type: 'error';
  code: string;
  message: string;
}

/**
 * One event of an execution, in log order.
 *
 * @example
 * for await (const event of client.streamExecution(id)) {
 *   if (event.type === 'output') console.log(event.stream, event.data);
 * }
 *
 * Event types newer than this SDK are skipped, and so are the `session.*` events of a
 * long-running session (`session.events()` yields those).
 */
export type ExecutionEvent = OutputEvent | ProgressEvent | CompletedEvent | ErrorEvent;

/**
 * What the stream of a long-running session's execution carries: its process events and the
 * session's (`session.*`). `ExecutionEvent` stays the process events alone, so code that
 * switches over it exhaustively keeps compiling.
 *
 * @example
 * for await (const event of session.events()) if (event.type === 'session.checkpoint') console.log(event.checkpoint.id);
 */
export type ExecutionStreamEvent = ExecutionEvent | SessionEvent;
