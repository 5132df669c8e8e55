/**
 * Port access: HTTP requests to a service inside an instance through the executor's port proxy
 * (`/api/v1/instances/:id/ports/:port/...` with the API key, and the public URL of an exposed
 * port with its token) beside direct requests to the same server (the same python3 script)
 * run on the host outside any sandbox, measured in the same run.
 *
 * The executor runs in a process of its own (bench/lib/server-process.ts), so the client's
 * event loop is not the proxy's. Clients keep their connections alive (to the executor, and to
 * the direct server), and so does the proxy into the instance (a keep-alive pool per instance
 * port). A second direct series opens a new connection per request, for scale: that is what the
 * proxy's hop would cost without its pool. The instance gets every core, like the direct server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HTTP_PORT, PYTHON_HTTP_SERVER, startPortServices } from '../packages/executor/test/fixtures/port-services.ts';
import { startServerProcess } from './lib/server-process.ts';
import { envInt, ms, now, printTable, ratio, section, summarize, SUMMARY_HEADERS, summaryCells } from './lib/stats.ts';

const WARMUP = 30;
const CONCURRENCY = 8;
const LARGE_BYTES = 64 * 1024 * 1024;
const LARGE_REPS = 3;

interface Target {
  name: string;
  /** Base URL of the service: the path below it is the service's own. */
  base: string;
  headers: Record<string, string>;
  /** @default the shared keep-alive agent */
  agent?: Agent;
}

