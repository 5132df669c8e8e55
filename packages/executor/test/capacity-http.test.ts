import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serve } from '../src/serve.ts';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

const OUTPUT_CAP = 64 * 1024;

describe('server limits', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ maxInstances: 2, maxOutputBytes: OUTPUT_CAP });
  });
  after(async () => server?.close());

  it('refuses an instance past maxInstances with 503 CAPACITY_EXHAUSTED, and takes one again after a delete', async () => {
    const a = await server.request('POST', '/api/v1/instances', {});
    const b = await server.request('POST', '/api/v1/instances', {});
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    const c = await server.request('POST', '/api/v1/instances', {});
    assert.equal(c.status, 503);
    assert.equal(c.body.error.code, 'CAPACITY_EXHAUSTED');
    assert.equal(c.body.error.details.max_instances, 2);
    const ephemeral = await server.request('POST', '/api/v1/execute', { code: 'true' });
    assert.equal(ephemeral.status, 503, 'an ephemeral execution needs an instance too');
    assert.equal((await server.request('DELETE', `/api/v1/instances/${a.body.id}`)).status, 200);
    const d = await server.request('POST', '/api/v1/instances', {});
    assert.equal(d.status, 201, d.text);
    await server.request('DELETE', `/api/v1/instances/${b.body.id}`);
    await server.request('DELETE', `/api/v1/instances/${d.body.id}`);
  });

  it('keeps output up to maxOutputBytes, flags the rest as truncated and still counts every byte', async () => {
    const res = await server.request('POST', '/api/v1/execute', { code: "head -c 200000 /dev/zero | tr '\\0' a; echo done >&2" });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.exit_code, 0);
    assert.equal(res.body.output_truncated, true);
    assert.equal(res.body.stdout_bytes, 200_000, 'bytes produced are counted even when not kept');
    assert.ok(res.body.stdout.length <= OUTPUT_CAP, `kept ${res.body.stdout.length} bytes`);
    assert.ok(res.body.stdout.length > OUTPUT_CAP / 2, 'output up to the cap is kept');
    assert.match(res.body.stdout, /^a+$/);
    const events = await server.request('GET', `/api/v1/executions/${res.body.id}/events`);
    const completed = events.text.trim().split('\n\n').map((b) => JSON.parse(b.split('\n').find((l) => l.startsWith('data: '))!.slice(6))).at(-1);
    assert.equal(completed.type, 'completed');
    assert.equal(completed.output_truncated, true);
  });
});

describe('graceful shutdown', () => {
  it('ends running executions as interrupted and records instances as stopped by the shutdown', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'faas-shutdown-'));
    const apiKey = randomBytes(8).toString('hex');
    const call = async (url: string, method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    try {
      const first = await serve({ port: 0, dataDir, apiKey, logLevel: 'silent', config: { sshPort: 0 } });
      const inst = await call(first.url, 'POST', '/api/v1/instances', {});
      const exec = await call(first.url, 'POST', `/api/v1/instances/${inst.body.id}/exec`, { code: 'echo started; sleep 30', background: true });
      assert.equal(exec.status, 202);
      for (let i = 0; i < 100 && (await call(first.url, 'GET', `/api/v1/executions/${exec.body.id}`)).body.stdout !== 'started\n'; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const started = Date.now();
      await first.close();
      assert.ok(Date.now() - started < 10_000, 'shutdown does not wait for the 30 s sleep');

      const second = await serve({ port: 0, dataDir, apiKey, logLevel: 'silent', config: { sshPort: 0 } });
      try {
        const execution = await call(second.url, 'GET', `/api/v1/executions/${exec.body.id}`);
        assert.equal(execution.body.status, 'interrupted');
        assert.equal(execution.body.stdout, 'started\n');
        const instance = await call(second.url, 'GET', `/api/v1/instances/${inst.body.id}`);
        assert.equal(instance.body.state, 'stopped');
        assert.equal(instance.body.state_reason, 'executor_shutdown');
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('one server per data dir', () => {
  it('refuses to start a second server on a data dir in use, and starts once the first is gone', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'faas-lock-'));
    try {
      const first = await serve({ port: 0, dataDir, apiKey: 'k1', logLevel: 'silent', config: { sshPort: 0 } });
      await assert.rejects(serve({ port: 0, dataDir, apiKey: 'k1', logLevel: 'silent', config: { sshPort: 0 } }), (err: { code?: string; message?: string }) => {
        assert.equal(err.code, 'RUNTIME_ERROR');
        assert.match(err.message ?? '', new RegExp(`in use by another faas server \\(pid ${process.pid}\\)`));
        return true;
      });
      // The first one is untouched by the attempt.
      const health = await fetch(`${first.url}/health`);
      assert.equal(health.status, 200);
      await first.close();
      const second = await serve({ port: 0, dataDir, apiKey: 'k1', logLevel: 'silent', config: { sshPort: 0 } });
      await second.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
