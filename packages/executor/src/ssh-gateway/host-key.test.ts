import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SshGatewayErrorCode } from './errors.ts';
import { HOST_KEY_FILE, loadOrCreateHostKey } from './host-key.ts';

const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'faas-hostkey-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('SSH host key', () => {
  it('is created once as an Ed25519 OpenSSH key, 0600 in a 0700 dir, and reused unchanged', () => {
    const dir = dataDir();
    const first = loadOrCreateHostKey(dir);
    const file = join(dir, 'ssh', HOST_KEY_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'ssh')).mode & 0o777, 0o700);
    assert.match(first.publicKey, /^ssh-ed25519 AAAA/);
    const second = loadOrCreateHostKey(dir);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.equal(second.privateKey, first.privateKey);
  });

  it('has the fingerprint ssh-keygen -lf prints, and ssh-keygen -y derives the same public key', () => {
    const dir = dataDir();
    const key = loadOrCreateHostKey(dir);
    const file = join(dir, 'ssh', HOST_KEY_FILE);
    const printed = execFileSync('ssh-keygen', ['-lf', file], { encoding: 'utf8' }).split(' ')[1];
    assert.equal(key.fingerprint, printed);
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
    assert.equal(key.publicKey, derived);
  });

  it('refuses a damaged key file instead of replacing it (a new key would break every pinned client)', () => {
    const dir = dataDir();
    loadOrCreateHostKey(dir);
    const file = join(dir, 'ssh', HOST_KEY_FILE);
    writeFileSync(file, 'not a key\n');
    assert.throws(() => loadOrCreateHostKey(dir), (err: { code?: string }) => err.code === SshGatewayErrorCode.HOST_KEY_INVALID);
  });
});
