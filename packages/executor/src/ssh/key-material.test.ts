import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isFaasError } from '@faas/protocol';
import sshpk from 'sshpk';
import ssh2 from 'ssh2';
import { blobKeyType, blobOfPublicKey, ed25519FromKeyObject, fingerprintOfBlob, generateEd25519Sync, generateSshKey, isAcceptedBlobType, parsePublicKey, requireAlgorithm, SSH_KEY_ALGORITHMS } from './key-material.ts';

const dir = mkdtempSync(join(tmpdir(), 'faas-key-material-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function keygen(args: string[]): string {
  return execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function rejectsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => isFaasError(err) && err.code === code && !err.message.includes('AAAA'));
}

/** An authorized_keys line of a key node:crypto made, converted by sshpk. */
function lineOf(type: 'rsa' | 'ec', options: object): string {
  const { privateKey } = generateKeyPairSync(type as 'rsa', { ...(options as { modulusLength: number }), privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return sshpk.parsePrivateKey(privateKey, 'pkcs8').toPublic().toString('ssh');
}

describe('generateSshKey', () => {
  for (const algorithm of SSH_KEY_ALGORITHMS) {
    test(`${algorithm}: ssh-keygen -y reads the private key back to the same public key, and -lf prints the same fingerprint`, async () => {
      const key = await generateSshKey(algorithm, `faas:test:${algorithm}`);
      const file = join(dir, `id_${algorithm}`);
      writeFileSync(file, key.privateKey, { mode: 0o600 });
      assert.match(key.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
      const derived = keygen(['-y', '-f', file]).split(' ');
      const stored = key.publicKey.split(' ');
      assert.deepEqual(derived.slice(0, 2), stored.slice(0, 2));
      assert.equal(stored[2], `faas:test:${algorithm}`);
      writeFileSync(`${file}.pub`, `${key.publicKey}\n`);
      const listed = keygen(['-lf', `${file}.pub`]).split(' ');
      assert.equal(listed[1], key.fingerprint);
      assert.equal(Number(listed[0]), key.bits);
      assert.equal(key.bits, { ed25519: 256, rsa: 4096, ecdsa: 256 }[algorithm]);
      assert.deepEqual(key.blob, blobOfPublicKey(key.publicKey));
      assert.equal(blobKeyType(key.blob), { ed25519: 'ssh-ed25519', rsa: 'ssh-rsa', ecdsa: 'ecdsa-sha2-nistp256' }[algorithm]);
    });
  }

  test('two generations give two different keys', async () => {
    const [a, b] = await Promise.all([generateSshKey('ed25519', 'a'), generateSshKey('ed25519', 'b')]);
    assert.notEqual(a.fingerprint, b.fingerprint);
  });
});

describe('parsePublicKey', () => {
  test('accepts ed25519, RSA >= 2048 and ECDSA P-256/384/521 lines, drops the comment, keeps ssh-keygen fingerprints', async () => {
    const lines = [(await generateSshKey('ed25519', 'me@laptop')).publicKey, lineOf('rsa', { modulusLength: 2048 }), lineOf('ec', { namedCurve: 'P-384' }), lineOf('ec', { namedCurve: 'P-521' })];
    for (const line of lines) {
      const info = parsePublicKey(`  ${line}\n`);
      assert.equal(info.publicKey, line.split(' ').slice(0, 2).join(' '));
      writeFileSync(join(dir, 'k.pub'), `${line}\n`);
      assert.equal(keygen(['-lf', join(dir, 'k.pub')]).split(' ')[1], info.fingerprint);
      assert.equal(fingerprintOfBlob(info.blob), info.fingerprint);
    }
    assert.equal(parsePublicKey(lines[1]!).algorithm, 'rsa');
    assert.equal(parsePublicKey(lines[2]!).algorithm, 'ecdsa');
  });

  test('refuses ssh-dss, security-key and certificate types with SSH_ALGORITHM_UNSUPPORTED', () => {
    // Well-formed enough: the type string leads the blob, as in a real key of that type.
    const blobOf = (type: string): string => Buffer.concat([Buffer.from([0, 0, 0, type.length]), Buffer.from(type), Buffer.alloc(64, 1)]).toString('base64');
    for (const type of ['ssh-dss', 'sk-ssh-ed25519@openssh.com', 'ssh-ed25519-cert-v01@openssh.com']) {
      rejectsCode(() => parsePublicKey(`${type} ${blobOf(type)} old@box`), 'SSH_ALGORITHM_UNSUPPORTED');
    }
  });

  test('refuses RSA shorter than 2048 bits with SSH_ALGORITHM_UNSUPPORTED naming the size', () => {
    try {
      parsePublicKey(lineOf('rsa', { modulusLength: 1024 }));
      assert.fail('accepted a 1024-bit key');
    } catch (err) {
      assert.ok(isFaasError(err));
      assert.equal(err.code, 'SSH_ALGORITHM_UNSUPPORTED');
      assert.deepEqual(err.details, { algorithm: 'rsa', bits: 1024, min_bits: 2048 });
    }
  });

  test('refuses malformed text, several lines, a mislabelled blob and private keys with SSH_KEY_INVALID, without echoing them', async () => {
    const ed = (await generateSshKey('ed25519', 'x')).publicKey;
    const [, data] = ed.split(' ');
    rejectsCode(() => parsePublicKey(''), 'SSH_KEY_INVALID');
    rejectsCode(() => parsePublicKey('not a key'), 'SSH_KEY_INVALID');
    rejectsCode(() => parsePublicKey('ssh-ed25519 AAAA'), 'SSH_KEY_INVALID');
    rejectsCode(() => parsePublicKey(`${ed}\n${ed}`), 'SSH_KEY_INVALID');
    rejectsCode(() => parsePublicKey(`ssh-rsa ${data}`), 'SSH_KEY_INVALID');
    rejectsCode(() => parsePublicKey(`no-pty ${ed}`), 'SSH_KEY_INVALID');
    const { privateKey } = await generateSshKey('ed25519', 'x');
    rejectsCode(() => parsePublicKey(privateKey), 'SSH_KEY_INVALID');
  });
});

test('requireAlgorithm accepts the three names and refuses others with SSH_ALGORITHM_UNSUPPORTED', () => {
  for (const a of SSH_KEY_ALGORITHMS) assert.equal(requireAlgorithm(a), a);
  rejectsCode(() => requireAlgorithm('dsa'), 'SSH_ALGORITHM_UNSUPPORTED');
  rejectsCode(() => requireAlgorithm('ED25519'), 'SSH_ALGORITHM_UNSUPPORTED');
});

test('isAcceptedBlobType reads the type from the blob and survives garbage', () => {
  assert.equal(isAcceptedBlobType(Buffer.alloc(0)), false);
  assert.equal(isAcceptedBlobType(Buffer.from([0xff, 0xff, 0xff, 0xff, 1])), false);
  assert.equal(isAcceptedBlobType(Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-dss')])), false);
  assert.equal(isAcceptedBlobType(Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.alloc(36)])), true);
});

describe('Ed25519 keys whose public key starts with a zero byte (1 in 256)', () => {
  // A fixed seed found by counting up, so the case is the same on every run.
  const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
  const keyWithLeadingZero = () => {
    for (let i = 0; ; i++) {
      const seed = Buffer.alloc(32);
      seed.writeUInt32BE(i);
      const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
      const raw = createPublicKey(key).export({ format: 'jwk' }).x!;
      if (Buffer.from(raw, 'base64url')[0] === 0) return key;
    }
  };

  test('keep all 32 bytes, so ssh2 (the gateway) and ssh-keygen read the private key back', () => {
    const text = ed25519FromKeyObject(keyWithLeadingZero()).toString('ssh-private');
    const parsed = ssh2.utils.parseKey(text);
    assert.ok(!(parsed instanceof Error), `ssh2 parses it: ${parsed instanceof Error ? parsed.message : ''}`);
    const key = Array.isArray(parsed) ? parsed[0]! : parsed;
    const blob = key.getPublicSSH();
    assert.equal(blob.length, 4 + 11 + 4 + 32);
    assert.equal(blob[4 + 11 + 4], 0);
    const dir = mkdtempSync(join(tmpdir(), 'faas-ed25519-'));
    try {
      writeFileSync(join(dir, 'key'), text, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'key')], { encoding: 'utf8' }).trim().split(' ')[1];
      assert.equal(derived, blob.toString('base64'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('generateEd25519Sync: 2,000 keys in a row all parse back in ssh2 with a 32-byte public key', () => {
    for (let i = 0; i < 2000; i++) {
      const parsed = ssh2.utils.parseKey(generateEd25519Sync().toString('ssh-private'));
      assert.ok(!(parsed instanceof Error), `key ${i}: ${parsed instanceof Error ? parsed.message : ''}`);
      assert.equal((Array.isArray(parsed) ? parsed[0]! : parsed).getPublicSSH().length, 51);
    }
  });
});