/** One request over a keep-alive agent; resolves with the elapsed ms once the body was read. */
function timedRequest(agent: Agent, target: Target, method: string, path: string, body?: Buffer): Promise<{ ms: number; status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const headers: Record<string, string> = { ...target.headers };
    if (body !== undefined) headers['content-length'] = String(body.length);
    const req = httpRequest(`${target.base}${path}`, { method, agent: target.agent ?? agent, headers }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ ms: now() - t0, status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function checked(agent: Agent, target: Target, method: string, path: string, body?: Buffer): Promise<{ ms: number; bytes: number }> {
  const r = await timedRequest(agent, target, method, path, body);
  if (r.status !== 200) throw new Error(`${target.name}: ${method} ${path} answered ${r.status}`);
  return r;
}

/** Requests per second with `CONCURRENCY` clients issuing `total` GETs between them. */
async function throughput(agent: Agent, target: Target, total: number): Promise<number> {
  let issued = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (issued < total) {
        issued++;
        await checked(agent, target, 'GET', '/echo');
      }
    }),
  );
  return total / ((now() - t0) / 1000);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startDirectServer(dir: string): Promise<{ child: ChildProcess; port: number }> {
  const script = join(dir, 'srv.py');
  writeFileSync(script, PYTHON_HTTP_SERVER);
  const port = await freePort();
  const child = spawn('python3', [script, String(port)], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  const agent = new Agent();
  for (;;) {
    try {
      await checked(agent, { name: 'direct', base: `http://127.0.0.1:${port}`, headers: {} }, 'GET', '/echo');
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  agent.destroy();
  return { child, port };
}

export async function ports(): Promise<void> {
  const n = envInt('BENCH_N', 500);
  section(`ports: proxied HTTP into an instance vs the same python3 server on the host, same run (N=${n})`);
  const apiKey = `bench_${randomBytes(12).toString('hex')}`;
  // No SSH gateway in this server: it is not measured, and 2222 may be taken (the child reads its env).
  const sshPort = process.env.FAAS_SSH_PORT;
  process.env.FAAS_SSH_PORT = 'off';
  const server = await startServerProcess(apiKey).finally(() => {
    if (sshPort === undefined) delete process.env.FAAS_SSH_PORT;
    else process.env.FAAS_SSH_PORT = sshPort;
  });
  const dir = mkdtempSync(join(tmpdir(), 'faas-bench-ports-'));
  let direct: ChildProcess | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      const text = await res.text();
      let parsed: any;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined; // a proxied answer of the service (startPortServices polls through the proxy)
      }
      return { status: res.status, text, body: parsed };
    };
    // The whole machine, like the direct server: the default 1-core quota would be measured otherwise.
    const created = await call('POST', '/api/v1/instances', { limits: { cpu_cores: availableParallelism() } });
    if (created.status !== 201) throw new Error(`creating an instance: ${created.text}`);
    const id = created.body.id as string;
    await startPortServices(call, id);
    const exposed = await call('POST', `/api/v1/instances/${id}/ports`, { port: HTTP_PORT, token: true });
    if (exposed.status !== 201) throw new Error(`exposing: ${exposed.text}`);
    const started = await startDirectServer(dir);
    direct = started.child;

    const targets: Target[] = [
      { name: 'direct (host, no sandbox)', base: `http://127.0.0.1:${started.port}`, headers: {} },
      // For scale: a new connection (and python thread) per request, what an unpooled hop would cost.
      { name: 'direct, new connection each', base: `http://127.0.0.1:${started.port}`, headers: {}, agent: new Agent({ keepAlive: false, maxSockets: CONCURRENCY }) },
      { name: 'proxy, API key', base: `${server.url}/api/v1/instances/${id}/ports/${HTTP_PORT}`, headers: { authorization: `Bearer ${apiKey}` } },
      { name: 'public URL, port token', base: `${server.url}/p/${id}/${HTTP_PORT}`, headers: { 'x-faas-port-token': exposed.body.token as string } },
    ];

    // Latency: sequential small GETs, the series interleaved so drift hits all alike.
    for (let i = 0; i < WARMUP; i++) for (const t of targets) await checked(agent, t, 'GET', '/echo');
    const samples = targets.map(() => [] as number[]);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < targets.length; k++) {
        const j = (i + k) % targets.length;
        samples[j]!.push((await checked(agent, targets[j]!, 'GET', '/echo')).ms);
      }
    }
    const lat = samples.map(summarize);
    console.log('');
    console.log(`  latency: sequential GET /echo (~0.5 KB JSON answer), keep-alive client`);
    printTable(['series', ...SUMMARY_HEADERS, 'p50 vs direct', 'p99 vs direct'], targets.map((t, i) => [t.name, ...summaryCells(lat[i]!), ratio(lat[i]!.p50, lat[0]!.p50), ratio(lat[i]!.p99, lat[0]!.p99)]));

    // Throughput: CONCURRENCY clients, small GETs.
    const total = n * 4;
    const rps = [] as number[];
    for (const t of targets) {
      await throughput(agent, t, CONCURRENCY * 10);
      rps.push(await throughput(agent, t, total));
    }
    console.log('');
    console.log(`  throughput: ${CONCURRENCY} concurrent clients, ${total} GET /echo each series`);
    printTable(['series', 'requests/s', 'vs direct'], targets.map((t, i) => [t.name, rps[i]!.toFixed(0), ratio(rps[i]!, rps[0]!)]));

    // Bulk: one large download and one large upload at a time, best of LARGE_REPS.
    const upload = randomBytes(LARGE_BYTES);
    const bulk = [] as Array<{ down: number; up: number }>;
    for (const t of targets) {
      let down = 0;
      let up = 0;
      for (let r = 0; r < LARGE_REPS; r++) {
        const d = await checked(agent, t, 'GET', `/big?n=${LARGE_BYTES}`);
        if (d.bytes !== LARGE_BYTES) throw new Error(`${t.name}: download of ${d.bytes} bytes`);
        down = Math.max(down, LARGE_BYTES / 1048576 / (d.ms / 1000));
        const u = await checked(agent, t, 'POST', '/upload', upload);
        up = Math.max(up, LARGE_BYTES / 1048576 / (u.ms / 1000));
      }
      bulk.push({ down, up });
    }
    console.log('');
    console.log(`  bulk: ${LARGE_BYTES / 1048576} MiB body, one request at a time, best of ${LARGE_REPS} (upload includes the service's SHA-256 of the body)`);
    printTable(
      ['series', 'download MB/s', 'vs direct', 'upload MB/s', 'vs direct'],
      targets.map((t, i) => [t.name, bulk[i]!.down.toFixed(0), ratio(bulk[i]!.down, bulk[0]!.down), bulk[i]!.up.toFixed(0), ratio(bulk[i]!.up, bulk[0]!.up)]),
    );
    console.log('');
    console.log(`  proxied p50 overhead: +${ms(lat[2]!.p50 - lat[0]!.p50)} ms (API key), +${ms(lat[3]!.p50 - lat[0]!.p50)} ms (public URL) per request`);
  } finally {
    agent.destroy();
    direct?.kill('SIGKILL');
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
