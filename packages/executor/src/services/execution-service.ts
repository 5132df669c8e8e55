import { createHash } from 'node:crypto';
import { FaasError, type ExecModeName, type ExecRequest, type ExecutionStreamEvent, type ExitReason } from '@faas/protocol';
import { WORKSPACE } from '../runtime/bwrap/host-environment.ts';
import { sandboxBaseEnv } from './sandbox-env.ts';
import type { ProcessExit, RuntimeProcess } from '../runtime/types.ts';
import type { ExecutionRecord, InstanceRecord } from '../store/types.ts';
import { checkEnvVars } from '../util/env-vars.ts';
import { newId } from '../util/ids.ts';
import { checkWorkingDir, toArgv } from './command-line.ts';
import { streamEvents } from './event-stream.ts';
import { ExecutionLogWriter, logPath, readLog, readLogSync } from './execution-log.ts';
import type { ServiceDeps } from './service-deps.ts';
import { OutputEncoder } from './output-encoder.ts';
import { parseProgressLine } from './progress.ts';

/** @see ServiceDeps */
export type ExecutionServiceDeps = ServiceDeps;

/** A finished or running execution with its output, as the API shows it. */
export interface ExecutionView {
  record: ExecutionRecord;
  stdout: string;
  stderr: string;
}

/** The process request common to `/execute` and `/instances/:id/exec`. */
export type ProcessRequest = Pick<ExecRequest, 'id' | 'command' | 'code' | 'language' | 'env_vars' | 'working_dir' | 'stdin' | 'timeout_ms'>;

/** How long a process may take to act on SIGTERM/SIGINT/SIGHUP before SIGKILL. */
const DEFAULT_KILL_GRACE_MS = 10_000;

interface Running {
  record: ExecutionRecord;
  log: ExecutionLogWriter;
  process?: RuntimeProcess;
  stdout: Buffer[];
  stderr: Buffer[];
  keptBytes: number;
  endReason?: 'timeout' | 'killed';
  timers: NodeJS.Timeout[];
  done: Promise<ExecutionRecord>;
  /** Ended because the server shut down: recorded as interrupted, like a crash. */
  interrupted?: boolean;
  /** Called right before the terminal event is appended (a session adds its final state there). */
  beforeTerminal?: (exit: ProcessExit, reason: ExitReason, interrupted: boolean) => void;
}

/** Body of an event appended by another service (a session's events), without seq and time. */
export type AppendedEventBody = ExecutionStreamEvent extends infer E ? (E extends ExecutionStreamEvent ? Omit<E, 'seq' | 'time'> : never) : never;

/** What a caller of `start` may add to an execution. */
export interface StartOptions {
  ephemeral: boolean;
  requestStarted: number;
  mode?: ExecModeName;
  /**
   * A session's execution: the session's own deadline replaces the execution timeout (no timer
   * here; the session ends it), and this is recorded as its timeout.
   */
  deadlineManagedMs?: number;
  /** Called synchronously right before the terminal event is appended. */
  beforeTerminal?: (exit: ProcessExit, reason: ExitReason, interrupted: boolean) => void;
}

/** Runs processes in instances, logs their events durably, and serves results and streams. */
export class ExecutionService {
  private readonly running = new Map<string, Running>();
  private readonly closingLogs = new Set<Promise<void>>();

  constructor(private readonly deps: ExecutionServiceDeps) {}

