import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import { FaasError, isFaasError } from '@faas/protocol/errors';
import { resetConnection, sendError, sendJson, startFakeServer, type FakeHandler, type FakeServer } from '../test/fixtures/fake-server.ts';
import { HttpTransport, type HttpTransportOptions } from './http-transport.ts';

let server: FakeServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(handler: FakeHandler, options: Partial<HttpTransportOptions> = {}): Promise<{ server: FakeServer; transport: HttpTransport }> {
  server = await startFakeServer(handler);
  // Tiny backoff so retry tests stay fast; the delays themselves are tested in retry-policy.test.ts.
  const transport = new HttpTransport({ baseUrl: server.url, apiKey: 'test-key', maxRetries: 3, backoff: { baseDelayMs: 1, maxDelayMs: 5 }, ...options });
  return { server, transport };
}

async function rejection(promise: Promise<unknown>): Promise<FaasError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isFaasError(error), `expected a FaasError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the request to fail');
}

describe('HttpTransport requests', () => {
  test('sends the bearer key and a JSON body, and parses the JSON answer', async () => {
    const { server, transport } = await setup((_req, res) => sendJson(res, 201, { ok: true }));
    const answer = await transport.request({ method: 'POST', path: '/api/v1/instances', body: { env_vars: { A: '1' } } });
    assert.deepEqual(answer, { ok: true });
    const [request] = server.requests;
    assert.equal(request?.headers.authorization, 'Bearer test-key');
    assert.equal(request?.headers['content-type'], 'application/json');
    assert.deepEqual(request?.json, { env_vars: { A: '1' } });
  });

  test('keeps a path prefix of the base URL and encodes the query', async () => {
    const { server } = await setup((_req, res) => sendJson(res, 200, {}));
    const transport = new HttpTransport({ baseUrl: `${server.url}/faas/` });
    await transport.request({ method: 'GET', path: '/api/v1/instances', query: { state: 'running', limit: 5, skip: undefined } });
    assert.equal(server.requests[0]?.url, '/faas/api/v1/instances?state=running&limit=5');
  });

  test('turns an error body into a FaasError with its code, status and details', async () => {
    const { transport } = await setup((_req, res) => sendError(res, 404, 'INSTANCE_NOT_FOUND', 'no instance inst-x', { instance_id: 'inst-x' }));
    const error = await rejection(transport.request({ method: 'GET', path: '/api/v1/instances/inst-x' }));
    assert.ok(error instanceof FaasError);
    assert.equal(error.code, 'INSTANCE_NOT_FOUND');
    assert.equal(error.status, 404);
    assert.equal(error.message, 'no instance inst-x');
    assert.deepEqual(error.details, { instance_id: 'inst-x' });
  });

  test('keeps an unknown server code in details and picks a code by status', async () => {
    const { transport } = await setup((_req, res) => sendError(res, 409, 'SOMETHING_NEW', 'newer server'));
    const error = await rejection(transport.request({ method: 'POST', path: '/x' }));
    assert.equal(error.code, 'ID_CONFLICT');
    assert.equal(error.status, 409);
    assert.equal(error.details.server_code, 'SOMETHING_NEW');
  });

  test('turns a non-JSON error page into a FaasError with the real status', async () => {
    const { transport } = await setup((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end('<h1>oops</h1>');
    });
    const error = await rejection(transport.request({ method: 'POST', path: '/x' }));
    assert.equal(error.code, 'INTERNAL_ERROR');
    assert.equal(error.status, 500);
    assert.match(error.message, /oops/);
  });

  test('reports a refused connection as CONNECTION_FAILED', async () => {
    const port = await freePort();
    const transport = new HttpTransport({ baseUrl: `http://127.0.0.1:${port}`, maxRetries: 0 });
    const error = await rejection(transport.request({ method: 'GET', path: '/health' }));
    assert.equal(error.code, 'CONNECTION_FAILED');
  });

  test('gives up after the client timeout with CLIENT_TIMEOUT and does not retry it', async () => {
    const { server, transport } = await setup(() => undefined /* never answers */, { timeoutMs: 100 });
    const started = Date.now();
    const error = await rejection(transport.request({ method: 'GET', path: '/slow' }));
    assert.equal(error.code, 'CLIENT_TIMEOUT');
    assert.ok(Date.now() - started < 2_000);
    assert.equal(server.requests.length, 1);
  });

  test('a per-request timeout of null waits longer than the client timeout', async () => {
    const { transport } = await setup((_req, res) => void setTimeout(() => sendJson(res, 200, { late: true }), 200), { timeoutMs: 50 });
    assert.deepEqual(await transport.request({ method: 'POST', path: '/api/v1/execute', timeoutMs: null }), { late: true });
  });

  test('rejects with the abort reason when the caller aborts, without retrying', async () => {
    const { server, transport } = await setup(() => undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(transport.request({ method: 'GET', path: '/slow', signal: controller.signal }), { name: 'AbortError' });
    assert.equal(server.requests.length, 1);
  });
});

