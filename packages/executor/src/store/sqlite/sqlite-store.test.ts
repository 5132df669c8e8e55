import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isFaasError } from '@faas/protocol';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { runStoreConformance } from '../conformance.ts';
import type { InstanceRecord } from '../types.ts';
import { MIGRATIONS, migrateToLatest } from './migrations.ts';
import { createSqliteKysely, openSqliteStore } from './sqlite-store.ts';

const dir = await mkdtemp(join(tmpdir(), 'faas-sqlite-store-'));
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
const freshPath = (): string => join(dir, `store-${++files}.db`);

runStoreConformance('sqlite :memory:', () => openSqliteStore({ path: ':memory:' }));
runStoreConformance('sqlite file', () => openSqliteStore({ path: freshPath() }));

function instance(id: string): InstanceRecord {
  return {
    id,
    state: 'running',
    stateReason: null,
    env: 'python',
    runtime: 'bwrap',
    envVars: { A: '1' },
    limits: { memoryMb: 256, cpuCores: 0.5, pidsMax: 64 },
    metadata: { team: 'ünicode' },
    hostUid: 150_000,
    nodeId: 'node-1',
    createdAt: new Date('2025-03-04T05:06:07.089Z'),
    startedAt: new Date('2025-03-04T05:06:07.301Z'),
    stoppedAt: null,
    startDurationMs: 212,
    sourceSnapshotId: null,
    lastSnapshotId: null,
    functionId: null,
    pooled: false,
  };
}

function tableNames(database: Database.Database): string[] {
  const rows = database.prepare(`select name from sqlite_master where type = 'table' order by name`).all() as { name: string }[];
  return rows.map((r) => r.name);
}

describe('SqliteStore (SQLite specifics)', () => {
  it('keeps data across close and reopen of the same file', async () => {
    const path = freshPath();
    const first = await openSqliteStore({ path });
    await first.instances.insert(instance('persisted'));
    await first.close();
    const second = await openSqliteStore({ path });
    try {
      assert.deepEqual(await second.instances.get('persisted'), instance('persisted'));
    } finally {
      await second.close();
    }
  });

  it('applies each migration once, however often the file is reopened', async () => {
    const path = freshPath();
    for (let i = 0; i < 3; i++) await (await openSqliteStore({ path })).close();
    const database = new Database(path);
    const db = createSqliteKysely(database);
    try {
      const applied = database.prepare('select name from kysely_migration order by name').all() as { name: string }[];
      assert.deepEqual(
        applied.map((r) => r.name),
        Object.keys(MIGRATIONS).sort(),
      );
      assert.deepEqual(await migrateToLatest(db), []);
    } finally {
      await db.destroy();
    }
  });

  it('creates the file in WAL journal mode', async () => {
    const path = freshPath();
    await (await openSqliteStore({ path })).close();
    const database = new Database(path, { readonly: true });
    try {
      assert.equal(database.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      database.close();
    }
  });

  it('a failing migration leaves no partial schema and no migration record', async () => {
    const database = new Database(':memory:');
    const db = createSqliteKysely(database);
    try {
      const broken = {
        ...MIGRATIONS,
        '9999_broken': {
          // The migrator hands `up` its own transaction; the outer `db` would wait for it forever.
          async up(migrationDb: Kysely<unknown>): Promise<void> {
            await sql`create table half_done (x integer)`.execute(migrationDb);
            throw new Error('broken on purpose');
          },
        },
      };
      await assert.rejects(migrateToLatest(db, broken), (err: unknown) => {
        assert.ok(isFaasError(err));
        assert.equal(err.code, 'INTERNAL_ERROR');
        assert.deepEqual(err.details, { migration: '9999_broken' });
        return true;
      });
      // The whole run is one transaction, so the good migrations before it are undone too.
      const tables = tableNames(database);
      assert.ok(!tables.includes('half_done') && !tables.includes('instances'), `left behind: ${tables.join(', ')}`);
      assert.equal((database.prepare('select count(*) as n from kysely_migration').get() as { n: number }).n, 0);
      assert.equal((await migrateToLatest(db)).length, Object.keys(MIGRATIONS).length);
    } finally {
      await db.destroy();
    }
  });

  it('using the outer store inside its own transaction throws instead of deadlocking', { timeout: 5000 }, async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    try {
      await assert.rejects(
        store.withTransaction(async () => store.instances.get('x')),
        (err: unknown) => isFaasError(err) && err.code === 'INTERNAL_ERROR' && /withTransaction/.test(err.message),
      );
      await assert.rejects(
        store.withTransaction(async () => store.withTransaction(async () => 1)),
        (err: unknown) => isFaasError(err) && err.code === 'INTERNAL_ERROR',
      );
      // Once the transaction is over, work it started may use the outer store again.
      let later: Promise<unknown> | undefined;
      await store.withTransaction(async () => {
        later = new Promise((resolve) => setTimeout(resolve, 5)).then(() => store.instances.list());
      });
      assert.deepEqual(await later, []);
    } finally {
      await store.close();
    }
  });

  it('close waits for a transaction in progress to commit', { timeout: 5000 }, async () => {
    const path = freshPath();
    const store = await openSqliteStore({ path });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const transaction = store.withTransaction(async (tx) => {
      await gate;
      await tx.instances.insert(instance('late'));
    });
    await new Promise((resolve) => setImmediate(resolve));
    const closing = store.close();
    release();
    await Promise.all([transaction, closing]);
    await store.close(); // a second close is harmless
    const reopened = await openSqliteStore({ path });
    try {
      assert.equal((await reopened.instances.get('late'))?.id, 'late');
    } finally {
      await reopened.close();
    }
  });

  it('refuses a non-integer in an integer field rather than storing it', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    try {
      await store.instances.insert(instance('strict'));
      await assert.rejects(store.instances.update('strict', { startDurationMs: 1.5 }));
      assert.equal((await store.instances.get('strict'))?.startDurationMs, 212);
    } finally {
      await store.close();
    }
  });

  it('rejects a path whose directory does not exist', async () => {
    await assert.rejects(openSqliteStore({ path: join(dir, 'missing', 'faas.db') }), /directory does not exist/);
  });
});
