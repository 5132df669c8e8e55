/**
 * Readiness probes (docs/readiness.md), in the same run as their baselines:
 *
 * 1. Overhead per probe type: one `probe.run()` of each type as the readiness service builds it
 *    (in process, no HTTP), against a service inside a bwrap instance, beside the same operation
 *    done directly on the host against the same server run on the host's loopback: a node:http
 *    GET of Python's http.server, a `net.connect` to a Python accept-and-close loop (ACCEPTOR);
 *    an `lstat` of a host file; a raw
 *    `bwrap ... /usr/bin/true` (bench/lib/baseline.ts) for the command probe. The log probe has
 *    no host counterpart (it reads output the server keeps in memory). The one-shot route
 *    (`POST .../readiness` through fastify's inject, one tcp probe) is shown for what HTTP adds.
 * 2. Detection latency: a service inside the instance sleeps, binds its port and writes its bind
 *    time; a wait with `period_ms: 50` and an http probe runs meanwhile. The figure is the time
 *    from the bind to the wait resolving ready (both on the host's wall clock).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadinessRequest } from '@faas/protocol';
import type { InstanceRecord } from '../packages/executor/src/store/types.ts';
import { RawBwrap } from './lib/baseline.ts';
import { buildApp, type BenchApp } from './lib/faas.ts';
import { envInt, ms, now, printTable, section, summarize, timeSeries, SUMMARY_HEADERS, summaryCells, verdict, type Summary } from './lib/stats.ts';

/** Target: http, tcp and file probes under 5 ms at p50. */
const TARGET_PROBE_MS = 5;
const PERIOD_MS = 50;
const WARMUP = 5;

/** Sleeps argv[2] seconds, binds 127.0.0.1:argv[1], writes time.time() to /workspace/bound-PORT, serves. */
const DELAYED_SERVICE = String.raw`
import http.server, sys, time
port = int(sys.argv[1]); time.sleep(float(sys.argv[2]))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('content-length', '2'); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
srv = http.server.HTTPServer(('127.0.0.1', port), H)
with open('/workspace/bound-%d' % port, 'w') as f: f.write(repr(time.time()))
srv.serve_forever()
`;

function series(n: number, fn: () => Promise<unknown>): Promise<Summary> {
  return timeSeries(n, fn, WARMUP);
}

async function exec(b: BenchApp, instance: InstanceRecord, code: string): Promise<string> {
  const { id, done } = await b.app.services.executions.start(instance, { code, timeout_ms: 60_000 }, { ephemeral: false, requestStarted: now() });
  const record = await done;
  const view = await b.app.services.executions.get(id);
  if (record.exitCode !== 0) throw new Error(`exec ${code} exited ${record.exitCode}: ${view.stderr}`);
  return view.stdout;
}

/**
 * Accepts and closes at once, with a deep backlog: python's http.server listens with a backlog
 * of 5 and, single-threaded, falls behind back-to-back connects, so SYNs are dropped and retried
 * after 1 s: a tail of the server, not of the probe. argv: PORT.
 */
