/** Building faas for benchmarks: the in-process app (wired as serve.ts does) and cleanup. */
import { mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../../packages/executor/src/app.ts';
import type { ExecutorConfig } from '../../packages/executor/src/config.ts';
import type { Runtime } from '../../packages/executor/src/runtime/types.ts';
import { detectCgroupLayout } from '../../packages/executor/src/runtime/cgroups/layout.ts';
import { cgroupPrefixFor, createExecutor } from '../../packages/executor/src/serve.ts';
import type { Store } from '../../packages/executor/src/store/types.ts';

export interface BenchApp {
  app: App;
  /** The same objects the app was built from (for the profiling pass). */
  runtime: Runtime;
  store: Store;
  config: ExecutorConfig;
  close(): Promise<void>;
}

/** The executor as `serve()` builds it (SQLite, bwrap runtime, cgroups), without listening. */
export async function buildApp(config: Partial<ExecutorConfig> = {}): Promise<BenchApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'faas-bench-'));
  const built = await createExecutor({ dataDir, apiKey: 'bench', logLevel: process.env.FAAS_BENCH_LOG ?? 'silent', config });
  const { app, runtime, store } = built;
  return {
    app,
    runtime,
    store,
    config: built.config,
    async close() {
      await app.close();
      removeServerTraces(built.config.dataDir);
    },
  };
}

/**
 * Removes a finished server's data dir and its (then empty) cgroup prefix directories, so
 * repeated bench runs leave nothing behind. Only this data dir's own prefix is touched.
 */
export function removeServerTraces(dataDir: string): void {
  const prefix = cgroupPrefixFor(dataDir);
  for (const h of detectCgroupLayout().hierarchies) {
    try {
      rmdirSync(join(h.mountPoint, prefix));
    } catch {
      // not there, or not empty (something still runs): leave it
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
}
