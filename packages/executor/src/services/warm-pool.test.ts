import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { isFaasError } from '@faas/protocol';
import { defaultConfig } from '../config.ts';
import type { InstanceSpec, Runtime, StartedInstance } from '../runtime/types.ts';
import { openSqliteStore } from '../store/sqlite/sqlite-store.ts';
import { systemClock } from '../util/clock.ts';
import { InstanceService } from './instance-service.ts';
import { Metrics } from './metrics.ts';
import { WarmPool } from './warm-pool.ts';

/** A runtime that starts nothing: a start takes `startMs` and fails while `failing` is set. */
class FakeRuntime {
  readonly name = 'fake';
  readonly capabilities = { memorySnapshots: false, network: [], pty: false, limits: [] };
  readonly environments = ['host', 'other'];
  readonly instanceOwnedPaths = [];
  readonly live = new Set<string>();
  readonly starts: InstanceSpec[] = [];
  startMs = 5;
  failing = false;
  private listeners: Array<(id: string, reason: string) => void> = [];
  async checkHost() {}
  async recover() {
    return { mountsRemoved: 0, groupsRemoved: 0, processesKilled: 0, dirsRemoved: 0 };
  }
  async startInstance(spec: InstanceSpec): Promise<StartedInstance> {
    this.starts.push(spec);
    await new Promise((r) => setTimeout(r, this.startMs));
    if (this.failing) throw new Error('no can do');
    this.live.add(spec.id);
    return { startDurationMs: this.startMs };
  }
  async exec(): Promise<never> {
    throw new Error('not here');
  }
  async stopInstance(id: string) {
    this.live.delete(id);
  }
  async destroyInstance(id: string) {
    this.live.delete(id);
  }
  rootDir(): string {
    return '/nonexistent';
  }
  environmentRoot(): string {
    return '/nonexistent';
  }
  async freeze() {
    return () => undefined;
  }
  onInstanceExit(listener: (id: string, reason: string) => void) {
    this.listeners.push(listener);
  }
  die(id: string) {
    this.live.delete(id);
    for (const l of this.listeners) l(id, 'killed');
  }
  async close() {}
}

