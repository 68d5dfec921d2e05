import type { Knex } from 'knex';
import type { Client } from 'pg';

/**
 * A PostgreSQL session-level advisory lock held on one connection of the
 * pool, for work that must run once at a time across every node on the
 * database (and across processes): `tryHoldLock` answers its release, or
 * undefined when another session holds it. A node that dies loses its
 * session, and with it the lock: nothing is left held after a crash.
 * The connection stays out of the pool until the release.
 */
export async function tryHoldLock(knex: Knex, name: string): Promise<(() => Promise<void>) | undefined> {
  const pool = knex.client as { acquireConnection(): Promise<Client>; releaseConnection(c: Client): Promise<void> };
  const connection = await pool.acquireConnection();
  try {
    const { rows } = await connection.query<{ held: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS held', [name]);
    if (!rows[0]?.held) {
      await pool.releaseConnection(connection);
      return undefined;
    }
  } catch (err) {
    await pool.releaseConnection(connection);
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    try {
      await connection.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [name]);
    } catch {
      // A broken connection holds nothing: closing it ends the session and its lock.
      await connection.end().catch(() => undefined);
    } finally {
      await pool.releaseConnection(connection);
    }
  };
}
