import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

const ORIGIN = 'https://app.example';

describe('CORS for browser clients', () => {
  let allowed: TestServer;
  let plain: TestServer;
  before(async () => {
    allowed = await startTestServer({ corsOrigins: [ORIGIN] });
    plain = await startTestServer({ corsOrigins: [] });
  });
  after(async () => {
    await allowed?.close();
    await plain?.close();
  });

  const preflight = (server: TestServer, origin: string) =>
    fetch(`${server.url}/api/v1/execute`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });

  it('answers a preflight from a listed origin without a key, allowing the Authorization header', async () => {
    const res = await preflight(allowed, ORIGIN);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), ORIGIN);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /authorization/i);
  });

  it('gives no CORS grant to an origin that is not listed', async () => {
    const res = await preflight(allowed, 'https://evil.example');
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });

  it('marks real responses for the listed origin and still requires the key', async () => {
    const ok = await fetch(`${allowed.url}/api/v1/instances`, { headers: { origin: ORIGIN, authorization: `Bearer ${allowed.apiKey}` } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN);
    const denied = await fetch(`${allowed.url}/api/v1/instances`, { headers: { origin: ORIGIN } });
    assert.equal(denied.status, 401);
    assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
  });

  it('grants nothing cross-origin by default', async () => {
    const res = await fetch(`${plain.url}/api/v1/instances`, { headers: { origin: ORIGIN, authorization: `Bearer ${plain.apiKey}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    const pre = await preflight(plain, ORIGIN);
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
  });
});
