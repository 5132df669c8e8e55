import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { ALL_ERROR_CODES, ERROR_STATUS } from '@faas/protocol';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/**
 * End-to-end: malformed, invalid and unauthorised requests get the documented 4xx with a stable
 * code and the error body shape, and the server keeps serving. Also the system routes.
 */

let server: TestServer;
/** A running instance for the exec routes. */
let instanceId: string;

before(async () => {
  server = await startTestServer();
  const res = await server.request('POST', '/api/v1/instances', { metadata: { file: 'bad-input' } });
  assert.equal(res.status, 201, res.text);
  instanceId = res.body.id;
});

after(async () => {
  await server.close();
});

type Res = { status: number; body: any; text: string };

/** Exactly `{error: {code, message, details?}}`, with the status the code maps to. */
function assertError(res: Res, status: number, code: string): Record<string, unknown> | undefined {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.ok(res.body !== undefined, `the error body is JSON: ${res.text}`);
  assert.deepEqual(Object.keys(res.body), ['error']);
  const { error } = res.body;
  assert.equal(error.code, code);
  assert.ok(ALL_ERROR_CODES.includes(error.code), `${error.code} is a stable code`);
  assert.equal(ERROR_STATUS[error.code as keyof typeof ERROR_STATUS], status);
  assert.equal(typeof error.message, 'string');
  assert.ok(error.message.length > 0);
  for (const key of Object.keys(error)) assert.ok(['code', 'message', 'details'].includes(key), `unexpected key ${key} in the error`);
  if ('details' in error) {
    assert.equal(typeof error.details, 'object');
    assert.notEqual(error.details, null);
    assert.ok(!Array.isArray(error.details));
  }
  return error.details;
}

/** VALIDATION_FAILED whose details.errors has an entry about `field` (a path or a message naming it). */
function assertValidationNames(res: Res, field: string): void {
  const details = assertError(res, 400, 'VALIDATION_FAILED');
  const errors = details?.errors as Array<{ path: string; message: string }> | undefined;
  assert.ok(Array.isArray(errors) && errors.length > 0, `details.errors is a list: ${res.text}`);
  for (const e of errors) {
    assert.equal(typeof e.path, 'string');
    assert.equal(typeof e.message, 'string');
  }
  assert.ok(
    errors.some((e) => e.path.includes(field) || e.message.includes(field)),
    `details.errors names ${field}: ${JSON.stringify(errors)}`,
  );
}

const execPath = () => `/api/v1/instances/${instanceId}/exec`;
const post = (path: string, body: unknown, headers?: Record<string, string>) => server.request('POST', path, body, headers);

