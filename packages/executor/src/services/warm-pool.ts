import type { Logger } from 'pino';
import type { InstanceRecord } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';
import type { Metrics } from './metrics.ts';

/** What the pool needs from the instance service: start an instance marked pooled, delete one. */
export interface PoolInstanceHost {
  /** Starts an instance of `env` with the server's default limits, recorded with `pooled: true`. */
  startPooled(env: string): Promise<InstanceRecord>;
  delete(id: string, reason: string): Promise<unknown>;
}

/** What the instance service asks of the pool (see InstanceService.attachPool). */
export interface InstancePool {
  /** Takes a ready instance of `env` out of the pool (synchronous, hence atomic), or undefined. */
  take(env: string): string | undefined;
  /** Puts back an instance `take` returned that could not be handed out after all (it is deleted). */
  discard(id: string): void;
  /** A create of `env` that could have used the pool was served cold (counted when the pool's target > 0). */
  recordMiss(env: string): void;
  /** Takes any ready instance, of any environment, so a create at capacity can have its slot. */
  evictOne(): string | undefined;
}

export interface PoolStats {
  target: number;
  ready: number;
  hits: number;
  misses: number;
}

export interface WarmPoolOptions {
  host: PoolInstanceHost;
  environments: readonly string[];
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
  /** Starts in flight at once per environment. @default 2 */
  concurrency?: number;
  /** Delay after the first failed start, doubled per consecutive failure up to `maxBackoffMs`. @default 250 */
  initialBackoffMs?: number;
  /** @default 30_000 */
  maxBackoffMs?: number;
}

interface EnvPool {
  target: number;
  ready: string[];
  starting: number;
  hits: number;
  misses: number;
  failures: number;
  retryAt: number;
  timer: NodeJS.Timeout | undefined;
  updatedAt: Date;
}

/**
 * Warm pools: per environment, `target` instances started ahead of demand with the default
 * limits, handed out by InstanceService.create without a runtime start. Refills run in the
 * background (never in a request's path), `concurrency` at a time per environment, backing off
 * exponentially after failures. Taking is a synchronous shift off an in-memory list: two
 * concurrent creates can never get the same instance.
 *
 * Pooled instances are real, running instances: they hold a host uid and count toward the
 * server's instance capacity. A create that would fail for capacity evicts a pooled one instead
 * (see {@link evictOne}), so warming never makes a client's create fail.
 */
export class WarmPool implements InstancePool {
  private readonly pools = new Map<string, EnvPool>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly deletions = new Set<Promise<unknown>>();
  private readonly concurrency: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private stopped = false;

  constructor(private readonly options: WarmPoolOptions) {
    this.concurrency = options.concurrency ?? 2;
    this.initialBackoffMs = options.initialBackoffMs ?? 250;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    for (const env of options.environments) {
      this.pools.set(env, { target: 0, ready: [], starting: 0, hits: 0, misses: 0, failures: 0, retryAt: 0, timer: undefined, updatedAt: options.clock.now() });
    }
  }

  has(env: string): boolean {
    return this.pools.has(env);
  }

  stats(env: string): PoolStats {
    const p = this.pool(env);
    return { target: p.target, ready: p.ready.length, hits: p.hits, misses: p.misses };
  }

  updatedAt(env: string): Date {
    return this.pool(env).updatedAt;
  }

  /** Whether this instance is pooled and ready (not handed out). */
  holds(id: string): boolean {
    for (const p of this.pools.values()) if (p.ready.includes(id)) return true;
    return false;
  }

  /**
   * Sets the target. Ready instances beyond it are taken out and deleted before this resolves
   * (0 drains the pool); starts in flight beyond it are deleted when they finish.
   */
  async setTarget(env: string, target: number): Promise<PoolStats> {
    const p = this.pool(env);
    p.target = target;
    p.updatedAt = this.options.clock.now();
    p.failures = 0;
    p.retryAt = 0;
    const excess = p.ready.length > target ? p.ready.splice(target) : [];
    await Promise.all(excess.map((id) => this.remove(id, 'pool_drained')));
    this.pump(env);
    return this.stats(env);
  }

