import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Clock } from '../util/clock.ts';
import { ResultCache, type CacheKeyInput, type CacheableExecution, type ResultCacheDeps } from './result-cache.ts';

const MiB = 1024 * 1024;

class FakeClock implements Clock {
  wall = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
  mono = 1000;
  now(): Date {
    return new Date(this.wall);
  }
  monotonicMs(): number {
    return this.mono;
  }
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
}

function baseInput(): CacheKeyInput {
  return {
    env: 'python',
    environmentIdentity: 'sha256:abc',
    runtime: 'bwrap',
    argv: ['python3', '-c', 'print(1)'],
    envVars: { A: '1', B: '2' },
    workingDir: '/workspace',
    stdin: undefined,
    timeoutMs: 60_000,
    limits: { memory_mb: 512, cpu_cores: 1, pids_max: 512 },
    cacheKey: undefined,
    cacheFailures: false,
  };
}

function execution(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'exec-1',
    instance_id: 'inst-1',
    status: 'completed',
    command: ['python3', '-c', 'print(1)'],
    working_dir: '/workspace',
    exit_code: 0,
    exit_reason: 'exited',
    signal: null,
    stdout: '1\n',
    stderr: '',
    stdout_bytes: 2,
    stderr_bytes: 0,
    output_truncated: false,
    progress: null,
    last_seq: 3,
    started_at: '2025-01-02T03:04:05.678Z',
    finished_at: '2025-01-02T03:04:05.720Z',
    duration_ms: 42,
    mode: 'cached',
    cached: false,
    ...overrides,
  };
}

describe('ResultCache.keyOf', () => {
  const base = ResultCache.keyOf(baseInput());

  it('is a SHA-256 hex digest, the same for the same input', () => {
    assert.match(base, /^[0-9a-f]{64}$/);
    assert.equal(ResultCache.keyOf(baseInput()), base);
  });

  const variants: Array<[string, (i: CacheKeyInput) => CacheKeyInput]> = [
    ['env', (i) => ({ ...i, env: 'node' })],
    ['environmentIdentity', (i) => ({ ...i, environmentIdentity: 'sha256:abd' })],
    ['runtime', (i) => ({ ...i, runtime: 'other' })],
    ['argv item', (i) => ({ ...i, argv: ['python3', '-c', 'print(2)'] })],
    ['argv split differently', (i) => ({ ...i, argv: ['python3', '-cprint(1)'] })],
    ['argv extra empty item', (i) => ({ ...i, argv: [...i.argv, ''] })],
    ['env var value', (i) => ({ ...i, envVars: { A: '1', B: '3' } })],
    ['env var name', (i) => ({ ...i, envVars: { A: '1', C: '2' } })],
    ['env var added', (i) => ({ ...i, envVars: { ...i.envVars, D: '' } })],
    ['env var removed', (i) => ({ ...i, envVars: { A: '1' } })],
    ['env var boundary moved', (i) => ({ ...i, envVars: { A: '1B', B: '2' } })],
    ['workingDir', (i) => ({ ...i, workingDir: '/tmp' })],
    ['stdin absent -> empty', (i) => ({ ...i, stdin: '' })],
    ['stdin content', (i) => ({ ...i, stdin: 'x' })],
    ['timeoutMs', (i) => ({ ...i, timeoutMs: 60_001 })],
    ['memory_mb', (i) => ({ ...i, limits: { ...i.limits, memory_mb: 513 } })],
    ['cpu_cores', (i) => ({ ...i, limits: { ...i.limits, cpu_cores: 1.5 } })],
    ['pids_max', (i) => ({ ...i, limits: { ...i.limits, pids_max: 511 } })],
    ['cacheKey absent -> empty', (i) => ({ ...i, cacheKey: '' })],
    ['cacheKey value', (i) => ({ ...i, cacheKey: 'v1' })],
    ['cacheFailures', (i) => ({ ...i, cacheFailures: true })],
  ];

  it('changes when any single input changes', () => {
    const seen = new Map<string, string>([[base, 'base']]);
    for (const [name, change] of variants) {
      const key = ResultCache.keyOf(change(baseInput()));
      assert.ok(!seen.has(key), `${name} gives the same key as ${seen.get(key)}`);
      seen.set(key, name);
    }
  });

  it('does not let adjacent fields collide by concatenation', () => {
    const a = { ...baseInput(), env: 'ab', environmentIdentity: 'c' };
    const b = { ...baseInput(), env: 'a', environmentIdentity: 'bc' };
    assert.notEqual(ResultCache.keyOf(a), ResultCache.keyOf(b));
    const c = { ...baseInput(), argv: ['a', 'b'], envVars: {} };
    const d = { ...baseInput(), argv: ['a'], envVars: { b: '' } };
    assert.notEqual(ResultCache.keyOf(c), ResultCache.keyOf(d));
    const e = { ...baseInput(), stdin: 'x', cacheKey: undefined };
    const f = { ...baseInput(), stdin: undefined, cacheKey: 'x' };
    assert.notEqual(ResultCache.keyOf(e), ResultCache.keyOf(f));
  });

  it('matches the test vectors of docs/execution-modes.md', () => {
    const vector = (extra: Partial<CacheKeyInput>): string =>
      ResultCache.keyOf({
        env: 'host',
        environmentIdentity: 'sha256:0000',
        runtime: 'bwrap',
        argv: ['/bin/sh', '-c', 'echo hi'],
        envVars: { B: '2', A: '1' },
        workingDir: '/workspace',
        stdin: undefined,
        timeoutMs: 60000,
        limits: { memory_mb: 512, cpu_cores: 1, pids_max: 512 },
        cacheKey: undefined,
        cacheFailures: false,
        ...extra,
      });
    assert.equal(vector({}), '3720426efad3f75c5f92d9167ef9414096e7479a02b917649df9091a2e1bbd19');
    assert.equal(vector({ stdin: '', limits: { memory_mb: 512, cpu_cores: 1.5, pids_max: 512 }, cacheKey: 'v1', cacheFailures: true }), '5201a31ac4072c89622bc3f2fb3dd32073ea891b0cb3a6411fe8d7f3e4c493dc');
  });

  it('does not depend on the insertion order of env vars; stdin as string or bytes is the same', () => {
    const reordered = { ...baseInput(), envVars: { B: '2', A: '1' } };
    assert.equal(ResultCache.keyOf(reordered), base);
    const s = ResultCache.keyOf({ ...baseInput(), stdin: 'héllo' });
    assert.equal(ResultCache.keyOf({ ...baseInput(), stdin: new Uint8Array(Buffer.from('héllo')) }), s);
    assert.equal(ResultCache.keyOf({ ...baseInput(), cacheKey: null }), base);
  });
});

