import path from 'node:path';
import type { Knex } from 'knex';
import { readOrCreateSecret, readSecret } from '../lifecycle/secrets';
import { ensureLoginRole, transferOwnership, type RoleCredentials } from './roles';

/**
 * The embedded PostgreSQL's roles. The cluster's superuser (`vclerk`,
 * password in <dataDir>/postgres.password) only sets things up at each
 * start: it creates the owner role `vclerk_owner` and the app role
 * `vclerk_app`, whose random passwords are kept 0600 beside it
 * (postgres-owner.password, postgres-app.password), and makes the owner
 * own the database and everything in it, which also migrates an existing
 * data directory whose tables the superuser owned. Migrations then run as
 * the owner, the app as the app role.
 */
export const OWNER_ROLE = 'vclerk_owner';
export const APP_ROLE = 'vclerk_app';
const OWNER_PASSWORD_FILE = 'postgres-owner.password';
const APP_PASSWORD_FILE = 'postgres-app.password';

export interface EmbeddedRoles {
  owner: RoleCredentials;
  app: RoleCredentials;
}



/** The roles' credentials, generated (0600) at the first start. */
export function embeddedRoles(dataDir: string): EmbeddedRoles {
  const dir = path.resolve(dataDir);
  return {
    owner: { name: OWNER_ROLE, password: readOrCreateSecret(path.join(dir, OWNER_PASSWORD_FILE)) },
    app: { name: APP_ROLE, password: readOrCreateSecret(path.join(dir, APP_PASSWORD_FILE)) },
  };
}

/** The credentials when both files exist (a tool beside a running appliance), else null; never writes. */
export function readEmbeddedRoles(dataDir: string): EmbeddedRoles | null {
  const dir = path.resolve(dataDir);
  const owner = readSecret(path.join(dir, OWNER_PASSWORD_FILE));
  const app = readSecret(path.join(dir, APP_PASSWORD_FILE));
  return owner && app ? { owner: { name: OWNER_ROLE, password: owner }, app: { name: APP_ROLE, password: app } } : null;
}

/** As the cluster's superuser: both roles exist with the kept passwords, and the owner owns the database and its objects. */
export async function setUpEmbeddedRoles(admin: Knex, database: string, roles: EmbeddedRoles): Promise<void> {
  await ensureLoginRole(admin, roles.owner, { resetPassword: true });
  await ensureLoginRole(admin, roles.app, { resetPassword: true });
  await transferOwnership(admin, database, roles.owner.name);
}
