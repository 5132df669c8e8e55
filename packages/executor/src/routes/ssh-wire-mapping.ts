import type { SshAuditEntry, SshKey } from '@faas/protocol';
import type { SshKeyView } from '../services/ssh-key-service.ts';
import type { SshAuditRecord } from '../store/types.ts';

/** A key on the wire; `privateKey` only where the caller may see it (rotate, GET .../ssh). */
export function sshKeyToWire(k: SshKeyView, privateKey: string | null): SshKey {
  const wire: SshKey = {
    id: k.id,
    instance_id: k.instanceId,
    algorithm: k.algorithm,
    public_key: k.publicKey,
    fingerprint: k.fingerprint,
    created_at: k.createdAt.toISOString(),
    expires_at: k.expiresAt.toISOString(),
    rotated_from: k.rotatedFrom,
    revoked_at: k.revokedAt?.toISOString() ?? null,
    revoke_reason: k.revokeReason,
    byo: k.byo,
    auto_rotate_before_ms: k.autoRotateBeforeMs,
    state: k.state,
  };
  if (privateKey !== null) wire.private_key = privateKey;
  return wire;
}

export function sshAuditToWire(r: SshAuditRecord): SshAuditEntry {
  return {
    seq: r.seq,
    at: r.at.toISOString(),
    event: r.event,
    instance_id: r.instanceId,
    key_id: r.keyId,
    fingerprint: r.fingerprint,
    client_address: r.clientAddress,
    details: r.details,
  };
}
