/**
 * The SSH key calls behind the flat client methods, each wire call written once.
 */
import type { SshAccess as WireSshAccess, SshAuditEntry as WireSshAuditEntry, SshAuditList as WireSshAuditList, SshKey as WireSshKey, SshKeyList as WireSshKeyList } from '@faas/protocol/wire';
import { instancePath } from './api-paths.ts';
import type { HttpTransport } from './http-transport.ts';
import type { RotateSSHKeyOptions, SshAccessKey, SshAuditEvent, SshAuditOptions, SshKey, SshKeyAlgorithm } from './ssh-types.ts';

export class SshApi {
  readonly #transport: HttpTransport;

  constructor(transport: HttpTransport) {
    this.#transport = transport;
  }

  /** Not retried on a dropped connection: a second attempt would issue a second key. */
  async rotate(instanceId: string, options: RotateSSHKeyOptions): Promise<SshAccessKey> {
    const body: Record<string, unknown> = {};
    if (options.algorithm !== undefined) body.algorithm = options.algorithm;
    if (options.expiresInMs !== undefined) body.expires_in_ms = options.expiresInMs;
    if (options.overlapMs !== undefined) body.overlap_ms = options.overlapMs;
    if (options.publicKey !== undefined) body.public_key = options.publicKey;
    if (options.currentKeyId !== undefined) body.current_key_id = options.currentKeyId;
    if (options.autoRotateBeforeMs !== undefined) body.auto_rotate_before_ms = options.autoRotateBeforeMs;
    return fromWireAccess(await this.#transport.request<WireSshAccess>({ method: 'POST', path: `${instancePath(instanceId)}/ssh/rotate`, body }));
  }

  async current(instanceId: string): Promise<SshAccessKey> {
    return fromWireAccess(await this.#transport.request<WireSshAccess>({ method: 'GET', path: `${instancePath(instanceId)}/ssh` }));
  }

  async list(instanceId: string): Promise<SshKey[]> {
    const wire = await this.#transport.request<WireSshKeyList>({ method: 'GET', path: `${instancePath(instanceId)}/ssh/keys` });
    return wire.keys.map(fromWireSshKey);
  }

  /** Idempotent: revoking a revoked key answers with it unchanged, so a retry is safe. */
  async revoke(instanceId: string, keyId: string): Promise<SshKey> {
    return fromWireSshKey(await this.#transport.request<WireSshKey>({ method: 'DELETE', path: `${instancePath(instanceId)}/ssh/keys/${encodeURIComponent(keyId)}` }));
  }

  async audit(instanceId: string, options: SshAuditOptions): Promise<SshAuditEvent[]> {
    const wire = await this.#transport.request<WireSshAuditList>({ method: 'GET', path: `${instancePath(instanceId)}/ssh/audit`, query: { after: options.after, limit: options.limit } });
    return wire.events.map(fromWireAuditEntry);
  }
}

export function fromWireSshKey(w: WireSshKey): SshKey {
  const key: SshKey = {
    id: w.id,
    instanceId: w.instance_id,
    publicKey: w.public_key,
    fingerprint: w.fingerprint,
    algorithm: w.algorithm as SshKeyAlgorithm,
    createdAt: new Date(w.created_at),
    expiresAt: new Date(w.expires_at),
    rotatedFrom: w.rotated_from,
    byo: w.byo,
    autoRotateBeforeMs: w.auto_rotate_before_ms,
    state: w.state,
  };
  if (w.private_key !== undefined) key.privateKey = w.private_key;
  if (w.revoked_at !== null) key.revokedAt = new Date(w.revoked_at);
  if (w.revoke_reason !== null) key.revokeReason = w.revoke_reason;
  return key;
}

function fromWireAccess(w: WireSshAccess): SshAccessKey {
  const c = w.connection;
  return {
    ...fromWireSshKey(w.key),
    connection: c === null ? null : { host: c.host, port: c.port, user: c.user, hostKeyFingerprint: c.host_key_fingerprint, command: c.command },
  };
}

function fromWireAuditEntry(w: WireSshAuditEntry): SshAuditEvent {
  return {
    seq: w.seq,
    at: new Date(w.at),
    event: w.event,
    instanceId: w.instance_id,
    keyId: w.key_id,
    fingerprint: w.fingerprint,
    clientAddress: w.client_address,
    details: w.details,
  };
}
