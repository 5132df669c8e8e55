import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { sendJson, startFakeServer, type FakeServer } from '../test/fixtures/fake-server.ts';
import { DEFAULT_PLATFORM_URL, resolveClientOptions } from './client-options.ts';
import { FaaSPlatformClient } from './faas-platform-client.ts';

describe('resolveClientOptions', () => {
  test('uses the defaults when neither options nor environment say anything', () => {
    const resolved = resolveClientOptions({}, {});
    assert.equal(resolved.platformUrl, DEFAULT_PLATFORM_URL);
    assert.equal(resolved.platformUrl, 'http://127.0.0.1:8080');
    assert.equal(resolved.apiKey, undefined);
    assert.equal(resolved.timeout, 30_000);
    assert.equal(resolved.maxRetries, 3);
  });

  test('falls back to FAAS_URL and FAAS_API_KEY', () => {
    const resolved = resolveClientOptions({}, { FAAS_URL: 'http://h:1', FAAS_API_KEY: 'k' });
    assert.equal(resolved.platformUrl, 'http://h:1');
    assert.equal(resolved.apiKey, 'k');
  });

  test('explicit options win over the environment', () => {
    const resolved = resolveClientOptions({ platformUrl: 'http://a:2', apiKey: 'mine' }, { FAAS_URL: 'http://h:1', FAAS_API_KEY: 'k' });
    assert.equal(resolved.platformUrl, 'http://a:2');
    assert.equal(resolved.apiKey, 'mine');
  });

  test('treats empty environment values as unset', () => {
    const resolved = resolveClientOptions({}, { FAAS_URL: '', FAAS_API_KEY: '' });
    assert.equal(resolved.platformUrl, DEFAULT_PLATFORM_URL);
    assert.equal(resolved.apiKey, undefined);
  });

  test('works where there is no process object (browsers)', () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'process');
    assert.ok(saved);
    Object.defineProperty(globalThis, 'process', { value: undefined, configurable: true, writable: true });
    try {
      assert.equal(resolveClientOptions({}).platformUrl, DEFAULT_PLATFORM_URL);
    } finally {
      Object.defineProperty(globalThis, 'process', saved);
    }
  });
});

describe('FaaSPlatformClient environment fallback', () => {
  let server: FakeServer | undefined;
  const saved = { url: process.env.FAAS_URL, key: process.env.FAAS_API_KEY };

  afterEach(async () => {
    await server?.close();
    server = undefined;
    restore('FAAS_URL', saved.url);
    restore('FAAS_API_KEY', saved.key);
  });

  test('a client built with no options talks to FAAS_URL with FAAS_API_KEY', async () => {
    server = await startFakeServer((_req, res) => sendJson(res, 200, { instances: [] }));
    process.env.FAAS_URL = server.url;
    process.env.FAAS_API_KEY = 'from-env';
    const client = new FaaSPlatformClient();
    assert.equal(client.platformUrl, server.url);
    assert.deepEqual(await client.instances.list(), []);
    assert.equal(server.requests[0]?.headers.authorization, 'Bearer from-env');
  });
});

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
