import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { redactUrl } from '../src/routes/auth.ts';
import { serve } from '../src/serve.ts';
import { HTTP_PORT, PYTHON_HTTP_SERVER, startPortServices, WS_PORT } from './fixtures/port-services.ts';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';
import { until } from './fixtures/wait.ts';

/**
 * End-to-end: port access. The proxy (API key) and exposed ports (public URL, access tokens)
 * reaching services bound to an instance's own loopback, which the host cannot reach.
 */

const FIVE_MB = 5 * 1024 * 1024;

let server: TestServer;
let instance: string;

type Res = { status: number; body: any; text: string };

function assertError(res: Res, status: number, code: string): Record<string, unknown> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body.error.code, code, res.text);
  return res.body.error.details ?? {};
}

async function exec(instanceId: string, script: string): Promise<any> {
  const res = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, { command: ['sh', '-c', script], working_dir: '/tmp' });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

const proxied = (path: string, port = HTTP_PORT, id = instance) => `/api/v1/instances/${id}/ports/${port}${path}`;

/** A raw node:http request (fetch hides framing headers), body from `write`. */
function raw(options: { method: string; url: string; headers?: Record<string, string>; write?: (req: import('node:http').ClientRequest) => void }): Promise<{ res: IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(options.url, { method: options.method, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.write) options.write(req);
    else req.end();
  });
}

function pattern(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i % (251 * 1024)) % 251;
  return out;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  server = await startTestServer({ sshPort: null, portProxyTimeoutMs: 1500 });
  const res = await server.request('POST', '/api/v1/instances', {});
  assert.equal(res.status, 201, res.text);
  instance = res.body.id;
  await startPortServices(server.request, instance);
});

after(async () => {
  await server?.close();
});

