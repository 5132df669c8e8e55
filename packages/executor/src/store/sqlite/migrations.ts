import { FaasError } from '@faas/protocol';
import { Migrator, sql } from 'kysely';
import type { Kysely, Migration, MigrationResult } from 'kysely';

/**
 * Schema history of the SQLite store, applied in the order of their names. A migration that
 * has shipped is never edited or renamed, only followed by a new one: kysely refuses to start
 * on a database whose applied migrations are missing or out of order, rather than guessing.
 *
 * Each migration runs in one transaction together with its `kysely_migration` row (the store's
 * dialect declares transactional DDL, see `sqlite-store.ts`), so a failed migration leaves no
 * half-built schema. The flip side: PRAGMAs that are no-ops inside a transaction
 * (`foreign_keys`, `legacy_alter_table`) cannot be toggled from a migration.
 *
 * Migrations take `Kysely<any>` on purpose: they describe the schema as it was when they were
 * written, not the current row types.
 *
 * Layout: times are integer milliseconds since the epoch (exact, and they sort as numbers);
 * booleans are 0/1; maps and lists are JSON text. Tables are STRICT so a wrong type is refused
 * at write time instead of being stored and surfacing later on the wire.
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_initial': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('instances')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('state_reason', 'text')
        .addColumn('env', 'text', (c) => c.notNull())
        .addColumn('runtime', 'text', (c) => c.notNull())
        .addColumn('env_vars', 'text', (c) => c.notNull())
        .addColumn('limits', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('host_uid', 'integer', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'integer')
        .addColumn('stopped_at', 'integer')
        .addColumn('start_duration_ms', 'integer')
        .modifyEnd(sql`strict`)
        .execute();

      // Listing is newest first with id as tie-break; SQLite walks these indexes backwards.
      await db.schema.createIndex('instances_created_at_idx').on('instances').columns(['created_at', 'id']).execute();
      await db.schema.createIndex('instances_state_created_at_idx').on('instances').columns(['state', 'created_at', 'id']).execute();

      await db.schema
        .createTable('executions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        // Instances are never removed from this table (they end in state `deleted`), so an
        // execution always has its instance; the reference catches ids that never existed.
        .addColumn('instance_id', 'text', (c) => c.notNull().references('instances.id'))
        .addColumn('ephemeral', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('command', 'text', (c) => c.notNull())
        .addColumn('working_dir', 'text', (c) => c.notNull())
        .addColumn('env_var_names', 'text', (c) => c.notNull())
        .addColumn('timeout_ms', 'integer', (c) => c.notNull())
        .addColumn('request_hash', 'text', (c) => c.notNull())
        .addColumn('exit_code', 'integer')
        .addColumn('exit_reason', 'text')
        .addColumn('signal', 'text')
        .addColumn('stdout_bytes', 'integer', (c) => c.notNull())
        .addColumn('stderr_bytes', 'integer', (c) => c.notNull())
        .addColumn('output_truncated', 'integer', (c) => c.notNull())
        .addColumn('progress', 'real')
        .addColumn('last_seq', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'integer', (c) => c.notNull())
        .addColumn('finished_at', 'integer')
        .addColumn('duration_ms', 'integer')
        .modifyEnd(sql`strict`)
        .execute();

      await db.schema.createIndex('executions_started_at_idx').on('executions').columns(['started_at', 'id']).execute();
      // Also serves the foreign key check when an instance row changes.
      await db.schema
        .createIndex('executions_instance_id_started_at_idx')
        .on('executions')
        .columns(['instance_id', 'started_at', 'id'])
        .execute();
      await db.schema.createIndex('executions_status_started_at_idx').on('executions').columns(['status', 'started_at', 'id']).execute();
    },
  },
  '0002_snapshots': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('snapshots')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('content_hash', 'text', (c) => c.notNull())
        // A parent is deleted only after its children (or with them, in one statement).
        .addColumn('parent_id', 'text', (c) => c.references('snapshots.id'))
        .addColumn('parent_hash', 'text')
        .addColumn('fs_hash', 'text', (c) => c.notNull())
        .addColumn('env_hash', 'text', (c) => c.notNull())
        .addColumn('memory_hash', 'text')
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('stored_bytes', 'integer', (c) => c.notNull())
        .addColumn('file_count', 'integer', (c) => c.notNull())
        .addColumn('files_read', 'integer', (c) => c.notNull())
        .addColumn('dir_count', 'integer', (c) => c.notNull())
        .addColumn('symlink_count', 'integer', (c) => c.notNull())
        .addColumn('env', 'text', (c) => c.notNull())
        .addColumn('env_vars', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('source_instance_id', 'text')
        .addColumn('source_execution_id', 'text')
        .addColumn('deterministic', 'integer', (c) => c.notNull())
        .addColumn('duration_ms', 'real', (c) => c.notNull())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('snapshots_created_at_idx').on('snapshots').columns(['created_at', 'id']).execute();
      await db.schema.createIndex('snapshots_content_hash_idx').on('snapshots').columns(['content_hash', 'created_at']).execute();
      await db.schema.createIndex('snapshots_parent_id_idx').on('snapshots').columns(['parent_id', 'created_at']).execute();
      await db.schema.createIndex('snapshots_source_instance_id_idx').on('snapshots').columns(['source_instance_id', 'created_at']).execute();
      // Plain text, no reference: an instance outlives nothing, but its snapshot may be deleted
      // (last_snapshot_id is then cleared by the service).
      await db.schema.alterTable('instances').addColumn('source_snapshot_id', 'text').execute();
      await db.schema.alterTable('instances').addColumn('last_snapshot_id', 'text').execute();
      await db.schema.createIndex('instances_source_snapshot_id_idx').on('instances').columns(['source_snapshot_id']).execute();
    },
  },
  '0003_execution_modes': {
    async up(db: Kysely<any>): Promise<void> {
      // JSON array of every merged snapshot id, '[]' for snapshots that are not merges.
      await db.schema.alterTable('snapshots').addColumn('merge_parent_ids', 'text', (c) => c.notNull().defaultTo('[]')).execute();
      await db.schema.createIndex('snapshots_source_execution_id_idx').on('snapshots').columns(['source_execution_id']).execute();
      // persistent mode: a stable name for a long-lived instance, unique among live instances.
      await db.schema.alterTable('instances').addColumn('function_id', 'text').execute();
      await sql`create unique index instances_function_id_live_idx on instances (function_id) where function_id is not null and state != 'deleted'`.execute(db);
      // warm pool: started ahead of demand, not yet handed out (not listed as the user's).
      await db.schema.alterTable('instances').addColumn('pooled', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('executions').addColumn('mode', 'text', (c) => c.notNull().defaultTo('ephemeral')).execute();
      await db.schema
        .createTable('result_cache')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('env', 'text', (c) => c.notNull())
        .addColumn('cache_key', 'text')
        .addColumn('execution_id', 'text', (c) => c.notNull())
        // The finished Execution as JSON (stdout/stderr included): a hit is one row read.
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('size_bytes', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('last_used_at', 'integer', (c) => c.notNull())
        .addColumn('hits', 'integer', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('result_cache_last_used_idx').on('result_cache').columns(['last_used_at']).execute();
    },
  },
  '0004_ssh_keys': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('ssh_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull().references('instances.id'))
        .addColumn('algorithm', 'text', (c) => c.notNull())
        // The authorized_keys line; private keys are files (ssh/private-key-files.ts), never rows.
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'integer', (c) => c.notNull())
        .addColumn('rotated_from', 'text', (c) => c.references('ssh_keys.id'))
        .addColumn('revoked_at', 'integer')
        .addColumn('revoke_reason', 'text')
        .addColumn('byo', 'integer', (c) => c.notNull())
        .addColumn('auto_rotate_before_ms', 'integer')
        .addColumn('retired_at', 'integer')
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('ssh_keys_instance_id_created_at_idx').on('ssh_keys').columns(['instance_id', 'created_at', 'id']).execute();
      // The gateway's lookup of an offered key.
      await db.schema.createIndex('ssh_keys_fingerprint_idx').on('ssh_keys').columns(['fingerprint']).execute();
      // The sweep reads only keys not yet retired; retired ones pile up and stay out of this index.
      await sql`create index ssh_keys_unretired_idx on ssh_keys (created_at, id) where retired_at is null`.execute(db);
      await db.schema
        .createTable('ssh_audit')
        .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('at', 'integer', (c) => c.notNull())
        // No reference: a failed login may name an instance that never existed, and is audited too.
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text')
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text')
        .addColumn('client_address', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('ssh_audit_instance_id_seq_idx').on('ssh_audit').columns(['instance_id', 'seq']).execute();
    },
  },
  '0005_exposed_ports': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('exposed_ports')
        .addColumn('instance_id', 'text', (c) => c.notNull().references('instances.id'))
        .addColumn('port', 'integer', (c) => c.notNull())
        // SHA-256 hex of the access token, null for a public port; the token itself is never stored.
        .addColumn('token_hash', 'text')
        .addColumn('created_at', 'integer', (c) => c.notNull())
        // One exposure per port of an instance; the key also serves listing by instance.
        .addPrimaryKeyConstraint('exposed_ports_pk', ['instance_id', 'port'])
        .modifyEnd(sql`strict`)
        .execute();
    },
  },  '0006_sessions': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        // The current execution; every one the session ran is in session_executions.
        .addColumn('execution_id', 'text', (c) => c.notNull())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('owns_instance', 'integer', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('state_reason', 'text')
        // What to run again on resume: argv, working dir and env var names (values are never stored).
        .addColumn('process', 'text', (c) => c.notNull())
        .addColumn('started_at', 'integer', (c) => c.notNull())
        .addColumn('deadline', 'integer', (c) => c.notNull())
        .addColumn('last_heartbeat', 'integer', (c) => c.notNull())
        .addColumn('max_duration_ms', 'integer', (c) => c.notNull())
        .addColumn('heartbeat_interval_ms', 'integer')
        .addColumn('idle_timeout_ms', 'integer', (c) => c.notNull())
        .addColumn('grace_period_ms', 'integer', (c) => c.notNull())
        .addColumn('checkpoint_interval_ms', 'integer', (c) => c.notNull())
        .addColumn('checkpoints', 'text', (c) => c.notNull())
        .addColumn('extended_count', 'integer', (c) => c.notNull())
        .addColumn('max_extensions', 'integer', (c) => c.notNull())
        .addColumn('auto_extend', 'integer', (c) => c.notNull())
        .addColumn('exit_code', 'integer')
        .addColumn('ended_at', 'integer')
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('sessions_state_idx').on('sessions').columns(['state', 'started_at', 'id']).execute();
      await db.schema
        .createTable('session_executions')
        .addColumn('execution_id', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id'))
        .modifyEnd(sql`strict`)
        .execute();
    },
  },
};

/**
 * Brings the database up to the newest migration and returns what ran (empty when nothing was
 * pending). Throws FaasError INTERNAL_ERROR naming the failed migration, with kysely's error as
 * `cause`.
 */
export async function migrateToLatest(
  db: Kysely<any>,
  migrations: Readonly<Record<string, Migration>> = MIGRATIONS,
): Promise<MigrationResult[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => ({ ...migrations }) } });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? null;
    const reason = error instanceof Error ? error.message : String(error);
    throw new FaasError(
      'INTERNAL_ERROR',
      failed === null ? `store migrations could not run: ${reason}` : `store migration ${failed} failed: ${reason}`,
      { migration: failed },
      { cause: error },
    );
  }
  return results ?? [];
}