  /** Starts an execution; resolves once its process runs (or failed to start). */
  async start(instance: InstanceRecord, request: ProcessRequest, options: StartOptions): Promise<{ id: string; done: Promise<ExecutionRecord> }> {
    const { store, runtime, config, clock, metrics, logger } = this.deps;
    const checked = this.validate(request);
    const { argv, workingDir, envVars } = checked;
    const timeoutMs = options.deadlineManagedMs ?? checked.timeoutMs;
    const id = request.id ?? newId('exec');
    if (request.id !== undefined) {
      const existing = this.running.get(id)?.record ?? (await store.executions.get(id));
      if (existing !== undefined) {
        // A retry of the same request gets the same execution; another request with the id is a clash.
        if (existing.requestHash !== requestHash(request) || existing.instanceId !== instance.id) {
          throw new FaasError('ID_CONFLICT', `execution id ${id} is already used by a different request`, { id });
        }
        return { id, done: this.running.get(id)?.done ?? Promise.resolve(existing) };
      }
    }
    const record: ExecutionRecord = {
      id,
      instanceId: instance.id,
      ephemeral: options.ephemeral,
      mode: options.mode ?? 'ephemeral',
      status: 'running',
      command: argv,
      workingDir,
      envVarNames: Object.keys({ ...instance.envVars, ...envVars }).sort(),
      timeoutMs,
      requestHash: requestHash(request),
      exitCode: null,
      exitReason: null,
      signal: null,
      stdoutBytes: 0,
      stderrBytes: 0,
      outputTruncated: false,
      progress: null,
      lastSeq: 0,
      startedAt: clock.now(),
      finishedAt: null,
      durationMs: null,
    };
    await store.executions.insert(record);
    const log = new ExecutionLogWriter(logPath(config.dataDir, id), 0, clock.now);
    let settle!: (r: ExecutionRecord) => void;
    const run: Running = { record, log, stdout: [], stderr: [], keptBytes: 0, timers: [], done: new Promise((r) => (settle = r)), beforeTerminal: options.beforeTerminal };
    this.running.set(id, run);
    metrics.executionsStarted.inc();
    metrics.executionsRunning.inc();

    const encoders = { stdout: new OutputEncoder(), stderr: new OutputEncoder() };
    const onOutput = (stream: 'stdout' | 'stderr', chunk: Buffer) => {
      record[stream === 'stdout' ? 'stdoutBytes' : 'stderrBytes'] += chunk.length;
      const room = config.maxOutputBytes - run.keptBytes;
      if (chunk.length > room) {
        if (!record.outputTruncated) logger.warn({ execution: id, cap: config.maxOutputBytes }, 'output cap reached; discarding the rest');
        record.outputTruncated = true;
        // Keep what fits; the encoder holds back a character cut at the edge.
        if (room <= 0) return;
        chunk = chunk.subarray(0, room);
      }
      run.keptBytes += chunk.length;
      run[stream].push(chunk);
      const piece = encoders[stream].push(chunk);
      if (piece) log.append({ type: 'output', stream, ...piece });
    };
    try {
      run.process = await runtime.exec(instance.id, {
        executionId: id,
        argv,
        env: { ...baseEnv(instance.id, id), ...instance.envVars, ...envVars },
        envFromServerOnly: Object.keys(instance.envVars).length === 0 && Object.keys(envVars).length === 0,
        workingDir,
        stdin: request.stdin === undefined ? undefined : Buffer.from(request.stdin),
        sink: {
          stdout: (c) => onOutput('stdout', c),
          stderr: (c) => onOutput('stderr', c),
          progress: (line) => {
            const parsed = parseProgressLine(line);
            if (parsed === undefined) return;
            record.progress = parsed.progress;
            log.append({ type: 'progress', ...parsed });
          },
        },
      });
    } catch (err) {
      const failure = err instanceof FaasError ? err : new FaasError('RUNTIME_ERROR', `could not start the process: ${(err as Error).message}`, {}, { cause: err });
      log.append({ type: 'error', code: failure.code, message: failure.message });
      await log.close();
      this.running.delete(id);
      metrics.executionsRunning.dec();
      settle(await store.executions.update(id, { status: 'completed', finishedAt: clock.now(), lastSeq: log.lastSeq }));
      throw failure;
    }
    metrics.execStart.observe((clock.monotonicMs() - options.requestStarted) / 1000);
    if (options.deadlineManagedMs === undefined) {
      run.timers.push(
        setTimeout(() => {
          run.endReason ??= 'timeout';
          void run.process!.signal('SIGKILL');
        }, timeoutMs),
      );
    }
    void run.process.wait().then(
      (exit) => this.finish(run, exit, encoders).then(settle),
      (err: unknown) => {
        logger.error({ err, execution: id }, 'waiting for the process failed');
        void this.finish(run, { exitCode: null, signal: 'SIGKILL', oomKilled: false, durationMs: 0 }, encoders).then(settle);
      },
    );
    return { id, done: run.done };
  }

  /** Checks a process request without running anything; throws the error `start` would. */
  validate(request: ProcessRequest): { argv: string[]; workingDir: string; envVars: Record<string, string>; timeoutMs: number } {
    const { config } = this.deps;
    const argv = toArgv(request);
    const workingDir = checkWorkingDir(request.working_dir, WORKSPACE);
    const envVars = checkEnvVars(request.env_vars);
    const timeoutMs = request.timeout_ms ?? config.defaults.timeoutMs;
    if (timeoutMs > config.maxima.timeoutMs) {
      throw new FaasError('LIMIT_OUT_OF_RANGE', `timeout_ms must be at most ${config.maxima.timeoutMs}, got ${timeoutMs}`, { limit: 'timeout_ms', value: timeoutMs, max: config.maxima.timeoutMs });
    }
    return { argv, workingDir, envVars, timeoutMs };
  }

