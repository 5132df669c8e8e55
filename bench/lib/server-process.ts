/**
 * The executor as `serve()` builds it, in a process of its own, for benchmarks where the client
 * must not share the server's event loop (e.g. file sync over loopback against an rsync daemon,
 * itself a separate process). Parent side: {@link startServerProcess}. Child side: this file
 * run directly with the data dir as argument; it prints `{"url": ...}` once listening and
 * closes the app on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeServerTraces } from './faas.ts';

export interface ServerProcess {
  url: string;
  dataDir: string;
  pid: number;
  close(): Promise<void>;
}

/**
 * Starts the server in a child process (same node, tsx loader) on a fresh temp data dir.
 * FAAS_BENCH_SERVER_NODE_ARGS adds node flags to it, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
 */
export async function startServerProcess(apiKey: string): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'faas-bench-'));
  const nodeArgs = (process.env.FAAS_BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', fileURLToPath(import.meta.url), dataDir, apiKey], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FAAS_BENCH_SERVER_CHILD: '1' },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        try {
          resolve((JSON.parse(out.slice(0, nl)) as { url: string }).url);
        } catch (err) {
          reject(err as Error);
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`server process exited ${code} before listening: ${stderr.trim().slice(0, 1000)}`)));
  });
  return {
    url,
    dataDir,
    pid: child.pid!,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      removeServerTraces(dataDir);
    },
  };
}

if (process.env.FAAS_BENCH_SERVER_CHILD === '1' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dataDir, apiKey] = process.argv.slice(2);
  const { serve } = await import('../../packages/executor/src/serve.ts');
  const server = await serve({ host: '127.0.0.1', port: 0, dataDir: dataDir!, apiKey: apiKey!, logLevel: process.env.FAAS_BENCH_LOG ?? 'silent', config: { sshPort: 0 } });
  process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
  process.once('SIGTERM', () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
