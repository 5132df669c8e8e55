import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { FaasError, isFaasError } from '@faas/protocol';
import pino from 'pino';
import { blobOfPublicKey, generateSshKey } from '../ssh/key-material.ts';
import { PrivateKeyFiles } from '../ssh/private-key-files.ts';
import { openSqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { InstanceRecord, Store } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';
import { SshKeyService, type IssuedSshKey, type SshKeyCheck, type SshKeyServiceDeps } from './ssh-key-service.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Wall time that moves only when told. */
class FakeClock implements Clock {
  t = Date.UTC(2026, 11, 4, 12, 0, 0);
  now(): Date {
    return new Date(this.t);
  }
  monotonicMs(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

interface Fixture {
  store: Store;
  clock: FakeClock;
  files: PrivateKeyFiles;
  service: SshKeyService;
  logLines: string[];
  dir: string;
}

let f: Fixture;
let uid = 200_000;

async function setup(config: Partial<SshKeyServiceDeps['config']> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'faas-ssh-keys-'));
  const store = await openSqliteStore({ path: ':memory:' });
  const clock = new FakeClock();
  const files = await PrivateKeyFiles.open(join(dir, 'ssh', 'keys'));
  const logLines: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, done) => (logLines.push(chunk.toString()), done()) }));
  const instances = {
    get: async (id: string): Promise<InstanceRecord> => {
      const record = await store.instances.get(id);
      if (record === undefined) throw new FaasError('INSTANCE_NOT_FOUND', `no instance with id ${id}`, { instance_id: id });
      return record;
    },
  };
  const service = new SshKeyService({
    store,
    instances,
    files,
    clock,
    logger,
    config: { sshKeyTtlMs: 30 * DAY, sshKeyMaxTtlMs: 365 * DAY, sshMaxKeysPerInstance: 3, ...config },
  });
  return { store, clock, files, service, logLines, dir };
}

async function instance(state: InstanceRecord['state'] = 'running'): Promise<string> {
  const id = `inst-${(uid++).toString(36)}`;
  await f.store.instances.insert({
    id,
    state,
    stateReason: null,
    env: 'host',
    runtime: 'bwrap',
    envVars: {},
    limits: { memoryMb: 512, cpuCores: 1, pidsMax: 256 },
    metadata: {},
    hostUid: uid,
    nodeId: 'node-1',
    createdAt: f.clock.now(),
    startedAt: f.clock.now(),
    stoppedAt: null,
    startDurationMs: 1,
    sourceSnapshotId: null,
    lastSnapshotId: null,
    functionId: null,
    pooled: false,
  });
  return id;
}

async function rejectsCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isFaasError(err), String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const events = async (id: string) => (await f.service.audit(id, { limit: 1000 })).map((e) => `${e.event}${e.details.reason ? `:${String(e.details.reason)}` : ''}`);
const blob = (publicKey: string) => blobOfPublicKey(publicKey);
const reason = (check: SshKeyCheck): string => (check.ok ? 'ok' : check.reason);
const keyFile = (keyId: string) => join(f.files.dir, keyId);

async function teardown(): Promise<void> {
  await f.service.stop();
  await f.store.close();
  rmSync(f.dir, { recursive: true, force: true });
}

/** A fresh fixture with other settings, in place of the one beforeEach made. */
async function reset(config: Partial<SshKeyServiceDeps['config']>): Promise<void> {
  await teardown();
  f = await setup(config);
}

beforeEach(async () => {
  f = await setup();
});
afterEach(teardown);

