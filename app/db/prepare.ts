import { installJobSchema } from '../jobs/queue';
import type { Logger } from '../core/logger';
import type { Database } from './connection';
import { migrateLatest } from './migrations';
import { grantAppRole, inspectRole, type RoleInspection } from './roles';

/**
 * Brings the schema up to date as the owner of the tables: VClerk's
 * migrations, pg-boss's schema, then the app role's privileges (granted
 * anew each time, so they always match the tables that exist). Answers the
 * migrations applied.
 */
export async function migrateDatabase(db: Pick<Database, 'knex' | 'owner' | 'appRole' | 'databaseName'>): Promise<string[]> {
  const owner = db.owner ?? db.knex;
  const applied = await migrateLatest(owner);
  await installJobSchema(owner);
  if (db.owner && db.appRole) await grantAppRole(db.owner, db.appRole, db.databaseName);
  return applied;
}

/**
 * What the running app's role may do to the audit trail. When it may
 * change it (a superuser, or the owner of the audit table: the old
 * single-role setup with DATABASE_URL only), a warning goes to the log at
 * every start, and /admin/status shows it.
 */
export async function checkAppRole(db: Pick<Database, 'knex'>, logger: Logger): Promise<RoleInspection> {
  const role = await inspectRole(db.knex);
  if (role.mayChangeAuditTrail) {
    logger.warn(
      { role: role.role, superuser: role.superuser, ownsAuditTrail: role.ownsAuditTrail },
      'SECURITY: the app connects to PostgreSQL as a role that can change or disable the append-only audit trail; give it a role of its own with DATABASE_URL and the owner with DATABASE_OWNER_URL (docs/operations.md)',
    );
  }
  return role;
}
