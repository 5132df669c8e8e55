import { FaasError, type SessionEndReason, type SessionState, type StartSessionRequest } from '@faas/protocol';
import type { Logger } from 'pino';
import type { ExecutorConfig } from '../../config.ts';
import type { ProcessExit } from '../../runtime/types.ts';
import type { InstanceRecord, SessionCheckpointRecord, SessionRecord, Store } from '../../store/types.ts';
import type { Clock } from '../../util/clock.ts';
import { newId } from '../../util/ids.ts';
import type { AppendedEventBody, ExecutionService } from '../execution-service.ts';
import type { InstanceService } from '../instance-service.ts';
import type { SnapshotService } from '../snapshot-service.ts';
import { DeadlineScheduler, realTimers, type SchedulerTimers } from './deadline-scheduler.ts';
import { ACTIVE_STATES, assertTransition, autoExtension, dueAction, extendedDeadline, finalState, isActive, nextDueAt, sessionSettings } from './session-model.ts';

export interface SessionServiceDeps {
  store: Store;
  instances: InstanceService;
  executions: ExecutionService;
  snapshots: SnapshotService;
  config: Pick<ExecutorConfig, 'sessionMaxDurationMs' | 'nodeId'>;
  clock: Clock;
  logger: Logger;
  /** @default real timers over `clock` */
  timers?: SchedulerTimers;
}

/** A resume may bring back the env var values, which are never stored. */
export interface ResumeOptions {
  envVars?: Record<string, string>;
}

/** Last heartbeats are written at most this long after they arrive (and sooner for faster heartbeat intervals). */
const HEARTBEAT_FLUSH_MAX_MS = 1000;
const FLUSH_KEY = '~flush';

interface Live {
  record: SessionRecord;
  /** Epoch ms of the next scheduled checkpoint; null: none. */
  nextCheckpointAt: number | null;
  /** Set once faas decided to end it; the final state says terminated with this reason. */
  endReason?: SessionEndReason;
  ending?: Promise<void>;
  /** The instance ended under it (stopped, died, deleted). */
  instanceEnded?: boolean;
  checkpointsInFlight: number;
  /** Resolves once the final state is stored. */
  finished: Promise<void>;
}

/**
 * Long-running sessions (docs/sessions.md): a session is an execution with a deadline that
 * only an extension moves, an optional idle timeout fed by heartbeats, scheduled checkpoints
 * (snapshots of its instance, chained), and a graceful end (warning event, final checkpoint,
 * SIGTERM, SIGKILL after the grace period). Live sessions are kept in memory and timed by one
 * scheduler; every change of state is written to the store, heartbeats in batches.
 */
export class SessionService {
  private readonly live = new Map<string, Live>();
  private readonly byExecution = new Map<string, string>();
  private readonly dirtyHeartbeats = new Map<string, Date>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly scheduler: DeadlineScheduler;
  private flushing: Promise<void> | undefined;
  /** When the heartbeat flush is scheduled (epoch ms), if it is. */
  private flushAt: number | undefined;

  constructor(private readonly deps: SessionServiceDeps) {
    const timers = deps.timers ?? { ...realTimers, now: () => deps.clock.now().getTime() };
    this.scheduler = new DeadlineScheduler(timers, (key, now) => this.onDue(key, now));
    deps.instances.onInstanceEnd((instanceId) => {
      for (const l of this.live.values()) if (l.record.instanceId === instanceId) l.instanceEnded = true;
    });
  }

  /** Number of live sessions (metrics, bench). */
  get liveCount(): number {
    return this.live.size;
  }

