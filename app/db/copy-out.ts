import type { Knex } from 'knex';
import { escapeLiteral, type Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/**
 * `COPY (<query>) TO STDOUT` on one connection of the pool: the rows come
 * as the raw bytes PostgreSQL sends (no row objects in Node), in chunks of
 * whatever the socket delivered. The stream pauses the socket when the
 * consumer is slower (backpressure reaches PostgreSQL), so memory stays
 * flat. COPY takes no bind parameters: `query` must be complete SQL, its
 * values inlined with `sqlWithLiterals`.
 */
export async function* copyOut(knex: Knex, query: string): AsyncGenerator<Buffer> {
  const pool = knex.client as { acquireConnection(): Promise<Client>; releaseConnection(c: Client): Promise<void> };
  const connection = await pool.acquireConnection();
  let finished = false;
  try {
    const stream = connection.query(copyTo(`COPY (${query}) TO STDOUT (FORMAT binary)`));
    for await (const chunk of stream) yield chunk as Buffer;
    finished = true;
  } finally {
    // Left in the middle of a COPY (the consumer failed), the connection cannot take another query: close it.
    if (!finished) await connection.end().catch(() => undefined);
    await pool.releaseConnection(connection);
  }
}

/**
 * A knex query as one SQL text with its values inlined as literals (pg's
 * escapeLiteral, which also handles backslashes), for COPY. Dates become
 * ISO text (compared with timestamptz columns as instants).
 */
export function sqlWithLiterals(query: Knex.QueryBuilder): string {
  const { sql, bindings } = query.toSQL().toNative();
  return sql.replace(/\$(\d+)/g, (_, n: string) => {
    const value = bindings[Number(n) - 1];
    if (value instanceof Date) return `${escapeLiteral(value.toISOString())}::timestamptz`;
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value === 'string') return escapeLiteral(value);
    throw new TypeError(`cannot inline a ${typeof value} into COPY`);
  });
}
