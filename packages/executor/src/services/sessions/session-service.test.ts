import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { openSqliteStore } from '../../store/sqlite/sqlite-store.ts';
import type { ExecutionRecord, InstanceRecord, Store } from '../../store/types.ts';
import type { ProcessExit } from '../../runtime/types.ts';
import type { ExecutionService } from '../execution-service.ts';
import type { InstanceService } from '../instance-service.ts';
import type { SnapshotService } from '../snapshot-service.ts';
import type { SchedulerTimers } from './deadline-scheduler.ts';
import { SessionService } from './session-service.ts';

/**
 * The session service on a fake clock: the real scheduler and SQLite store, with executions,
 * instances and snapshots faked so time moves only when the test says.
 */

type Hook = (exit: ProcessExit, reason: string, interrupted: boolean) => void;

class World {
  t = 1_000_000;
  private timer: { fn: () => void; at: number } | undefined;
  readonly events: Array<Record<string, any>> = [];
  readonly kills: Array<{ id: string; signal: string; graceMs: number }> = [];
  readonly procs = new Map<string, { hook: Hook; settle: (r: ExecutionRecord) => void }>();
  snapshots = 0;

  clock = { now: () => new Date(this.t), monotonicMs: () => this.t };
  timers: SchedulerTimers = {
    now: () => this.t,
    set: (fn, ms) => (this.timer = { fn, at: this.t + ms }),
    clear: (h) => {
      if (h === this.timer) this.timer = undefined;
    },
  };

  /** Moves the clock, firing the scheduler's timer on the way, and lets the async work settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    while (this.timer !== undefined && this.timer.at <= end) {
      const { fn, at } = this.timer;
      this.timer = undefined;
      this.t = at;
      fn();
      await settle();
    }
    this.t = end;
    await settle();
  }

  /** The process of an execution ends. */
  exit(id: string, exitCode: number | null, reason: string, signal: string | null = null): void {
    const p = this.procs.get(id);
    if (p === undefined) return;
    this.procs.delete(id);
    p.hook({ exitCode, signal, oomKilled: false, durationMs: 1 } as ProcessExit, reason, false);
    this.events.push({ type: 'completed', execution: id });
    p.settle({ id } as ExecutionRecord);
  }

  executions = {
    validate: (r: { command?: string[]; code?: string }) => ({ argv: r.command ?? ['sh', '-c', r.code!], workingDir: '/workspace', envVars: {}, timeoutMs: 0 }),
    start: async (_i: InstanceRecord, r: { id: string }, o: { beforeTerminal: Hook }) => {
      let settle!: (rec: ExecutionRecord) => void;
      const done = new Promise<ExecutionRecord>((res) => (settle = res));
      this.procs.set(r.id, { hook: o.beforeTerminal, settle });
      return { id: r.id, done };
    },
    appendEvent: (id: string, body: Record<string, unknown>) => this.events.push({ ...body, execution: id, at: this.t }),
    // SIGTERM: the fake process ends on it at once.
    kill: async (id: string, signal: string, graceMs: number, reason: string) => {
      this.kills.push({ id, signal, graceMs });
      this.exit(id, null, reason, signal);
    },
  };

  instances = {
    onInstanceEnd: () => undefined,
    requireRunning: async (id: string) => ({ id }) as InstanceRecord,
    create: async () => ({ id: 'inst-own' }) as InstanceRecord,
    delete: async (id: string) => ({ id }) as InstanceRecord,
  };

