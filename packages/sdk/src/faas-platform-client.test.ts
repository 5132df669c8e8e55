import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { isFaasError } from '@faas/protocol/errors';
import {
  completedEvent,
  outputEvent,
  resetConnection,
  sendJson,
  sseEvent,
  startFakeServer,
  startSse,
  wireExecution,
  wireInstance,
  type FakeHandler,
  type FakeServer,
} from '../test/fixtures/fake-server.ts';
import { FaaSPlatformClient } from './faas-platform-client.ts';

let server: FakeServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(handler: FakeHandler): Promise<{ server: FakeServer; client: FaaSPlatformClient }> {
  server = await startFakeServer(handler);
  return { server, client: new FaaSPlatformClient({ platformUrl: server.url, apiKey: 'k' }) };
}

function path(url: string): string {
  return new URL(url, 'http://x').pathname;
}

describe('FaaSPlatformClient.execute', () => {
  test('sends a snake_case body with a generated id and maps the result to camelCase', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 200, wireExecution({ stdout: 'ok\n', exit_code: 3 })));
    const result = await client.execute({ code: 'echo ok', envVars: { A: '1' }, timeoutMs: 5000, workingDir: '/tmp', memoryMb: 64 });
    const body = server.requests[0]?.json as Record<string, unknown>;
    assert.match(String(body.id), /^exec-[a-z2-7]{16}$/);
    assert.deepEqual({ ...body, id: undefined }, { id: undefined, code: 'echo ok', env_vars: { A: '1' }, timeout_ms: 5000, working_dir: '/tmp', memory_mb: 64 });
    assert.equal(result.stdout, 'ok\n');
    assert.equal(result.exitCode, 3);
    assert.equal(result.instanceId, 'inst-test');
    assert.ok(result.startedAt instanceof Date);
    assert.equal(result.lastSeq, 2);
  });

  test('keeps a caller-given id', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 200, wireExecution()));
    await client.execute({ id: 'my-run-1', command: ['true'] });
    assert.equal((server.requests[0]?.json as { id: string }).id, 'my-run-1');
  });

  test('retries after a connection reset with the same id, so the code runs once', async () => {
    const { server, client } = await setup((_req, res, index) => (index === 0 ? resetConnection(res) : sendJson(res, 200, wireExecution())));
    await client.execute({ code: 'echo once' });
    assert.equal(server.requests.length, 2);
    assert.deepEqual(server.requests[1]?.json, server.requests[0]?.json);
  });

  test('executeEphemeral sends the code with the options', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 200, wireExecution()));
    await client.executeEphemeral('print(1)', { language: 'python' });
    assert.equal((server.requests[0]?.json as { code: string }).code, 'print(1)');
    assert.equal((server.requests[0]?.json as { language: string }).language, 'python');
  });
});

