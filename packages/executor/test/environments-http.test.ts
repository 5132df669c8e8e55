import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';
import { until } from './fixtures/wait.ts';

/** End-to-end: the environment catalog and warm pools against a real server running bwrap sandboxes. */

/** Host pids whose command line mentions `needle` (an instance id: bwrap binds its dirs by path). */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('environments and warm pools over HTTP', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  const hostPool = async () => (await server.request('GET', '/api/v1/environments')).body.environments.find((e: { name: string }) => e.name === 'host').pool;
  const pooledRecords = async () => (await server.request('GET', '/api/v1/instances?state=running&limit=1000')).body.instances as Array<{ id: string }>;
  const hits = async () => {
    const text = (await server.request('GET', '/metrics')).text;
    return Number(/^faas_pool_hits_total\{env="host"\} (\d+)/m.exec(text)?.[1] ?? 0);
  };

  it('lists the host environment with its tools, versions and a stable identity', async () => {
    const first = await server.request('GET', '/api/v1/environments');
    assert.equal(first.status, 200, first.text);
    const host = first.body.environments.find((e: { name: string }) => e.name === 'host');
    assert.ok(host, 'host listed');
    assert.equal(host.runtime, 'bwrap');
    assert.ok(host.description.length > 0);
    const sh = host.contains.find((t: { name: string }) => t.name === 'sh');
    const python = host.contains.find((t: { name: string }) => t.name === 'python3');
    assert.ok(sh && python, JSON.stringify(host.contains));
    assert.equal(typeof sh.version, 'string');
    assert.match(python.version, /^3\.\d+/);
    assert.equal(python.path, '/usr/bin/python3');
    assert.match(host.identity, /^[0-9a-f]{64}$/);
    assert.deepEqual(host.pool, { target: 0, ready: 0, hits: 0, misses: 0 });
    const second = await server.request('GET', '/api/v1/environments');
    assert.equal(second.body.environments.find((e: { name: string }) => e.name === 'host').identity, host.identity);
  });

  it('rejects bad warm requests', async () => {
    const unknown = await server.request('POST', '/api/v1/environments/nope/warm', { count: 1 });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'ENVIRONMENT_NOT_FOUND');
    for (const body of [{ count: -1 }, { count: 1000 }, { count: 'x' }, { count: 1.5 }, {}, { count: 1, extra: true }]) {
      const res = await server.request('POST', '/api/v1/environments/host/warm', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
    }
  });

  it('warms, hands out a pooled instance that works, refills, serves custom limits cold, and drains', async () => {
    const warm = await server.request('POST', '/api/v1/environments/host/warm', { count: 3 });
    assert.equal(warm.status, 200, warm.text);
    assert.equal(warm.body.env, 'host');
    assert.equal(warm.body.target, 3);
    assert.ok(!Number.isNaN(Date.parse(warm.body.updated_at)));
    await until('3 ready', async () => ((await hostPool()).ready === 3 ? true : undefined), 20_000);
    // Pooled instances are running but not listed.
    assert.equal((await pooledRecords()).length, 0);

    const hitsBefore = await hits();
    const created = await server.request('POST', '/api/v1/instances', { env_vars: { GREETING: 'hi' }, metadata: { who: 'test' } });
    assert.equal(created.status, 201, created.text);
    assert.equal(await hits(), hitsBefore + 1);
    assert.equal((await hostPool()).hits, 1);
    assert.deepEqual(created.body.metadata, { who: 'test' });
    assert.deepEqual(created.body.env_vars, { GREETING: 'hi' });
    const exec = await server.request('POST', `/api/v1/instances/${created.body.id}/exec`, { command: ['sh', '-c', 'echo $GREETING from $(hostname)'] });
    assert.equal(exec.status, 200, exec.text);
    assert.equal(exec.body.stdout, `hi from ${created.body.id}\n`);
    assert.deepEqual((await pooledRecords()).map((r) => r.id), [created.body.id]);
    await until('refilled to 3', async () => ((await hostPool()).ready === 3 ? true : undefined), 20_000);

    const custom = await server.request('POST', '/api/v1/instances', { limits: { memory_mb: 256 } });
    assert.equal(custom.status, 201, custom.text);
    const pool = await hostPool();
    assert.equal(pool.hits, 1);
    assert.equal(pool.misses, 1);
    assert.equal(pool.ready, 3);

    // Ephemeral executes take from the pool too.
    const run = await server.request('POST', '/api/v1/execute', { command: ['echo', 'ok'] });
    assert.equal(run.status, 200, run.text);
    assert.equal(run.body.stdout, 'ok\n');
    assert.equal((await hostPool()).hits, 2);
    await until('refilled to 3', async () => ((await hostPool()).ready === 3 ? true : undefined), 20_000);

    const drained = await server.request('POST', '/api/v1/environments/host/warm', { count: 0 });
    assert.equal(drained.status, 200, drained.text);
    assert.equal(drained.body.target, 0);
    assert.equal(drained.body.ready, 0);
    assert.equal((await hostPool()).ready, 0);
    // Only the two handed-out instances are left running.
    const running = (await server.request('GET', '/api/v1/instances?state=running&limit=1000')).body.instances as Array<{ id: string }>;
    assert.deepEqual(running.map((r) => r.id).sort(), [created.body.id, custom.body.id].sort());
    const m = (await server.request('GET', '/metrics')).text;
    const runningGauge = Number(/^faas_instances_running (\d+)/m.exec(m)?.[1]);
    assert.equal(runningGauge, running.length, 'no pooled instance still counted as running');
    // No sandbox process of any pooled instance is left: only the listed instances have processes.
    for (const id of readdirSync(`${server.dataDir}/instances`)) {
      if (running.some((r) => r.id === id)) continue;
      assert.deepEqual(processesMentioning(id), [], `processes of ${id}`);
    }
  });

  it('measures warm vs cold create latency (client side)', async () => {
    const N = 10;
    const cold: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      const r = await server.request('POST', '/api/v1/instances', {});
      cold.push(performance.now() - t0);
      assert.equal(r.status, 201);
      await server.request('DELETE', `/api/v1/instances/${r.body.id}`);
    }
    await server.request('POST', '/api/v1/environments/host/warm', { count: N });
    await until('pool full', async () => ((await hostPool()).ready === N ? true : undefined), 30_000);
    const warm: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      const r = await server.request('POST', '/api/v1/instances', {});
      warm.push(performance.now() - t0);
      assert.equal(r.status, 201);
      await server.request('DELETE', `/api/v1/instances/${r.body.id}`);
    }
    const pool = await hostPool();
    assert.ok(pool.hits >= N, JSON.stringify(pool));
    console.log(`create latency p50 over ${N}: cold ${median(cold).toFixed(1)} ms, warm ${median(warm).toFixed(1)} ms (client side)`);
    // The verdict is the server's own measure: client-side times on a loaded machine are mostly
    // HTTP and scheduling noise, while a warm create skips the runtime start altogether.
    const metrics = (await server.request('GET', '/metrics')).text;
    const mean = (source: string): number => {
      const sum = Number(new RegExp(`^faas_instance_acquire_seconds_sum\\{[^}]*source="${source}"[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
      const count = Number(new RegExp(`^faas_instance_acquire_seconds_count\\{[^}]*source="${source}"[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
      return (sum / count) * 1000;
    };
    const [warmMs, coldMs] = [mean('warm'), mean('cold')];
    assert.ok(warmMs < coldMs, `server-side acquire: warm ${warmMs} ms must be below cold ${coldMs} ms`);
    await server.request('POST', '/api/v1/environments/host/warm', { count: 0 });
  });
});