  snapshotService = {
    create: async () => {
      this.snapshots++;
      return { id: `snap-${this.snapshots}`, contentHash: String(this.snapshots).padStart(64, '0'), createdAt: new Date(this.t), size: 10 };
    },
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

let world: World;
let store: Store;
let service: SessionService;

beforeEach(async () => {
  world = new World();
  store = await openSqliteStore({ path: ':memory:' });
  service = new SessionService({
    store,
    instances: world.instances as unknown as InstanceService,
    executions: world.executions as unknown as ExecutionService,
    snapshots: world.snapshotService as unknown as SnapshotService,
    config: { sessionMaxDurationMs: 60_000, nodeId: 'node-test' },
    clock: world.clock,
    logger: pino({ level: 'silent' }),
    timers: world.timers,
  });
});

afterEach(async () => {
  await service.close();
  await store.close();
});

const types = () => world.events.map((e) => e.type);

describe('SessionService on a fake clock', () => {
  it('ends after the idle timeout without heartbeats, and not while they come', async () => {
    const s = await service.start({ instance_id: 'inst-a', command: ['sleep', '9'], max_duration_ms: 10_000, idle_timeout_ms: 500, grace_period_ms: 300 });
    for (let i = 0; i < 6; i++) {
      await world.advance(400);
      await service.heartbeat(s.id);
    }
    assert.equal((await service.get(s.id)).state, 'running', '2.4 s in, heartbeats every 400 ms');
    await world.advance(499);
    assert.equal((await service.get(s.id)).state, 'running');
    await world.advance(1);
    const ended = await service.get(s.id);
    assert.equal(ended.state, 'terminated');
    assert.equal(ended.stateReason, 'idle_timeout');
    assert.equal(ended.deadline.getTime(), s.deadline.getTime(), 'heartbeats never move the deadline');
    assert.deepEqual(world.kills, [{ id: s.executionId, signal: 'SIGTERM', graceMs: 300 }]);
    const stored = await store.sessions.get(s.id);
    assert.equal(stored?.state, 'terminated');
  });

  it('warns, takes a final checkpoint, then sends SIGTERM, in that order, at the hard deadline', async () => {
    const s = await service.start({ instance_id: 'inst-a', command: ['sleep', '9'], max_duration_ms: 1000, grace_period_ms: 200 });
    await world.advance(999);
    assert.equal(world.kills.length, 0);
    await world.advance(1);
    const order = types();
    assert.deepEqual(order.slice(order.indexOf('session.warning')), ['session.warning', 'session.checkpoint', 'session.state', 'completed']);
    const warning = world.events.find((e) => e.type === 'session.warning')!;
    assert.deepEqual([warning.reason, warning.grace_period_ms, warning.deadline], ['max_duration', 200, s.deadline.toISOString()]);
    const ended = await service.get(s.id);
    assert.deepEqual([ended.state, ended.stateReason, ended.checkpoints.length], ['terminated', 'max_duration', 1]);
  });

  it('auto-extends by the original duration while extensions remain, each announced', async () => {
    const s = await service.start({ instance_id: 'inst-a', command: ['sleep', '9'], max_duration_ms: 1000, max_extensions: 2, auto_extend: true });
    await world.advance(1000);
    assert.equal((await service.get(s.id)).deadline.getTime(), s.deadline.getTime() + 1000);
    await world.advance(1000);
    const twice = await service.get(s.id);
    assert.deepEqual([twice.state, twice.extendedCount], ['running', 2]);
    await world.advance(1000);
    const ended = await service.get(s.id);
    assert.deepEqual([ended.state, ended.stateReason, ended.deadline.getTime()], ['terminated', 'max_duration', s.startedAt.getTime() + 3000]);
    const deadlines = world.events.filter((e) => e.type === 'session.state').map((e) => e.deadline);
    assert.equal(new Set(deadlines).size, 3);
  });

  it('checkpoints on schedule, counting from the end of the previous one', async () => {
    const s = await service.start({ instance_id: 'inst-a', command: ['sleep', '9'], max_duration_ms: 10_000, checkpoint_interval_ms: 300 });
    await world.advance(299);
    assert.equal((await service.get(s.id)).checkpoints.length, 0);
    await world.advance(1);
    assert.equal((await service.get(s.id)).checkpoints.length, 1);
    await world.advance(600);
    const cur = await service.get(s.id);
    assert.equal(cur.checkpoints.length, 3);
    assert.equal(cur.state, 'running', 'back to running after each checkpoint');
    assert.ok(world.events.some((e) => e.type === 'session.state' && e.state === 'checkpointing'), 'the checkpointing state is announced');
  });

  it('ends completed or failed when the process exits by itself, and answers SESSION_NOT_ACTIVE after', async () => {
    const ok = await service.start({ instance_id: 'inst-a', command: ['true'], max_duration_ms: 1000 });
    world.exit(ok.executionId, 0, 'exited');
    await settle();
    assert.equal((await service.get(ok.id)).state, 'completed');
    await assert.rejects(service.heartbeat(ok.id), (err: any) => err.code === 'SESSION_NOT_ACTIVE');
    const bad = await service.start({ instance_id: 'inst-a', command: ['false'], max_duration_ms: 1000 });
    world.exit(bad.executionId, 1, 'exited');
    await settle();
    const failed = await service.get(bad.executionId);
    assert.deepEqual([failed.state, failed.exitCode], ['failed', 1]);
    await assert.rejects(service.get('sess-unknown'), (err: any) => err.code === 'SESSION_NOT_FOUND');
  });
});