describe('issue and rotation', () => {
  test('the first rotate issues an ed25519 key whose private half is a 0600 file, returned again by current()', async () => {
    const id = await instance();
    const issued = await f.service.rotate(id);
    assert.equal(issued.key.algorithm, 'ed25519');
    assert.equal(issued.key.rotatedFrom, null);
    assert.equal(issued.key.state, 'live');
    assert.equal(issued.key.expiresAt.getTime() - issued.key.createdAt.getTime(), 30 * DAY);
    assert.match(issued.key.id, /^key-[0-9a-z]{16}$/);
    assert.equal(statSync(keyFile(issued.key.id)).mode & 0o777, 0o600);
    const current = await f.service.current(id);
    assert.equal(current.key.id, issued.key.id);
    assert.equal(current.privateKey, issued.privateKey);
    assert.deepEqual(await events(id), ['issued']);
  });

  test('each rotation chains rotated_from and, with no overlap, revokes the old key at once and removes its file', async () => {
    const id = await instance();
    const first = await f.service.rotate(id);
    f.clock.advance(1000);
    const second = await f.service.rotate(id, { algorithm: 'ecdsa' });
    f.clock.advance(1000);
    const third = await f.service.rotate(id, { algorithm: 'rsa' });
    assert.equal(second.key.rotatedFrom, first.key.id);
    assert.equal(third.key.rotatedFrom, second.key.id);
    assert.equal(third.key.algorithm, 'rsa');
    const list = await f.service.list(id);
    assert.deepEqual(list.map((k) => [k.id, k.state, k.revokeReason]), [
      [third.key.id, 'live', null],
      [second.key.id, 'revoked', 'rotated'],
      [first.key.id, 'revoked', 'rotated'],
    ]);
    assert.equal(existsSync(keyFile(first.key.id)), false);
    assert.equal(existsSync(keyFile(second.key.id)), false);
    assert.deepEqual((await f.service.check(id, blob(first.key.publicKey))).ok, false);
    assert.deepEqual(await events(id), ['issued', 'issued', 'rotated', 'revoked:rotated', 'issued', 'rotated', 'revoked:rotated']);
  });

  test('the overlap window keeps the old key valid until it ends, then it is refused and its revocation audited', async () => {
    const id = await instance();
    const old = await f.service.rotate(id);
    const next = await f.service.rotate(id, { overlapMs: 5 * MINUTE });
    assert.equal((await f.service.check(id, blob(old.key.publicKey))).ok, true);
    assert.equal((await f.service.current(id)).key.id, next.key.id);
    f.clock.advance(5 * MINUTE - 1);
    assert.equal((await f.service.check(id, blob(old.key.publicKey))).ok, true);
    assert.ok(existsSync(keyFile(old.key.id)));
    f.clock.advance(1);
    assert.deepEqual(await f.service.check(id, blob(old.key.publicKey)), { ok: false, fingerprint: old.key.fingerprint, reason: 'revoked' });
    assert.equal(existsSync(keyFile(old.key.id)), false);
    assert.equal((await f.service.check(id, blob(next.key.publicKey))).ok, true);
    const audit = await f.service.audit(id);
    const revoked = audit.find((e) => e.event === 'revoked')!;
    assert.equal(revoked.keyId, old.key.id);
    assert.deepEqual(revoked.details, { reason: 'rotated', effective_at: new Date(f.clock.t).toISOString() });
    assert.deepEqual(audit.find((e) => e.event === 'rotated')!.details, { rotated_from: old.key.id, overlap_ms: 5 * MINUTE, automatic: false });
    // Noticed once: the sweep finds nothing more to record.
    assert.equal((await f.service.sweep()).retired, 0);
  });

  test('current_key_id names the key replaced; an unknown one is SSH_KEY_NOT_FOUND and issues nothing', async () => {
    const id = await instance();
    const a = await f.service.rotate(id);
    const b = await f.service.rotate(id, { overlapMs: DAY });
    const c = await f.service.rotate(id, { currentKeyId: a.key.id });
    assert.equal(c.key.rotatedFrom, a.key.id);
    const states = Object.fromEntries((await f.service.list(id)).map((k) => [k.id, k.state]));
    assert.deepEqual(states, { [a.key.id]: 'revoked', [b.key.id]: 'live', [c.key.id]: 'live' });
    await rejectsCode(f.service.rotate(id, { currentKeyId: 'key-0000000000000000' }), 'SSH_KEY_NOT_FOUND');
    assert.equal((await f.service.list(id)).length, 3);
    assert.deepEqual(await f.files.list(), [b.key.id, c.key.id].sort());
  });

  test('beyond the maximum of live keys the oldest is revoked (evicted)', async () => {
    const id = await instance();
    const keys: IssuedSshKey[] = [];
    for (let i = 0; i < 4; i++) {
      keys.push(await f.service.rotate(id, { overlapMs: DAY }));
      f.clock.advance(10);
    }
    const list = await f.service.list(id);
    assert.equal(list.filter((k) => k.state === 'live').length, 3);
    const oldest = list.find((k) => k.id === keys[0]!.key.id)!;
    assert.equal(oldest.state, 'revoked');
    assert.equal(oldest.revokeReason, 'evicted');
    assert.equal(existsSync(keyFile(oldest.id)), false);
    assert.equal((await f.service.check(id, blob(keys[0]!.key.publicKey))).ok, false);
    assert.ok((await events(id)).includes('revoked:evicted'));
  });
});

