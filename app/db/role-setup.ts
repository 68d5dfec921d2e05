import type { Knex } from 'knex';
import type { Config } from '../../config';
import type { Logger } from '../core/logger';
import type { EmbeddedPostgresHandle } from './embedded';
import { embeddedRoles, setUpEmbeddedRoles } from './embedded-roles';
import { ensureLoginRole, mayCreateRoles } from './roles';

/**
 * Which roles a start uses: the URL the app's pool connects with, and the
 * owner's pool for migrations (null when there is no separate owner: a
 * DATABASE_URL without DATABASE_OWNER_URL, the old single-role setup).
 */
export interface RoleSetup {
  runtimeUrl: string;
  owner: Knex | null;
  /** The app role the owner grants to after migrating; null without a separate owner. */
  appRole: string | null;
  database: string;
}

type KnexFactory = (url: string, poolMax: number) => Knex;

/** The embedded database: the superuser sets up both roles; the app runs as `vclerk_app`, migrations as `vclerk_owner`. */
export async function setUpEmbeddedRoleUse(embedded: EmbeddedPostgresHandle, database: string, dataDir: string, createKnex: KnexFactory): Promise<RoleSetup> {
  const roles = embeddedRoles(dataDir);
  const admin = createKnex(embedded.url(database), 1);
  try {
    await setUpEmbeddedRoles(admin, database, roles);
  } finally {
    await admin.destroy();
  }
  return { runtimeUrl: embedded.url(database, roles.app), owner: createKnex(embedded.url(database, roles.owner), 2), appRole: roles.app.name, database };
}

/**
 * An external database. With DATABASE_OWNER_URL, the owner's connection is
 * opened first: when DATABASE_URL's role does not exist yet (an existing
 * docker-compose installation, whose init script ran before this version)
 * and the owner may create roles, it is created with DATABASE_URL's
 * password and no special attribute.
 */
export async function setUpExternalRoleUse(config: Pick<Config, 'databaseUrl' | 'databaseOwnerUrl'>, logger: Logger, createKnex: KnexFactory): Promise<RoleSetup> {
  const runtimeUrl = config.databaseUrl!;
  const parsed = new URL(runtimeUrl);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || decodeURIComponent(parsed.username);
  if (!config.databaseOwnerUrl) return { runtimeUrl, owner: null, appRole: null, database };
  const owner = createKnex(config.databaseOwnerUrl, 2);
  try {
    const { rows } = await owner.raw('SELECT current_user AS role, current_database() AS db');
    const ownerRole = rows[0].role as string;
    if (rows[0].db !== database) throw new Error(`DATABASE_OWNER_URL names the database "${rows[0].db}", DATABASE_URL "${database}": both must name the same database`);
    const appRole = decodeURIComponent(parsed.username);
    if (!appRole || appRole === ownerRole) {
      logger.warn({ role: ownerRole }, 'DATABASE_URL and DATABASE_OWNER_URL name the same role: the app runs as the owner of its tables');
      await owner.destroy();
      return { runtimeUrl, owner: null, appRole: null, database };
    }
    const exists = (await owner.raw('SELECT 1 FROM pg_roles WHERE rolname = ?', [appRole])).rows.length > 0;
    if (!exists) {
      if (!(await mayCreateRoles(owner))) {
        throw new Error(`the role "${appRole}" of DATABASE_URL does not exist, and the role of DATABASE_OWNER_URL may not create it: create it (LOGIN, no other attribute), see docs/operations.md`);
      }
      await ensureLoginRole(owner, { name: appRole, password: decodeURIComponent(parsed.password) });
      logger.info({ role: appRole }, 'created the database role the app runs as');
    }
    return { runtimeUrl, owner, appRole, database };
  } catch (err) {
    await owner.destroy();
    throw err;
  }
}
