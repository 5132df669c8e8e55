import { Type, type Static } from 'typebox';
import { IsoTime } from './common.ts';

/** `POST /api/v1/instances/:id/ssh/rotate`: every field optional; an empty body issues an ed25519 key. */
export const RotateSshKeyRequest = Type.Object(
  {
    algorithm: Type.Optional(
      Type.String({ maxLength: 64, description: 'ed25519 (default), rsa (4096 bits) or ecdsa (P-256). With public_key: must match its type, or be left out.' }),
    ),
    expires_in_ms: Type.Optional(Type.Integer({ description: 'Lifetime of the new key. Default: the server setting (30 days); at most the server maximum (365 days).' })),
    overlap_ms: Type.Optional(Type.Integer({ description: 'How long the replaced key stays valid. Default 0: revoked at once.' })),
    public_key: Type.Optional(
      Type.String({ maxLength: 16_384, description: 'Bring your own key: one authorized_keys line ("ssh-ed25519 AAAA... comment"). The server then never holds the private key.' }),
    ),
    current_key_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'The key being replaced (rotated_from). Default: the newest live key.' })),
    auto_rotate_before_ms: Type.Optional(
      Type.Integer({ description: 'Issue a successor this long before expiry (server-generated keys only); 0 turns it off. Default: the server setting, if any.' }),
    ),
  },
  { additionalProperties: false },
);
export type RotateSshKeyRequest = Static<typeof RotateSshKeyRequest>;

export const SshKeyState = Type.Union([Type.Literal('live'), Type.Literal('expired'), Type.Literal('revoked')]);
export type SshKeyState = Static<typeof SshKeyState>;

export const SshKey = Type.Object({
  id: Type.String({ description: 'key- + 16 base32 characters.' }),
  instance_id: Type.String(),
  algorithm: Type.String({ description: 'ed25519, rsa or ecdsa.' }),
  public_key: Type.String({ description: 'One authorized_keys line.' }),
  fingerprint: Type.String({ description: 'SHA256:..., as ssh-keygen -lf prints it.' }),
  created_at: IsoTime,
  expires_at: IsoTime,
  rotated_from: Type.Union([Type.String(), Type.Null()], { description: 'The key this one replaced.' }),
  revoked_at: Type.Union([IsoTime, Type.Null()], { description: 'When it was revoked; in the future for a replaced key still inside its overlap window.' }),
  revoke_reason: Type.Union([Type.String(), Type.Null()], { description: 'rotated, evicted, revoked, instance_deleted.' }),
  byo: Type.Boolean({ description: 'Bring-your-own: the server never held the private key.' }),
  auto_rotate_before_ms: Type.Union([Type.Integer(), Type.Null()]),
  state: SshKeyState,
  private_key: Type.Optional(
    Type.String({ description: 'OpenSSH private key. Only in the answers of rotate and GET .../ssh, and only for keys the server generated. Save it with mode 0600.' }),
  ),
});
export type SshKey = Static<typeof SshKey>;

export const SshConnection = Type.Object({
  host: Type.String(),
  port: Type.Integer(),
  user: Type.String({ description: 'The instance id.' }),
  host_key_fingerprint: Type.String({ description: "SHA256:... of the gateway's host key: compare it with what ssh shows on first connect." }),
  command: Type.String({ description: 'Ready-made: replace <key file> with the file holding the private key.' }),
});
export type SshConnection = Static<typeof SshConnection>;

/** Answer of rotate and of `GET /api/v1/instances/:id/ssh`: the key, and how to reach the gateway (null when it is not running). */
export const SshAccess = Type.Object({
  key: SshKey,
  connection: Type.Union([SshConnection, Type.Null()]),
});
export type SshAccess = Static<typeof SshAccess>;

export const SshKeyList = Type.Object({ keys: Type.Array(SshKey) });
export type SshKeyList = Static<typeof SshKeyList>;

export const SshAuditEventName = Type.Union([
  Type.Literal('issued'),
  Type.Literal('rotated'),
  Type.Literal('revoked'),
  Type.Literal('expired'),
  Type.Literal('login_succeeded'),
  Type.Literal('login_failed'),
]);

export const SshAuditEntry = Type.Object({
  seq: Type.Integer({ description: 'Ascending; pass the last one seen as `after` to page on.' }),
  at: IsoTime,
  event: SshAuditEventName,
  instance_id: Type.String(),
  key_id: Type.Union([Type.String(), Type.Null()]),
  fingerprint: Type.Union([Type.String(), Type.Null()]),
  client_address: Type.Union([Type.String(), Type.Null()], { description: 'Login attempts: the client address and port.' }),
  details: Type.Record(Type.String(), Type.Unknown(), { description: 'revoked: reason, effective_at; rotated: rotated_from, overlap_ms, automatic; login_*: method, reason.' }),
});
export type SshAuditEntry = Static<typeof SshAuditEntry>;

export const SshAuditList = Type.Object({ events: Type.Array(SshAuditEntry) });
export type SshAuditList = Static<typeof SshAuditList>;

export const SshAuditQuery = Type.Object(
  {
    after: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'Only entries with a larger seq.' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: 'At most this many (default 100, at most 1000).' })),
  },
  { additionalProperties: false },
);
export type SshAuditQuery = Static<typeof SshAuditQuery>;