const ACCEPTOR = String.raw`
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(1024)
while True:
    c, _ = s.accept()
    c.close()
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** `python3 ARGS... PORT` on the host (the same servers as in the instance); resolves once it accepts. */
async function hostServer(dir: string, args: string[]): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn('python3', [...args, String(port)], { cwd: dir, stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (await tcpOnce(port).then(() => true, () => false)) return { port, child };
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error('the host http.server did not start');
}

function tcpOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

/** A GET on a new connection, like the probe: status read, connection closed. */
function httpOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', agent: false, headers: { connection: 'close' } }, (res) => {
      const status = res.statusCode ?? 0;
      req.destroy();
      resolve(status);
    });
    req.once('error', reject);
    req.end();
  });
}

export async function readiness(): Promise<void> {
  const n = envInt('BENCH_N', 200);
  const trials = envInt('BENCH_READINESS_TRIALS', 20);
  section(`readiness: probe overhead per type vs the same operation on the host (N=${n}), detection latency (period ${PERIOD_MS} ms)`);
  const dir = mkdtempSync(join(tmpdir(), 'faas-bench-readiness-'));
  writeFileSync(join(dir, 'ready'), 'x');
  const raw = RawBwrap.prepare();
  const b = await buildApp();
  const host = await hostServer(dir, ['-m', 'http.server', '--bind', '127.0.0.1']);
  const hostAcceptor = await hostServer(dir, ['-c', ACCEPTOR]);
  try {
    const { instances, readiness: service } = b.app.services;
    const instance = await instances.create({});
    const server = await b.app.services.executions.start(instance, { code: 'echo listening; exec python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1' }, { ephemeral: false, requestStarted: now() });
    await exec(b, instance, `echo ok > /workspace/ready; cat > /workspace/delayed.py <<'EOF'\n${DELAYED_SERVICE}\nEOF\ncat > /workspace/acceptor.py <<'EOF'\n${ACCEPTOR}\nEOF\npython3 /workspace/acceptor.py 8001 >/dev/null 2>&1 &`);
    const up = await service.run(await service.prepare(instance.id, { probes: [{ type: 'tcp', port: 8000 }, { type: 'tcp', port: 8001 }], wait: true, period_ms: 50, wait_timeout_ms: 10_000 }));
    if (!up.ready) throw new Error(`the service in the instance did not come up: ${up.message}`);

    const probe = async (body: ReadinessRequest['probes'][number]) => {
      const [p] = (await service.prepare(instance.id, { probes: [body] })).probes;
      const signal = new AbortController().signal;
      const first = await p!.run(signal);
      if (!first.ok) throw new Error(`${body.type} probe fails: ${first.message}`);
      return () => p!.run(signal);
    };
    const rows: Array<{ type: string; faas: Summary; base?: { label: string; s: Summary }; target: boolean }> = [];
    const measure = async (type: string, faas: () => Promise<unknown>, base: { label: string; fn: () => Promise<unknown> } | undefined, target: boolean) => {
      // Alternating halves so drift hits both alike.
      const half = Math.ceil(n / 2);
      const f1 = await series(half, faas);
      const b1 = base ? await series(half, base.fn) : undefined;
      const b2 = base ? await series(n - half, base.fn) : undefined;
      const f2 = await series(n - half, faas);
      const merge = (x: Summary, y: Summary): Summary => ({ ...x, n: x.n + y.n, p50: (x.p50 + y.p50) / 2, p90: (x.p90 + y.p90) / 2, p99: Math.max(x.p99, y.p99), mean: (x.mean + y.mean) / 2, min: Math.min(x.min, y.min), max: Math.max(x.max, y.max) });
      rows.push({ type, faas: merge(f1, f2), base: base && b1 && b2 ? { label: base.label, s: merge(b1, b2) } : undefined, target });
    };
    await measure('http', await probe({ type: 'http', port: 8000, path: '/' }), { label: 'node:http GET, host http.server', fn: () => httpOnce(host.port) }, true);
    await measure('tcp', await probe({ type: 'tcp', port: 8001 }), { label: 'net.connect, host acceptor', fn: () => tcpOnce(hostAcceptor.port) }, true);
    await measure('file', await probe({ type: 'file', path: '/workspace/ready', non_empty: true }), { label: 'lstat of a host file', fn: async () => lstatSync(join(dir, 'ready')) }, true);
    await measure('command', await probe({ type: 'command', command: ['/usr/bin/true'] }), { label: 'raw bwrap /usr/bin/true', fn: () => raw.run(['/usr/bin/true']) }, false);
    await measure('log', await probe({ type: 'log', execution_id: server.id, pattern: '^listening$' }), undefined, false);
    const oneShot = await series(Math.max(20, Math.round(n / 4)), async () => {
      const res = await b.app.fastify.inject({ method: 'POST', url: `/api/v1/instances/${instance.id}/readiness`, headers: { authorization: 'Bearer bench' }, payload: { probes: [{ type: 'tcp', port: 8001 }] } });
      if (res.statusCode !== 200 || !(res.json() as { ready: boolean }).ready) throw new Error(`one-shot answered ${res.statusCode}: ${res.body}`);
    });

    console.log('');
    printTable(
      ['series', ...SUMMARY_HEADERS],
      rows.flatMap((r) => [[`${r.type} probe`, ...summaryCells(r.faas)], ...(r.base ? [[`  baseline: ${r.base.label}`, ...summaryCells(r.base.s)]] : [])]).concat([
        ['one-shot POST .../readiness (inject), tcp', ...summaryCells(oneShot)],
      ]),
    );
    console.log('');
    printTable(
      ['probe', 'p50 ms', 'baseline p50 ms', 'overhead p50 ms', `target < ${TARGET_PROBE_MS} ms`],
      rows.map((r) => [r.type, ms(r.faas.p50), r.base ? ms(r.base.s.p50) : 'n/a', r.base ? ms(r.faas.p50 - r.base.s.p50) : 'n/a', r.target ? verdict(r.faas.p50 < TARGET_PROBE_MS) : '-']),
    );

    console.log('  command: the probe joins the running instance (nsenter into its namespaces, its own limit group);');
    console.log('  the baseline builds a whole new sandbox, which is what running a check by hand with bwrap costs.');

    // Detection latency: bind -> wait resolved ready.
    const latencies: number[] = [];
    const rounds: number[] = [];
    for (let i = 0; i < trials; i++) {
      const port = 9000 + i;
      const check = await service.prepare(instance.id, { probes: [{ type: 'http', port, path: '/' }], wait: true, period_ms: PERIOD_MS, wait_timeout_ms: 20_000 });
      await exec(b, instance, `rm -f /workspace/bound-${port}; python3 /workspace/delayed.py ${port} 0.3 >/dev/null 2>&1 &`);
      const outcome = await service.run(check);
      const reportedAt = Date.now();
      if (!outcome.ready) throw new Error(`trial ${i}: not ready: ${outcome.message}`);
      const boundAt = Number(await exec(b, instance, `cat /workspace/bound-${port}`)) * 1000;
      latencies.push(reportedAt - boundAt);
      rounds.push(outcome.checksPerformed);
    }
    const lat = summarize(latencies);
    console.log('');
    printTable(['series', ...SUMMARY_HEADERS], [[`bind -> ready reported (period ${PERIOD_MS} ms, http probe)`, ...summaryCells(lat)]]);
    console.log(`  rounds per wait: ${Math.min(...rounds)}..${Math.max(...rounds)}; a round every ${PERIOD_MS} ms, so the expected figure is about half a period plus one probe.`);
    console.log('');
    printTable(['target', 'measured', 'result'], [
      [`ready reported within one period (${PERIOD_MS} ms) of the bind, p50`, `${ms(lat.p50)} ms`, verdict(lat.p50 <= PERIOD_MS)],
      [`... at p90 within a period plus ${TARGET_PROBE_MS} ms`, `${ms(lat.p90)} ms`, verdict(lat.p90 <= PERIOD_MS + TARGET_PROBE_MS)],
    ]);
  } finally {
    host.child.kill('SIGKILL');
    hostAcceptor.child.kill('SIGKILL');
    await b.close();
    raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