describe('expiry', () => {
  test('a key past expires_in_ms is refused as expired; check and sweep record it once and remove the file', async () => {
    const id = await instance();
    const key = await f.service.rotate(id, { expiresInMs: 10_000 });
    f.clock.advance(9_999);
    assert.equal((await f.service.check(id, blob(key.key.publicKey))).ok, true);
    f.clock.advance(1);
    assert.deepEqual(await f.service.check(id, blob(key.key.publicKey)), { ok: false, fingerprint: key.key.fingerprint, reason: 'expired' });
    assert.equal(existsSync(keyFile(key.key.id)), false);
    assert.equal((await f.service.sweep()).retired, 0);
    assert.deepEqual(await events(id), ['issued', 'expired']);
    await rejectsCode(f.service.current(id), 'SSH_KEY_NOT_FOUND');
    assert.equal((await f.service.list(id))[0]!.state, 'expired');
  });

  test('the sweep notices expiry without any login attempt', async () => {
    const id = await instance();
    const key = await f.service.rotate(id, { expiresInMs: MINUTE });
    f.clock.advance(MINUTE);
    assert.deepEqual(await f.service.sweep(), { retired: 1, rotated: 0 });
    assert.equal(existsSync(keyFile(key.key.id)), false);
    assert.deepEqual(await events(id), ['issued', 'expired']);
  });

  test('start() runs the sweep on a timer; stop() ends it', async () => {
    const id = await instance();
    await f.service.rotate(id, { expiresInMs: MINUTE });
    f.clock.advance(MINUTE);
    f.service.start(10);
    for (let i = 0; i < 100 && (await events(id)).length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await f.service.stop();
    assert.deepEqual(await events(id), ['issued', 'expired']);
  });

  test('automatic rotation issues a successor before expiry; the old key stays valid until it expires', async () => {
    await reset({ sshAutoRotateBeforeMs: 10 * MINUTE });
    const id = await instance();
    const old = await f.service.rotate(id, { expiresInMs: 60 * MINUTE });
    assert.equal(old.key.autoRotateBeforeMs, 10 * MINUTE);
    f.clock.advance(49 * MINUTE);
    assert.equal((await f.service.sweep()).rotated, 0);
    f.clock.advance(MINUTE);
    assert.equal((await f.service.sweep()).rotated, 1);
    assert.equal((await f.service.sweep()).rotated, 0, 'one successor, not one per sweep');
    const current = await f.service.current(id);
    assert.equal(current.key.rotatedFrom, old.key.id);
    assert.equal(current.key.expiresAt.getTime() - current.key.createdAt.getTime(), 60 * MINUTE);
    assert.ok(current.privateKey?.includes('OPENSSH PRIVATE KEY'));
    assert.equal((await f.service.check(id, blob(old.key.publicKey))).ok, true);
    f.clock.advance(10 * MINUTE);
    assert.equal(reason(await f.service.check(id, blob(old.key.publicKey))), 'expired');
    const rotated = (await f.service.audit(id)).find((e) => e.event === 'rotated')!;
    assert.equal(rotated.details.automatic, true);
  });

  test('bring-your-own keys are never rotated automatically', async () => {
    await reset({ sshAutoRotateBeforeMs: 10 * MINUTE });
    const id = await instance();
    const own = await generateSshKey('ed25519', 'me');
    const key = await f.service.rotate(id, { publicKey: own.publicKey, expiresInMs: 60 * MINUTE });
    assert.equal(key.key.autoRotateBeforeMs, null);
    f.clock.advance(55 * MINUTE);
    assert.equal((await f.service.sweep()).rotated, 0);
    await rejectsCode(f.service.rotate(id, { publicKey: (await generateSshKey('ed25519', 'x')).publicKey, autoRotateBeforeMs: MINUTE }), 'VALIDATION_FAILED');
  });
});

describe('revoke, bring-your-own, check', () => {
  test('revoke ends a key at once, removes its file, and is refused for unknown or foreign key ids', async () => {
    const id = await instance();
    const other = await instance();
    const key = await f.service.rotate(id);
    const foreign = await f.service.rotate(other);
    const revoked = await f.service.revoke(id, key.key.id);
    assert.equal(revoked.state, 'revoked');
    assert.equal(revoked.revokeReason, 'revoked');
    assert.equal(existsSync(keyFile(key.key.id)), false);
    assert.equal(reason(await f.service.check(id, blob(key.key.publicKey))), 'revoked');
    assert.equal((await f.service.revoke(id, key.key.id)).state, 'revoked', 'revoking again changes nothing');
    await rejectsCode(f.service.revoke(id, 'key-0000000000000000'), 'SSH_KEY_NOT_FOUND');
    await rejectsCode(f.service.revoke(id, foreign.key.id), 'SSH_KEY_NOT_FOUND');
    assert.deepEqual(await events(id), ['issued', 'revoked:revoked']);
  });

  test('a bring-your-own key is registered without any private key file and logs in by its blob', async () => {
    const id = await instance();
    const own = await generateSshKey('rsa', 'me@laptop');
    const issued = await f.service.rotate(id, { publicKey: own.publicKey });
    assert.equal(issued.privateKey, null);
    assert.equal(issued.key.byo, true);
    assert.equal(issued.key.algorithm, 'rsa');
    assert.equal(issued.key.fingerprint, own.fingerprint);
    assert.deepEqual(await f.files.list(), []);
    assert.equal((await f.service.current(id)).privateKey, null);
    assert.deepEqual(await f.service.check(id, own.blob), { ok: true, keyId: issued.key.id, fingerprint: own.fingerprint });
    await rejectsCode(f.service.rotate(id, { publicKey: own.publicKey, overlapMs: DAY }), 'SSH_KEY_EXISTS');
    await rejectsCode(f.service.rotate(id, { publicKey: own.publicKey, algorithm: 'ed25519' }), 'SSH_KEY_INVALID');
  });

  test('check tells live, unknown, other-instance, not-running and unsupported keys apart', async () => {
    const id = await instance();
    const other = await instance();
    const stopped = await instance('stopped');
    const mine = await f.service.rotate(id);
    const theirs = await f.service.rotate(other);
    const idle = await f.service.rotate(stopped);
    const stranger = await generateSshKey('ed25519', 'x');
    assert.deepEqual(await f.service.check(id, blob(mine.key.publicKey)), { ok: true, keyId: mine.key.id, fingerprint: mine.key.fingerprint });
    assert.deepEqual(await f.service.check(id, blob(theirs.key.publicKey)), { ok: false, fingerprint: theirs.key.fingerprint, reason: 'other_instance' });
    assert.deepEqual(await f.service.check(id, stranger.blob), { ok: false, fingerprint: stranger.fingerprint, reason: 'unknown_key' });
    assert.equal(reason(await f.service.check(stopped, blob(idle.key.publicKey))), 'instance_not_running');
    assert.equal(reason(await f.service.check('inst-nope', blob(mine.key.publicKey))), 'other_instance');
    const dss = Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-dss'), Buffer.alloc(40)]);
    assert.equal(reason(await f.service.check(id, dss)), 'unsupported_key');
    assert.equal(reason(await f.service.check(id, Buffer.from('garbage'))), 'unsupported_key');
    // check records no login attempt
    assert.deepEqual(await events(id), ['issued']);
  });
});

describe('bad input', () => {
  test('each bad request gets its own code and issues nothing', async () => {
    const id = await instance();
    await rejectsCode(f.service.rotate(id, { algorithm: 'dsa' }), 'SSH_ALGORITHM_UNSUPPORTED');
    await rejectsCode(f.service.rotate(id, { expiresInMs: -1 }), 'VALIDATION_FAILED');
    await rejectsCode(f.service.rotate(id, { expiresInMs: 0 }), 'VALIDATION_FAILED');
    await rejectsCode(f.service.rotate(id, { expiresInMs: 366 * DAY }), 'LIMIT_OUT_OF_RANGE');
    await rejectsCode(f.service.rotate(id, { overlapMs: -5 }), 'VALIDATION_FAILED');
    await rejectsCode(f.service.rotate(id, { overlapMs: 1.5 }), 'VALIDATION_FAILED');
    await rejectsCode(f.service.rotate(id, { autoRotateBeforeMs: 30 * DAY }), 'LIMIT_OUT_OF_RANGE');
    await rejectsCode(f.service.rotate(id, { publicKey: 'ssh-ed25519 AAAA' }), 'SSH_KEY_INVALID');
    await rejectsCode(f.service.rotate('inst-unknown'), 'INSTANCE_NOT_FOUND');
    await rejectsCode(f.service.list('inst-unknown'), 'INSTANCE_NOT_FOUND');
    await rejectsCode(f.service.audit(id, { limit: 0 }), 'LIMIT_OUT_OF_RANGE');
    await rejectsCode(f.service.rotate(await instance('deleted')), 'INSTANCE_NOT_RUNNING');
    assert.deepEqual(await f.service.list(id), []);
    assert.deepEqual(await f.files.list(), []);
  });
});

describe('instance deletion, recovery, audit, logs', () => {
  test("a deleted instance's keys are revoked (instance_deleted) and their files removed", async () => {
    const id = await instance();
    const a = await f.service.rotate(id);
    f.clock.advance(1);
    const b = await f.service.rotate(id, { overlapMs: DAY });
    await f.store.instances.update(id, { state: 'deleted' });
    await f.service.instanceDeleted(id);
    // Both were live (a inside its overlap window): both go with the instance.
    assert.deepEqual((await f.service.list(id)).map((k) => [k.id, k.state, k.revokeReason]), [
      [b.key.id, 'revoked', 'instance_deleted'],
      [a.key.id, 'revoked', 'instance_deleted'],
    ]);
    assert.deepEqual(await f.files.list(), []);
    assert.equal(reason(await f.service.check(id, blob(b.key.publicKey))), 'revoked');
  });

  test('the sweep revokes keys of instances deleted without the hook (e.g. during a crash recovery)', async () => {
    const id = await instance();
    const key = await f.service.rotate(id);
    await f.store.instances.update(id, { state: 'deleted' });
    assert.equal((await f.service.sweep()).retired, 1);
    assert.equal((await f.service.list(id))[0]!.revokeReason, 'instance_deleted');
    assert.equal(existsSync(keyFile(key.key.id)), false);
  });

  test('recover removes private key files no live key owns', async () => {
    const id = await instance();
    const live = await f.service.rotate(id);
    writeFileSync(join(f.files.dir, 'key-zzzzzzzzzzzzzzzz'), 'orphan', { mode: 0o600 });
    writeFileSync(join(f.files.dir, `${live.key.id}.abc.tmp`), 'half');
    assert.deepEqual(await f.service.recover(), { removedFiles: 1 });
    assert.deepEqual(await f.files.list(), [live.key.id]);
  });

  test('login attempts are appended to the audit trail, which pages by seq', async () => {
    const id = await instance();
    const key = await f.service.rotate(id);
    await f.service.recordLoginAttempt({ instanceId: id, keyId: key.key.id, fingerprint: key.key.fingerprint, clientAddress: '127.0.0.1:5555', success: true, method: 'publickey' });
    await f.service.recordLoginAttempt({ instanceId: id, keyId: null, fingerprint: 'SHA256:x', clientAddress: '10.0.0.9:1', success: false, reason: 'unknown_key', method: 'publickey' });
    const all = await f.service.audit(id);
    assert.deepEqual(all.map((e) => e.event), ['issued', 'login_succeeded', 'login_failed']);
    assert.deepEqual(all[2]!.details, { method: 'publickey', reason: 'unknown_key' });
    assert.equal(all[2]!.clientAddress, '10.0.0.9:1');
    assert.equal(all[2]!.fingerprint, 'SHA256:x');
    const page = await f.service.audit(id, { after: all[0]!.seq, limit: 1 });
    assert.deepEqual(page.map((e) => e.seq), [all[1]!.seq]);
  });

  test('no private key reaches the log, even at debug level', async () => {
    const id = await instance();
    const a = await f.service.rotate(id, { algorithm: 'ecdsa' });
    await f.service.rotate(id);
    await f.service.current(id);
    const log = f.logLines.join('');
    assert.ok(log.includes(a.key.id), 'issues are logged');
    assert.ok(!log.includes('PRIVATE KEY'));
    assert.ok(!log.includes(a.privateKey!.split('\n')[1]!));
  });
});