async function setUp(options: { maxInstances?: number; concurrency?: number; initialBackoffMs?: number } = {}) {
  const store = await openSqliteStore({ path: ':memory:' });
  const runtime = new FakeRuntime();
  const metrics = new Metrics();
  const logger = pino({ level: 'silent' });
  const config = defaultConfig({ dataDir: '/tmp/faas-warm-pool-test', maxInstances: options.maxInstances ?? 256 });
  const instances = new InstanceService({ store, runtime: runtime as unknown as Runtime, config, clock: systemClock, logger, metrics });
  const pool = new WarmPool({ host: instances, environments: runtime.environments, clock: systemClock, logger, metrics, concurrency: options.concurrency, initialBackoffMs: options.initialBackoffMs ?? 20, maxBackoffMs: 200 });
  instances.attachPool(pool);
  instances.onInstanceEnd((id) => pool.forget(id));
  return {
    store,
    runtime,
    metrics,
    instances,
    pool,
    async close() {
      await pool.close();
      await store.close();
    },
  };
}

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('warm pool', () => {
  it('refills to the target in the background, pooled instances recorded as such and not listed', async () => {
    const t = await setUp();
    const stats = await t.pool.setTarget('host', 4);
    assert.equal(stats.target, 4);
    await t.pool.settled();
    assert.deepEqual(t.pool.stats('host'), { target: 4, ready: 4, hits: 0, misses: 0 });
    assert.equal(t.runtime.live.size, 4);
    const pooled = await t.store.instances.list({ pooled: true, states: ['running'] });
    assert.equal(pooled.length, 4);
    for (const r of pooled) assert.deepEqual(r.limits, { memoryMb: 512, cpuCores: 1, pidsMax: 512 });
    assert.equal((await t.instances.list({})).length, 0);
    // Not handed out yet: invisible by id too, so nobody can exec in an instance another create will get.
    await assert.rejects(t.instances.get(pooled[0]!.id), (err: unknown) => (err as { code?: string }).code === 'INSTANCE_NOT_FOUND');
    await assert.rejects(t.instances.requireRunning(pooled[0]!.id), (err: unknown) => (err as { code?: string }).code === 'INSTANCE_NOT_FOUND');
    await t.close();
  });

  it('hands each ready instance to exactly one of many concurrent creates, then refills', async () => {
    const t = await setUp();
    await t.pool.setTarget('host', 3);
    await t.pool.settled();
    const startsBefore = t.runtime.starts.length;
    const created = await Promise.all(Array.from({ length: 12 }, (_, i) => t.instances.create({ env_vars: { N: String(i) }, metadata: { n: String(i) } })));
    const ids = created.map((r) => r.id);
    assert.equal(new Set(ids).size, 12, 'no instance handed out twice');
    const pooledIds = new Set((await t.store.instances.list({ states: ['running'] })).filter((r) => r.startedAt).map((r) => r.id));
    assert.ok(ids.every((id) => pooledIds.has(id)));
    const s = t.pool.stats('host');
    assert.equal(s.hits, 3);
    assert.equal(s.misses, 9);
    // Handed-out records carry the request's env vars and metadata and are listed.
    for (const [i, r] of created.entries()) {
      assert.equal(r.pooled, false);
      assert.deepEqual(r.envVars, { N: String(i) });
      assert.deepEqual(r.metadata, { n: String(i) });
    }
    assert.equal((await t.instances.list({})).length, 12);
    await t.pool.settled();
    assert.equal(t.pool.stats('host').ready, 3);
    // 9 cold starts plus 3 refills.
    assert.equal(t.runtime.starts.length - startsBefore, 12);
    const hits = (await t.metrics.poolHits.get()).values.find((v) => v.labels.env === 'host')?.value;
    assert.equal(hits, 3);
    const acquire = await t.metrics.acquireLatency();
    assert.equal(acquire.warm.count, 3);
    assert.equal(acquire.cold.count, 9);
    await t.close();
  });

  it('a create served from the pool returns before the refill it causes starts (no runtime start in its path)', async () => {
    const t = await setUp();
    await t.pool.setTarget('host', 2);
    await t.pool.settled();
    const startsBefore = t.runtime.starts.length;
    const handed = await t.instances.create({});
    assert.equal(handed.pooled, false);
    assert.equal(t.runtime.starts.length, startsBefore, 'the refill started inside the create');
    await t.pool.settled();
    assert.equal(t.runtime.starts.length, startsBefore + 1);
    assert.equal(t.pool.stats('host').ready, 2);
    await t.close();
  });

  it('serves cold (a miss) for custom limits, a client id, a restore, or another environment', async () => {
    const t = await setUp();
    await t.pool.setTarget('host', 2);
    await t.pool.settled();
    await t.instances.create({ limits: { memory_mb: 256 } });
    await t.instances.create({ id: 'mine' });
    await t.instances.create({ env: 'other' });
    assert.deepEqual(t.pool.stats('host'), { target: 2, ready: 2, hits: 0, misses: 2 });
    assert.equal(t.pool.stats('other').misses, 0, 'no pool there, no miss counted');
    // The defaults spelled out are the defaults: a hit.
    await t.instances.create({ limits: { memory_mb: 512, cpu_cores: 1, pids_max: 512 } });
    assert.equal(t.pool.stats('host').hits, 1);
    await t.close();
  });

  it('drains on 0: every pooled instance deleted, none running', async () => {
    const t = await setUp();
    await t.pool.setTarget('host', 5);
    await t.pool.settled();
    const result = await t.pool.setTarget('host', 0);
    assert.deepEqual(result, { target: 0, ready: 0, hits: 0, misses: 0 });
    assert.equal(t.runtime.live.size, 0);
    assert.equal((await t.store.instances.list({ pooled: true, states: ['starting', 'running'] })).length, 0);
    assert.equal((await t.store.instances.list({ pooled: true, states: ['deleted'] })).length, 5);
    await t.close();
  });

  it('a drain during refills deletes the starts in flight when they finish', async () => {
    const t = await setUp({ concurrency: 4 });
    t.runtime.startMs = 50;
    await t.pool.setTarget('host', 4);
    await new Promise((r) => setTimeout(r, 10));
    await t.pool.setTarget('host', 0);
    await t.pool.settled();
    assert.equal(t.runtime.live.size, 0);
    assert.equal((await t.store.instances.list({ states: ['starting', 'running'] })).length, 0);
    await t.close();
  });

  it('backs off after failed starts, then recovers', async () => {
    const t = await setUp({ concurrency: 1, initialBackoffMs: 40 });
    t.runtime.failing = true;
    t.runtime.startMs = 1;
    await t.pool.setTarget('host', 2);
    await new Promise((r) => setTimeout(r, 300));
    // 40 + 80 + 160 ms of backoff: about 4 attempts in 300 ms, not hundreds.
    const attempts = t.runtime.starts.length;
    assert.ok(attempts >= 2 && attempts <= 6, `attempts: ${attempts}`);
    assert.equal(t.pool.stats('host').ready, 0);
    t.runtime.failing = false;
    await until(() => t.pool.stats('host').ready === 2, 3000);
    // Every start failed except the two that filled the pool (one in flight when `failing` was
    // turned off may have gone either way, so count from the total, not from `attempts`).
    const failures = (await t.metrics.poolStartFailures.get()).values.find((v) => v.labels.env === 'host')?.value;
    assert.equal(failures, t.runtime.starts.length - 2);
    await t.close();
  });

  it('a pooled instance that dies leaves the pool and is replaced', async () => {
    const t = await setUp();
    await t.pool.setTarget('host', 2);
    await t.pool.settled();
    const [victim] = (await t.store.instances.list({ pooled: true, states: ['running'] })).map((r) => r.id);
    t.runtime.die(victim!);
    await until(async () => (await t.store.instances.get(victim!))?.state === 'failed');
    assert.equal(t.pool.holds(victim!), false);
    await t.pool.settled();
    assert.equal(t.pool.stats('host').ready, 2);
    const got = await t.instances.create({});
    assert.notEqual(got.id, victim);
    await t.close();
  });

  it('pooled instances count toward capacity, but a create at capacity evicts one rather than fail', async () => {
    const t = await setUp({ maxInstances: 3 });
    await t.pool.setTarget('host', 3);
    await t.pool.settled();
    // Custom limits: cannot take one, so it evicts one.
    const r = await t.instances.create({ limits: { memory_mb: 128 } });
    assert.equal(r.state, 'running');
    assert.equal(t.runtime.live.size, 3);
    await t.pool.setTarget('host', 0);
    await t.instances.create({ limits: { memory_mb: 128 } });
    await t.instances.create({ limits: { memory_mb: 128 } });
    await assert.rejects(t.instances.create({ limits: { memory_mb: 128 } }), (e) => isFaasError(e) && e.code === 'CAPACITY_EXHAUSTED');
    await t.close();
  });

  it('close stops refilling and deletes the ready instances', async () => {
    const t = await setUp();
    t.runtime.startMs = 30;
    await t.pool.setTarget('host', 3);
    await t.pool.settled();
    await t.instances.create({});
    await new Promise((r) => setImmediate(r)); // the refill the take scheduled is now in flight
    await t.pool.close();
    assert.equal(t.runtime.live.size, 1, 'only the handed-out instance is left');
    assert.equal(t.pool.take('host'), undefined);
    assert.equal((await t.store.instances.list({ pooled: true, states: ['starting', 'running'] })).length, 0);
    await t.store.close();
  });

  it('recover deletes the pooled instances a previous run left', async () => {
    const t = await setUp();
    await t.pool.setTarget('host', 3);
    await t.pool.settled();
    const handedOut = await t.instances.create({});
    await t.pool.settled(); // refilled: three pooled instances again
    const fresh = new InstanceService({ store: t.store, runtime: t.runtime as unknown as Runtime, config: defaultConfig({ dataDir: '/tmp/faas-warm-pool-test' }), clock: systemClock, logger: pino({ level: 'silent' }), metrics: new Metrics() });
    const recovered = await fresh.recover(async () => false);
    assert.equal(recovered.deleted.length, 3);
    assert.deepEqual(recovered.stopped, [handedOut.id]);
    await t.close();
  });
});
