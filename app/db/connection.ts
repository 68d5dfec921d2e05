import knexFactory, { type Knex } from 'knex';
import type { Config } from '../../config';
import type { Logger } from '../logger';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded';

export type { Knex };

export interface Database {
  knex: Knex;
  /** True when VClerk runs its own embedded PostgreSQL. */
  embedded: boolean;
  /** Closes the pool, then stops the embedded server if there is one. */
  close(): Promise<void>;
}

export const EMBEDDED_DATABASE = 'vclerk';

export function createKnex(connectionString: string, poolMax: number): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString, application_name: 'vclerk' },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10000,
  });
}

/**
 * Opens the database named by DATABASE_URL, or starts the embedded
 * PostgreSQL under the data directory when it is unset.
 */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'databasePoolMax' | 'dataDir' | 'embeddedDbPort'>,
  logger: Logger,
): Promise<Database> {
  let embedded: EmbeddedPostgresHandle | undefined;
  let url = config.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedDbPort, logger });
    try {
      await embedded.createDatabase(EMBEDDED_DATABASE);
    } catch (err) {
      await embedded.stop();
      throw err;
    }
    url = embedded.url(EMBEDDED_DATABASE);
  }
  const knex = createKnex(url, config.databasePoolMax);
  try {
    await knex.raw('SELECT 1');
  } catch (err) {
    await knex.destroy();
    await embedded?.stop();
    throw new Error('cannot connect to the database (check DATABASE_URL and that the server is running)', { cause: err });
  }
  return {
    knex,
    embedded: embedded !== undefined,
    async close() {
      await knex.destroy();
      await embedded?.stop();
    },
  };
}
