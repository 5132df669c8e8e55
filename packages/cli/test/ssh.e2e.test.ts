/**
 * `faas ssh keys|rotate|revoke|audit` against a real executor, spawned as a user would run them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FaaSPlatformClient } from '@faas/sdk';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { runFaas, runFaasOk, type Run } from './fixtures/run-cli.ts';

let server: Awaited<ReturnType<typeof startTestServer>>;
let client: FaaSPlatformClient;
const scratch = mkdtempSync(join(tmpdir(), 'faas-cli-ssh-'));

before(async () => {
  server = await startTestServer({ sshPort: null });
  client = new FaaSPlatformClient({ platformUrl: server.url, apiKey: server.apiKey });
});

after(async () => {
  await server?.close();
  rmSync(scratch, { recursive: true, force: true });
});

function faas(args: string[]): Promise<Run> {
  return runFaas(server, args);
}

function ok(args: string[]): Promise<string> {
  return runFaasOk(server, args);
}

describe('faas ssh', () => {
  let instance: string;
  let first: string;

  before(async () => {
    instance = (await client.instances.create()).id;
  });

  test('rotate --out saves a 0600 private key ssh-keygen reads, and never prints it', async () => {
    const file = join(scratch, 'id_faas');
    const out = await ok(['ssh', 'rotate', instance, '--out', file, '--expires-in', '2h']);
    assert.ok(!out.includes('PRIVATE KEY'));
    first = /key: +(key-[0-9a-z]{16})/.exec(out)![1]!;
    const fingerprint = /fingerprint: +(SHA256:\S+)/.exec(out)![1]!;
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const pub = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' });
    assert.equal(execFileSync('ssh-keygen', ['-lf', '-'], { input: pub, encoding: 'utf8' }).split(' ')[1], fingerprint);
    const [key] = await client.listSSHKeys(instance);
    assert.equal(key!.expiresAt.getTime() - key!.createdAt.getTime(), 2 * 3_600_000);
  });

  test('rotate --algorithm ecdsa --overlap keeps the old key live; keys lists both; --public-key registers your own', async () => {
    await ok(['ssh', 'rotate', instance, '--algorithm', 'ecdsa', '--overlap', '1h']);
    const own = join(scratch, 'own');
    execFileSync('ssh-keygen', ['-t', 'ed25519', '-N', '', '-q', '-f', own]);
    const out = await ok(['ssh', 'rotate', instance, '--public-key', `${own}.pub`, '--overlap', '1h']);
    assert.ok(!out.includes('private key'));
    const table = await ok(['ssh', 'keys', instance]);
    const lines = table.trim().split('\n');
    assert.match(lines[0]!, /^ID +ALGORITHM +STATE +FINGERPRINT/);
    assert.equal(lines.length, 4);
    assert.match(lines[1]!, /ed25519 +live .*own key/);
    assert.match(lines[2]!, /ecdsa +live/);
    assert.match(lines[3]!, new RegExp(`^${first} +ed25519 +live .*rotated`));
    const json = JSON.parse(await ok(['ssh', 'keys', instance, '--json'])) as Array<{ byo: boolean }>;
    assert.deepEqual(json.map((k) => k.byo), [true, false, false]);
  });

  test('revoke revokes; an unknown key fails with its code and exit 1; audit shows the trail', async () => {
    assert.equal((await ok(['ssh', 'revoke', instance, first])).trim(), `${first} revoked (revoked)`);
    const bad = await faas(['ssh', 'revoke', instance, 'key-0000000000000000']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: SSH_KEY_NOT_FOUND: /);
    const audit = await ok(['ssh', 'audit', instance]);
    const events = audit.trim().split('\n').slice(1).map((l) => l.split(/ +/)[2]);
    assert.deepEqual(events, ['issued', 'issued', 'rotated', 'issued', 'rotated', 'revoked']);
    assert.match(audit, /reason=revoked/);
    const tail = JSON.parse(await ok(['ssh', 'audit', instance, '--json', '--limit', '1', '--after', '5'])) as Array<{ seq: number; event: string }>;
    assert.equal(tail.length, 1);
  });

  test('bad arguments are usage errors (exit 2) or server errors with their code (exit 1)', async () => {
    const algo = await faas(['ssh', 'rotate', instance, '--algorithm', 'dsa']);
    assert.equal(algo.code, 2);
    const dur = await faas(['ssh', 'rotate', instance, '--expires-in', 'soon']);
    assert.equal(dur.code, 2);
    const tooLong = await faas(['ssh', 'rotate', instance, '--expires-in', '400d']);
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stderr, /LIMIT_OUT_OF_RANGE/);
    const missing = await faas(['ssh', 'keys', 'inst-doesnotexist00']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /INSTANCE_NOT_FOUND/);
  });
});
