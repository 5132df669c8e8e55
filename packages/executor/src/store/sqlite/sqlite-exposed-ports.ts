import { FaasError } from '@faas/protocol';
import Database from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { ExposedPortRecord, ExposedPortRepository } from '../types.ts';
import type { SqliteSchema } from './sqlite-store.ts';

/** Rows of `exposed_ports`; see migration 0005 in `migrations.ts`. */
export interface ExposedPortsTable {
  instance_id: string;
  port: number;
  token_hash: string | null;
  created_at: number;
}

export class SqliteExposedPortRepository implements ExposedPortRepository {
  readonly #db: () => Kysely<SqliteSchema>;

  constructor(db: () => Kysely<SqliteSchema>) {
    this.#db = db;
  }

  async insert(record: ExposedPortRecord): Promise<void> {
    let inserted: bigint;
    try {
      const result = await this.#db()
        .insertInto('exposed_ports')
        .values({ instance_id: record.instanceId, port: record.port, token_hash: record.tokenHash, created_at: record.createdAt.getTime() })
        .onConflict((oc) => oc.columns(['instance_id', 'port']).doNothing())
        .executeTakeFirst();
      inserted = result.numInsertedOrUpdatedRows ?? 0n;
    } catch (err) {
      if (err instanceof Database.SqliteError && err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new FaasError('INSTANCE_NOT_FOUND', `no instance with id ${record.instanceId}`, { instance_id: record.instanceId }, { cause: err });
      }
      throw err;
    }
    if (inserted === 0n) {
      throw new FaasError('PORT_ALREADY_EXPOSED', `port ${record.port} of instance ${record.instanceId} is exposed already; un-expose it first to change its token`, {
        instance_id: record.instanceId,
        port: record.port,
      });
    }
  }

  async get(instanceId: string, port: number): Promise<ExposedPortRecord | undefined> {
    const row = await this.#db().selectFrom('exposed_ports').selectAll().where('instance_id', '=', instanceId).where('port', '=', port).executeTakeFirst();
    return row === undefined ? undefined : decode(row);
  }

  async listByInstance(instanceId: string): Promise<ExposedPortRecord[]> {
    const rows = await this.#db().selectFrom('exposed_ports').selectAll().where('instance_id', '=', instanceId).orderBy('port').execute();
    return rows.map(decode);
  }

  async delete(instanceId: string, port: number): Promise<boolean> {
    const result = await this.#db().deleteFrom('exposed_ports').where('instance_id', '=', instanceId).where('port', '=', port).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  async deleteByInstance(instanceId: string): Promise<number> {
    const result = await this.#db().deleteFrom('exposed_ports').where('instance_id', '=', instanceId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteOfDeletedInstances(): Promise<number> {
    const db = this.#db();
    const result = await db
      .deleteFrom('exposed_ports')
      .where('instance_id', 'in', db.selectFrom('instances').select('id').where('state', '=', 'deleted'))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function decode(row: ExposedPortsTable): ExposedPortRecord {
  return { instanceId: row.instance_id, port: row.port, tokenHash: row.token_hash, createdAt: new Date(row.created_at) };
}