describe('HttpTransport retries', () => {
  test('retries a GET answered 503 until it succeeds', async () => {
    const { server, transport } = await setup((_req, res, index) => {
      if (index < 2) sendError(res, 503, 'CAPACITY_EXHAUSTED', 'busy');
      else sendJson(res, 200, { ok: true });
    });
    assert.deepEqual(await transport.request({ method: 'GET', path: '/api/v1/instances' }), { ok: true });
    assert.equal(server.requests.length, 3);
  });

  test('stops after maxRetries retries and throws the last error', async () => {
    const { server, transport } = await setup((_req, res) => sendError(res, 503, 'SHUTTING_DOWN', 'bye'), { maxRetries: 2 });
    const error = await rejection(transport.request({ method: 'GET', path: '/api/v1/instances' }));
    assert.equal(error.code, 'SHUTTING_DOWN');
    assert.equal(server.requests.length, 3);
  });

  test('retries a 502 from a proxy and a DELETE', async () => {
    const { server, transport } = await setup((_req, res, index) => {
      if (index === 0) {
        res.writeHead(502);
        res.end('bad gateway');
      } else sendJson(res, 200, { ok: true });
    });
    await transport.request({ method: 'DELETE', path: '/api/v1/instances/i-1' });
    assert.equal(server.requests.length, 2);
  });

  test('never retries a 400', async () => {
    const { server, transport } = await setup((_req, res) => sendError(res, 400, 'VALIDATION_FAILED', 'bad'));
    await rejection(transport.request({ method: 'GET', path: '/x' }));
    assert.equal(server.requests.length, 1);
  });

  test('never retries a 404 or a 409', async () => {
    const { server, transport } = await setup((_req, res, index) =>
      index === 0 ? sendError(res, 404, 'EXECUTION_NOT_FOUND', 'no') : sendError(res, 409, 'EXECUTION_FINISHED', 'done'),
    );
    await rejection(transport.request({ method: 'GET', path: '/a' }));
    await rejection(transport.request({ method: 'POST', path: '/b', idempotent: true }));
    assert.equal(server.requests.length, 2);
  });

  test('retries an idempotent POST after a connection reset, with the same body', async () => {
    const { server, transport } = await setup((_req, res, index) => (index === 0 ? resetConnection(res) : sendJson(res, 200, { ok: true })));
    await transport.request({ method: 'POST', path: '/api/v1/execute', body: { id: 'exec-a', code: 'true' }, idempotent: true });
    assert.equal(server.requests.length, 2);
    assert.deepEqual(server.requests[1]?.json, server.requests[0]?.json);
  });

  test('never retries a POST that is not idempotent, even after a connection reset', async () => {
    const { server, transport } = await setup((_req, res) => resetConnection(res));
    const error = await rejection(transport.request({ method: 'POST', path: '/api/v1/instances', body: {} }));
    assert.equal(error.code, 'CONNECTION_FAILED');
    assert.equal(server.requests.length, 1);
  });

  test('never retries a POST that is not idempotent after a 503', async () => {
    const { server, transport } = await setup((_req, res) => sendError(res, 503, 'CAPACITY_EXHAUSTED', 'busy'));
    await rejection(transport.request({ method: 'POST', path: '/api/v1/instances', body: {} }));
    assert.equal(server.requests.length, 1);
  });
});

describe('HttpTransport streams', () => {
  test('the client timeout does not cut a stream once its headers arrived', async () => {
    const { transport } = await setup((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      setTimeout(() => res.end('data: late\n\n'), 150);
    }, { timeoutMs: 50 });
    const stream = await transport.openStream({ method: 'GET', path: '/events' });
    try {
      const text = await new Response(stream.body).text();
      assert.equal(text, 'data: late\n\n');
    } finally {
      stream.close();
    }
  });

  test('asks for text/event-stream', async () => {
    const { server, transport } = await setup((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end();
    });
    const stream = await transport.openStream({ method: 'GET', path: '/events' });
    stream.close();
    assert.equal(server.requests[0]?.headers.accept, 'text/event-stream');
  });
});

/** A port with nothing listening on it. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  assert.ok(address && typeof address === 'object');
  return address.port;
}
