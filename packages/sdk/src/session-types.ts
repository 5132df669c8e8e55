/**
 * camelCase shapes of long-running sessions (docs/sessions.md): the session record, its
 * checkpoints, heartbeat answers, the options of `startLongRunningExecution`, and the session
 * events on the execution's stream.
 */
import type { ExecRequest, OutputEvent } from './execution-types.ts';

/**
 * Where a session is in its life. `starting`, `running`, `checkpointing` and `expiring` (the
 * warning was sent, the grace period runs) are live; `completed` (the command exited 0 by
 * itself), `failed` (it exited non-zero by itself) and `terminated` (faas ended it: see
 * `stateReason`) are final until a `resume`.
 *
 * @example
 * if (session.state === 'terminated') console.error(session.stateReason);
 */
export type SessionState = 'starting' | 'running' | 'checkpointing' | 'expiring' | 'completed' | 'failed' | 'terminated';

/**
 * Why a session left (or is leaving) running: the hard cap, missed heartbeats, the stop API,
 * a kill, an executor restart, or the end of its instance. A reason newer than this SDK comes
 * through as its string.
 *
 * @example
 * if (session.stateReason === 'idle_timeout') console.error('no heartbeat for too long');
 */
export type SessionStateReason = 'max_duration' | 'idle_timeout' | 'stopped' | 'killed' | 'executor_restart' | 'instance_ended' | (string & {});

/**
 * The final states: nothing runs any more, heartbeats are refused (SESSION_NOT_ACTIVE).
 *
 * @example
 * FINAL_SESSION_STATES.includes(session.state); // true once it ended
 */
export const FINAL_SESSION_STATES: readonly SessionState[] = ['completed', 'failed', 'terminated'];

/**
 * True for a state in which the session has ended.
 *
 * @example
 * if (isFinalSessionState((await session.status()).state)) await session.resume();
 */
export function isFinalSessionState(state: SessionState): boolean {
  return FINAL_SESSION_STATES.includes(state);
}

/**
 * A snapshot of the session's instance, taken on schedule, on demand, or right before the
 * session ends. Each one has the previous one as its parent snapshot.
 *
 * @example
 * const instance = await client.restoreSnapshot(session.checkpoints.at(-1)!.id);
 */
export interface SessionCheckpoint {
  /** Snapshot id (`snap-...`): restore, diff or branch it like any snapshot. */
  id: string;
  contentHash: string;
  createdAt: Date;
  sizeBytes: number;
}

/**
 * A session as the server reports it. `deadline` changes only through an extension (yours, or
 * `autoExtend`); every status carries it.
 *
 * @example
 * const { state, deadline, checkpoints }: SessionInfo = await client.getSession('sess-0a1b2c3d4e5f6g7h');
 */
export interface SessionInfo {
  /** `sess-...`; it stays the same across a resume. */
  id: string;
  /** The execution currently running the command (a resume starts a new one). */
  executionId: string;
  instanceId: string;
  state: SessionState;
  /** Why it left running; null while live. */
  stateReason: SessionStateReason | null;
  startedAt: Date;
  /** When the hard cap ends it, unless extended. */
  deadline: Date;
  /** The start counts as the first heartbeat. */
  lastHeartbeat: Date;
  /** How often the handle heartbeats: the interval the start asked for, else a third of the idle timeout (at most 30 s). */
  heartbeatIntervalMs: number;
  /** No heartbeat for this long ends it (reason `idle_timeout`); 0: no idle timeout. */
  idleTimeoutMs: number;
  /** Between the warning (SIGTERM) and SIGKILL. */
  gracePeriodMs: number;
  /** Between automatic checkpoints; null for none on a schedule. */
  checkpointIntervalMs: number | null;
  /** Oldest first. */
  checkpoints: SessionCheckpoint[];
  extendedCount: number;
  maxExtensions: number;
  autoExtend: boolean;
  /** The command's exit code once it exited by itself; null otherwise. */
  exitCode: number | null;
}

/**
 * The answer to a heartbeat.
 *
 * @example
 * const { deadline } = await client.sendHeartbeat(session.id);
 */
export interface SessionHeartbeat {
  id: string;
  lastHeartbeat: Date;
  deadline: Date;
  state: SessionState;
}

/**
 * What a session runs: exactly one of `command` (argv) or `code` (source for `language`),
 * in a fresh instance or in `instanceId`.
 *
 * @example
 * const request: LongRunningRequest = { command: ['python3', 'train.py'], envVars: { EPOCHS: '50' } };
 */
export interface LongRunningRequest extends Pick<ExecRequest, 'code' | 'command' | 'language' | 'envVars' | 'workingDir'> {
  /** Run in this existing instance. @default a fresh instance */
  instanceId?: string;
  /** Environment (base filesystem) of a fresh instance. @default 'host' */
  env?: string;
  /** Memory limit of a fresh instance in MiB. @default the server's default */
  memoryMb?: number;
  /** CPU quota of a fresh instance in cores. @default the server's default */
  cpuCores?: number;
  /** Process and thread limit of a fresh instance. @default the server's default */
  pidsMax?: number;
}