  take(env: string): string | undefined {
    const p = this.pools.get(env);
    if (p === undefined || this.stopped) return undefined;
    const id = p.ready.shift();
    if (id === undefined) return undefined;
    p.hits++;
    this.options.metrics?.poolHits.inc({ env });
    // Not now: a refill's start runs synchronous work (spawn, mounts, cgroups) up to its first
    // await, which would land in the path of the create that is taking this instance (it made
    // warm acquires 8-10 ms instead of well under 1 ms).
    setImmediate(() => this.pump(env));
    return id;
  }

  discard(id: string): void {
    void this.remove(id, 'pool_discarded');
  }

  recordMiss(env: string): void {
    const p = this.pools.get(env);
    if (p === undefined || p.target === 0) return;
    p.misses++;
    this.options.metrics?.poolMisses.inc({ env });
  }

  evictOne(): string | undefined {
    let best: [string, EnvPool] | undefined;
    for (const entry of this.pools) if (entry[1].ready.length > 0 && (best === undefined || entry[1].ready.length > best[1].ready.length)) best = entry;
    if (best === undefined) return undefined;
    // The newest: the oldest ones are the next to be handed out.
    return best[1].ready.pop();
  }

  /** An instance ended (deleted, died): if it was ready in a pool, it no longer is. */
  forget(id: string): void {
    for (const [env, p] of this.pools) {
      const i = p.ready.indexOf(id);
      if (i >= 0) {
        p.ready.splice(i, 1);
        this.pump(env);
        return;
      }
    }
  }

  /** Stops refilling, waits for starts in flight, and deletes every ready instance. */
  async close(): Promise<void> {
    this.stopped = true;
    for (const p of this.pools.values()) {
      clearTimeout(p.timer);
      p.timer = undefined;
    }
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    const all = [...this.pools.values()].flatMap((p) => p.ready.splice(0));
    await Promise.all(all.map((id) => this.remove(id, 'executor_shutdown')));
    await Promise.allSettled([...this.deletions]);
  }

  /** Waits until nothing is starting and every pool is at its target (tests). */
  async settled(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const busy = [...this.pools.values()].some((p) => p.starting > 0 || p.ready.length < p.target);
      if (!busy && this.deletions.size === 0) return;
      if (Date.now() > deadline) throw new Error('warm pool did not settle');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private pool(env: string): EnvPool {
    const p = this.pools.get(env);
    if (p === undefined) throw new Error(`no pool for environment ${env}`);
    return p;
  }

  private pump(env: string): void {
    const p = this.pool(env);
    if (this.stopped) return;
    const now = Date.now();
    if (now < p.retryAt) {
      p.timer ??= setTimeout(() => {
        p.timer = undefined;
        this.pump(env);
      }, p.retryAt - now);
      return;
    }
    while (p.starting < this.concurrency && p.ready.length + p.starting < p.target) {
      p.starting++;
      const work = this.startOne(env, p);
      this.inFlight.add(work);
      void work.finally(() => this.inFlight.delete(work));
    }
  }

  private async startOne(env: string, p: EnvPool): Promise<void> {
    let id: string | undefined;
    try {
      id = (await this.options.host.startPooled(env)).id;
      p.failures = 0;
    } catch (err) {
      p.failures++;
      const delay = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (p.failures - 1));
      p.retryAt = Date.now() + delay;
      this.options.metrics?.poolStartFailures.inc({ env });
      this.options.logger.warn({ err, env, failures: p.failures, retry_in_ms: delay }, 'starting a pooled instance failed');
    } finally {
      p.starting--;
    }
    if (id !== undefined) {
      if (this.stopped || p.ready.length >= p.target) await this.remove(id, this.stopped ? 'executor_shutdown' : 'pool_drained');
      else p.ready.push(id);
    }
    this.pump(env);
  }

  private remove(id: string, reason: string): Promise<unknown> {
    const work = this.options.host.delete(id, reason).catch((err: unknown) => this.options.logger.error({ err, instance: id }, 'deleting a pooled instance failed'));
    this.deletions.add(work);
    void work.finally(() => this.deletions.delete(work));
    return work;
  }
}