  async start(request: StartSessionRequest): Promise<SessionRecord> {
    const { store, instances, executions, clock, config } = this.deps;
    const settings = sessionSettings(request, config.sessionMaxDurationMs);
    const processRequest = { command: request.command, code: request.code, language: request.language, env_vars: request.env_vars, working_dir: request.working_dir };
    // A request that cannot run must not cost an instance.
    const checked = executions.validate(processRequest);
    let instance: InstanceRecord;
    const owns = request.instance_id === undefined;
    if (!owns) {
      for (const field of ['env', 'memory_mb', 'cpu_cores', 'pids_max'] as const) {
        if (request[field] !== undefined) throw new FaasError('VALIDATION_FAILED', `${field} cannot be given for an existing instance (instance_id)`, { field });
      }
      instance = await instances.requireRunning(request.instance_id!);
    } else {
      instance = await instances.create({ env: request.env, limits: { memory_mb: request.memory_mb, cpu_cores: request.cpu_cores, pids_max: request.pids_max } });
    }
    const now = clock.now();
    const record: SessionRecord = {
      id: newId('sess'),
      executionId: newId('exec'),
      instanceId: instance.id,
      ownsInstance: owns,
      nodeId: config.nodeId,
      state: 'starting',
      stateReason: null,
      process: { command: checked.argv, workingDir: checked.workingDir, envVarNames: Object.keys(checked.envVars).sort() },
      startedAt: now,
      deadline: new Date(now.getTime() + settings.maxDurationMs),
      lastHeartbeat: now,
      maxDurationMs: settings.maxDurationMs,
      heartbeatIntervalMs: settings.heartbeatIntervalMs,
      idleTimeoutMs: settings.idleTimeoutMs,
      gracePeriodMs: settings.gracePeriodMs,
      checkpointIntervalMs: settings.checkpointIntervalMs,
      checkpoints: [],
      extendedCount: 0,
      maxExtensions: settings.maxExtensions,
      autoExtend: settings.autoExtend,
      exitCode: null,
      endedAt: null,
    };
    try {
      await store.sessions.insert(record);
    } catch (err) {
      if (owns) this.deleteInstance(instance.id);
      throw err;
    }
    await this.run(record, instance, { command: checked.argv, working_dir: request.working_dir, env_vars: request.env_vars });
    return this.snapshotOf(record.id);
  }

  /** A heartbeat: in memory at once, in the store within HEARTBEAT_FLUSH_MAX_MS (or the session's heartbeat interval, if shorter). */
  async heartbeat(ref: string): Promise<SessionRecord> {
    const live = this.liveOf(ref);
    if (live === undefined) throw await this.notActive(ref);
    const now = this.deps.clock.now();
    live.record.lastHeartbeat = now;
    this.dirtyHeartbeats.set(live.record.id, now);
    const flushIn = Math.min(HEARTBEAT_FLUSH_MAX_MS, live.record.heartbeatIntervalMs ?? HEARTBEAT_FLUSH_MAX_MS);
    const at = now.getTime() + flushIn;
    if (this.flushAt === undefined || at < this.flushAt) {
      this.flushAt = at;
      this.scheduler.schedule(FLUSH_KEY, at);
    }
    return live.record;
  }

  async extend(ref: string, durationMs: number): Promise<SessionRecord> {
    const live = this.liveOf(ref);
    if (live === undefined || live.endReason !== undefined) throw await this.notActive(ref, live);
    const deadline = extendedDeadline(live.record, durationMs, this.deps.config.sessionMaxDurationMs);
    await this.setDeadline(live, deadline);
    return { ...live.record };
  }

  async checkpoint(ref: string): Promise<SessionCheckpointRecord> {
    const live = this.liveOf(ref);
    if (live === undefined) throw await this.notActive(ref);
    return this.takeCheckpoint(live, 'manual');
  }

  async stop(ref: string): Promise<SessionRecord> {
    const live = this.liveOf(ref);
    if (live === undefined) throw await this.notActive(ref);
    await this.end(live, 'stopped');
    return this.get(live.record.id);
  }

  async get(ref: string): Promise<SessionRecord> {
    const live = this.liveOf(ref);
    if (live !== undefined) return { ...live.record, checkpoints: [...live.record.checkpoints] };
    return this.stored(ref);
  }

  /**
   * Runs an ended session again under the same id and deadline: in a new instance restored from
   * its latest checkpoint, or (no checkpoint) in its old instance if that still exists.
   */
  async resume(ref: string, options: ResumeOptions = {}): Promise<SessionRecord> {
    const { clock, instances, snapshots, store } = this.deps;
    if (this.liveOf(ref) !== undefined) {
      const live = this.liveOf(ref)!;
      throw new FaasError('SESSION_NOT_RESUMABLE', `session ${live.record.id} is ${live.record.state}; only an ended session can be resumed`, { session_id: live.record.id, reason: 'active' });
    }
    const record = await this.stored(ref);
    const refuse = (reason: string, message: string) => new FaasError('SESSION_NOT_RESUMABLE', message, { session_id: record.id, reason });
    if (record.state === 'completed' || record.state === 'failed') throw refuse('ended_by_itself', `session ${record.id} ${record.state} by itself (exit code ${record.exitCode}); there is nothing to resume`);
    if (isActive(record.state)) throw refuse('active', `session ${record.id} is ${record.state}`);
    if (clock.now().getTime() >= record.deadline.getTime()) throw refuse('deadline_passed', `the deadline of session ${record.id} (${record.deadline.toISOString()}) has passed`);
    const latest = record.checkpoints.at(-1);
    let instance: InstanceRecord;
    let owns = true;
    if (latest !== undefined) {
      instance = await snapshots.restore(latest.snapshotId, { metadata: { session_id: record.id } });
      const old = await store.instances.get(record.instanceId);
      if (record.ownsInstance && old !== undefined && old.state !== 'deleted') this.deleteInstance(old.id);
    } else {
      const old = await store.instances.get(record.instanceId);
      if (old === undefined || old.state === 'deleted' || old.state === 'failed') throw refuse('no_checkpoint', `session ${record.id} has no checkpoint and its instance ${record.instanceId} is gone`);
      instance = old.state === 'stopped' ? await snapshots.restartInstance(old) : await instances.requireRunning(old.id);
      owns = record.ownsInstance;
    }
    const resumed = await store.sessions.update(record.id, {
      executionId: newId('exec'),
      instanceId: instance.id,
      ownsInstance: owns,
      state: 'starting',
      stateReason: null,
      lastHeartbeat: clock.now(),
      exitCode: null,
      endedAt: null,
    });
    const { command, workingDir } = record.process;
    await this.run(resumed, instance, { command, working_dir: workingDir, env_vars: options.envVars });
    return this.snapshotOf(record.id);
  }