describe('ResultCache.isCacheable', () => {
  const ok: CacheableExecution = { status: 'completed', exit_reason: 'exited', exit_code: 0, output_truncated: false };
  it('stores exit 0; a non-zero exit only with cacheFailures', () => {
    assert.equal(ResultCache.isCacheable(ok, false), true);
    assert.equal(ResultCache.isCacheable({ ...ok, exit_code: 3 }, false), false);
    assert.equal(ResultCache.isCacheable({ ...ok, exit_code: 3 }, true), true);
  });
  it('never stores timeouts, OOM, kills, signals, interrupted, running or truncated results', () => {
    for (const failures of [false, true]) {
      for (const reason of ['timeout', 'oom', 'killed', 'signaled'] as const) {
        assert.equal(ResultCache.isCacheable({ ...ok, exit_reason: reason, exit_code: null }, failures), false, reason);
      }
      assert.equal(ResultCache.isCacheable({ ...ok, status: 'interrupted' }, failures), false);
      assert.equal(ResultCache.isCacheable({ ...ok, status: 'running', exit_reason: null, exit_code: null }, failures), false);
      assert.equal(ResultCache.isCacheable({ ...ok, output_truncated: true }, failures), false);
      assert.equal(ResultCache.isCacheable({ ...ok, exit_code: null }, failures), false);
    }
  });
});

