import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config';
import { createKnex, EMBEDDED_DATABASE, openDatabase, type Database } from './connection';
import { readEmbeddedRoles } from './embedded-roles';
import type { Logger } from '../core/logger';

/**
 * The database for command-line tools that may run while the appliance
 * runs (`vclerk backup create` from cron, `vclerk user reset-password`,
 * `vclerk migrate status`, ...). With DATABASE_URL that is simply the
 * server. With the embedded PostgreSQL, a server the running appliance
 * started is joined (its port is in postmaster.pid, its password in
 * <dataDir>/postgres.password) instead of being stopped and started anew,
 * as openDatabase() does with a cluster it finds running after a crash.
 */
export async function openDatabaseBesideAppliance(config: Config, logger: Logger): Promise<Database> {
  if (config.databaseUrl) return openDatabase(config, logger);
  const dataDir = path.resolve(config.dataDir);
  const running = runningEmbeddedPort(path.join(dataDir, 'postgres'));
  if (running === null) return openDatabase(config, logger);
  // The app role for the work, the owner for migrations (an appliance older than the two roles: its superuser for both).
  const roles = readEmbeddedRoles(dataDir);
  const superuser = { name: 'vclerk', password: fs.readFileSync(path.join(dataDir, 'postgres.password'), 'utf8').trim() };
  const urlAs = (role: { name: string; password: string }) => `postgres://${encodeURIComponent(role.name)}:${encodeURIComponent(role.password)}@127.0.0.1:${running}/${EMBEDDED_DATABASE}`;
  const knex = createKnex(urlAs(roles?.app ?? superuser), 2);
  const owner = roles ? createKnex(urlAs(roles.owner), 1) : null;
  try {
    await knex.raw('SELECT 1');
  } catch (err) {
    await knex.destroy();
    await owner?.destroy();
    throw new Error(`cannot connect to the running embedded PostgreSQL on 127.0.0.1:${running}`, { cause: err });
  }
  const database: Database = {
    knex,
    embedded: true,
    owner,
    appRole: roles?.app.name ?? null,
    databaseName: EMBEDDED_DATABASE,
    async releaseOwner() {
      const pool = database.owner;
      database.owner = null;
      await pool?.destroy();
    },
    async close() {
      try {
        await knex.destroy();
      } finally {
        await database.releaseOwner();
      }
    },
  };
  return database;
}

/** The port of a live postmaster on this cluster, or null. */
function runningEmbeddedPort(clusterDir: string): number | null {
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return null;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  return port;
}