  /**
   * Start-up, after executions and instances recovered: sessions that were live when the
   * executor went away are terminated (reason executor_restart), deadline unchanged. Their
   * executions are already `interrupted`, their logs and checkpoints intact.
   */
  async recover(): Promise<number> {
    const { store, clock, config } = this.deps;
    const orphans = await store.sessions.list({ states: ACTIVE_STATES, nodeId: config.nodeId, limit: 100_000 });
    for (const s of orphans) await store.sessions.update(s.id, { state: 'terminated', stateReason: 'executor_restart', endedAt: clock.now() });
    return orphans.length;
  }

  /** Shutdown: no more timers; the heartbeats not yet written are. Executions end through ExecutionService. */
  async close(): Promise<void> {
    this.scheduler.close();
    await this.flushHeartbeats();
  }

  /** Waits for sessions to store their final state (shutdown, after executions drained). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.live.values()].map((l) => l.finished));
    await Promise.allSettled([...this.pending]);
    await this.flushHeartbeats();
  }

  // --- internals ---

  /** Starts the session's execution in `instance` and makes it live. */
  private async run(record: SessionRecord, instance: InstanceRecord, processRequest: { command: string[]; working_dir?: string; env_vars?: Record<string, string> }): Promise<void> {
    const { executions, clock, store, logger } = this.deps;
    let settle!: () => void;
    const live: Live = { record: { ...record }, nextCheckpointAt: null, checkpointsInFlight: 0, finished: new Promise((r) => (settle = r)) };
    let done: Promise<unknown>;
    try {
      ({ done } = await executions.start(instance, { ...processRequest, id: record.executionId }, {
        ephemeral: false,
        requestStarted: clock.monotonicMs(),
        deadlineManagedMs: Math.max(1, record.deadline.getTime() - record.startedAt.getTime()),
        beforeTerminal: (exit, reason, interrupted) => this.onProcessEnd(live, exit, reason, interrupted),
      }));
    } catch (err) {
      await store.sessions.update(record.id, { state: 'failed', stateReason: null, endedAt: clock.now() });
      if (record.ownsInstance) this.deleteInstance(instance.id);
      throw err;
    }
    this.live.set(record.id, live);
    this.byExecution.set(record.executionId, record.id);
    const now = clock.now().getTime();
    live.nextCheckpointAt = record.checkpointIntervalMs > 0 ? now + record.checkpointIntervalMs : null;
    // A process that ended at once has its final state already.
    if (isActive(live.record.state)) await this.setState(live, 'running', null);
    this.reschedule(live);
    void done.then(
      () => this.afterProcessEnd(live).finally(settle),
      (err: unknown) => {
        logger.error({ err, session: record.id }, 'waiting for a session execution failed');
        settle();
      },
    );
  }

  /** Synchronous, right before the execution's terminal event: the final state goes out on its stream first. */
  private onProcessEnd(live: Live, exit: ProcessExit, reason: string, interrupted: boolean): void {
    let endReason = live.endReason;
    if (interrupted) endReason = 'executor_restart';
    else if (endReason === undefined && reason === 'killed') endReason = live.instanceEnded ? 'instance_ended' : 'killed';
    else if (endReason === undefined && live.instanceEnded && reason !== 'exited') endReason = 'instance_ended';
    const final = finalState({ endReason, exitCode: exit.exitCode, exitedByItself: reason === 'exited' });
    assertTransition(live.record.state, final.state);
    Object.assign(live.record, { state: final.state, stateReason: final.reason, exitCode: exit.exitCode, endedAt: this.deps.clock.now() });
    this.emit(live, { type: 'session.state', session_id: live.record.id, state: final.state, state_reason: final.reason, deadline: live.record.deadline.toISOString() });
  }

