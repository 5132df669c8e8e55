/**
 * Opt-in diagnostic (`npm run bench -- main-thread`), not part of the default run: under
 * concurrent load, how much of the executor's single event loop goes to blocking calls, and to
 * which. It patches node:fs sync functions and child_process.spawn for the duration of the
 * section (module.syncBuiltinESMExports makes the executor's named imports see the patch) and
 * records the outermost call only, so categories do not double-count. Not instrumented: the
 * koffi mount/umount2 calls and better-sqlite3 (both synchronous too).
 */
import childProcess from 'node:child_process';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from './lib/faas.ts';
import { envInt, ms, now, printTable, section } from './lib/stats.ts';
import { postExecute } from './http-execute.ts';

const FS_SYNC = ['writeFileSync', 'readFileSync', 'mkdirSync', 'rmdirSync', 'rmSync', 'readdirSync', 'openSync', 'chownSync', 'chmodSync', 'existsSync', 'cpSync', 'symlinkSync'] as const;

function category(path: unknown): string {
  const p = String(path);
  if (p.endsWith('cgroup.procs')) return 'cgroup.procs';
  if (p.endsWith('freezer.state')) return 'freezer.state';
  if (p.startsWith('/sys/fs/cgroup')) return 'cgroup (other)';
  if (p.includes('/instances/')) return 'instance dirs';
  if (p.includes('/logs/')) return 'execution logs';
  return 'other';
}

class SyncRecorder {
  readonly totals = new Map<string, { calls: number; ms: number; max: number }>();
  recording = false;
  private depth = 0;
  private readonly restore: Array<() => void> = [];

  install(): void {
    const self = this;
    const patch = (target: Record<string, unknown>, name: string, key: (args: unknown[]) => string) => {
      const orig = target[name] as (...a: unknown[]) => unknown;
      target[name] = function (this: unknown, ...args: unknown[]) {
        if (!self.recording || self.depth > 0) return orig.apply(this, args);
        self.depth++;
        const t = now();
        try {
          return orig.apply(this, args);
        } finally {
          self.depth--;
          self.add(key(args), now() - t);
        }
      };
      this.restore.push(() => (target[name] = orig));
    };
    for (const name of FS_SYNC) patch(fs as unknown as Record<string, unknown>, name, (a) => `fs.${name}: ${category(a[0])}`);
    patch(childProcess as unknown as Record<string, unknown>, 'spawn', (a) => `spawn (fork+exec): ${String(a[0]).split('/').pop()}`);
    syncBuiltinESMExports();
  }

  uninstall(): void {
    for (const r of this.restore.splice(0)) r();
    syncBuiltinESMExports();
  }

  private add(key: string, elapsed: number): void {
    const t = this.totals.get(key) ?? { calls: 0, ms: 0, max: 0 };
    t.calls++;
    t.ms += elapsed;
    t.max = Math.max(t.max, elapsed);
    this.totals.set(key, t);
  }
}

export async function mainThread(): Promise<void> {
  const concurrency = envInt('BENCH_CONCURRENCY', 50);
  const rounds = envInt('BENCH_ROUNDS', 2);
  section(`main thread under load: ${rounds} rounds of ${concurrency} concurrent POST /execute (diagnostic)`);
  const recorder = new SyncRecorder();
  recorder.install();
  const b = await buildApp();
  try {
    await b.app.fastify.listen({ host: '127.0.0.1', port: 0 });
    const address = b.app.fastify.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    for (let i = 0; i < 10; i++) await postExecute(url, 'bench');
    await sleep(300);
    const stalls = monitorEventLoopDelay({ resolution: 1 });
    recorder.recording = true;
    stalls.enable();
    const elu0 = performance.eventLoopUtilization();
    const t0 = now();
    let executions = 0;
    for (let r = 0; r < rounds; r++) {
      await Promise.all(Array.from({ length: concurrency }, () => postExecute(url, 'bench').then(() => executions++)));
      // Let the round's instances be destroyed inside the measured window: that work is part of the cost.
      while ((await b.app.services.instances.list({ states: ['starting', 'running'], limit: 1000 })).length > 0) await sleep(10);
    }
    const wall = now() - t0;
    const elu = performance.eventLoopUtilization(elu0).utilization;
    stalls.disable();
    recorder.recording = false;
    const rows = [...recorder.totals].sort((a, b2) => b2[1].ms - a[1].ms);
    const sum = rows.reduce((s, [, t]) => s + t.ms, 0);
    console.log('');
    console.log(`  ${executions} executions (create, exec, destroy) in ${ms(wall)} ms: event loop busy ${Math.round(elu * 100)}%, longest stall ${ms(stalls.max / 1e6)} ms`);
    console.log(`  instrumented blocking calls: ${ms(sum)} ms = ${((100 * sum) / wall).toFixed(0)}% of wall, ${ms(sum / executions)} ms per execution`);
    console.log('');
    printTable(
      ['blocking call (outermost only)', 'calls', 'total ms', 'ms/exec', 'max ms', '% of wall'],
      rows.map(([k, t]) => [k, String(t.calls), ms(t.ms), ms(t.ms / executions), ms(t.max), `${((100 * t.ms) / wall).toFixed(1)}%`]),
    );
  } finally {
    recorder.uninstall();
    await b.close();
  }
}
