import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';
import { generateEd25519Sync } from '../ssh/key-material.ts';
import { SshGatewayError, SshGatewayErrorCode } from './errors.ts';

/** The gateway's identity: what clients pin in known_hosts. */
export interface HostKey {
  /** OpenSSH-format private key (what ssh2's Server takes). Never logged. */
  readonly privateKey: string;
  /** `ssh-ed25519 AAAA…` as a known_hosts / authorized_keys line would carry it. */
  readonly publicKey: string;
  /** `SHA256:…` exactly as `ssh-keygen -lf` prints it. */
  readonly fingerprint: string;
}

export const HOST_KEY_FILE = 'host_ed25519_key';

/**
 * Loads `<dataDir>/ssh/host_ed25519_key`, creating it on first start. The key must survive
 * restarts: a new one would make every client that pinned the old fingerprint refuse to
 * connect (or, worse, teach users to ignore the warning). So an unreadable file is an error,
 * never silently replaced.
 */
export function loadOrCreateHostKey(dataDir: string): HostKey {
  const dir = join(dataDir, 'ssh');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode does not apply to a dir that already existed (or is masked by the umask).
  chmodSync(dir, 0o700);
  const file = join(dir, HOST_KEY_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SshGatewayError(SshGatewayErrorCode.HOST_KEY_INVALID, `cannot read the SSH host key ${file}: ${(err as Error).message}`, { file }, { cause: err });
    }
    text = generateEd25519Sync().toString('ssh-private');
    writeDurably(file, text);
  }
  chmodSync(file, 0o600);
  const parsed = parseHostKey(text, file);
  const blob = parsed.getPublicSSH();
  return {
    privateKey: text,
    publicKey: `${parsed.type} ${blob.toString('base64')}`,
    fingerprint: fingerprintOf(blob),
  };
}

/** OpenSSH's fingerprint of a public key blob: SHA-256, base64 without padding. */
export function fingerprintOf(publicKeyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '')}`;
}

function parseHostKey(text: string, file: string): ParsedKey {
  const parsed = ssh2.utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error || key.type !== 'ssh-ed25519' || key.getPrivatePEM() === null) {
    const why = key instanceof Error ? key.message : `not an Ed25519 private key`;
    throw new SshGatewayError(SshGatewayErrorCode.HOST_KEY_INVALID, `the SSH host key ${file} is unusable (${why}); restore it from a backup, or delete it to generate a new one (clients will then see a changed host key)`, { file });
  }
  return key;
}

/** Temp file (0600 from the start), fsync, rename: a crash never leaves a half-written key. */
function writeDurably(file: string, text: string): void {
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