  /** After the process ended: store the final state; a session's own instance gets a last checkpoint (ended by itself) and goes. */
  private async afterProcessEnd(live: Live): Promise<void> {
    const { store, logger } = this.deps;
    const { record } = live;
    this.scheduler.cancel(record.id);
    this.live.delete(record.id);
    this.byExecution.delete(record.executionId);
    this.dirtyHeartbeats.delete(record.id);
    try {
      // Files a completed or failed run left are kept as a checkpoint before its instance goes.
      if (record.ownsInstance && live.endReason === undefined && record.stateReason === null && !live.instanceEnded) {
        await this.takeCheckpoint(live, 'final', true).catch((err: unknown) => logger.warn({ err, session: record.id }, 'the last checkpoint of an ended session failed'));
      }
      await store.sessions.update(record.id, {
        state: record.state,
        stateReason: record.stateReason,
        exitCode: record.exitCode,
        endedAt: record.endedAt,
        lastHeartbeat: record.lastHeartbeat,
        checkpoints: record.checkpoints,
      });
    } catch (err) {
      logger.error({ err, session: record.id }, 'storing the end of a session failed');
    }
    // After an executor shutdown its instance is kept (stopped) so a resume without checkpoint can use it.
    if (record.ownsInstance && record.stateReason !== 'executor_restart') this.deleteInstance(record.instanceId);
  }

  /** Graceful end: warning event, final checkpoint, SIGTERM to the tree, SIGKILL after the grace period. */
  private end(live: Live, reason: SessionEndReason): Promise<void> {
    if (live.ending !== undefined) return live.ending;
    live.endReason = reason;
    const work = (async () => {
      const { record } = live;
      this.scheduler.cancel(record.id);
      await this.setState(live, 'expiring', reason);
      this.emit(live, { type: 'session.warning', session_id: record.id, reason, deadline: record.deadline.toISOString(), grace_period_ms: record.gracePeriodMs });
      if (!live.instanceEnded) {
        await this.takeCheckpoint(live, 'final').catch((err: unknown) => this.deps.logger.warn({ err, session: record.id }, 'the final checkpoint of a session failed; ending it anyway'));
      }
      try {
        await this.deps.executions.kill(record.executionId, 'SIGTERM', record.gracePeriodMs, reason === 'max_duration' ? 'timeout' : 'killed');
      } catch (err) {
        if (!(err instanceof FaasError && err.code === 'EXECUTION_FINISHED')) throw err;
      }
      await live.finished;
    })();
    live.ending = work;
    this.track(work);
    return work;
  }

  private async takeCheckpoint(live: Live, kind: 'scheduled' | 'manual' | 'final', processEnded = false): Promise<SessionCheckpointRecord> {
    const { snapshots, store, logger } = this.deps;
    const { record } = live;
    const wasState = record.state;
    live.checkpointsInFlight++;
    if (!processEnded && wasState === 'running') await this.setState(live, 'checkpointing', null);
    try {
      const snap = await snapshots.create({ instanceId: record.instanceId, metadata: { session_id: record.id, checkpoint: kind } });
      const checkpoint: SessionCheckpointRecord = { snapshotId: snap.id, contentHash: snap.contentHash, createdAt: snap.createdAt, sizeBytes: snap.size };
      record.checkpoints.push(checkpoint);
      await store.sessions.update(record.id, { checkpoints: record.checkpoints });
      if (!processEnded) this.emit(live, { type: 'session.checkpoint', session_id: record.id, checkpoint: checkpointToWire(checkpoint) });
      logger.debug({ session: record.id, snapshot: snap.id, kind }, 'session checkpoint taken');
      return checkpoint;
    } finally {
      live.checkpointsInFlight--;
      if (live.checkpointsInFlight === 0 && record.state === 'checkpointing') await this.setState(live, 'running', null);
    }
  }