describe('proxy with the API key', () => {
  it('reaches a loopback-only service inside the instance that the host cannot reach', async () => {
    await assert.rejects(fetch(`http://127.0.0.1:${HTTP_PORT}/echo`), 'the service must not be reachable from the host');
    const res = await server.request('GET', proxied('/echo/a%20b?x=1&y=%2F'), undefined, { 'x-custom': 'kept' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.method, 'GET');
    assert.equal(res.body.path, '/echo/a%20b?x=1&y=%2F', 'path and query pass byte for byte');
    assert.equal(res.body.headers['x-custom'], 'kept');
    assert.equal(res.body.headers.authorization, undefined, 'the API key never reaches the service');
    assert.equal(res.body.headers.host, `127.0.0.1:${HTTP_PORT}`);
    assert.equal(res.body.headers['x-forwarded-prefix'], `/api/v1/instances/${instance}/ports/${HTTP_PORT}`);
    assert.match(res.body.headers['x-forwarded-host'], /^127\.0\.0\.1:\d+$/);
  });

  it('passes every method, the service\'s status, and HEAD without a body', async () => {
    for (const method of ['POST', 'PUT', 'PATCH']) {
      const res = await server.request(method, proxied('/upload'), 'hello', { 'content-type': 'text/plain' });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual([res.body.method, res.body.bytes], [method, 5]);
    }
    const del = await server.request('DELETE', proxied('/echo'));
    assert.equal(del.body.method, 'DELETE');
    const options = await server.request('OPTIONS', proxied('/'));
    assert.equal(options.status, 204);
    const teapot = await server.request('GET', proxied('/status/418'));
    assert.equal(teapot.status, 418);
    assert.equal(teapot.text, 'status from the service');
    const head = await raw({ method: 'HEAD', url: `${server.url}${proxied('/big?n=12345')}`, headers: { authorization: `Bearer ${server.apiKey}` } });
    assert.equal(head.res.statusCode, 200);
    assert.equal(head.res.headers['content-length'], '12345');
    assert.equal(head.body.length, 0);
  });

  it('streams 5 MB both ways: Content-Length and chunked bodies, Content-Length and chunked answers', async () => {
    const auth = { authorization: `Bearer ${server.apiKey}` };
    const body = randomBytes(FIVE_MB);
    // A sized upload: Content-Length passes through.
    const sized = await raw({ method: 'POST', url: `${server.url}${proxied('/upload')}`, headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(body.length) }, write: (r) => r.end(body) });
    const sizedBody = JSON.parse(sized.body.toString());
    assert.deepEqual([sizedBody.bytes, sizedBody.sha256, sizedBody.content_length], [FIVE_MB, sha256(body), String(FIVE_MB)]);
    // A chunked upload, written in pieces: re-chunked to the service.
    const chunked = await raw({
      method: 'POST',
      url: `${server.url}${proxied('/upload')}`,
      headers: { ...auth, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      write: (r) => {
        for (let i = 0; i < body.length; i += 256 * 1024) r.write(body.subarray(i, i + 256 * 1024));
        r.end();
      },
    });
    const chunkedBody = JSON.parse(chunked.body.toString());
    assert.deepEqual([chunkedBody.bytes, chunkedBody.sha256, chunkedBody.transfer_encoding], [FIVE_MB, sha256(body), 'chunked']);
    // Downloads: with the service's Content-Length, and chunked when it sent none.
    const big = await raw({ method: 'GET', url: `${server.url}${proxied(`/big?n=${FIVE_MB}`)}`, headers: auth });
    assert.equal(big.res.headers['content-length'], String(FIVE_MB));
    assert.equal(sha256(big.body), sha256(pattern(FIVE_MB)));
    const down = await raw({ method: 'GET', url: `${server.url}${proxied(`/chunked?n=${FIVE_MB}`)}`, headers: auth });
    assert.equal(down.res.headers['content-length'], undefined);
    assert.equal(down.res.headers['transfer-encoding'], 'chunked');
    assert.equal(sha256(down.body), sha256(pattern(FIVE_MB)));
  });

  it('streams without buffering: the echo of the first half arrives before the second half is sent', async () => {
    const half = randomBytes(1024 * 1024);
    const received: Buffer[] = [];
    let receivedBytes = 0;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${server.url}${proxied('/stream-echo')}`, { method: 'POST', headers: { authorization: `Bearer ${server.apiKey}`, 'transfer-encoding': 'chunked' } }, (res) => {
        let secondSent = false;
        res.on('data', (c: Buffer) => {
          received.push(c);
          receivedBytes += c.length;
          if (!secondSent && receivedBytes >= half.length) {
            secondSent = true;
            req.end(half);
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.write(half);
      req.flushHeaders();
    });
    assert.equal(receivedBytes, 2 * half.length);
    assert.equal(sha256(Buffer.concat(received)), sha256(Buffer.concat([half, half])));
  });

  it('passes repeated Set-Cookie headers and the client\'s cookies', async () => {
    const res = await raw({ method: 'GET', url: `${server.url}${proxied('/cookies')}`, headers: { authorization: `Bearer ${server.apiKey}`, cookie: 'session=s1' } });
    assert.deepEqual(res.res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
    assert.deepEqual(JSON.parse(res.body.toString()), { cookie: 'session=s1' });
  });

  it('aborts the request to the service when the client goes away', async () => {
    await exec(instance, 'rm -f /tmp/forever-aborted');
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${server.url}${proxied('/forever')}`, { headers: { authorization: `Bearer ${server.apiKey}` } }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > 256 * 1024) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', () => undefined);
      req.on('close', resolve);
      req.end();
      setTimeout(() => reject(new Error('no data from /forever')), 10_000).unref();
    });
    await until('the service seeing the client go away', async () => ((await exec(instance, 'cat /tmp/forever-aborted 2>/dev/null || true')).stdout === 'yes' ? true : undefined), 10_000);
  });

  it('answers 502 PORT_UNREACHABLE when nothing listens, 504 UPSTREAM_TIMEOUT when the service never answers', async () => {
    const res = await fetch(`${server.url}${proxied('/', 9)}`, { headers: { authorization: `Bearer ${server.apiKey}` } });
    const body = (await res.json()) as any;
    assert.equal(res.status, 502);
    assert.equal(body.error.code, 'PORT_UNREACHABLE');
    assert.equal(res.headers.get('x-faas-error-code'), 'PORT_UNREACHABLE', 'proxy errors say they are ours');
    const started = Date.now();
    const slow = await server.request('GET', proxied('/slow'));
    assertError(slow, 504, 'UPSTREAM_TIMEOUT');
    assert.ok(Date.now() - started >= 1400, 'after the configured timeout');
    // A 502 of the service itself carries no such header.
    const own = await fetch(`${server.url}${proxied('/status/502')}`, { headers: { authorization: `Bearer ${server.apiKey}` } });
    assert.equal(own.status, 502);
    assert.equal(own.headers.get('x-faas-error-code'), null);
  });

  it('rejects bad ports, unknown instances and missing keys with their codes', async () => {
    for (const port of ['0', '70000', 'abc', '-1', '1e3']) assertError(await server.request('GET', `/api/v1/instances/${instance}/ports/${port}/`), 400, 'VALIDATION_FAILED');
    assertError(await server.request('GET', proxied('/', HTTP_PORT, 'inst-doesnotexist')), 404, 'INSTANCE_NOT_FOUND');
    const noKey = await fetch(`${server.url}${proxied('/echo')}`);
    assert.equal(noKey.status, 401);
    assert.equal(((await noKey.json()) as any).error.code, 'UNAUTHORIZED');
    assert.equal(noKey.headers.get('x-faas-error-code'), 'UNAUTHORIZED', 'the auth answer on a proxy path is marked as ours too');
  });
});