describe('FaaSPlatformClient.executeWithCallbacks', () => {
  test('starts in the background, streams the output live in order, then resolves with the full record', async () => {
    const { server, client } = await setup((req, res) => {
      const route = `${req.method} ${path(req.url)}`;
      if (route === 'POST /api/v1/execute') {
        const id = (req.json as { id: string }).id;
        sendJson(res, 202, { id, instance_id: 'inst-1', status: 'running', events_url: `/api/v1/executions/${id}/events`, stream_url: '' });
      } else if (route.endsWith('/events')) {
        startSse(res);
        res.write(sseEvent(outputEvent(1, 'stdout', 'one\n')));
        res.write(sseEvent(outputEvent(2, 'stderr', 'two\n')));
        res.write(sseEvent({ type: 'progress', seq: 3, time: '2026-12-04T16:00:00.000Z', progress: 50 }));
        res.write(sseEvent(outputEvent(4, 'stdout', 'three\n')));
        res.end(sseEvent(completedEvent(5, 2)));
      } else {
        sendJson(res, 200, wireExecution({ stdout: 'one\nthree\n', stderr: 'two\n', exit_code: 2, last_seq: 5 }));
      }
    });
    const seen: string[] = [];
    let startedId = '';
    const result = await client.executeWithCallbacks(
      { code: 'x' },
      {
        onStart: (id) => (startedId = id),
        onStdout: (text) => seen.push(`out:${text}`),
        onStderr: (text) => seen.push(`err:${text}`),
        onProgress: (progress) => seen.push(`progress:${progress}`),
      },
    );
    assert.deepEqual(seen, ['out:one\n', 'err:two\n', 'progress:50', 'out:three\n']);
    assert.equal(result.exitCode, 2);
    assert.equal(result.stdout, 'one\nthree\n');
    const body = server.requests[0]?.json as { background: boolean; id: string };
    assert.equal(body.background, true);
    assert.equal(startedId, body.id);
    assert.equal(new URL(server.requests[1]?.url ?? '', 'http://x').searchParams.get('after'), '0');
  });

  test('fetches the record again while it still says running after the completed event', async () => {
    let gets = 0;
    const { client } = await setup((req, res) => {
      if (req.method === 'POST') sendJson(res, 202, { id: 'exec-a', instance_id: 'i', status: 'running', events_url: '', stream_url: '' });
      else if (req.url.includes('/events')) {
        startSse(res);
        res.end(sseEvent(completedEvent(1)));
      } else sendJson(res, 200, wireExecution(++gets < 3 ? { status: 'running', exit_code: null, exit_reason: null } : {}));
    });
    const result = await client.executeWithCallbacks({ code: 'x' }, { onStdout: () => undefined });
    assert.equal(result.status, 'completed');
    assert.equal(gets, 3);
  });

  test('rejects with the code of an error event', async () => {
    const { client } = await setup((req, res) => {
      if (req.method === 'POST') sendJson(res, 202, { id: 'exec-a', instance_id: 'i', status: 'running', events_url: '', stream_url: '' });
      else {
        startSse(res);
        res.end(sseEvent({ type: 'error', seq: 1, time: '2026-12-04T16:00:00.000Z', code: 'EXECUTION_INTERRUPTED', message: 'executor restarted' }));
      }
    });
    await assert.rejects(client.executeWithCallbacks({ code: 'x' }, { onStdout: () => undefined }), (error: unknown) => {
      return isFaasError(error) && error.code === 'EXECUTION_INTERRUPTED' && error.details.execution_id === 'exec-a';
    });
  });

  test('rejects with CLIENT_TIMEOUT when the wait passes its timeout', async () => {
    const { client } = await setup((req, res) => {
      if (req.method === 'POST') sendJson(res, 202, { id: 'exec-a', instance_id: 'i', status: 'running', events_url: '', stream_url: '' });
      else startSse(res); // never completes
    });
    await assert.rejects(client.executeWithCallbacks({ code: 'x' }, { onStdout: () => undefined, timeout: 100 }), (error: unknown) => {
      return isFaasError(error) && error.code === 'CLIENT_TIMEOUT';
    });
  });
});

