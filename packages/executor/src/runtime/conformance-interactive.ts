import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { before, it } from 'node:test';
import type { InteractiveSpec, Runtime } from './types.ts';

export interface ConformanceContext {
  runtime(): Runtime;
  newInstance(): Promise<string>;
  run(instanceId: string, argv: string[]): Promise<{ exitCode: number | null; stdout: string; stderr: string }>;
  /** Bound on the median connect() time (ConformanceExpectations). */
  connectP50Ms: number;
}

/** Interactive exec and connect(): the abilities the SSH gateway and readiness probes build on. */
export function registerInteractiveConformance(ctx: ConformanceContext): void {
  const mainThreadNetNs = () => readlinkSync(`/proc/self/task/${process.pid}/ns/net`);
  // Read before any test runs: a connect() that failed to step back would otherwise go unseen.
  const hostNetNs = mainThreadNetNs();
  let id: string;
  before(async () => {
    id = await ctx.newInstance();
  });
  const start = (argv: string[], extra: Partial<InteractiveSpec> = {}) =>
    ctx.runtime().execInteractive(id, { argv, env: { PATH: '/usr/bin:/bin', ...extra.env }, workingDir: '/workspace', ...extra });
  const collect = (stream: Readable) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    return () => Buffer.concat(chunks);
  };
  /** Resolves once `read()` (the output so far) matches. */
  const waitFor = async (read: () => Buffer, pattern: RegExp, what: string) => {
    for (let i = 0; i < 200; i++) {
      if (pattern.test(read().toString())) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.fail(`${what}: no ${pattern} in ${JSON.stringify(read().toString())}`);
  };

  it('interactive exec streams 5 MB of binary stdin through cat byte-exact, with separate stderr and the exit code', async () => {
    const proc = await start(['sh', '-c', 'cat; echo err >&2; exit 3']);
    const out = collect(proc.stdout);
    const err = collect(proc.stderr);
    const input = randomBytes(5 * 1024 * 1024);
    // In 64 KiB pieces through pipeline: stdin's backpressure is what paces the writer.
    const pieces = Array.from({ length: input.length / 65536 }, (_, i) => input.subarray(i * 65536, (i + 1) * 65536));
    await pipeline(Readable.from(pieces), proc.stdin);
    const exit = await proc.wait();
    assert.equal(exit.exitCode, 3);
    assert.equal(exit.signal, null);
    assert.ok(out().equals(input), `stdout differs: ${out().length} bytes of ${input.length}`);
    assert.equal(err().toString(), 'err\n');
  });

  it('interactive exec: stdin.end() is end of file to the process', async () => {
    const proc = await start(['wc', '-c']);
    const out = collect(proc.stdout);
    proc.stdin.end('abcde');
    assert.equal((await proc.wait()).exitCode, 0);
    assert.equal(out().toString().trim(), '5');
  });

  it('interactive exec runs as the sandbox user and sees (and changes) the instance files', async () => {
    const proc = await start(['sh', '-c', 'id -u; echo from-interactive > /workspace/ix.txt']);
    const out = collect(proc.stdout);
    proc.stdin.end();
    assert.equal((await proc.wait()).exitCode, 0);
    assert.equal(out().toString(), '1000\n');
    const check = await ctx.run(id, ['cat', '/workspace/ix.txt']);
    assert.equal(check.stdout, 'from-interactive\n');
  });

  it('interactive exec: SIGKILL through the handle ends the whole tree', async () => {
    const proc = await start(['sh', '-c', 'sleep 101 & sleep 101']);
    proc.stdout.resume();
    proc.stderr.resume();
    await new Promise((r) => setTimeout(r, 200));
    await proc.signal('SIGKILL');
    const exit = await proc.wait();
    assert.equal(exit.signal, 'SIGKILL');
    const ps = await ctx.run(id, ['ps', '-eo', 'args']);
    assert.doesNotMatch(ps.stdout, /sleep 101/);
  });

  it('interactive exec: wait() resolves when a background process still holds stdout', async () => {
    const proc = await start(['sh', '-c', 'sleep 102 & echo main-done']);
    const out = collect(proc.stdout);
    const exit = await proc.wait();
    assert.equal(exit.exitCode, 0);
    assert.equal(out().toString(), 'main-done\n');
    if (!proc.stdout.readableEnded) await new Promise((r) => proc.stdout.once('end', r));
  });

  it('with a pty: input to a process that stops reading is held back without blocking the server', async (t) => {
    if (!ctx.runtime().capabilities.pty) return t.skip('this runtime offers no pty');
    const proc = await start(['sh', '-c', 'stty raw -echo; echo ready; sleep 100'], { pty: { cols: 80, rows: 24 } });
    const out = collect(proc.stdout);
    await waitFor(out, /ready/, 'start');
    let accepted = true;
    for (let i = 0; i < 64 && accepted; i++) accepted = proc.stdin.write(Buffer.alloc(64 * 1024, 0x61));
    assert.equal(accepted, false, 'stdin never signalled backpressure');
    // The event loop still turns while the terminal is full.
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(Date.now() - t0 < 1_000);
    await proc.signal('SIGKILL');
    assert.equal((await proc.wait()).signal, 'SIGKILL');
  });

  it('with a pty: the process has a /dev/pts terminal of the given size, and stderr is empty', async (t) => {
    if (!ctx.runtime().capabilities.pty) return t.skip('this runtime offers no pty');
    const proc = await start(['sh', '-c', 'tty; stty size; echo to-stderr >&2; echo "$TERM"'], { pty: { cols: 101, rows: 33, term: 'xterm-256color' } });
    const out = collect(proc.stdout);
    const err = collect(proc.stderr);
    assert.equal((await proc.wait()).exitCode, 0);
    assert.match(out().toString(), /^\/dev\/pts\/\d+\r\n33 101\r\nto-stderr\r\nxterm-256color\r\n$/);
    assert.equal(err().length, 0);
  });

  it('with a pty: resize() reaches a running process (SIGWINCH, new size)', async (t) => {
    if (!ctx.runtime().capabilities.pty) return t.skip('this runtime offers no pty');
    const proc = await start(['sh', '-c', 'trap "stty size" WINCH; echo ready; while :; do sleep 0.05; done'], { pty: { cols: 80, rows: 24 } });
    const out = collect(proc.stdout);
    await waitFor(out, /ready/, 'start');
    proc.resize(132, 43);
    await waitFor(out, /43 132/, 'size after resize');
    await proc.signal('SIGKILL');
    await proc.wait();
  });

  it('with a pty: ^C written to stdin interrupts the foreground sleep, not the session', async (t) => {
    if (!ctx.runtime().capabilities.pty) return t.skip('this runtime offers no pty');
    // "ready" comes from the foreground child itself, so a ^C sent once it shows reaches that
    // child (a slow machine may not have started `sleep` yet after an `echo` in the outer shell,
    // and the shell would then run its trap and go on to sleep the full 100 s).
    const proc = await start(['sh', '-c', 'trap "echo interrupted" INT; sh -c "echo ready; exec sleep 100"; echo after'], { pty: { cols: 80, rows: 24 } });
    const out = collect(proc.stdout);
    await waitFor(out, /ready/, 'start');
    const sent = Date.now();
    proc.stdin.write('\x03');
    const exit = await proc.wait();
    assert.ok(Date.now() - sent < 5_000);
    // The shell caught SIGINT and carried on: the launcher outside the sandbox got none.
    assert.equal(exit.exitCode, 0, JSON.stringify({ exit, out: out().toString() }));
    assert.match(out().toString(), /interrupted\r\nafter\r\n/);
  });

  it('with a pty: stdin.end() sends the end-of-file character', async (t) => {
    if (!ctx.runtime().capabilities.pty) return t.skip('this runtime offers no pty');
    const proc = await start(['cat'], { pty: { cols: 80, rows: 24 } });
    const out = collect(proc.stdout);
    proc.stdin.write('line\n');
    await waitFor(out, /line\r\nline\r\n/, 'echo and cat output');
    proc.stdin.end();
    assert.equal((await proc.wait()).exitCode, 0);
  });

  it('connect() reaches a server on the instance loopback that the host loopback does not', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const script = `import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", ${port})); s.listen(64)\nwhile True:\n    c,_=s.accept(); c.sendall(b"hello from inside"); c.close()`;
    const bg = await ctx.run(id, ['sh', '-c', `python3 -c '${script}' >/dev/null 2>&1 & echo started`]);
    assert.equal(bg.stdout, 'started\n');
    let socket: Socket | undefined;
    for (let i = 0; i < 100 && socket === undefined; i++) {
      socket = await ctx.runtime().connect(id, port).catch((e: { code?: string }) => {
        assert.equal(e.code, 'PORT_UNREACHABLE');
        return new Promise<undefined>((r) => setTimeout(r, 50));
      });
    }
    assert.ok(socket, 'the server inside never became reachable');
    const chunks: Buffer[] = [];
    for await (const c of socket) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'hello from inside');
    const fromHost = await new Promise<string>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve('connected')));
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    assert.equal(fromHost, 'ECONNREFUSED');

    // Latency of a probe: p50 of 100 connects to a listening port.
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      const s = await ctx.runtime().connect(id, port);
      times.push(performance.now() - t0);
      s.destroy();
    }
    times.sort((a, b) => a - b);
    process.stderr.write(`# connect latency p50 ${times[50]!.toFixed(3)} ms, p90 ${times[90]!.toFixed(3)} ms, max ${times[99]!.toFixed(3)} ms\n`);
    assert.ok(times[50]! < ctx.connectP50Ms, `p50 ${times[50]} ms, bound ${ctx.connectP50Ms} ms`);
  });

  it('connect(): refused port is PORT_UNREACHABLE; bad port or foreign host is VALIDATION_FAILED', async () => {
    const rt = ctx.runtime();
    await assert.rejects(rt.connect(id, 1), (e: { code?: string }) => e.code === 'PORT_UNREACHABLE');
    await assert.rejects(rt.connect(id, 0), (e: { code?: string }) => e.code === 'VALIDATION_FAILED');
    await assert.rejects(rt.connect(id, 65_536), (e: { code?: string }) => e.code === 'VALIDATION_FAILED');
    await assert.rejects(rt.connect(id, 80, { host: '8.8.8.8' }), (e: { code?: string }) => e.code === 'VALIDATION_FAILED');
    await assert.rejects(rt.connect(id, 80, { host: 'example.com' }), (e: { code?: string }) => e.code === 'VALIDATION_FAILED');
    await assert.rejects(rt.connect('inst-not-running', 80), (e: { code?: string }) => e.code === 'INSTANCE_NOT_RUNNING');
  });

  it('connect() leaves the calling thread in the host network namespace', async () => {
    await ctx.runtime().connect(id, 1).catch(() => undefined);
    await ctx.runtime().connect(id, 0).catch(() => undefined);
    assert.equal(mainThreadNetNs(), hostNetNs);
    // A host listener on the host loopback is still reachable from the server.
    const server = createServer((c) => c.end('host')).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const got = await new Promise<string>((resolve, reject) => {
      const s = netConnect((server.address() as AddressInfo).port, '127.0.0.1');
      let text = '';
      s.on('data', (d) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    server.close();
    assert.equal(got, 'host');
  });
}