  async get(id: string): Promise<ExecutionView> {
    const run = this.running.get(id);
    if (run) {
      return { record: { ...run.record, lastSeq: run.log.lastSeq }, stdout: Buffer.concat(run.stdout).toString('utf8'), stderr: Buffer.concat(run.stderr).toString('utf8') };
    }
    const record = await this.deps.store.executions.get(id);
    if (record === undefined) throw new FaasError('EXECUTION_NOT_FOUND', `no execution with id ${id}`, { execution_id: id });
    return { record, ...outputOf(await readLog(logPath(this.deps.config.dataDir, id))) };
  }

  async list(instanceId: string, limit?: number): Promise<ExecutionView[]> {
    const records = await this.deps.store.executions.list({ instanceId, limit });
    return Promise.all(records.map((r) => this.get(r.id)));
  }

  /** Resolves with the finished execution (at once when it already finished). */
  async wait(id: string): Promise<ExecutionView> {
    const run = this.running.get(id);
    if (run) await run.done;
    return this.get(id);
  }

  /** Events after `after`; throws EXECUTION_NOT_FOUND before the first event when unknown. */
  async events(id: string, after: number, signal?: AbortSignal): Promise<AsyncGenerator<ExecutionStreamEvent>> {
    if (!this.running.has(id) && (await this.deps.store.executions.get(id)) === undefined) {
      throw new FaasError('EXECUTION_NOT_FOUND', `no execution with id ${id}`, { execution_id: id });
    }
    const path = logPath(this.deps.config.dataDir, id);
    return streamEvents({ path, live: () => this.running.get(id)?.log }, after, signal);
  }

  /**
   * Appends an event to a running execution's log (and so to its live streams); undefined when
   * it is not running here or its log has ended.
   */
  appendEvent(id: string, body: AppendedEventBody): ExecutionStreamEvent | undefined {
    const run = this.running.get(id);
    if (run === undefined || run.log.isFinished) return undefined;
    return run.log.append(body);
  }

  /** True while the execution runs in this server. */
  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  /** Signals the execution's whole tree; other signals than SIGKILL are followed by SIGKILL after `graceMs`. Resolves when it ended. */
  async kill(id: string, signal: NodeJS.Signals = 'SIGKILL', graceMs = DEFAULT_KILL_GRACE_MS, reason: 'killed' | 'timeout' = 'killed'): Promise<ExecutionView> {
    const run = this.running.get(id);
    if (run === undefined) {
      const view = await this.get(id);
      throw new FaasError('EXECUTION_FINISHED', `execution ${id} already finished (${view.record.exitReason ?? view.record.status})`, { execution_id: id, status: view.record.status });
    }
    run.endReason ??= reason;
    await run.process?.signal(signal);
    if (signal !== 'SIGKILL') run.timers.push(setTimeout(() => void run.process?.signal('SIGKILL'), graceMs));
    await run.done;
    return this.get(id);
  }

  /** Marks every execution of an instance that is going away as killed (its processes die with it). */
  markInstanceEnding(instanceId: string): void {
    for (const run of this.running.values()) if (run.record.instanceId === instanceId) run.endReason ??= 'killed';
  }

  /** On shutdown: whatever ends from now on ends as interrupted, not as killed. */
  interruptAll(): void {
    for (const run of this.running.values()) run.interrupted = true;
  }

  /** At start-up: executions that were running when the server died are interrupted. */
  async recover(): Promise<number> {
    const { store, clock, config } = this.deps;
    const orphans = await store.executions.list({ statuses: ['running'], limit: 100_000 });
    for (const rec of orphans) {
      const path = logPath(config.dataDir, rec.id);
      const events = readLogSync(path);
      const lastSeq = events.at(-1)?.seq ?? 0;
      const log = new ExecutionLogWriter(path, lastSeq, clock.now);
      log.append({ type: 'error', code: 'EXECUTION_INTERRUPTED', message: 'the executor restarted while this execution ran; output up to then is kept' });
      await log.close();
      // Counters lived in memory only; the log has everything that was kept.
      const { stdout, stderr } = outputBytesOf(events);
      const progress = events.filter((e) => e.type === 'progress').at(-1);
      await store.executions.update(rec.id, {
        status: 'interrupted',
        finishedAt: clock.now(),
        lastSeq: log.lastSeq,
        stdoutBytes: stdout.length,
        stderrBytes: stderr.length,
        progress: progress?.type === 'progress' ? progress.progress : rec.progress,
      });
    }
    return orphans.length;
  }

