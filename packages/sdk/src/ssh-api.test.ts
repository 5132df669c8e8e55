import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { isFaasError } from '@faas/protocol/errors';
import { resetConnection, sendError, sendJson, startFakeServer, type FakeHandler, type FakeServer } from '../test/fixtures/fake-server.ts';
import { FaaSPlatformClient } from './faas-platform-client.ts';

let server: FakeServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(handler: FakeHandler): Promise<{ server: FakeServer; client: FaaSPlatformClient }> {
  server = await startFakeServer(handler);
  return { server, client: new FaaSPlatformClient({ platformUrl: server.url, apiKey: 'k', maxRetries: 2 }) };
}

const T0 = '2026-12-04T16:00:00.000Z';
const T1 = '2027-01-03T16:00:00.000Z';

function wireKey(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'key-0000000000000001',
    instance_id: 'inst-1',
    algorithm: 'ed25519',
    public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPunSI4ocBZY/HIX3NHd6+jw6qbACsY+PaNv0D/kN9/Y faas:inst-1',
    fingerprint: 'SHA256:nndIRDTTbhfi1Q8AuufkydE3Si8XmuN4cb+1vvcIiNE',
    created_at: T0,
    expires_at: T1,
    rotated_from: null,
    revoked_at: null,
    revoke_reason: null,
    byo: false,
    auto_rotate_before_ms: null,
    state: 'live',
    ...overrides,
  };
}

const CONNECTION = { host: '127.0.0.1', port: 2222, user: 'inst-1', host_key_fingerprint: 'SHA256:host', command: 'ssh -i <key file> -p 2222 inst-1@127.0.0.1' };

describe('rotateSSHKey', () => {
  test('sends the options as snake_case and maps the key, its private key and the connection to camelCase', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 201, { key: wireKey({ private_key: 'PRIV', rotated_from: 'key-0000000000000000' }), connection: CONNECTION }));
    const key = await client.rotateSSHKey('inst-1', { algorithm: 'rsa', expiresInMs: 1000, overlapMs: 50, currentKeyId: 'key-0000000000000000', autoRotateBeforeMs: 10 });
    assert.equal(server.requests[0]!.method, 'POST');
    assert.equal(server.requests[0]!.url, '/api/v1/instances/inst-1/ssh/rotate');
    assert.deepEqual(server.requests[0]!.json, { algorithm: 'rsa', expires_in_ms: 1000, overlap_ms: 50, current_key_id: 'key-0000000000000000', auto_rotate_before_ms: 10 });
    assert.equal(key.privateKey, 'PRIV');
    assert.equal(key.rotatedFrom, 'key-0000000000000000');
    assert.deepEqual(key.createdAt, new Date(T0));
    assert.deepEqual(key.expiresAt, new Date(T1));
    assert.equal('revokedAt' in key, false);
    assert.deepEqual(key.connection, { host: '127.0.0.1', port: 2222, user: 'inst-1', hostKeyFingerprint: 'SHA256:host', command: CONNECTION.command });
  });

  test('an empty options object sends an empty body; a bring-your-own key sends public_key', async () => {
    const { server, client } = await setup((_req, res) => sendJson(res, 201, { key: wireKey({ byo: true }), connection: null }));
    const key = await client.rotateSSHKey('inst-1');
    await client.rotateSSHKey('inst-1', { publicKey: 'ssh-ed25519 AAAA me' });
    assert.deepEqual(server.requests[0]!.json, {});
    assert.deepEqual(server.requests[1]!.json, { public_key: 'ssh-ed25519 AAAA me' });
    assert.equal(key.privateKey, undefined);
    assert.equal(key.connection, null);
  });

  test('is not retried after a dropped connection (it would issue a second key)', async () => {
    const { server, client } = await setup((_req, res) => resetConnection(res));
    await assert.rejects(client.rotateSSHKey('inst-1'), (err: unknown) => isFaasError(err) && err.code === 'CONNECTION_FAILED');
    assert.equal(server.requests.length, 1);
  });

  test('server errors arrive as FaasError with their code and details', async () => {
    const { client } = await setup((_req, res) => sendError(res, 400, 'SSH_ALGORITHM_UNSUPPORTED', 'no', { algorithm: 'dsa' }));
    await assert.rejects(client.rotateSSHKey('inst-1', { algorithm: 'dsa' as 'rsa' }), (err: unknown) => isFaasError(err) && err.code === 'SSH_ALGORITHM_UNSUPPORTED' && err.status === 400 && err.details.algorithm === 'dsa');
  });
});

describe('getSSHKey, listSSHKeys, revokeSSHKey, sshAudit', () => {
  test('call their routes with encoded ids and map the answers', async () => {
    const { server, client } = await setup((req, res) => {
      if (req.url.endsWith('/ssh')) return sendJson(res, 200, { key: wireKey({ private_key: 'PRIV' }), connection: null });
      if (req.url.endsWith('/ssh/keys')) return sendJson(res, 200, { keys: [wireKey(), wireKey({ id: 'key-2', state: 'revoked', revoked_at: T0, revoke_reason: 'rotated' })] });
      if (req.method === 'DELETE') return sendJson(res, 200, wireKey({ state: 'revoked', revoked_at: T0, revoke_reason: 'revoked' }));
      return sendJson(res, 200, {
        events: [{ seq: 7, at: T0, event: 'login_failed', instance_id: 'inst-1', key_id: null, fingerprint: 'SHA256:x', client_address: '10.0.0.1:5', details: { reason: 'expired', method: 'publickey' } }],
      });
    });
    const current = await client.getSSHKey('inst 1');
    assert.equal(current.privateKey, 'PRIV');
    const list = await client.listSSHKeys('inst-1');
    assert.deepEqual(list.map((k) => [k.state, k.revokeReason, k.revokedAt?.toISOString()]), [['live', undefined, undefined], ['revoked', 'rotated', T0]]);
    const revoked = await client.revokeSSHKey('inst-1', 'key/1');
    assert.equal(revoked.state, 'revoked');
    const events = await client.sshAudit('inst-1', { after: 6, limit: 10 });
    assert.deepEqual(events, [{ seq: 7, at: new Date(T0), event: 'login_failed', instanceId: 'inst-1', keyId: null, fingerprint: 'SHA256:x', clientAddress: '10.0.0.1:5', details: { reason: 'expired', method: 'publickey' } }]);
    assert.deepEqual(server.requests.map((r) => `${r.method} ${r.url}`), [
      'GET /api/v1/instances/inst%201/ssh',
      'GET /api/v1/instances/inst-1/ssh/keys',
      'DELETE /api/v1/instances/inst-1/ssh/keys/key%2F1',
      'GET /api/v1/instances/inst-1/ssh/audit?after=6&limit=10',
    ]);
  });

  test('getSSHKey with no live key rejects with SSH_KEY_NOT_FOUND', async () => {
    const { client } = await setup((_req, res) => sendError(res, 404, 'SSH_KEY_NOT_FOUND', 'no live key'));
    await assert.rejects(client.getSSHKey('inst-1'), (err: unknown) => isFaasError(err) && err.code === 'SSH_KEY_NOT_FOUND');
  });
});