  /** The scheduler's callback: what is due for this session (or the heartbeat flush). */
  private onDue(key: string, now: number): void {
    if (key === FLUSH_KEY) {
      this.flushAt = undefined;
      void this.flushHeartbeats();
      return;
    }
    const live = this.live.get(key);
    if (live === undefined || live.endReason !== undefined) return;
    const action = dueAction(live.record, live.nextCheckpointAt, now);
    const log = (err: unknown) => this.deps.logger.error({ err, session: key }, 'a scheduled session action failed');
    if (action?.kind === 'deadline') {
      const extended = autoExtension(live.record, this.deps.config.sessionMaxDurationMs);
      if (extended !== undefined) this.track(this.setDeadline(live, extended).catch(log));
      else this.track(this.end(live, 'max_duration').catch(log));
      return;
    }
    if (action?.kind === 'idle') {
      this.track(this.end(live, 'idle_timeout').catch(log));
      return;
    }
    if (action?.kind === 'checkpoint') {
      // The next one counts from when this one is done, so a slow capture never piles up.
      live.nextCheckpointAt = null;
      this.track(
        this.takeCheckpoint(live, 'scheduled')
          .catch(log)
          .finally(() => {
            if (live.endReason !== undefined || !this.live.has(key)) return;
            live.nextCheckpointAt = this.deps.clock.now().getTime() + live.record.checkpointIntervalMs;
            this.reschedule(live);
          }),
      );
    }
    this.reschedule(live);
  }

  private reschedule(live: Live): void {
    if (live.endReason !== undefined || !this.live.has(live.record.id)) return;
    this.scheduler.schedule(live.record.id, nextDueAt(live.record, live.nextCheckpointAt));
  }

  private async setDeadline(live: Live, deadline: Date): Promise<void> {
    const { record } = live;
    record.deadline = deadline;
    record.extendedCount++;
    await this.deps.store.sessions.update(record.id, { deadline, extendedCount: record.extendedCount });
    this.emit(live, { type: 'session.state', session_id: record.id, state: record.state, state_reason: record.stateReason, deadline: deadline.toISOString() });
    this.reschedule(live);
  }

  private async setState(live: Live, state: SessionState, reason: SessionEndReason | null): Promise<void> {
    const { record } = live;
    if (record.state === state && record.stateReason === reason) return;
    assertTransition(record.state, state);
    record.state = state;
    record.stateReason = reason;
    this.emit(live, { type: 'session.state', session_id: record.id, state, state_reason: reason, deadline: record.deadline.toISOString() });
    await this.deps.store.sessions.update(record.id, { state, stateReason: reason });
  }

  private emit(live: Live, body: AppendedEventBody): void {
    this.deps.executions.appendEvent(live.record.executionId, body);
  }

  private async flushHeartbeats(): Promise<void> {
    if (this.flushing !== undefined) await this.flushing;
    if (this.dirtyHeartbeats.size === 0) return;
    const entries = [...this.dirtyHeartbeats].map(([id, at]) => ({ id, at }));
    this.dirtyHeartbeats.clear();
    this.flushing = this.deps.store
      .withTransaction((tx) => tx.sessions.setHeartbeats(entries))
      .catch((err: unknown) => this.deps.logger.error({ err, sessions: entries.length }, 'writing session heartbeats failed'))
      .finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  private liveOf(ref: string): Live | undefined {
    return this.live.get(ref) ?? this.live.get(this.byExecution.get(ref) ?? '');
  }

  private async stored(ref: string): Promise<SessionRecord> {
    const { sessions } = this.deps.store;
    const record = (await sessions.get(ref)) ?? (await sessions.getByExecution(ref));
    if (record === undefined) throw new FaasError('SESSION_NOT_FOUND', `no session with id ${ref}`, { session_id: ref });
    return record;
  }

  private async notActive(ref: string, live?: Live): Promise<FaasError> {
    const record = live?.record ?? (await this.stored(ref));
    return new FaasError('SESSION_NOT_ACTIVE', `session ${record.id} is ${record.state}${record.stateReason ? ` (${record.stateReason})` : ''}`, { session_id: record.id, state: record.state, state_reason: record.stateReason });
  }

  private async snapshotOf(id: string): Promise<SessionRecord> {
    return this.get(id);
  }

  private deleteInstance(id: string): void {
    this.track(this.deps.instances.delete(id, 'session_ended').catch((err: unknown) => this.deps.logger.error({ err, instance: id }, 'deleting the instance of an ended session failed')));
  }

  private track(work: Promise<unknown>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }
}

/** A checkpoint as the wire and the events show it. */
export function checkpointToWire(c: SessionCheckpointRecord): { id: string; content_hash: string; created_at: string; size_bytes: number } {
  return { id: c.snapshotId, content_hash: c.contentHash, created_at: c.createdAt.toISOString(), size_bytes: c.sizeBytes };
}
