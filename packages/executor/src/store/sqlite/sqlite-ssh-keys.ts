import { FaasError } from '@faas/protocol';
import Database from 'better-sqlite3';
import type { Generated, Kysely } from 'kysely';
import type { SshAuditEvent, SshAuditRecord, SshKeyAlgorithmName, SshKeyPatch, SshKeyRecord, SshKeyRepository } from '../types.ts';
import type { SqliteSchema } from './sqlite-store.ts';

/** Rows of `ssh_keys`; see migration 0004 in `migrations.ts`. */
export interface SshKeysTable {
  id: string;
  instance_id: string;
  algorithm: string;
  public_key: string;
  fingerprint: string;
  created_at: number;
  expires_at: number;
  rotated_from: string | null;
  revoked_at: number | null;
  revoke_reason: string | null;
  byo: number;
  auto_rotate_before_ms: number | null;
  retired_at: number | null;
}

/** Rows of `ssh_audit`. `seq` is assigned by SQLite (autoincrement: never reused, even after deletes). */
export interface SshAuditTable {
  seq: Generated<number>;
  at: number;
  instance_id: string;
  key_id: string | null;
  event: string;
  fingerprint: string | null;
  client_address: string | null;
  details: string;
}

const DEFAULT_AUDIT_LIMIT = 1000;

export class SqliteSshKeyRepository implements SshKeyRepository {
  readonly #db: () => Kysely<SqliteSchema>;

  constructor(db: () => Kysely<SqliteSchema>) {
    this.#db = db;
  }

  async insert(record: SshKeyRecord): Promise<void> {
    let inserted: bigint;
    try {
      const result = await this.#db()
        .insertInto('ssh_keys')
        .values(encodeKey(record))
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      inserted = result.numInsertedOrUpdatedRows ?? 0n;
    } catch (err) {
      if (err instanceof Database.SqliteError && err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new FaasError('INSTANCE_NOT_FOUND', `no instance ${record.instanceId} for SSH key ${record.id}`, { instance_id: record.instanceId }, { cause: err });
      }
      throw err;
    }
    if (inserted === 0n) throw new FaasError('ID_CONFLICT', `an SSH key with id ${record.id} already exists`, { id: record.id });
  }

  async get(id: string): Promise<SshKeyRecord | undefined> {
    const row = await this.#db().selectFrom('ssh_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : decodeKey(row);
  }

  async listByInstance(instanceId: string): Promise<SshKeyRecord[]> {
    const rows = await this.#db().selectFrom('ssh_keys').selectAll().where('instance_id', '=', instanceId).orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    return rows.map(decodeKey);
  }

  async listByFingerprint(fingerprint: string): Promise<SshKeyRecord[]> {
    const rows = await this.#db().selectFrom('ssh_keys').selectAll().where('fingerprint', '=', fingerprint).orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    return rows.map(decodeKey);
  }

  async listUnretired(): Promise<SshKeyRecord[]> {
    const rows = await this.#db().selectFrom('ssh_keys').selectAll().where('retired_at', 'is', null).orderBy('created_at').orderBy('id').execute();
    return rows.map(decodeKey);
  }

  async update(id: string, patch: SshKeyPatch): Promise<SshKeyRecord> {
    const set = Object.fromEntries(
      Object.entries({ revoked_at: ms(patch.revokedAt), revoke_reason: patch.revokeReason, retired_at: ms(patch.retiredAt) }).filter(([, v]) => v !== undefined),
    ) as Partial<SshKeysTable>;
    const row =
      Object.keys(set).length === 0
        ? await this.#db().selectFrom('ssh_keys').selectAll().where('id', '=', id).executeTakeFirst()
        : await this.#db().updateTable('ssh_keys').set(set).where('id', '=', id).returningAll().executeTakeFirst();
    if (row === undefined) throw new FaasError('SSH_KEY_NOT_FOUND', `no SSH key ${id}`, { key_id: id });
    return decodeKey(row);
  }

  async appendAudit(entry: Omit<SshAuditRecord, 'seq'>): Promise<number> {
    const row = await this.#db()
      .insertInto('ssh_audit')
      .values({
        at: entry.at.getTime(),
        instance_id: entry.instanceId,
        key_id: entry.keyId,
        event: entry.event,
        fingerprint: entry.fingerprint,
        client_address: entry.clientAddress,
        details: JSON.stringify(entry.details),
      })
      .returning('seq')
      .executeTakeFirstOrThrow();
    return row.seq;
  }

  async listAudit(instanceId: string, options: { after?: number; limit?: number } = {}): Promise<SshAuditRecord[]> {
    const limit = options.limit ?? DEFAULT_AUDIT_LIMIT;
    // SQLite reads a negative LIMIT as "no limit".
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`audit limit must be a non-negative integer, got ${limit}`);
    const rows = await this.#db()
      .selectFrom('ssh_audit')
      .selectAll()
      .where('instance_id', '=', instanceId)
      .where('seq', '>', options.after ?? 0)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((row) => ({
      seq: row.seq,
      at: new Date(row.at),
      instanceId: row.instance_id,
      keyId: row.key_id,
      event: row.event as SshAuditEvent,
      fingerprint: row.fingerprint,
      clientAddress: row.client_address,
      details: JSON.parse(row.details) as Record<string, unknown>,
    }));
  }
}

function ms(date: Date | null | undefined): number | null | undefined {
  return date == null ? date : date.getTime();
}

function encodeKey(r: SshKeyRecord): SshKeysTable {
  return {
    id: r.id,
    instance_id: r.instanceId,
    algorithm: r.algorithm,
    public_key: r.publicKey,
    fingerprint: r.fingerprint,
    created_at: r.createdAt.getTime(),
    expires_at: r.expiresAt.getTime(),
    rotated_from: r.rotatedFrom,
    revoked_at: r.revokedAt?.getTime() ?? null,
    revoke_reason: r.revokeReason,
    byo: r.byo ? 1 : 0,
    auto_rotate_before_ms: r.autoRotateBeforeMs,
    retired_at: r.retiredAt?.getTime() ?? null,
  };
}

function decodeKey(row: SshKeysTable): SshKeyRecord {
  return {
    id: row.id,
    instanceId: row.instance_id,
    algorithm: row.algorithm as SshKeyAlgorithmName,
    publicKey: row.public_key,
    fingerprint: row.fingerprint,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    rotatedFrom: row.rotated_from,
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at),
    revokeReason: row.revoke_reason,
    byo: row.byo === 1,
    autoRotateBeforeMs: row.auto_rotate_before_ms,
    retiredAt: row.retired_at === null ? null : new Date(row.retired_at),
  };
}
