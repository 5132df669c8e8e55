/** Tables of SSH keys and audit entries. */
import type { SshAuditEvent, SshKey } from '@faas/sdk';
import { formatAge } from './table.ts';

export const SSH_KEY_TABLE_HEADERS = ['ID', 'ALGORITHM', 'STATE', 'FINGERPRINT', 'CREATED', 'EXPIRES', 'ROTATED FROM', 'NOTE'];

/** One row of `faas ssh keys`; NOTE says why a key ended, or that it is the user's own. */
export function sshKeyRow(key: SshKey, now = new Date()): string[] {
  const notes: string[] = [];
  if (key.byo) notes.push('own key');
  if (key.revokeReason !== undefined) notes.push(key.state === 'live' ? `revoked at ${key.revokedAt!.toISOString()} (${key.revokeReason})` : key.revokeReason);
  return [key.id, key.algorithm, key.state, key.fingerprint, formatAge(key.createdAt, now), key.expiresAt.toISOString(), key.rotatedFrom ?? '-', notes.join(', ')];
}

export const SSH_AUDIT_TABLE_HEADERS = ['SEQ', 'TIME', 'EVENT', 'KEY', 'FINGERPRINT', 'CLIENT', 'DETAILS'];

export function sshAuditRow(e: SshAuditEvent): string[] {
  const details = Object.entries(e.details)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return [String(e.seq), e.at.toISOString(), e.event, e.keyId ?? '-', e.fingerprint ?? '-', e.clientAddress ?? '-', details];
}
