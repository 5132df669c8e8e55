/**
 * SSH key material: generation (node:crypto) converted to OpenSSH formats (sshpk), parsing of
 * user-supplied public keys, and fingerprints. No I/O and no state: the service decides what is
 * stored where.
 */
import { createHash, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { FaasError } from '@faas/protocol';
import sshpk from 'sshpk';

/** Algorithms the server issues keys of (and accepts public keys of). */
export const SSH_KEY_ALGORITHMS = ['ed25519', 'rsa', 'ecdsa'] as const;
export type SshKeyAlgorithm = (typeof SSH_KEY_ALGORITHMS)[number];

/** @default ed25519: small, fast to make and to verify. */
export const DEFAULT_SSH_KEY_ALGORITHM: SshKeyAlgorithm = 'ed25519';
/** Size of generated RSA keys. */
export const RSA_GENERATED_BITS = 4096;
/** Smallest RSA key accepted from a user (NIST SP 800-131A; OpenSSH refuses < 1024 anyway). */
export const RSA_MIN_BITS = 2048;

/**
 * OpenSSH key type names we accept, with the algorithm each belongs to. Generated ECDSA keys are
 * P-256; a user may bring P-384 and P-521 keys too (ssh2 verifies all three).
 */
const ACCEPTED_TYPES: Readonly<Record<string, SshKeyAlgorithm>> = {
  'ssh-ed25519': 'ed25519',
  'ssh-rsa': 'rsa',
  'ecdsa-sha2-nistp256': 'ecdsa',
  'ecdsa-sha2-nistp384': 'ecdsa',
  'ecdsa-sha2-nistp521': 'ecdsa',
};

/** A public key as the server keeps it. */
export interface PublicKeyInfo {
  algorithm: SshKeyAlgorithm;
  /** One authorized_keys line: `type base64 [comment]`. */
  publicKey: string;
  /** `SHA256:` + unpadded base64 of the SHA-256 of the wire blob, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** The key in SSH wire format (RFC 4253), what clients offer during authentication. */
  blob: Buffer;
  bits: number;
}

/** A generated key pair. `privateKey` must never reach a log line or the database. */
export interface GeneratedKey extends PublicKeyInfo {
  /** OpenSSH private key format (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted. */
  privateKey: string;
}

export function isSshKeyAlgorithm(value: string): value is SshKeyAlgorithm {
  return (SSH_KEY_ALGORITHMS as readonly string[]).includes(value);
}

/** Throws SSH_ALGORITHM_UNSUPPORTED unless `value` is one of {@link SSH_KEY_ALGORITHMS}. */
export function requireAlgorithm(value: string): SshKeyAlgorithm {
  if (isSshKeyAlgorithm(value)) return value;
  throw new FaasError('SSH_ALGORITHM_UNSUPPORTED', `unsupported SSH key algorithm ${JSON.stringify(value.slice(0, 64))}; one of ${SSH_KEY_ALGORITHMS.join(', ')}`, {
    algorithm: value.slice(0, 64),
    supported: [...SSH_KEY_ALGORITHMS],
  });
}

/**
 * The fingerprint of a wire-format key blob, computed directly (no parsing), so the gateway's
 * lookup of an offered key costs one hash.
 *
 * @example
 * fingerprintOfBlob(blob); // "SHA256:nndIRDTTbhfi1Q8AuufkydE3Si8XmuN4cb+1vvcIiNE"
 */
export function fingerprintOfBlob(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The key type named at the start of a wire-format blob (`ssh-ed25519`, ...), or null when the
 * blob is too short to hold one.
 */
export function blobKeyType(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return null;
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** True when a blob names a key type this server accepts (the RSA size is checked at registration). */
export function isAcceptedBlobType(blob: Buffer): boolean {
  const type = blobKeyType(blob);
  return type !== null && Object.hasOwn(ACCEPTED_TYPES, type);
}

/**
 * Generates a key pair. The work runs on libuv's thread pool (async `generateKeyPair`), so an
 * RSA-4096 generation of a second or more does not block the event loop.
 *
 * @param comment ends the authorized_keys line and is stored in the private key.
 * @example
 * const key = await generateSshKey('ed25519', 'faas:inst-1');
 * key.publicKey; // "ssh-ed25519 AAAAC3... faas:inst-1"
 */
export async function generateSshKey(algorithm: SshKeyAlgorithm, comment: string): Promise<GeneratedKey> {
  const key = algorithm === 'ed25519' ? await generateEd25519() : sshpk.parsePrivateKey(await generatePkcs8(algorithm), 'pkcs8');
  key.comment = comment;
  const publicKey = key.toPublic();
  const blob = publicKey.toBuffer('rfc4253');
  return {
    algorithm,
    publicKey: publicKey.toString('ssh'),
    fingerprint: fingerprintOfBlob(blob),
    blob,
    bits: publicKey.size,
    privateKey: key.toString('ssh-private'),
  };
}

/**
 * Ed25519 from its raw parts (JWK export), not from PKCS#8: sshpk re-derives the public half of
 * a PKCS#8 Ed25519 key in pure JavaScript (tweetnacl), ~3.8 ms here, 60 times the generation
 * itself; node:crypto hands us both halves already.
 */
function generateEd25519(): Promise<sshpk.PrivateKey> {
  return new Promise((resolve, reject) => {
    generateKeyPair('ed25519', {}, (err, _publicKey, privateKey) => {
      if (err) return reject(err);
      try {
        resolve(ed25519FromKeyObject(privateKey));
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}

/**
 * An Ed25519 key generated synchronously (~0.1 ms), for the gateway's host key at start-up.
 * Not ssh2's `utils.generateKeyPairSync('ed25519')`: it drops a leading zero byte of the public
 * key (1 key in 256), and ssh2's own parser then refuses the key it wrote.
 */
export function generateEd25519Sync(comment = ''): sshpk.PrivateKey {
  const key = ed25519FromKeyObject(generateKeyPairSync('ed25519').privateKey);
  key.comment = comment;
  return key;
}

/** The sshpk form of a node:crypto Ed25519 private key, both halves at their full 32 bytes. */
export function ed25519FromKeyObject(privateKey: KeyObject): sshpk.PrivateKey {
  const jwk = privateKey.export({ format: 'jwk' });
  const part = (name: sshpk.AlgorithmPart, b64url: string | undefined): sshpk.KeyPart => ({ name, data: Buffer.from(b64url ?? '', 'base64url') });
  return new sshpk.PrivateKey({ type: 'ed25519', parts: [part('A', jwk.x), part('k', jwk.d)] });
}

function generatePkcs8(algorithm: Exclude<SshKeyAlgorithm, 'ed25519'>): Promise<string> {
  const encoding = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } } as const;
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _publicKey: string, privateKey: string): void => (err ? reject(err) : resolve(privateKey));
    if (algorithm === 'rsa') generateKeyPair('rsa', { modulusLength: RSA_GENERATED_BITS, ...encoding }, done);
    else generateKeyPair('ec', { namedCurve: 'P-256', ...encoding }, done);
  });
}

/** Longest authorized_keys line accepted: an RSA-16384 key is about 2.8 KB of base64. */
const MAX_PUBLIC_KEY_LENGTH = 8192;

/**
 * Parses and checks a user's public key: exactly one authorized_keys line, `type base64
 * [comment]` (no options prefix). The comment is dropped: it is the user's, not needed here.
 * Errors never quote the text, which might be a private key pasted by mistake.
 *
 * Throws SSH_KEY_INVALID for anything malformed (or a private key), SSH_ALGORITHM_UNSUPPORTED
 * for a well-formed key of a type we refuse (ssh-dss, sk-*, certificates) or RSA under
 * {@link RSA_MIN_BITS}.
 */
export function parsePublicKey(text: string): PublicKeyInfo {
  const trimmed = text.trim();
  if (trimmed.includes('PRIVATE KEY')) {
    throw new FaasError('SSH_KEY_INVALID', 'public_key holds a private key; send the public key (the .pub file, one authorized_keys line), and keep the private key to yourself');
  }
  if (trimmed.length === 0 || trimmed.length > MAX_PUBLIC_KEY_LENGTH || /[\r\n]/.test(trimmed)) {
    throw new FaasError('SSH_KEY_INVALID', `public_key must be one OpenSSH authorized_keys line "type base64 [comment]" of at most ${MAX_PUBLIC_KEY_LENGTH} characters`);
  }
  const [type = '', data = ''] = trimmed.split(/\s+/);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data) || !/^[a-z0-9@.-]+$/.test(type)) {
    throw new FaasError('SSH_KEY_INVALID', 'public_key is not an OpenSSH authorized_keys line "type base64 [comment]" (options before the type are not accepted)');
  }
  const blob = Buffer.from(data, 'base64');
  // The type word is only a label; what a client offers is the blob, so the blob must agree.
  if (blobKeyType(blob) !== type) throw new FaasError('SSH_KEY_INVALID', `public_key's key data is not a ${type.slice(0, 64)} key (or not key data at all)`);
  const algorithm = ACCEPTED_TYPES[type];
  if (algorithm === undefined) {
    throw new FaasError('SSH_ALGORITHM_UNSUPPORTED', `SSH key type ${type} is not accepted; use ssh-ed25519, ssh-rsa (at least ${RSA_MIN_BITS} bits) or ecdsa-sha2-nistp256/384/521`, {
      algorithm: type,
      supported: Object.keys(ACCEPTED_TYPES),
    });
  }
  let key: sshpk.Key;
  try {
    key = sshpk.parseKey(blob, 'rfc4253');
  } catch {
    throw new FaasError('SSH_KEY_INVALID', `public_key's ${type} key data is malformed`);
  }
  if (algorithm === 'rsa' && key.size < RSA_MIN_BITS) {
    throw new FaasError('SSH_ALGORITHM_UNSUPPORTED', `RSA key of ${key.size} bits is too short; at least ${RSA_MIN_BITS} bits`, { algorithm: 'rsa', bits: key.size, min_bits: RSA_MIN_BITS });
  }
  return { algorithm, publicKey: `${type} ${blob.toString('base64')}`, fingerprint: fingerprintOfBlob(blob), blob, bits: key.size };
}

/** The wire blob of a stored authorized_keys line (its second word). */
export function blobOfPublicKey(publicKey: string): Buffer {
  return Buffer.from(publicKey.split(' ')[1] ?? '', 'base64');
}
