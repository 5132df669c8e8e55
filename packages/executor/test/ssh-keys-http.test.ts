import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sshpk from 'sshpk';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/** End-to-end: SSH keys over HTTP (rotate, current, list, revoke, audit), their files, and their errors. */

let server: TestServer;
const scratch = mkdtempSync(join(tmpdir(), 'faas-ssh-http-'));

before(async () => {
  // No gateway here (its own tests own the port); connection info is checked below with one.
  server = await startTestServer({ sshPort: null });
});

after(async () => {
  await server.close();
  rmSync(scratch, { recursive: true, force: true });
});

type Res = { status: number; body: any; text: string };

function assertError(res: Res, status: number, code: string): Record<string, unknown> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body.error.code, code, res.text);
  assert.ok(res.body.error.message.length > 0);
  return res.body.error.details ?? {};
}

async function createInstance(): Promise<string> {
  const res = await server.request('POST', '/api/v1/instances', {});
  assert.equal(res.status, 201, res.text);
  return res.body.id;
}

async function rotate(instanceId: string, body: Record<string, unknown> = {}): Promise<any> {
  const res = await server.request('POST', `/api/v1/instances/${instanceId}/ssh/rotate`, body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function keys(instanceId: string): Promise<any[]> {
  const res = await server.request('GET', `/api/v1/instances/${instanceId}/ssh/keys`);
  assert.equal(res.status, 200, res.text);
  return res.body.keys;
}

async function auditEvents(instanceId: string): Promise<any[]> {
  const res = await server.request('GET', `/api/v1/instances/${instanceId}/ssh/audit`);
  assert.equal(res.status, 200, res.text);
  return res.body.events;
}

function keygen(args: string[]): string {
  return execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

const keyDir = () => join(server.dataDir, 'ssh', 'keys');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('issuing keys', () => {
  let instance: string;
  before(async () => {
    instance = await createInstance();
  });

  for (const algorithm of ['ed25519', 'rsa', 'ecdsa'] as const) {
    it(`${algorithm}: the private key works with ssh-keygen -y, the fingerprint equals ssh-keygen -lf, the file is 0600 in a 0700 dir`, async () => {
      const { key, connection } = await rotate(instance, { algorithm });
      assert.equal(connection, null);
      assert.equal(key.algorithm, algorithm);
      assert.equal(key.state, 'live');
      assert.equal(key.byo, false);
      const file = join(scratch, `id_${algorithm}`);
      writeFileSync(file, key.private_key, { mode: 0o600 });
      assert.deepEqual(keygen(['-y', '-f', file]).split(' ').slice(0, 2), key.public_key.split(' ').slice(0, 2));
      writeFileSync(`${file}.pub`, key.public_key);
      assert.equal(keygen(['-lf', `${file}.pub`]).split(' ')[1], key.fingerprint);
      assert.equal(statSync(join(keyDir(), key.id)).mode & 0o777, 0o600);
      assert.equal(statSync(keyDir()).mode & 0o777, 0o700);
      assert.equal(statSync(join(server.dataDir, 'ssh')).mode & 0o777, 0o700);
    });
  }

  it('GET .../ssh returns the current key with its private key; the list has no private keys and shows the rotation chain', async () => {
    const current = await server.request('GET', `/api/v1/instances/${instance}/ssh`);
    assert.equal(current.status, 200, current.text);
    const list = await keys(instance);
    assert.equal(current.body.key.id, list[0].id);
    assert.match(current.body.key.private_key, /BEGIN OPENSSH PRIVATE KEY/);
    assert.equal(current.body.connection, null);
    assert.ok(list.every((k) => !('private_key' in k)));
    assert.deepEqual(list.map((k) => k.state), ['live', 'revoked', 'revoked']);
    assert.equal(list[0].rotated_from, list[1].id);
    assert.equal(list[1].rotated_from, list[2].id);
    assert.equal(list[2].rotated_from, null);
    // Only the live key keeps a file.
    assert.deepEqual(readdirSync(keyDir()).filter((n) => list.some((k) => k.id === n)), [list[0].id]);
  });

  it('the audit trail lists issued, rotated and revoked in order, and pages with after', async () => {
    const events = await auditEvents(instance);
    assert.deepEqual(events.map((e) => e.event), ['issued', 'issued', 'rotated', 'revoked', 'issued', 'rotated', 'revoked']);
    assert.equal(events[3].details.reason, 'rotated');
    assert.equal(events[0].instance_id, instance);
    const page = await server.request('GET', `/api/v1/instances/${instance}/ssh/audit?after=${events[4].seq}&limit=1`);
    assert.deepEqual(page.body.events.map((e: any) => e.seq), [events[5].seq]);
  });
});

describe('rotation windows, eviction, revocation, expiry', () => {
  it('overlap_ms keeps the old key live until the window ends', async () => {
    const instance = await createInstance();
    const old = (await rotate(instance)).key;
    const next = (await rotate(instance, { overlap_ms: 1500 })).key;
    let list = await keys(instance);
    assert.deepEqual(list.map((k) => [k.id, k.state]), [[next.id, 'live'], [old.id, 'live']]);
    assert.ok(Date.parse(list[1].revoked_at) > Date.now());
    await sleep(1600);
    list = await keys(instance);
    assert.deepEqual(list.map((k) => [k.id, k.state, k.revoke_reason]), [[next.id, 'live', null], [old.id, 'revoked', 'rotated']]);
  });

  it('a fourth live key evicts the oldest', async () => {
    const instance = await createInstance();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await rotate(instance, { overlap_ms: 3_600_000 })).key.id);
    const list = await keys(instance);
    assert.deepEqual(list.filter((k) => k.state === 'live').map((k) => k.id), ids.slice(1).reverse());
    const evicted = list.find((k) => k.id === ids[0])!;
    assert.equal(evicted.revoke_reason, 'evicted');
    assert.equal(existsSync(join(keyDir(), ids[0]!)), false);
  });

  it('DELETE revokes a key; unknown key ids are SSH_KEY_NOT_FOUND; a key expires after expires_in_ms', async () => {
    const instance = await createInstance();
    const key = (await rotate(instance)).key;
    const revoked = await server.request('DELETE', `/api/v1/instances/${instance}/ssh/keys/${key.id}`);
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.body.state, 'revoked');
    assert.equal(revoked.body.revoke_reason, 'revoked');
    assert.equal(existsSync(join(keyDir(), key.id)), false);
    assertError(await server.request('DELETE', `/api/v1/instances/${instance}/ssh/keys/key-0000000000000000`), 404, 'SSH_KEY_NOT_FOUND');
    assertError(await server.request('GET', `/api/v1/instances/${instance}/ssh`), 404, 'SSH_KEY_NOT_FOUND');
    const short = (await rotate(instance, { expires_in_ms: 500 })).key;
    await sleep(600);
    assert.equal((await keys(instance))[0].state, 'expired');
    assertError(await server.request('GET', `/api/v1/instances/${instance}/ssh`), 404, 'SSH_KEY_NOT_FOUND');
    assert.equal(short.rotated_from, null, 'no live key to rotate from');
  });

  it('deleting the instance revokes its keys (instance_deleted), removes their files, and keeps the audit trail readable', async () => {
    const instance = await createInstance();
    const a = (await rotate(instance)).key;
    const b = (await rotate(instance, { overlap_ms: 3_600_000 })).key;
    const deleted = await server.request('DELETE', `/api/v1/instances/${instance}`);
    assert.equal(deleted.status, 200, deleted.text);
    const list = await keys(instance);
    assert.deepEqual(list.map((k) => [k.state, k.revoke_reason]), [['revoked', 'instance_deleted'], ['revoked', 'instance_deleted']]);
    assert.equal(existsSync(join(keyDir(), a.id)), false);
    assert.equal(existsSync(join(keyDir(), b.id)), false);
    const events = await auditEvents(instance);
    assert.equal(events.filter((e) => e.event === 'revoked' && e.details.reason === 'instance_deleted').length, 2);
    assertError(await server.request('POST', `/api/v1/instances/${instance}/ssh/rotate`, {}), 409, 'INSTANCE_NOT_RUNNING');
  });
});