describe('malformed bodies', () => {
  it('malformed JSON answers 400 INVALID_JSON', async () => {
    for (const path of ['/api/v1/execute', '/api/v1/instances', execPath()]) {
      assertError(await post(path, '{"code": "echo hi"'), 400, 'INVALID_JSON');
    }
    assertError(await post('/api/v1/execute', "{'code': 'single quotes'}"), 400, 'INVALID_JSON');
  });

  it('an unknown field answers 400 VALIDATION_FAILED naming the field', async () => {
    assertValidationNames(await post('/api/v1/execute', { code: 'echo hi', bogus_field: 1 }), 'bogus_field');
    assertValidationNames(await post('/api/v1/instances', { bogus_field: 'x' }), 'bogus_field');
    assertValidationNames(await post(execPath(), { code: 'echo hi', bogus_field: true }), 'bogus_field');
    assertValidationNames(await post('/api/v1/instances', { limits: { memory_mb: 256, disk_mb: 1 } }), 'disk_mb');
  });

  it('wrong types answer 400 VALIDATION_FAILED naming the field', async () => {
    assertValidationNames(await post('/api/v1/execute', { code: 'echo hi', timeout_ms: '5' }), 'timeout_ms');
    assertValidationNames(await post('/api/v1/execute', { command: 'ls' }), 'command');
    assertValidationNames(await post('/api/v1/execute', { code: 'echo hi', env_vars: { A: 1 } }), 'env_vars');
    assertValidationNames(await post('/api/v1/execute', { code: 'echo hi', timeout_ms: 1.5 }), 'timeout_ms');
    assertValidationNames(await post('/api/v1/execute', { code: 'echo hi', background: 'yes' }), 'background');
    assertValidationNames(await post('/api/v1/execute', { code: 'echo hi', language: 'ruby' }), 'language');
    assertValidationNames(await post(execPath(), { command: ['echo', 1] }), 'command');
    assertValidationNames(await post('/api/v1/instances', { limits: { memory_mb: '512' } }), 'memory_mb');
    assertValidationNames(await post('/api/v1/instances', { metadata: { team: 7 } }), 'metadata');
  });

  it('a body that is not an object answers 400 VALIDATION_FAILED', async () => {
    assertError(await post('/api/v1/execute', [{ code: 'echo hi' }]), 400, 'VALIDATION_FAILED');
    assertError(await post('/api/v1/execute', 'null'), 400, 'VALIDATION_FAILED');
  });

  it('both code and command, or neither, answer 400 VALIDATION_FAILED', async () => {
    for (const path of ['/api/v1/execute', execPath()]) {
      assertError(await post(path, { code: 'echo hi', command: ['echo', 'hi'] }), 400, 'VALIDATION_FAILED');
      assertError(await post(path, {}), 400, 'VALIDATION_FAILED');
      assertError(await post(path, { env_vars: { A: 'b' } }), 400, 'VALIDATION_FAILED');
    }
  });

  it('language with command, an empty command or an empty program name answer 400 VALIDATION_FAILED', async () => {
    assertError(await post('/api/v1/execute', { command: ['ls'], language: 'python' }), 400, 'VALIDATION_FAILED');
    assertError(await post('/api/v1/execute', { command: [] }), 400, 'VALIDATION_FAILED');
    assertError(await post('/api/v1/execute', { command: [''] }), 400, 'VALIDATION_FAILED');
    assertError(await post('/api/v1/execute', { code: '' }), 400, 'VALIDATION_FAILED');
  });

  it('a body over the 10 MiB limit answers 413 PAYLOAD_TOO_LARGE', async () => {
    const body = JSON.stringify({ code: `echo ${'x'.repeat(11 * 1024 * 1024)}` });
    assertError(await post('/api/v1/execute', body), 413, 'PAYLOAD_TOO_LARGE');
    assertError(await post('/api/v1/instances', JSON.stringify({ metadata: { a: 'x'.repeat(11 * 1024 * 1024) } })), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a text/plain body answers 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    assertError(await post('/api/v1/execute', 'echo hi', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    assertError(await post('/api/v1/execute', JSON.stringify({ code: 'echo hi' }), { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    assertError(await post('/api/v1/instances', 'a=b', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('invalid values', () => {
  const badNames = ['1A', 'A-B', 'A=B', '', 'A B', 'Ä'];

  it('invalid environment variable names answer 400 INVALID_ENV_VAR naming the variable', async () => {
    for (const name of badNames) {
      const onExecute = assertError(await post('/api/v1/execute', { code: 'true', env_vars: { [name]: 'v' } }), 400, 'INVALID_ENV_VAR');
      assert.equal(onExecute?.name, name);
      assertError(await post('/api/v1/instances', { env_vars: { GOOD: 'ok', [name]: 'v' } }), 400, 'INVALID_ENV_VAR');
      assertError(await post(execPath(), { code: 'true', env_vars: { [name]: 'v' } }), 400, 'INVALID_ENV_VAR');
    }
  });

  it('an environment variable value containing NUL answers 400 INVALID_ENV_VAR', async () => {
    const details = assertError(await post('/api/v1/execute', { code: 'true', env_vars: { A: 'a\u0000b' } }), 400, 'INVALID_ENV_VAR');
    assert.equal(details?.name, 'A');
    assertError(await post('/api/v1/instances', { env_vars: { A: '\u0000' } }), 400, 'INVALID_ENV_VAR');
    assertError(await post(execPath(), { code: 'true', env_vars: { A: 'x\u0000' } }), 400, 'INVALID_ENV_VAR');
  });

  it('a relative working_dir answers 400 VALIDATION_FAILED', async () => {
    assertValidationNames(await post('/api/v1/execute', { code: 'pwd', working_dir: 'tmp' }), 'working_dir');
    assertValidationNames(await post(execPath(), { code: 'pwd', working_dir: './workspace' }), 'working_dir');
  });

  it('limits out of range answer 400 LIMIT_OUT_OF_RANGE naming the limit', async () => {
    // 64 cores, unless this host has that many: then twice its count.
    const tooManyCores = Math.max(64, cpus().length * 2);
    const cases: Array<[Record<string, number>, string]> = [
      [{ memory_mb: 999_999_999 }, 'memory_mb'],
      [{ cpu_cores: tooManyCores }, 'cpu_cores'],
      [{ pids_max: 1 }, 'pids_max'],
    ];
    for (const [limits, name] of cases) {
      const onInstances = assertError(await post('/api/v1/instances', { limits }), 400, 'LIMIT_OUT_OF_RANGE');
      assert.equal(onInstances?.limit, name);
      assert.equal(onInstances?.value, limits[name]);
      const onExecute = assertError(await post('/api/v1/execute', { code: 'true', ...limits }), 400, 'LIMIT_OUT_OF_RANGE');
      assert.equal(onExecute?.limit, name);
    }
  });

  it('timeout_ms above 24 h answers 400 LIMIT_OUT_OF_RANGE; exactly 24 h is accepted', async () => {
    const day = 24 * 3600 * 1000;
    const details = assertError(await post('/api/v1/execute', { code: 'true', timeout_ms: day + 1 }), 400, 'LIMIT_OUT_OF_RANGE');
    assert.equal(details?.limit, 'timeout_ms');
    assert.equal(details?.max, day);
    assertError(await post(execPath(), { code: 'true', timeout_ms: day + 1 }), 400, 'LIMIT_OUT_OF_RANGE');
    const ok = await post(execPath(), { code: 'true', timeout_ms: day });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.exit_code, 0);
  });

  it('a client id with characters outside [a-z0-9-] answers 400 VALIDATION_FAILED', async () => {
    for (const id of ['../../etc', 'a/b', 'UPPER', 'ab', '-leading', 'x'.repeat(64)]) {
      assertValidationNames(await post('/api/v1/instances', { id }), 'id');
    }
    assertValidationNames(await post('/api/v1/execute', { id: '../../etc', code: 'true' }), 'id');
    assertValidationNames(await post(execPath(), { id: 'has space', code: 'true' }), 'id');
  });

  it('an unknown environment answers 404 ENVIRONMENT_NOT_FOUND', async () => {
    const details = assertError(await post('/api/v1/instances', { env: 'no-such-env' }), 404, 'ENVIRONMENT_NOT_FOUND');
    assert.equal(details?.env, 'no-such-env');
    assert.ok(Array.isArray(details?.available) && details.available.includes('host'));
    assertError(await post('/api/v1/execute', { env: 'no-such-env', code: 'true' }), 404, 'ENVIRONMENT_NOT_FOUND');
  });

  it('query parameters out of their schema answer 400 VALIDATION_FAILED', async () => {
    assertError(await server.request('GET', '/api/v1/instances?state=bogus'), 400, 'VALIDATION_FAILED');
    assertError(await server.request('GET', '/api/v1/instances?limit=abc'), 400, 'VALIDATION_FAILED');
    assertError(await server.request('GET', '/api/v1/instances?unknown=1'), 400, 'VALIDATION_FAILED');
  });

  it('a kill request with an unsupported signal answers 400 VALIDATION_FAILED', async () => {
    assertValidationNames(await post('/api/v1/executions/exec-doesnotexist00/kill', { signal: 'SIGSTOP' }), 'signal');
    assertValidationNames(await post('/api/v1/executions/exec-doesnotexist00/kill', { grace_ms: -1 }), 'grace_ms');
  });
});

describe('unknown resources and routes', () => {
  it('unknown instance ids answer 404 INSTANCE_NOT_FOUND naming the id', async () => {
    const id = 'inst-doesnotexist00';
    for (const res of [
      await server.request('GET', `/api/v1/instances/${id}`),
      await server.request('DELETE', `/api/v1/instances/${id}`),
      await post(`/api/v1/instances/${id}/exec`, { code: 'true' }),
      await server.request('GET', `/api/v1/instances/${id}/executions`),
    ]) {
      assert.equal(assertError(res, 404, 'INSTANCE_NOT_FOUND')?.instance_id, id);
    }
  });

  it('unknown execution ids answer 404 EXECUTION_NOT_FOUND naming the id', async () => {
    const id = 'exec-doesnotexist00';
    assert.equal(assertError(await server.request('GET', `/api/v1/executions/${id}`), 404, 'EXECUTION_NOT_FOUND')?.execution_id, id);
    assert.equal(assertError(await post(`/api/v1/executions/${id}/kill`, {}), 404, 'EXECUTION_NOT_FOUND')?.execution_id, id);
  });

  it('an unknown route or method answers 404 ROUTE_NOT_FOUND', async () => {
    assert.equal(assertError(await server.request('GET', '/api/v1/nope'), 404, 'ROUTE_NOT_FOUND')?.method, 'GET');
    assert.equal(assertError(await server.request('PUT', '/api/v1/instances', {}), 404, 'ROUTE_NOT_FOUND')?.method, 'PUT');
    const outside = await fetch(`${server.url}/no-such-page`);
    assertError({ status: outside.status, text: '', body: await outside.json() }, 404, 'ROUTE_NOT_FOUND');
  });
});

describe('authentication', () => {
  const raw = async (path: string, headers: Record<string, string>): Promise<Res> => {
    const res = await fetch(`${server.url}${path}`, { headers });
    const text = await res.text();
    return { status: res.status, text, body: JSON.parse(text) };
  };

  it('a request without Authorization answers 401 UNAUTHORIZED', async () => {
    assertError(await raw('/api/v1/instances', {}), 401, 'UNAUTHORIZED');
    assertError(await raw(`/api/v1/instances/${instanceId}`, {}), 401, 'UNAUTHORIZED');
    const postRes = await fetch(`${server.url}/api/v1/execute`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"code":"echo hi"}' });
    assertError({ status: postRes.status, text: '', body: await postRes.json() }, 401, 'UNAUTHORIZED');
  });

  it('a wrong bearer key answers 401 INVALID_API_KEY', async () => {
    assertError(await raw('/api/v1/instances', { authorization: 'Bearer not-the-key' }), 401, 'INVALID_API_KEY');
    assertError(await raw('/api/v1/instances', { authorization: `Bearer ${server.apiKey}x` }), 401, 'INVALID_API_KEY');
  });

  it('Authorization: Basic (no bearer key) answers 401 UNAUTHORIZED', async () => {
    const basic = `Basic ${Buffer.from(`user:${server.apiKey}`).toString('base64')}`;
    assertError(await raw('/api/v1/instances', { authorization: basic }), 401, 'UNAUTHORIZED');
  });

  it('a percent-encoded spelling of an API path still needs the key (the router decodes it to the same route)', async () => {
    assertError(await raw('/%61pi/v1/instances', {}), 401, 'UNAUTHORIZED');
    assertError(await raw(`/api/v1/%69nstances/${instanceId}`, {}), 401, 'UNAUTHORIZED');
    assertError(await raw('/%61pi/v1/instances', { authorization: 'Bearer not-the-key' }), 401, 'INVALID_API_KEY');
  });

  it('access_token in the query is not accepted outside the streaming routes', async () => {
    assertError(await raw(`/api/v1/instances?access_token=${encodeURIComponent(server.apiKey)}`, {}), 401, 'UNAUTHORIZED');
  });
});

describe('system routes', () => {
  it('GET /health needs no key and reports runtime "bwrap" and its capabilities', async () => {
    const res = await fetch(`${server.url}/health`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as any;
    assert.equal(body.status, 'ok');
    assert.equal(body.runtime, 'bwrap');
    assert.equal(typeof body.version, 'string');
    assert.ok(Number.isInteger(body.uptime_ms) && body.uptime_ms >= 0);
    assert.equal(typeof body.capabilities.memory_snapshots, 'boolean');
    assert.equal(typeof body.capabilities.pty, 'boolean');
    assert.ok(Array.isArray(body.capabilities.network) && body.capabilities.network.includes('loopback'));
    assert.ok(Array.isArray(body.capabilities.limits));
    for (const limit of body.capabilities.limits) assert.ok(['memory', 'pids', 'cpu'].includes(limit), limit);
  });

  it('GET /api/v1/openapi.json is an OpenAPI 3 document listing execute and exec', async () => {
    const res = await server.request('GET', '/api/v1/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.body.openapi, /^3\./);
    assert.equal(typeof res.body.info.title, 'string');
    assert.ok(res.body.paths['/api/v1/execute']?.post, 'POST /api/v1/execute is listed');
    assert.ok(res.body.paths['/api/v1/instances/{id}/exec']?.post, 'POST /api/v1/instances/{id}/exec is listed');
    assertError(await fetch(`${server.url}/api/v1/openapi.json`).then(async (r) => ({ status: r.status, text: '', body: await r.json() })), 401, 'UNAUTHORIZED');
  });

  it('GET /metrics needs no key and is Prometheus text with faas_executions_started_total', async () => {
    const ran = await post('/api/v1/execute', { code: 'true' });
    assert.equal(ran.status, 200);
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^# TYPE faas_executions_started_total counter$/m);
    const sample = /^faas_executions_started_total (\d+(?:\.\d+)?)$/m.exec(text);
    assert.ok(sample, text.slice(0, 500));
    assert.ok(Number(sample[1]) >= 1, `faas_executions_started_total ${sample[1]}`);
  });

  it('GET /api/v1/metrics reports measured instance start latency after executions', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await post('/api/v1/execute', { code: 'true' })).status, 200);
    const res = await server.request('GET', '/api/v1/metrics');
    assert.equal(res.status, 200);
    const { instance_start, exec_start, execute_total } = res.body.latency_ms;
    assert.ok(instance_start.count > 0, JSON.stringify(instance_start));
    assert.equal(typeof instance_start.p50, 'number');
    assert.ok(instance_start.p50 > 0, JSON.stringify(instance_start));
    assert.ok(exec_start.count >= 2 && exec_start.p50 > 0, JSON.stringify(exec_start));
    assert.ok(execute_total.count >= 2 && execute_total.p50 > 0, JSON.stringify(execute_total));
    assert.ok(res.body.executions.started_total >= 2);
    assert.ok(res.body.executions.by_exit_reason.exited >= 2);
    assertError(await fetch(`${server.url}/api/v1/metrics`).then(async (r) => ({ status: r.status, text: '', body: await r.json() })), 401, 'UNAUTHORIZED');
  });
});

describe('after all the bad input', () => {
  it('the server still runs a normal execute, and rejected requests left no instance running', async () => {
    const res = await post('/api/v1/execute', { code: 'echo still serving' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.stdout, 'still serving\n');
    assert.equal(res.body.exit_code, 0);
    const deadline = Date.now() + 10_000;
    let running: string[] = [];
    for (;;) {
      const list = await server.request('GET', '/api/v1/instances?state=running');
      running = list.body.instances.map((i: { id: string }) => i.id);
      if (running.length === 1 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(running, [instanceId]);
  });
});