/**
 * Callbacks on a session's stream. Output callbacks get every chunk from the start of the
 * execution, in order; session callbacks get each session event once.
 *
 * @example
 * session.on({ onStdout: (text) => process.stdout.write(text), onWarning: (w) => console.warn(w.reason) });
 */
export interface SessionCallbacks {
  /** Each output chunk, stdout and stderr. */
  onOutput?: (event: OutputEvent) => void;
  /** Each stdout chunk with its text and the full event. */
  onStdout?: (data: string, event: OutputEvent) => void;
  /** Each stderr chunk with its text and the full event. */
  onStderr?: (data: string, event: OutputEvent) => void;
  /** The session is about to end (hard cap or idle): SIGTERM now, SIGKILL after the grace period. */
  onWarning?: (event: SessionWarningEvent) => void;
  /** A checkpoint was taken. */
  onCheckpoint?: (checkpoint: SessionCheckpoint, event: SessionCheckpointEvent) => void;
  /** The session changed state, or its deadline (an extension): each `session.state` event. */
  onStateChange?: (state: SessionState, reason: SessionStateReason | null, event: SessionStateEvent) => void;
  /**
   * A heartbeat failed after its retries, or the event stream broke off. Heartbeating goes on
   * (it stops on SESSION_NOT_FOUND); nothing is ever thrown from the background.
   */
  onError?: (error: unknown) => void;
}

/**
 * The session settings of `startLongRunningExecution`, in ms, plus the handle's callbacks.
 * Unset settings take the server's defaults.
 *
 * @example
 * await client.startLongRunningExecution({ command: ['./crawl'] }, { maxDuration: 7_200_000, heartbeatInterval: 30_000, idleTimeout: 300_000 });
 */
export interface LongRunningOptions extends SessionCallbacks {
  /** Hard cap on the session's life, in ms (at most the server's cap, 24 h by default). */
  maxDuration: number;
  /** How often the handle heartbeats, in ms (sent to the server too). @default a third of `idleTimeout`, at most 30 s */
  heartbeatInterval?: number;
  /** No heartbeat for this long ends the session, in ms. @default no idle timeout */
  idleTimeout?: number;
  /** Between the warning (SIGTERM) and SIGKILL, in ms. @default 10000 */
  gracePeriod?: number;
  /** Automatic checkpoints this far apart, in ms (a final one is taken before any termination anyway). @default none on a schedule */
  checkpointInterval?: number;
  /** How many times the deadline may be extended. @default 0 */
  maxExtensions?: number;
  /** At the deadline, extend by `maxDuration` instead of ending, while extensions remain and the cap allows. @default false */
  autoExtend?: boolean;
  /** Heartbeat from this handle. Off: call `client.sendHeartbeat(id)` yourself. @default true */
  heartbeat?: boolean;
  /** Retries of a failed heartbeat before `onError` hears of it. @default 3 */
  heartbeatRetries?: number;
}

/**
 * Options of `resume`. Env var values are never stored by the server: a session started with
 * `envVars` gets them again only when the resume passes them.
 *
 * @example
 * await client.resumeSession(id, { envVars: { TOKEN: process.env.TOKEN! } });
 */
export interface ResumeSessionOptions {
  envVars?: Record<string, string>;
}

/**
 * Options of `session.wait()`.
 *
 * @example
 * const final = await session.wait({ timeout: 3_600_000 });
 */
export interface SessionWaitOptions {
  /** Give up after this many ms with CLIENT_TIMEOUT (the session runs on). @default no limit */
  timeout?: number;
  /** Abort the wait; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

interface SessionEventBase {
  seq: number;
  time: Date;
  sessionId: string;
}

/**
 * The session is about to end: SIGTERM goes to the command now, SIGKILL after `gracePeriodMs`.
 *
 * @example
 * if (event.type === 'session.warning') console.warn(`ending (${event.reason}) at ${event.deadline.toISOString()}`);
 */
export interface SessionWarningEvent extends SessionEventBase {
  type: 'session.warning';
  reason: SessionStateReason;
  deadline: Date;
  gracePeriodMs: number;
}

/** A checkpoint was taken. @example if (event.type === 'session.checkpoint') console.log(event.checkpoint.id); */
export interface SessionCheckpointEvent extends SessionEventBase {
  type: 'session.checkpoint';
  checkpoint: SessionCheckpoint;
}

/** The session changed state or deadline. @example if (event.type === 'session.state') console.log(event.state, event.stateReason, event.deadline); */
export interface SessionStateEvent extends SessionEventBase {
  type: 'session.state';
  state: SessionState;
  stateReason: SessionStateReason | null;
  deadline: Date;
}

/** The session events of an execution's stream. @example if (event.type.startsWith('session.')) log(event); */
export type SessionEvent = SessionWarningEvent | SessionCheckpointEvent | SessionStateEvent;
