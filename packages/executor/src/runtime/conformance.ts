import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registerInteractiveConformance } from './conformance-interactive.ts';
import type { ProcessExit, Runtime } from './types.ts';

/** Figures that differ by backend (a machine's emulated network stack is slower than a namespace's). */
export interface ConformanceExpectations {
  /** Bound on the median time of `connect()` to a listening port. @default 5 */
  connectP50Ms?: number;
}

/**
 * Behaviour every Runtime must show, registered as node:test tests. A backend's test file calls
 * it with a factory; abilities a backend lacks are skipped by capability, with the reason.
 */
export function runRuntimeConformance(name: string, open: () => Promise<Runtime>, expect: ConformanceExpectations = {}): void {
  describe(`Runtime conformance: ${name}`, () => {
    let runtime: Runtime;
    let counter = 0;
    const ids: string[] = [];
    const newInstance = async (limits = { memoryMb: 256, cpuCores: 1, pidsMax: 128 }) => {
      const id = `inst-conf${process.pid}x${counter++}`;
      ids.push(id);
      await runtime.startInstance({ id, env: 'host', hostUid: 260000 + (counter % 1000), limits });
      return id;
    };
    const run = async (instanceId: string, argv: string[], options: { stdin?: string; env?: Record<string, string>; workingDir?: string; killAfterMs?: number } = {}) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const progress: string[] = [];
      const proc = await runtime.exec(instanceId, {
        executionId: `exec-conf${counter++}`,
        argv,
        env: { PATH: '/usr/bin:/bin', ...options.env },
        workingDir: options.workingDir ?? '/workspace',
        stdin: options.stdin === undefined ? undefined : Buffer.from(options.stdin),
        sink: { stdout: (c) => out.push(c), stderr: (c) => err.push(c), progress: (l) => progress.push(l) },
      });
      if (options.killAfterMs !== undefined) setTimeout(() => void proc.signal('SIGKILL'), options.killAfterMs);
      const exit: ProcessExit = await proc.wait();
      return { ...exit, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), progress };
    };

    before(async () => {
      runtime = await open();
    });
    after(async () => {
      for (const id of ids) await runtime.destroyInstance(id).catch(() => undefined);
      await runtime.close();
    });

    it('reports its capabilities', () => {
      assert.equal(typeof runtime.capabilities.memorySnapshots, 'boolean');
      assert.ok(runtime.capabilities.network.length > 0);
    });

    it('runs a process with separate stdout and stderr, exit code, stdin, env and working dir', async () => {
      const id = await newInstance();
      const r = await run(id, ['sh', '-c', 'echo out; echo err >&2; cat; echo "$GREETING"; pwd; exit 7'], { stdin: 'in\n', env: { GREETING: 'hello' }, workingDir: '/tmp' });
      assert.equal(r.exitCode, 7);
      assert.equal(r.signal, null);
      assert.equal(r.stdout, 'out\nin\nhello\n/tmp\n');
      assert.equal(r.stderr, 'err\n');
      assert.ok(r.durationMs > 0);
    });

    it('delivers progress lines written to descriptor 3', async () => {
      const id = await newInstance();
      const r = await run(id, ['sh', '-c', 'echo 10 start >&3; echo 90 >&3']);
      assert.deepEqual(r.progress, ['10 start', '90']);
    });

    it('keeps a background process alive for the next exec, sharing PID and network namespaces', async () => {
      const id = await newInstance();
      const first = await run(id, ['sh', '-c', 'python3 -m http.server 8765 >/dev/null 2>&1 & echo started']);
      assert.equal(first.stdout, 'started\n', JSON.stringify(first));
      const second = await run(id, ['python3', '-c', [
        'import time, urllib.request',
        'for _ in range(60):',
        '    try:',
        '        print(urllib.request.urlopen("http://127.0.0.1:8765/").status); break',
        '    except Exception: time.sleep(0.05)',
      ].join('\n')]);
      assert.equal(second.stdout.trim(), '200');
    });

    it('a SIGKILL through the handle ends the whole tree of the exec', async () => {
      const id = await newInstance();
      const r = await run(id, ['sh', '-c', 'sleep 100 & sleep 100'], { killAfterMs: 200 });
      assert.equal(r.signal, 'SIGKILL');
      const ps = await run(id, ['ps', '-eo', 'args']);
      assert.doesNotMatch(ps.stdout, /sleep 100/);
    });

    it('reports an OOM kill when the memory limit is passed', async (t) => {
      if (!runtime.capabilities.limits.includes('memory')) {
        t.skip('this runtime enforces no memory limit on this host');
        return;
      }
      const id = await newInstance({ memoryMb: 48, cpuCores: 1, pidsMax: 64 });
      const r = await run(id, ['python3', '-c', 'a=[]\nwhile True: a.append(bytearray(10**7))']);
      assert.equal(r.oomKilled, true, JSON.stringify(r));
    });

    it('refuses exec on an instance that is not running, and stop/destroy are idempotent', async () => {
      const id = await newInstance();
      await runtime.stopInstance(id);
      await runtime.stopInstance(id);
      await assert.rejects(run(id, ['true']), (e: { code?: string }) => e.code === 'INSTANCE_NOT_RUNNING');
      await runtime.destroyInstance(id);
      await runtime.destroyInstance(id);
    });

    describe('interactive exec and connect', () => {
      registerInteractiveConformance({ runtime: () => runtime, newInstance: () => newInstance(), run: (id, argv) => run(id, argv), connectP50Ms: expect.connectP50Ms ?? 5 });
    });
  });
}