describe('ResultCache with a SQLite store', () => {
  let store: SqliteStore;
  let clock: FakeClock;
  let config: ResultCacheDeps['config'];
  let counted: { hits: number; misses: number; evictions: number };
  let cache: ResultCache;

  const make = (overrides: Partial<ResultCacheDeps['config']> = {}): ResultCache => {
    config = { resultCacheMaxBytes: 256 * MiB, resultCacheMaxEntryBytes: 8 * MiB, resultCacheTtlMs: 24 * 3600_000, ...overrides };
    counted = { hits: 0, misses: 0, evictions: 0 };
    const counter = (name: keyof typeof counted) => ({ inc: (n = 1) => void (counted[name] += n) });
    return new ResultCache({ store, clock, config, counters: { hits: counter('hits'), misses: counter('misses'), evictions: counter('evictions') } });
  };
  const meta = (executionId = 'exec-1', env = 'python', cacheKey?: string) => ({ env, cacheKey, executionId });
  /** An execution whose JSON is exactly `bytes` long. */
  const sized = (bytes: number): Record<string, unknown> => {
    const e = execution({ stdout: '' });
    const pad = bytes - Buffer.byteLength(JSON.stringify(e));
    assert.ok(pad >= 0);
    return { ...e, stdout: 'x'.repeat(pad) };
  };

  beforeEach(async () => {
    store = await openSqliteStore({ path: ':memory:' });
    clock = new FakeClock();
    cache = make();
  });
  afterEach(async () => {
    await store.close();
  });

  it('misses an unknown key, then hits after store with the stored result marked cached', async () => {
    const key = ResultCache.keyOf(baseInput());
    assert.equal(await cache.lookup(key), undefined);
    const result = execution();
    assert.deepEqual(await cache.store(key, meta(), result), { stored: true, sizeBytes: Buffer.byteLength(JSON.stringify(result)), evicted: 0 });
    clock.advance(5000);
    const hit = await cache.lookup(key);
    assert.ok(hit);
    assert.equal(hit.result['duration_ms'], 42);
    assert.deepEqual(hit.result, { ...result, cached: true, cache_latency_ms: 0 });
    assert.equal(hit.latencyMs, 0);
    const row = await store.resultCache.get(key);
    assert.equal(row?.hits, 1);
    assert.equal(row?.lastUsedAt.getTime(), clock.wall);
    assert.equal(row?.executionId, 'exec-1');
    assert.deepEqual(await cache.stats(), { entries: 1, bytes: row?.sizeBytes, max_bytes: 256 * MiB, ttl_ms: 24 * 3600_000, hits: 1, misses: 1, evictions: 0 });
    assert.deepEqual(counted, { hits: 1, misses: 1, evictions: 0 });
  });

  it('misses once the TTL has passed since the entry was stored, and deletes it', async () => {
    cache = make({ resultCacheTtlMs: 10_000 });
    await cache.store('k', meta(), execution());
    clock.advance(9_999);
    assert.ok(await cache.lookup('k'), 'a hit just before the TTL');
    clock.advance(1);
    assert.equal(await cache.lookup('k'), undefined);
    assert.equal(await store.resultCache.get('k'), undefined);
    assert.equal((await cache.stats()).misses, 1);
  });

  it('a hit does not extend the TTL', async () => {
    cache = make({ resultCacheTtlMs: 10_000 });
    await cache.store('k', meta(), execution());
    for (let i = 0; i < 3; i++) {
      clock.advance(4_000);
      if (i < 2) assert.ok(await cache.lookup('k'));
    }
    assert.equal(await cache.lookup('k'), undefined);
  });

  it('purgeExpired deletes only expired entries', async () => {
    cache = make({ resultCacheTtlMs: 10_000 });
    await cache.store('old', meta(), execution());
    clock.advance(6_000);
    await cache.store('new', meta(), execution());
    clock.advance(4_000);
    assert.equal(await cache.purgeExpired(), 1);
    assert.ok(await store.resultCache.get('new'));
  });

  it('refuses an entry larger than the entry bound, or alone larger than the total bound', async () => {
    cache = make({ resultCacheMaxEntryBytes: 1000, resultCacheMaxBytes: 1500 });
    assert.deepEqual(await cache.store('big', meta(), sized(1001)), { stored: false, reason: 'too_large', sizeBytes: 1001, evicted: 0 });
    assert.equal((await cache.store('fits', meta(), sized(1000))).stored, true);
    cache = make({ resultCacheMaxEntryBytes: 4000, resultCacheMaxBytes: 1500 });
    assert.equal((await cache.store('huge', meta(), sized(1501))).stored, false);
    assert.equal(await store.resultCache.get('big'), undefined);
    assert.equal(await store.resultCache.get('huge'), undefined);
    assert.ok(await store.resultCache.get('fits'), 'a refused entry evicts nothing');
  });

  it('keeps the total under the bound, evicting least recently used first as touched by hits', async () => {
    cache = make({ resultCacheMaxBytes: 3000 });
    for (const k of ['a', 'b', 'c']) {
      await cache.store(k, meta(), sized(1000));
      clock.advance(10);
    }
    assert.equal((await cache.stats()).bytes, 3000);
    assert.ok(await cache.lookup('a')); // a is now the most recently used: b is the oldest
    clock.advance(10);
    assert.deepEqual(await cache.store('d', meta(), sized(1000)), { stored: true, sizeBytes: 1000, evicted: 1 });
    assert.equal(await store.resultCache.get('b'), undefined);
    clock.advance(10);
    // 1800 bytes need two evictions: c, then a (d is newer).
    assert.equal((await cache.store('e', meta(), sized(1800))).evicted, 2);
    assert.deepEqual((await store.resultCache.oldestUsed(10)).map((e) => e.key), ['d', 'e']);
    const stats = await cache.stats();
    assert.equal(stats.bytes, 2800);
    assert.equal(stats.evictions, 3);
    assert.equal(counted.evictions, 3);
  });

  it('never evicts the entry just stored, even when it is the least recently used', async () => {
    cache = make({ resultCacheMaxBytes: 2000 });
    clock.advance(1000);
    await cache.store('a', meta(), sized(1000));
    clock.advance(-500); // the wall clock stepped back: the new entry looks oldest
    assert.equal((await cache.store('b', meta(), sized(1500))).evicted, 1);
    assert.ok(await store.resultCache.get('b'));
    assert.equal(await store.resultCache.get('a'), undefined);
  });

  it('keeps its running totals right across replacement, expiry, invalidation and a second instance', async () => {
    cache = make({ resultCacheMaxBytes: 3000, resultCacheTtlMs: 10_000 });
    await cache.store('a', meta(), sized(1000));
    await cache.store('a', meta(), sized(1200));
    await cache.store('b', meta(), sized(800));
    assert.deepEqual(await store.resultCache.totals(), { entries: 2, bytes: 2000 });
    assert.equal((await cache.stats()).bytes, 2000);
    clock.advance(10_000);
    assert.equal(await cache.lookup('a'), undefined); // expired: deleted, its size known
    assert.equal((await cache.stats()).bytes, 800);
    await cache.invalidate({ all: true });
    assert.equal((await cache.stats()).entries, 0);
    await cache.store('c', meta(), sized(1000));
    const other = new ResultCache({ store, clock, config });
    assert.deepEqual((await other.stats()).bytes, 1000);
    await cache.store('d', meta(), sized(2500));
    assert.deepEqual(await store.resultCache.totals(), { entries: 1, bytes: 2500 });
    assert.equal((await cache.stats()).bytes, 2500);
  });

  it('store of an existing key replaces it (size counted once)', async () => {
    await cache.store('k', meta('exec-1'), sized(700));
    clock.advance(1);
    await cache.store('k', meta('exec-2'), sized(900));
    assert.deepEqual(await store.resultCache.totals(), { entries: 1, bytes: 900 });
    assert.equal((await store.resultCache.get('k'))?.executionId, 'exec-2');
  });

  it('invalidates all, by cache key, by environment and by age', async () => {
    const fill = async () => {
      await cache.store('p1', meta('e1', 'python', 'v1'), execution());
      await cache.store('p2', meta('e2', 'python'), execution());
      clock.advance(60_000);
      await cache.store('n1', meta('e3', 'node', 'v1'), execution());
      await cache.store('n2', meta('e4', 'node', 'v2'), execution());
    };
    await fill();
    assert.equal(await cache.invalidate({}), 0);
    assert.equal(await cache.invalidate({ cache_key: 'v1' }), 2);
    assert.equal(await cache.invalidate({ env: 'python' }), 1);
    assert.equal(await cache.invalidate({ all: true }), 1);
    assert.equal((await cache.stats()).entries, 0);
    await fill();
    assert.equal(await cache.invalidate({ older_than_ms: 30_000 }), 2);
    assert.deepEqual((await store.resultCache.oldestUsed(10)).map((e) => e.key).sort(), ['n1', 'n2']);
    assert.equal(await cache.invalidate({ env: 'node', cache_key: 'v2' }), 1);
    assert.equal(await cache.lookup('n2'), undefined);
    assert.ok(await cache.lookup('n1'));
  });
});
