/**
 * camelCase shapes of SSH keys, connection info and the SSH audit trail.
 */

/** Key algorithms the server issues. @default 'ed25519' */
export type SshKeyAlgorithm = 'ed25519' | 'rsa' | 'ecdsa';

/** `live` until the key expires or is revoked (a replaced key stays `live` through its overlap window). */
export type SshKeyState = 'live' | 'expired' | 'revoked';

/**
 * An SSH key of an instance.
 *
 * @example
 * const key = await client.rotateSSHKey(instance.id);
 * await writeFile('id_faas', key.privateKey!, { mode: 0o600 });
 */
export interface SshKey {
  /** `key-` + 16 base32 characters. */
  id: string;
  instanceId: string;
  /**
   * OpenSSH private key: only in the answers of `rotateSSHKey` and `getSSHKey`, and only for
   * keys the server generated (never for bring-your-own keys). Save it with mode 0600.
   */
  privateKey?: string;
  /** One authorized_keys line. */
  publicKey: string;
  /** `SHA256:...`, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** ed25519, rsa or ecdsa (a bring-your-own ECDSA key may be P-384 or P-521). */
  algorithm: SshKeyAlgorithm;
  createdAt: Date;
  expiresAt: Date;
  /** The key this one replaced. */
  rotatedFrom: string | null;
  /** When it was (or, inside a rotation's overlap window, will be) revoked; absent otherwise. */
  revokedAt?: Date;
  /** rotated, evicted, revoked, instance_deleted; absent when not revoked. */
  revokeReason?: string;
  /** Bring-your-own: the server never held the private key. */
  byo: boolean;
  /** A successor is issued this long before expiry; null: never. */
  autoRotateBeforeMs: number | null;
  state: SshKeyState;
}

/** How to reach the SSH gateway. */
export interface SshConnection {
  host: string;
  port: number;
  /** The instance id. */
  user: string;
  /** `SHA256:...` of the gateway's host key: compare it with what ssh shows on first connect. */
  hostKeyFingerprint: string;
  /** `ssh -i <key file> -p PORT INSTANCE@HOST`: replace `<key file>`. */
  command: string;
}

/** A key with the gateway's connection info (null when the server runs no gateway). */
export interface SshAccessKey extends SshKey {
  connection: SshConnection | null;
}

/**
 * Options of `rotateSSHKey`. Every field is optional: no options issue a fresh Ed25519 key
 * valid for the server's default lifetime (30 days) and revoke the current key at once.
 *
 * @example
 * await client.rotateSSHKey(id, { algorithm: 'rsa', expiresInMs: 3_600_000, overlapMs: 60_000 });
 * await client.rotateSSHKey(id, { publicKey: await readFile('~/.ssh/id_ed25519.pub', 'utf8') });
 */
export interface RotateSSHKeyOptions {
  /** @default 'ed25519' (or the type of `publicKey`) */
  algorithm?: SshKeyAlgorithm;
  /** Lifetime of the new key. @default the server's (30 days) */
  expiresInMs?: number;
  /** How long the replaced key stays valid. @default 0: revoked at once */
  overlapMs?: number;
  /** Bring your own key: one authorized_keys line. The server then never holds a private key. */
  publicKey?: string;
  /** The key being replaced. @default the newest live key */
  currentKeyId?: string;
  /** Issue a successor this long before expiry; 0 turns it off. @default the server's setting */
  autoRotateBeforeMs?: number;
}

export type SshAuditEventName = 'issued' | 'rotated' | 'revoked' | 'expired' | 'login_succeeded' | 'login_failed';

/** One entry of an instance's SSH audit trail. */
export interface SshAuditEvent {
  /** Ascending: pass the last one seen as `after` to page on. */
  seq: number;
  at: Date;
  event: SshAuditEventName;
  instanceId: string;
  keyId: string | null;
  fingerprint: string | null;
  /** Login attempts: the client's address and port. */
  clientAddress: string | null;
  /** revoked: reason, effective_at; rotated: rotated_from, overlap_ms, automatic; login_*: method, reason. */
  details: Record<string, unknown>;
}

/** @example await client.sshAudit(id, { after: last.seq, limit: 50 }); */
export interface SshAuditOptions {
  /** Only entries with a larger seq. */
  after?: number;
  /** @default 100 (at most 1000) */
  limit?: number;
}