  async isEphemeralInstance(instanceId: string): Promise<boolean> {
    const execs = await this.deps.store.executions.list({ instanceId, limit: 1 });
    return execs[0]?.ephemeral ?? false;
  }

  /** Waits for every running execution (used on shutdown after their instances were stopped). */
  async drain(): Promise<void> {
    await Promise.all([...this.running.values()].map((r) => r.done));
    await Promise.all([...this.closingLogs]);
  }

  private async finish(run: Running, exit: ProcessExit, encoders: Record<'stdout' | 'stderr', OutputEncoder>): Promise<ExecutionRecord> {
    const { store, clock, metrics } = this.deps;
    for (const t of run.timers) clearTimeout(t);
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = encoders[stream].flush();
      if (rest) run.log.append({ type: 'output', stream, ...rest });
    }
    const exitReason: ExitReason = run.endReason ?? (exit.oomKilled ? 'oom' : exit.signal !== null ? 'signaled' : 'exited');
    const durationMs = Math.round(exit.durationMs);
    // Final before the terminal event goes out: a client that reads the execution right after
    // seeing it gets the finished record, not a running one.
    Object.assign(run.record, {
      status: run.interrupted ? 'interrupted' : 'completed',
      exitCode: exit.exitCode,
      exitReason,
      signal: exit.signal,
      finishedAt: clock.now(),
      durationMs,
    });
    try {
      run.beforeTerminal?.(exit, exitReason, run.interrupted === true);
    } catch (err) {
      this.deps.logger.error({ err, execution: run.record.id }, 'a hook before the terminal event failed');
    }
    if (run.interrupted) {
      run.log.append({ type: 'error', code: 'EXECUTION_INTERRUPTED', message: 'the executor shut down while this execution ran; output up to then is kept' });
    } else {
      run.log.append({ type: 'completed', exit_code: exit.exitCode, exit_reason: exitReason, signal: exit.signal, duration_ms: durationMs, output_truncated: run.record.outputTruncated });
    }
    const { record } = run;
    const updated = await store.executions.update(record.id, {
      status: record.status,
      exitCode: record.exitCode,
      exitReason: record.exitReason,
      signal: record.signal,
      stdoutBytes: record.stdoutBytes,
      stderrBytes: record.stderrBytes,
      outputTruncated: record.outputTruncated,
      progress: record.progress,
      lastSeq: run.log.lastSeq,
      finishedAt: record.finishedAt,
      durationMs,
    });
    this.running.delete(record.id);
    metrics.executionsRunning.dec();
    metrics.executionsFinished.inc({ exit_reason: exitReason });
    // Every event is already written to the kernel (safe from a crash of this process); the
    // fsync for power loss need not hold up the caller. Shutdown waits for it.
    const closing = run.log.close();
    this.closingLogs.add(closing);
    void closing.finally(() => this.closingLogs.delete(closing));
    return updated;
  }
}

/** What every process starts with; instance and request variables go on top. */
function baseEnv(instanceId: string, executionId: string): Record<string, string> {
  return {
    ...sandboxBaseEnv(instanceId),
    FAAS_EXECUTION_ID: executionId,
    FAAS_PROGRESS_FD: '3',
  };
}

function outputBytesOf(events: ExecutionStreamEvent[]): { stdout: Buffer; stderr: Buffer } {
  const parts: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
  for (const e of events) {
    if (e.type === 'output') parts[e.stream].push(Buffer.from(e.data, e.encoding === 'base64' ? 'base64' : 'utf8'));
  }
  return { stdout: Buffer.concat(parts.stdout), stderr: Buffer.concat(parts.stderr) };
}

function outputOf(events: ExecutionStreamEvent[]): { stdout: string; stderr: string } {
  const { stdout, stderr } = outputBytesOf(events);
  return { stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') };
}

/** Identifies a request for idempotent retries with a client-chosen id. */
export function requestHash(request: object): string {
  const canonical = JSON.stringify(request, (key, value: unknown) => {
    if (key === 'background') return undefined;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)));
    }
    return value;
  });
  return createHash('sha256').update(canonical).digest('hex');
}