describe('WebSocket through the proxy', () => {
  function open(url: string, protocols: string[], headers: Record<string, string> = {}): Promise<WebSocket> {
    const ws = new WebSocket(url, protocols, { headers, maxPayload: 64 * 1024 * 1024 });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    });
  }
  const next = (ws: WebSocket) => new Promise<{ data: Buffer; binary: boolean }>((resolve) => ws.once('message', (data, binary) => resolve({ data: data as Buffer, binary })));

  it('passes the service\'s subprotocol choice, text and large binary frames, and the close code', async () => {
    const url = `${server.url.replace('http', 'ws')}${proxied('/socket?room=1', WS_PORT)}`;
    const ws = await open(url, ['chat.v1', 'echo.v2'], { authorization: `Bearer ${server.apiKey}` });
    assert.equal(ws.protocol, 'echo.v2', 'the service chose, not the proxy');
    let reply = next(ws);
    ws.send('hello');
    assert.deepEqual(await reply.then((m) => [m.data.toString(), m.binary]), ['hello', false]);
    // Bigger than @fastify/websocket's 1 MiB limit: the proxy moves bytes, it does not parse frames.
    const blob = randomBytes(3 * 1024 * 1024);
    reply = next(ws);
    ws.send(blob);
    const echoed = await reply;
    assert.equal(echoed.binary, true);
    assert.equal(sha256(echoed.data), sha256(blob));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.close(4001, 'bye');
    assert.equal(await closed, 4001);
  });

  it('refuses an upgrade without the key, and answers 502 for an upgrade to a closed port', async () => {
    await assert.rejects(open(`${server.url.replace('http', 'ws')}${proxied('/', WS_PORT)}`, []), /401/);
    await assert.rejects(open(`${server.url.replace('http', 'ws')}${proxied('/', 9)}`, [], { authorization: `Bearer ${server.apiKey}` }), /502/);
  });

  it('ends when the instance is deleted', async () => {
    const other = (await server.request('POST', '/api/v1/instances', {})).body.id as string;
    await startPortServices(server.request, other);
    const ws = await open(`${server.url.replace('http', 'ws')}${proxied('/', WS_PORT, other)}`, [], { authorization: `Bearer ${server.apiKey}` });
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    assert.equal((await server.request('DELETE', `/api/v1/instances/${other}`)).status, 200);
    await closed;
  });

  it('works on the public URL of an exposed port with its token in the query', async () => {
    const exposed = await server.request('POST', `/api/v1/instances/${instance}/ports`, { port: WS_PORT, token: true });
    assert.equal(exposed.status, 201, exposed.text);
    try {
      const base = `${server.url.replace('http', 'ws')}/p/${instance}/${WS_PORT}/ws`;
      await assert.rejects(open(base, []), /401/);
      const ws = await open(`${base}?faas_token=${exposed.body.token}`, ['echo.v2']);
      const reply = next(ws);
      ws.send('via the public URL');
      assert.equal((await reply).data.toString(), 'via the public URL');
      ws.terminate();
    } finally {
      await server.request('DELETE', `/api/v1/instances/${instance}/ports/${WS_PORT}`);
    }
  });
});