describe('bring your own key', () => {
  it('registers a public key: no private key is returned or stored; a second copy is SSH_KEY_EXISTS', async () => {
    const instance = await createInstance();
    const file = join(scratch, 'byo');
    keygen(['-t', 'ed25519', '-N', '', '-C', 'me@laptop', '-f', file, '-q']);
    const publicKey = execFileSync('cat', [`${file}.pub`], { encoding: 'utf8' });
    const { key } = await rotate(instance, { public_key: publicKey });
    assert.equal(key.byo, true);
    assert.equal('private_key' in key, false);
    assert.equal(key.fingerprint, keygen(['-lf', `${file}.pub`]).split(' ')[1]);
    assert.equal(existsSync(join(keyDir(), key.id)), false);
    const current = await server.request('GET', `/api/v1/instances/${instance}/ssh`);
    assert.equal('private_key' in current.body.key, false);
    assertError(await server.request('POST', `/api/v1/instances/${instance}/ssh/rotate`, { public_key: publicKey, overlap_ms: 1000 }), 409, 'SSH_KEY_EXISTS');
  });
});

describe('bad input', () => {
  let instance: string;
  before(async () => {
    instance = await createInstance();
  });
  const post = (body: unknown, id = instance) => server.request('POST', `/api/v1/instances/${id}/ssh/rotate`, body);

  it('bad algorithms, durations, keys and fields each get a stable code', async () => {
    assert.deepEqual(assertError(await post({ algorithm: 'dsa' }), 400, 'SSH_ALGORITHM_UNSUPPORTED').supported, ['ed25519', 'rsa', 'ecdsa']);
    assertError(await post({ expires_in_ms: -1 }), 400, 'VALIDATION_FAILED');
    assertError(await post({ overlap_ms: -1 }), 400, 'VALIDATION_FAILED');
    assertError(await post({ expires_in_ms: 'soon' }), 400, 'VALIDATION_FAILED');
    assert.equal(assertError(await post({ expires_in_ms: 400 * 86_400_000 }), 400, 'LIMIT_OUT_OF_RANGE').limit, 'expires_in_ms');
    assertError(await post({ public_key: 'ssh-ed25519 not-base64!' }), 400, 'SSH_KEY_INVALID');
    const dssBlob = Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-dss'), Buffer.alloc(40, 7)]).toString('base64');
    assertError(await post({ public_key: `ssh-dss ${dssBlob}` }), 400, 'SSH_ALGORITHM_UNSUPPORTED');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const shortRsa = sshpk.parsePrivateKey(privateKey, 'pkcs8').toPublic().toString('ssh');
    assert.deepEqual(assertError(await post({ public_key: shortRsa }), 400, 'SSH_ALGORITHM_UNSUPPORTED'), { algorithm: 'rsa', bits: 1024, min_bits: 2048 });
    const leaked = assertError(await post({ public_key: privateKey }), 400, 'SSH_KEY_INVALID');
    assert.deepEqual(leaked, {}, 'the private key is not echoed back');
    assertError(await post({ current_key_id: 'key-0000000000000000' }), 404, 'SSH_KEY_NOT_FOUND');
    assertError(await post({ color: 'blue' }), 400, 'VALIDATION_FAILED');
    assert.deepEqual(await keys(instance), [], 'nothing was issued');
  });

  it('an unknown instance is INSTANCE_NOT_FOUND on every route', async () => {
    const id = 'inst-doesnotexist00';
    assertError(await post({}, id), 404, 'INSTANCE_NOT_FOUND');
    for (const path of ['ssh', 'ssh/keys', 'ssh/audit']) assertError(await server.request('GET', `/api/v1/instances/${id}/${path}`), 404, 'INSTANCE_NOT_FOUND');
    assertError(await server.request('DELETE', `/api/v1/instances/${id}/ssh/keys/key-0000000000000000`), 404, 'INSTANCE_NOT_FOUND');
    assertError(await server.request('GET', `/api/v1/instances/${instance}/ssh/audit?limit=5000`), 400, 'LIMIT_OUT_OF_RANGE');
  });

  it('the routes are in the OpenAPI document', async () => {
    const res = await server.request('GET', '/api/v1/openapi.json');
    for (const path of ['/api/v1/instances/{id}/ssh/rotate', '/api/v1/instances/{id}/ssh', '/api/v1/instances/{id}/ssh/keys', '/api/v1/instances/{id}/ssh/keys/{key_id}', '/api/v1/instances/{id}/ssh/audit']) {
      assert.ok(res.body.paths[path], `missing ${path}`);
    }
  });
});

describe('connection info with a gateway', () => {
  let gatewayServer: TestServer;
  before(async () => {
    gatewayServer = await startTestServer({ sshPort: 0 });
  });
  after(async () => {
    await gatewayServer?.close();
  });

  it("GET .../ssh names the gateway's host, port, host key fingerprint, the instance as user, and a ready-made command", async () => {
    const created = await gatewayServer.request('POST', '/api/v1/instances', {});
    const id = created.body.id;
    const rotated = await gatewayServer.request('POST', `/api/v1/instances/${id}/ssh/rotate`, {});
    assert.equal(rotated.status, 201, rotated.text);
    const { connection } = rotated.body;
    assert.ok(connection, 'a gateway runs, so there is connection info');
    assert.equal(connection.user, id);
    assert.ok(connection.port > 0);
    assert.match(connection.host_key_fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(connection.command, `ssh -i <key file> -p ${connection.port} ${id}@${connection.host}`);
    const current = await gatewayServer.request('GET', `/api/v1/instances/${id}/ssh`);
    assert.deepEqual(current.body.connection, connection);
  });
});
