/**
 * exposePort / listPorts / unexposePort / portFetch against a real executor, with services
 * running inside an instance.
 */
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { HTTP_PORT, startPortServices } from '../../executor/test/fixtures/port-services.ts';
import { useServerWithInstance } from '../../executor/test/fixtures/server-instance.ts';
import { FaaSPlatformClient, isFaasError } from '../src/index.ts';

const ctx = useServerWithInstance();

describe('ports in the SDK', () => {
  // In the suite, so it runs after the file's own hooks have started the server.
  before(async () => {
    await startPortServices(ctx.server.request, ctx.instance);
  });

  test('portFetch reaches a port through the API-key proxy; the service\'s own statuses are Responses, the server\'s failures FaasErrors', async () => {
    const res = await ctx.client.portFetch(ctx.instance, HTTP_PORT, '/echo?x=1', { headers: { 'x-mine': 'yes' } });
    assert.equal(res.status, 200);
    const seen = (await res.json()) as { path: string; headers: Record<string, string> };
    assert.equal(seen.path, '/echo?x=1');
    assert.equal(seen.headers['x-mine'], 'yes');
    assert.equal(seen.headers.authorization, undefined);
    const own404 = await ctx.client.portFetch(ctx.instance, HTTP_PORT, '/status/404');
    assert.equal(own404.status, 404);
    assert.equal(await own404.text(), 'status from the service');
    await assert.rejects(ctx.client.portFetch(ctx.instance, 9, '/'), (e: unknown) => isFaasError(e) && e.code === 'PORT_UNREACHABLE' && e.status === 502);
    await assert.rejects(ctx.client.portFetch('inst-doesnotexist', HTTP_PORT, '/'), (e: unknown) => isFaasError(e) && e.code === 'INSTANCE_NOT_FOUND');
    await assert.rejects(ctx.client.portFetch(ctx.instance, 0, '/'), (e: unknown) => isFaasError(e) && e.code === 'VALIDATION_FAILED');
    await assert.rejects(ctx.client.portFetch(ctx.instance, HTTP_PORT, 'no-slash'), (e: unknown) => isFaasError(e) && e.code === 'VALIDATION_FAILED');
  });

  test('portFetch streams a request body', async () => {
    const body = randomBytes(2 * 1024 * 1024);
    const res = await ctx.client.portFetch(ctx.instance, HTTP_PORT, '/upload', { method: 'POST', body });
    const got = (await res.json()) as { bytes: number; sha256: string };
    assert.deepEqual([got.bytes, got.sha256], [body.length, createHash('sha256').update(body).digest('hex')]);
  });

  test('exposePort with a token, listPorts, portFetch by the public URL, unexposePort', async () => {
    const exposed = await ctx.client.exposePort(ctx.instance, HTTP_PORT, { token: true });
    assert.equal(exposed.port, HTTP_PORT);
    assert.equal(exposed.url, `${ctx.server.url}/p/${ctx.instance}/${HTTP_PORT}/`);
    assert.equal(exposed.tokenRequired, true);
    assert.ok(exposed.token && exposed.token.length >= 43);
    assert.ok(exposed.createdAt instanceof Date);
    const listed = await ctx.client.listPorts(ctx.instance);
    assert.deepEqual(listed.map((p) => [p.port, p.tokenRequired, p.token]), [[HTTP_PORT, true, undefined]]);
    // The public URL with no API key at all.
    const anonymous = new FaaSPlatformClient({ platformUrl: ctx.server.url, apiKey: '' });
    const res = await anonymous.portFetch(ctx.instance, HTTP_PORT, '/echo', { portToken: exposed.token! });
    assert.equal(res.status, 200);
    await assert.rejects(anonymous.portFetch(ctx.instance, HTTP_PORT, '/echo', { portToken: 'wrong-token-0123456789' }), (e: unknown) => isFaasError(e) && e.code === 'PORT_TOKEN_INVALID' && e.status === 403);
    await assert.rejects(anonymous.portFetch(ctx.instance, HTTP_PORT, '/echo', { portToken: '' }), (e: unknown) => isFaasError(e) && e.code === 'PORT_TOKEN_REQUIRED');
    // Plain fetch works too, with the token as a header.
    assert.equal((await fetch(`${exposed.url}echo`, { headers: { 'x-faas-port-token': exposed.token! } })).status, 200);
    await assert.rejects(ctx.client.exposePort(ctx.instance, HTTP_PORT), (e: unknown) => isFaasError(e) && e.code === 'PORT_ALREADY_EXPOSED');
    await ctx.client.unexposePort(ctx.instance, HTTP_PORT);
    assert.deepEqual(await ctx.client.listPorts(ctx.instance), []);
    await assert.rejects(anonymous.portFetch(ctx.instance, HTTP_PORT, '/echo', { portToken: exposed.token! }), (e: unknown) => isFaasError(e) && e.code === 'PORT_NOT_EXPOSED');
    await assert.rejects(ctx.client.unexposePort(ctx.instance, HTTP_PORT), (e: unknown) => isFaasError(e) && e.code === 'PORT_NOT_EXPOSED');
  });

  test('exposePort without a token is public', async () => {
    const exposed = await ctx.client.exposePort(ctx.instance, HTTP_PORT);
    assert.equal(exposed.tokenRequired, false);
    assert.equal(exposed.token, undefined);
    assert.equal((await fetch(`${exposed.url}echo`)).status, 200);
    await ctx.client.unexposePort(ctx.instance, HTTP_PORT);
  });
});
