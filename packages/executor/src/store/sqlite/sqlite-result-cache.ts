import type { Kysely } from 'kysely';
import type { CachedResultRecord, ResultCacheFilter, ResultCacheRepository } from '../types.ts';
import type { SqliteSchema } from './sqlite-store.ts';

/** Rows of `result_cache`; see migration 0003 in `migrations.ts`. */
export interface ResultCacheTable {
  key: string;
  env: string;
  cache_key: string | null;
  execution_id: string;
  result: string;
  size_bytes: number;
  created_at: number;
  last_used_at: number;
  hits: number;
}

/** Keys per `IN (...)` list: well under SQLite's bound-parameter limit. */
const DELETE_CHUNK = 500;

export class SqliteResultCacheRepository implements ResultCacheRepository {
  readonly #db: () => Kysely<SqliteSchema>;

  constructor(db: () => Kysely<SqliteSchema>) {
    this.#db = db;
  }

  async get(key: string): Promise<CachedResultRecord | undefined> {
    const row = await this.#db().selectFrom('result_cache').selectAll().where('key', '=', key).executeTakeFirst();
    return row === undefined ? undefined : decodeCachedResult(row);
  }

  async sizeOf(key: string): Promise<number | undefined> {
    const row = await this.#db().selectFrom('result_cache').select('size_bytes').where('key', '=', key).executeTakeFirst();
    return row?.size_bytes;
  }

  async touch(key: string, at: Date): Promise<boolean> {
    const result = await this.#db()
      .updateTable('result_cache')
      .set((eb) => ({ last_used_at: at.getTime(), hits: eb('hits', '+', 1) }))
      .where('key', '=', key)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async put(record: CachedResultRecord): Promise<void> {
    const row = encodeCachedResult(record);
    await this.#db()
      .insertInto('result_cache')
      .values(row)
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          env: row.env,
          cache_key: row.cache_key,
          execution_id: row.execution_id,
          result: row.result,
          size_bytes: row.size_bytes,
          created_at: row.created_at,
          last_used_at: row.last_used_at,
          hits: row.hits,
        }),
      )
      .execute();
  }

  async delete(filter: ResultCacheFilter): Promise<number> {
    const hasCondition = filter.cacheKey !== undefined || filter.env !== undefined || filter.olderThan !== undefined;
    if (filter.all !== true && !hasCondition) return 0;
    let query = this.#db().deleteFrom('result_cache');
    if (filter.cacheKey !== undefined) query = query.where('cache_key', '=', filter.cacheKey);
    if (filter.env !== undefined) query = query.where('env', '=', filter.env);
    if (filter.olderThan !== undefined) query = query.where('created_at', '<', filter.olderThan.getTime());
    const result = await query.executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async totals(): Promise<{ entries: number; bytes: number }> {
    const row = await this.#db()
      .selectFrom('result_cache')
      .select((eb) => [eb.fn.countAll<number>().as('entries'), eb.fn.coalesce(eb.fn.sum<number>('size_bytes'), eb.lit(0)).as('bytes')])
      .executeTakeFirstOrThrow();
    return { entries: Number(row.entries), bytes: Number(row.bytes) };
  }

  async oldestUsed(limit: number): Promise<Array<{ key: string; sizeBytes: number }>> {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
    const rows = await this.#db()
      .selectFrom('result_cache')
      .select(['key', 'size_bytes'])
      .orderBy('last_used_at')
      .orderBy('created_at')
      .orderBy('key')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ key: r.key, sizeBytes: r.size_bytes }));
  }

  async deleteKeys(keys: readonly string[]): Promise<number> {
    let deleted = 0;
    for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
      const result = await this.#db().deleteFrom('result_cache').where('key', 'in', keys.slice(i, i + DELETE_CHUNK)).executeTakeFirst();
      deleted += Number(result.numDeletedRows);
    }
    return deleted;
  }

  async deleteExpired(createdBefore: Date): Promise<number> {
    const result = await this.#db().deleteFrom('result_cache').where('created_at', '<', createdBefore.getTime()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function encodeCachedResult(r: CachedResultRecord): ResultCacheTable {
  return {
    key: r.key,
    env: r.env,
    cache_key: r.cacheKey,
    execution_id: r.executionId,
    result: r.result,
    size_bytes: r.sizeBytes,
    created_at: r.createdAt.getTime(),
    last_used_at: r.lastUsedAt.getTime(),
    hits: r.hits,
  };
}

function decodeCachedResult(row: ResultCacheTable): CachedResultRecord {
  return {
    key: row.key,
    env: row.env,
    cacheKey: row.cache_key,
    executionId: row.execution_id,
    result: row.result,
    sizeBytes: row.size_bytes,
    createdAt: new Date(row.created_at),
    lastUsedAt: new Date(row.last_used_at),
    hits: row.hits,
  };
}
