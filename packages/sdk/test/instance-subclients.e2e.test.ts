/**
 * An Instance's sub-clients (`instance.ssh`, `.ports`, `.readiness`, `.sessions`) against a real
 * executor: each acts on its own instance, through the same API as the flat client methods.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HTTP_PORT, startPortServices } from '../../executor/test/fixtures/port-services.ts';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { FaaSPlatformClient, type Instance } from '../src/index.ts';

let server: Awaited<ReturnType<typeof startTestServer>>;
let client: FaaSPlatformClient;
let instance: Instance;
let other: Instance;

before(async () => {
  server = await startTestServer({ sshPort: null });
  client = new FaaSPlatformClient({ platformUrl: server.url, apiKey: server.apiKey });
  instance = await client.instances.create();
  other = await client.instances.create();
  await startPortServices(server.request, instance.id);
});

after(async () => {
  await server?.close();
});

test('instance.ssh issues, lists and revokes keys of that instance only', async () => {
  const key = await instance.ssh.rotate();
  assert.match(key.publicKey, /^ssh-ed25519 /);
  assert.ok(key.privateKey?.includes('OPENSSH PRIVATE KEY'));
  assert.equal((await instance.ssh.current()).id, key.id);
  assert.deepEqual((await instance.ssh.list()).map((k) => k.id), [key.id]);
  assert.deepEqual(await other.ssh.list(), []);
  assert.equal((await instance.ssh.revoke(key.id)).id, key.id);
  assert.ok((await instance.ssh.audit()).some((e) => e.event === 'revoked' && e.keyId === key.id));
});

test('instance.ports exposes, fetches through the proxy, lists and un-exposes', async () => {
  const exposed = await instance.ports.expose(HTTP_PORT);
  assert.equal(exposed.port, HTTP_PORT);
  assert.deepEqual((await instance.ports.list()).map((p) => p.port), [HTTP_PORT]);
  assert.deepEqual(await other.ports.list(), []);
  const res = await instance.ports.fetch(HTTP_PORT, '/echo?y=2');
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { path: string }).path, '/echo?y=2');
  await instance.ports.unexpose(HTTP_PORT);
  assert.deepEqual(await instance.ports.list(), []);
});

test('instance.readiness checks its own files', async () => {
  await instance.exec({ command: ['sh', '-c', 'touch /workspace/ready-here'] });
  const here = await instance.readiness.check({ probes: [{ type: 'file', path: '/workspace/ready-here' }] });
  assert.equal(here.ready, true);
  const there = await other.readiness.check({ probes: [{ type: 'file', path: '/workspace/ready-here' }] });
  assert.equal(there.ready, false);
});

test('instance.sessions starts a session in that instance', async () => {
  const session = await instance.sessions.start({ command: ['sleep', '30'] }, { maxDuration: 30_000, heartbeatInterval: 500 });
  try {
    const status = await session.status();
    assert.equal(status.instanceId, instance.id);
    assert.equal(status.state, 'running');
  } finally {
    await session.stop();
    session.close();
  }
});