describe('exposed ports', () => {
  const portsPath = () => `/api/v1/instances/${instance}/ports`;
  const publicUrl = (port = HTTP_PORT, id = instance) => `${server.url}/p/${id}/${port}`;

  it('exposes a port without a token: reachable without the API key, listed, then un-exposed (404), while the API route keeps working', async () => {
    const created = await server.request('POST', portsPath(), { port: HTTP_PORT });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.url, `${publicUrl()}/`);
    assert.equal(created.body.token_required, false);
    assert.equal(created.body.token, undefined);
    const res = await fetch(`${publicUrl()}/echo?q=1`);
    assert.equal(res.status, 200);
    const seen = (await res.json()) as any;
    assert.equal(seen.path, '/echo?q=1');
    assert.equal(seen.headers['x-forwarded-prefix'], `/p/${instance}/${HTTP_PORT}`);
    // Without the trailing slash: redirected, like a directory.
    const bare = await fetch(publicUrl(), { redirect: 'manual' });
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.get('location'), `/p/${instance}/${HTTP_PORT}/`);
    assertError(await server.request('POST', portsPath(), { port: HTTP_PORT }), 409, 'PORT_ALREADY_EXPOSED');
    const list = await server.request('GET', portsPath());
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.ports.map((p: any) => [p.port, p.token_required, p.url]),
      [[HTTP_PORT, false, `${publicUrl()}/`]],
    );
    assert.ok(!Number.isNaN(Date.parse(list.body.ports[0].created_at)));
    const one = await server.request('GET', `${portsPath()}/${HTTP_PORT}`);
    assert.equal(one.body.port, HTTP_PORT);
    const removed = await server.request('DELETE', `${portsPath()}/${HTTP_PORT}`);
    assert.equal(removed.status, 204, removed.text);
    const gone = await fetch(`${publicUrl()}/echo`);
    assert.equal(gone.status, 404);
    assert.equal(((await gone.json()) as any).error.code, 'PORT_NOT_EXPOSED');
    assertError(await server.request('DELETE', `${portsPath()}/${HTTP_PORT}`), 404, 'PORT_NOT_EXPOSED');
    assert.equal((await server.request('GET', proxied('/echo'))).status, 200, 'API key holders reach unexposed ports');
  });

  it('enforces access tokens: none 401, wrong 403, header 200, query 200 and sets a path cookie, cookie 200; the service never sees the token', async () => {
    const created = await server.request('POST', portsPath(), { port: HTTP_PORT, token: true });
    assert.equal(created.status, 201, created.text);
    const token: string = created.body.token;
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(created.body.token_required, true);
    const listed = await server.request('GET', portsPath());
    assert.equal(listed.body.ports[0].token, undefined, 'the token is shown once');
    assert.equal(listed.body.ports[0].token_required, true);
    try {
      const none = await fetch(`${publicUrl()}/echo`);
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as any).error.code, 'PORT_TOKEN_REQUIRED');
      const wrong = await fetch(`${publicUrl()}/echo`, { headers: { 'x-faas-port-token': `${token}x` } });
      assert.equal(wrong.status, 403);
      assert.equal(((await wrong.json()) as any).error.code, 'PORT_TOKEN_INVALID');
      const wrongQuery = await fetch(`${publicUrl()}/echo?faas_token=nope`);
      assert.equal(wrongQuery.status, 403);
      // The API key is not a port token.
      assert.equal((await fetch(`${publicUrl()}/echo`, { headers: { 'x-faas-port-token': server.apiKey } })).status, 403);

      const byHeader = await fetch(`${publicUrl()}/echo`, { headers: { 'x-faas-port-token': token, authorization: 'Basic dXNlcjpwdw==' } });
      assert.equal(byHeader.status, 200);
      const headerSeen = (await byHeader.json()) as any;
      assert.equal(headerSeen.headers['x-faas-port-token'], undefined);
      assert.equal(headerSeen.headers.authorization, 'Basic dXNlcjpwdw==', "the service's own credentials pass on the public URL");

      const byQuery = await fetch(`${publicUrl()}/echo?a=1&faas_token=${token}&b=%2F`);
      assert.equal(byQuery.status, 200);
      assert.equal(((await byQuery.json()) as any).path, '/echo?a=1&b=%2F', 'the token is taken out of the query');
      const cookie = byQuery.headers.get('set-cookie')!;
      assert.equal(cookie, `faas_port_token=${token}; Path=/p/${instance}/${HTTP_PORT}/; HttpOnly; SameSite=Lax`);

      const byCookie = await fetch(`${publicUrl()}/echo`, { headers: { cookie: `theirs=1; faas_port_token=${token}` } });
      assert.equal(byCookie.status, 200);
      assert.equal(((await byCookie.json()) as any).headers.cookie, 'theirs=1', 'the token cookie is taken out, the service\'s cookies pass');
    } finally {
      await server.request('DELETE', `${portsPath()}/${HTTP_PORT}`);
    }
  });

  it('treats a percent-encoded /p/ URL as the public route: no way around the exposure or its token', async () => {
    const encoded = (port = HTTP_PORT) => `${server.url}/%70/${instance}/${port}/echo`;
    const unexposed = await fetch(encoded());
    assert.equal(unexposed.status, 404, 'an unexposed port is not reachable without the API key');
    assert.equal(((await unexposed.json()) as any).error.code, 'PORT_NOT_EXPOSED');
    const created = await server.request('POST', portsPath(), { port: HTTP_PORT, token: true });
    assert.equal(created.status, 201, created.text);
    try {
      const none = await fetch(encoded());
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as any).error.code, 'PORT_TOKEN_REQUIRED');
      assert.equal((await fetch(encoded(), { headers: { 'x-faas-port-token': created.body.token } })).status, 200);
    } finally {
      await server.request('DELETE', `${portsPath()}/${HTTP_PORT}`);
    }
  });

  it('takes a token of the caller\'s choosing, and public: false without one generates one', async () => {
    const own = 'my-own-token-0123456789';
    const created = await server.request('POST', portsPath(), { port: HTTP_PORT, token: own });
    assert.equal(created.status, 201, created.text);
    assert.equal((await fetch(`${publicUrl()}/echo`, { headers: { 'x-faas-port-token': own } })).status, 200);
    await server.request('DELETE', `${portsPath()}/${HTTP_PORT}`);
    const generated = await server.request('POST', portsPath(), { port: HTTP_PORT, public: false });
    assert.equal(generated.status, 201, generated.text);
    assert.equal(generated.body.token_required, true);
    assert.equal(typeof generated.body.token, 'string');
    await server.request('DELETE', `${portsPath()}/${HTTP_PORT}`);
  });

  it('rejects bad exposures with clear codes', async () => {
    for (const port of [0, 70_000, 'abc', 80.5]) assertError(await server.request('POST', portsPath(), { port }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', portsPath(), {}), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', portsPath(), { port: HTTP_PORT, token: 'short' }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', portsPath(), { port: HTTP_PORT, token: true, public: true }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', portsPath(), { port: HTTP_PORT, extra: 1 }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/instances/inst-doesnotexist/ports', { port: HTTP_PORT }), 404, 'INSTANCE_NOT_FOUND');
    assertError(await server.request('GET', '/api/v1/instances/inst-doesnotexist/ports'), 404, 'INSTANCE_NOT_FOUND');
    assertError(await server.request('DELETE', `${portsPath()}/abc`), 400, 'VALIDATION_FAILED');
    assertError(await server.request('GET', `${portsPath()}/8123`), 404, 'PORT_NOT_EXPOSED');
    // Public URLs of unknown instances answer as unexposed ports: they reveal nothing.
    const unknown = await fetch(`${publicUrl(HTTP_PORT, 'inst-doesnotexist')}/`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as any).error.code, 'PORT_NOT_EXPOSED');
    assert.equal((await fetch(`${publicUrl(70_000)}/`)).status, 400);
  });

  it('ends with the instance: a deleted instance\'s exposures are removed and its public URLs answer 404', async () => {
    const other = (await server.request('POST', '/api/v1/instances', {})).body.id as string;
    const created = await server.request('POST', `/api/v1/instances/${other}/ports`, { port: 8080 });
    assert.equal(created.status, 201, created.text);
    const unreachable = await fetch(`${publicUrl(8080, other)}/`);
    assert.equal(unreachable.status, 502, 'exposed, but nothing listens');
    assert.equal((await server.request('DELETE', `/api/v1/instances/${other}`)).status, 200);
    const after = await fetch(`${publicUrl(8080, other)}/`);
    assert.equal(after.status, 404);
    assert.equal(((await after.json()) as any).error.code, 'PORT_NOT_EXPOSED');
    const list = await server.request('GET', `/api/v1/instances/${other}/ports`);
    assert.deepEqual(list.body.ports, []);
    assertError(await server.request('POST', `/api/v1/instances/${other}/ports`, { port: 8080 }), 409, 'INSTANCE_NOT_RUNNING');
  });

  it('is described in the OpenAPI document', async () => {
    const doc = (await server.request('GET', '/api/v1/openapi.json')).body;
    for (const path of ['/api/v1/instances/{id}/ports', '/api/v1/instances/{id}/ports/{port}', '/api/v1/instances/{id}/ports/{port}/{*}', '/p/{id}/{port}/{*}']) assert.ok(doc.paths[path], `${path} in ${Object.keys(doc.paths).join(' ')}`);
  });

  it('never logs a port token: faas_token is redacted like access_token', () => {
    assert.equal(redactUrl('/p/inst-1/8000/x?a=1&faas_token=secret&b=2'), '/p/inst-1/8000/x?a=1&faas_token=[redacted]&b=2');
  });
});

