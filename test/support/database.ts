import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { createKnex } from '../../app/db/connection';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../app/db/embedded';
import { migrateDatabase } from '../../app/db/prepare';
import { ensureLoginRole, transferOwnership, type RoleCredentials } from '../../app/db/roles';
import { silentLogger } from './context';

/**
 * One PostgreSQL server per test run: the given DATABASE_URL's server, or an
 * embedded one in a temporary directory. A template database is migrated
 * once; each test file clones it (CREATE DATABASE ... TEMPLATE), so every
 * file starts from the same clean state whatever ran before it.
 */
interface TestServer {
  urlFor(database: string, role?: RoleCredentials): string;
  admin: Knex;
  embedded?: EmbeddedPostgresHandle;
  tempDir?: string;
}

let server: TestServer | undefined;
const TEMPLATE = `vclerk_test_template_${process.pid}`;
let counter = 0;

/**
 * The two roles of production (app/db/roles.ts), one pair per test run:
 * the template is owned by `owner`, migrated as it, and grants `app` what
 * the running app may do; every test database cloned from it inherits
 * both. Tests keep using the server's own (superuser) connection for
 * seeding; `connectAs` gives a test the app's or the owner's connection.
 * Null when the given server's role may not create roles.
 */
let roles: { owner: RoleCredentials; app: RoleCredentials } | null = null;

function withDatabase(url: string, database: string, role?: RoleCredentials): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  if (role) {
    parsed.username = encodeURIComponent(role.name);
    parsed.password = encodeURIComponent(role.password);
  }
  return parsed.toString();
}

async function prepareTemplate(s: TestServer): Promise<void> {
  const admin = createKnex(s.urlFor(TEMPLATE), 1);
  try {
    // Setting the roles up (owners moved) needs a superuser; a server given without one runs the tests with its own role only.
    if ((await admin.raw('SELECT rolsuper FROM pg_roles WHERE rolname = current_user')).rows[0]?.rolsuper === true) {
      const password = () => crypto.randomBytes(18).toString('base64url');
      roles = { owner: { name: `vclerk_test_owner_${process.pid}`, password: password() }, app: { name: `vclerk_test_app_${process.pid}`, password: password() } };
      await ensureLoginRole(admin, roles.owner, { resetPassword: true });
      await ensureLoginRole(admin, roles.app, { resetPassword: true });
      await transferOwnership(admin, TEMPLATE, roles.owner.name);
    }
  } finally {
    await admin.destroy();
  }
  const template = createKnex(s.urlFor(TEMPLATE, roles?.owner), 1);
  try {
    await migrateDatabase({ knex: template, owner: roles ? template : null, appRole: roles?.app.name ?? null, databaseName: TEMPLATE });
  } finally {
    await template.destroy();
  }
}

export async function startTestServer(): Promise<void> {
  const given = process.env.DATABASE_URL;
  if (given) {
    server = { urlFor: (db, role) => withDatabase(given, db, role), admin: createKnex(given, 2) };
  } else {
    const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-test-'));
    fs.chmodSync(tempDir, 0o755);
    const port = 20000 + crypto.randomInt(20000);
    const embedded = await startEmbeddedPostgres({ dataDir: tempDir, port, logger: silentLogger, ephemeral: true });
    server = { urlFor: (db, role) => embedded.url(db, role), admin: createKnex(embedded.url('postgres'), 2), embedded, tempDir };
  }
  await server.admin.raw(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
  await server.admin.raw(`CREATE DATABASE ${TEMPLATE}`);
  await prepareTemplate(server);
}

export async function stopTestServer(): Promise<void> {
  if (!server) return;
  await server.admin.raw(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
  for (const role of roles ? [roles.app, roles.owner] : []) {
    // Fails while a test database the run left behind still holds grants to it; the role then stays.
    await server.admin.raw(`DROP ROLE IF EXISTS "${role.name}"`).catch(() => undefined);
  }
  roles = null;
  await server.admin.destroy();
  await server.embedded?.stop();
  if (server.tempDir) fs.rmSync(server.tempDir, { recursive: true, force: true });
  server = undefined;
}

export interface TestDatabase {
  name: string;
  url: string;
  knex: Knex;
  /**
   * A new pool on this database as the production roles: `app` (what the
   * running app connects as) or `owner` (what migrations run as); the
   * caller destroys it. Throws when the server could not make the roles.
   */
  connectAs(role: 'app' | 'owner', poolMax?: number): Knex;
  /** The URL of this database as that role (for child processes). */
  urlAs(role: 'app' | 'owner'): string;
  drop(): Promise<void>;
}

/** A new database on the test server: migrated (from the template) or empty. */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  if (!server) throw new Error('the test PostgreSQL is not running (root hooks not loaded?)');
  const s = server;
  const name = `vclerk_test_${process.pid}_${++counter}`;
  await s.admin.raw(`CREATE DATABASE ${name}${options.migrated === false ? '' : ` TEMPLATE ${TEMPLATE}`}`);
  const url = s.urlFor(name);
  const knex = createKnex(url, 5);
  const urlAs = (role: 'app' | 'owner') => {
    if (!roles) throw new Error('the test PostgreSQL role may not create roles: no app or owner role');
    return s.urlFor(name, roles[role]);
  };
  return {
    name,
    url,
    knex,
    urlAs,
    connectAs: (role, poolMax = 2) => createKnex(urlAs(role), poolMax),
    async drop() {
      await knex.destroy();
      await s.admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Registers before/after hooks that give the enclosing describe its own migrated database. */
export function useTestDatabase(options: { migrated?: boolean } = {}): { readonly current: TestDatabase } {
  let db: TestDatabase | undefined;
  before(async () => {
    db = await createTestDatabase(options);
  });
  after(async () => {
    await db?.drop();
  });
  return {
    get current() {
      if (!db) throw new Error('test database not ready yet');
      return db;
    },
  };
}

/** The server's connection URL for another database name (for child processes). */
export function testServerUrl(database: string): string {
  if (!server) throw new Error('the test PostgreSQL is not running');
  return server.urlFor(database);
}
