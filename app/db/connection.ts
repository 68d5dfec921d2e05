import knexFactory, { type Knex } from 'knex';
import type { Config } from '../../config';
import type { Logger } from '../core/logger';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded';
import { setUpEmbeddedRoleUse, setUpExternalRoleUse, type RoleSetup } from './role-setup';

export type { Knex };

export interface Database {
  knex: Knex;
  /** True when VClerk runs its own embedded PostgreSQL. */
  embedded: boolean;
  /**
   * A small pool as the role that owns the tables, for migrations (see
   * app/db/roles.ts); null when the app's own role is used for them.
   */
  owner: Knex | null;
  /** The role `knex` connects as, when it is a separate app role the owner grants to. */
  appRole: string | null;
  /** The database's name. */
  databaseName: string;
  /** The embedded server, to restart it when it died (the database watchdog). */
  server?: EmbeddedPostgresHandle;
  /** Closes the owner's pool once migrations are done: the running app keeps no connection as the owner. */
  releaseOwner(): Promise<void>;
  /** Closes the pool, then stops the embedded server if there is one. */
  close(): Promise<void>;
}

export const EMBEDDED_DATABASE = 'vclerk';

/** `logger`: where knex's own warnings go (lost connections, failed acquires), as log lines; else the console. */
export function createKnex(connectionString: string, poolMax: number, logger?: Logger): Knex {
  const log = logger?.child({ component: 'knex' });
  return knexFactory({
    client: 'pg',
    connection: { connectionString, application_name: 'vclerk' },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10000,
    ...(log ? { log: { warn: (m: string) => log.warn(String(m).split('\n')[0]), error: (m: string) => log.error(String(m).split('\n')[0]), deprecate: (...args: unknown[]) => log.warn(args.join(' ')), debug: () => undefined } } : {}),
  });
}

/**
 * Opens the database named by DATABASE_URL, or starts the embedded
 * PostgreSQL under the data directory when it is unset.
 */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'databasePoolMax' | 'dataDir' | 'embeddedDbPort'> & Partial<Pick<Config, 'databaseOwnerUrl'>>,
  logger: Logger,
): Promise<Database> {
  let embedded: EmbeddedPostgresHandle | undefined;
  let roles: RoleSetup;
  if (!config.databaseUrl) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedDbPort, logger });
    try {
      await embedded.createDatabase(EMBEDDED_DATABASE);
      roles = await setUpEmbeddedRoleUse(embedded, EMBEDDED_DATABASE, config.dataDir, createKnex);
    } catch (err) {
      await embedded.stop();
      throw err;
    }
  } else {
    roles = await setUpExternalRoleUse({ databaseUrl: config.databaseUrl, databaseOwnerUrl: config.databaseOwnerUrl }, logger, createKnex);
  }
  const knex = createKnex(roles.runtimeUrl, config.databasePoolMax, logger);
  try {
    await knex.raw('SELECT 1');
  } catch (err) {
    await knex.destroy();
    await roles.owner?.destroy();
    await embedded?.stop();
    throw new Error('cannot connect to the database (check DATABASE_URL and that the server is running)', { cause: err });
  }
  const database: Database = {
    knex,
    embedded: embedded !== undefined,
    owner: roles.owner,
    appRole: roles.appRole,
    databaseName: roles.database,
    server: embedded,
    async releaseOwner() {
      const owner = database.owner;
      database.owner = null;
      await owner?.destroy();
    },
    async close() {
      // Each step even when one before it failed: the embedded server must not be left running.
      try {
        await knex.destroy();
      } finally {
        try {
          await database.releaseOwner();
        } finally {
          await embedded?.stop();
        }
      }
    },
  };
  return database;
}