describe('exposed ports across a server restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'faas-ports-restart-'));
  const apiKey = `test_${randomBytes(12).toString('hex')}`;
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps exposures and their tokens; the public URL answers again once the instance runs again', async () => {
    const start = () => serve({ host: '127.0.0.1', port: 0, dataDir, apiKey, logLevel: 'silent', config: { sshPort: null } });
    const call = async (base: string, method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      const text = await res.text();
      return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
    };
    let running = await start();
    let id: string;
    let token: string;
    try {
      id = (await call(running.url, 'POST', '/api/v1/instances', {})).body.id;
      const created = await call(running.url, 'POST', `/api/v1/instances/${id}/ports`, { port: 8000, token: true });
      assert.equal(created.status, 201, created.text);
      token = created.body.token;
    } finally {
      await running.close();
    }
    running = await start();
    try {
      const list = await call(running.url, 'GET', `/api/v1/instances/${id}/ports`);
      assert.deepEqual(
        list.body.ports.map((p: any) => [p.port, p.token_required]),
        [[8000, true]],
      );
      // The token still guards it (its hash was kept), and the stopped instance says so.
      assert.equal((await fetch(`${running.url}/p/${id}/8000/`, { headers: { 'x-faas-port-token': 'wrong-token-0123456789' } })).status, 403);
      const stopped = await fetch(`${running.url}/p/${id}/8000/`, { headers: { 'x-faas-port-token': token } });
      assert.equal(stopped.status, 409);
      assert.equal(((await stopped.json()) as any).error.code, 'INSTANCE_NOT_RUNNING');
      // persistent mode starts the stopped instance again; the service comes up; the URL works.
      const script = `cat > /tmp/srv.py <<'PYEOF'\n${PYTHON_HTTP_SERVER}\nPYEOF\nnohup python3 /tmp/srv.py 8000 >/tmp/srv.log 2>&1 &`;
      const ran = await call(running.url, 'POST', '/api/v1/execute', { mode: 'persistent', instance_id: id, command: ['sh', '-c', script], working_dir: '/tmp' });
      assert.equal(ran.status, 200, ran.text);
      const seen = await until('the public URL to answer after the restart', async () => {
        const res = await fetch(`${running.url}/p/${id}/8000/echo`, { headers: { 'x-faas-port-token': token } });
        return res.status === 200 ? ((await res.json()) as any) : undefined;
      });
      assert.equal(seen.path, '/echo');
      assert.equal((await call(running.url, 'DELETE', `/api/v1/instances/${id}`)).status, 200);
      assert.deepEqual((await call(running.url, 'GET', `/api/v1/instances/${id}/ports`)).body.ports, []);
    } finally {
      await running.close();
    }
  });
});