describe('FaaSPlatformClient.instances', () => {
  test('create maps options to the wire and returns an Instance with camelCase data', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 201, wireInstance()));
    const instance = await client.instances.create({ envVars: { FOO: 'bar' }, limits: { memoryMb: 512, pidsMax: 256 } });
    assert.deepEqual(server.requests[0]?.json, { env_vars: { FOO: 'bar' }, limits: { memory_mb: 512, pids_max: 256 } });
    assert.equal(instance.id, 'inst-test');
    assert.deepEqual(instance.limits, { memoryMb: 512, cpuCores: 1, pidsMax: 256 });
    assert.ok(instance.createdAt instanceof Date);
    assert.equal(instance.startDurationMs, 9);
    assert.equal(JSON.parse(JSON.stringify(instance)).envVars.FOO, 'bar');
  });

  test('create is not retried after a connection reset: it could create a second instance', async () => {
    const { server, client } = await setup((_req, res) => resetConnection(res));
    await assert.rejects(client.instances.create(), (error: unknown) => isFaasError(error) && error.code === 'CONNECTION_FAILED');
    assert.equal(server.requests.length, 1);
  });

  test('list sends the filters and wraps each instance', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 200, { instances: [wireInstance({ id: 'a' }), wireInstance({ id: 'b' })] }));
    const list = await client.instances.list({ state: 'running', limit: 2 });
    assert.deepEqual(list.map((i) => i.id), ['a', 'b']);
    assert.equal(server.requests[0]?.url, '/api/v1/instances?state=running&limit=2');
  });

  test('an Instance handle execs, starts, refreshes and deletes through the same client', async () => {
    const { server, client } = await setup((req, res) => {
      const route = `${req.method} ${path(req.url)}`;
      if (route === 'POST /api/v1/instances') sendJson(res, 201, wireInstance({ id: 'inst-1' }));
      else if (route === 'POST /api/v1/instances/inst-1/exec') {
        if ((req.json as { background?: boolean }).background) sendJson(res, 202, { id: 'exec-bg', instance_id: 'inst-1', status: 'running', events_url: '', stream_url: '' });
        else sendJson(res, 200, wireExecution({ instance_id: 'inst-1' }));
      } else if (route === 'GET /api/v1/instances/inst-1') sendJson(res, 200, wireInstance({ id: 'inst-1', state: 'stopped', state_reason: 'executor_restart' }));
      else if (route === 'DELETE /api/v1/instances/inst-1') sendJson(res, 200, wireInstance({ id: 'inst-1', state: 'deleted', state_reason: 'deleted' }));
      else if (route === 'POST /api/v1/executions/exec-bg/kill') sendJson(res, 200, wireExecution({ id: 'exec-bg', exit_reason: 'killed', signal: 'SIGKILL', exit_code: null }));
      else sendJson(res, 404, { error: { code: 'ROUTE_NOT_FOUND', message: route } });
    });
    const instance = await client.instances.create();
    assert.equal((await instance.exec({ command: ['true'] })).instanceId, 'inst-1');
    const handle = await instance.start({ command: ['sleep', '9'] });
    assert.equal(handle.id, 'exec-bg');
    assert.equal((await handle.kill({ signal: 'SIGTERM', graceMs: 100 })).exitReason, 'killed');
    assert.deepEqual(server.requests.at(-1)?.json, { signal: 'SIGTERM', grace_ms: 100 });
    await instance.refresh();
    assert.equal(instance.state, 'stopped');
    assert.equal(instance.stateReason, 'executor_restart');
    await instance.delete();
    assert.equal(instance.state, 'deleted');
  });
});

describe('FaaSPlatformClient system routes', () => {
  test('health and metrics map to camelCase', async () => {
    const percentiles = { count: 1, p50: 2, p90: 3, p99: 4 };
    const { client } = await setup((req, res) =>
      req.url === '/health'
        ? sendJson(res, 200, { status: 'ok', version: '0.1.0', runtime: 'bwrap', capabilities: { memory_snapshots: false, network: ['loopback'], pty: false, limits: ['memory'] }, uptime_ms: 5 })
        : sendJson(res, 200, {
            uptime_ms: 5,
            instances: { running: 1, created_total: 2, failed_total: 0 },
            executions: { running: 0, started_total: 3, by_exit_reason: { exited: 3 } },
            latency_ms: { instance_start: percentiles, exec_start: percentiles, execute_total: percentiles },
          }),
    );
    const health = await client.health();
    assert.equal(health.capabilities.memorySnapshots, false);
    assert.equal(health.uptimeMs, 5);
    const metrics = await client.metrics();
    assert.equal(metrics.instances.createdTotal, 2);
    assert.equal(metrics.executions.byExitReason.exited, 3);
    assert.deepEqual(metrics.latencyMs.executeTotal, percentiles);
  });
});
