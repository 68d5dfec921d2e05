import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { createKnex } from '../../app/db/connection';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../app/db/embedded';
import { migrateLatest } from '../../app/db/migrations';
import { silentLogger } from './context';

/**
 * One PostgreSQL server per test run: the given DATABASE_URL's server, or an
 * embedded one in a temporary directory. A template database is migrated
 * once; each test file clones it (CREATE DATABASE ... TEMPLATE), so every
 * file starts from the same clean state whatever ran before it.
 */
interface TestServer {
  urlFor(database: string): string;
  admin: Knex;
  embedded?: EmbeddedPostgresHandle;
  tempDir?: string;
}

let server: TestServer | undefined;
const TEMPLATE = `vclerk_test_template_${process.pid}`;
let counter = 0;

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export async function startTestServer(): Promise<void> {
  const given = process.env.DATABASE_URL;
  if (given) {
    server = { urlFor: (db) => withDatabase(given, db), admin: createKnex(given, 2) };
  } else {
    const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-test-'));
    fs.chmodSync(tempDir, 0o755);
    const port = 20000 + crypto.randomInt(20000);
    const embedded = await startEmbeddedPostgres({ dataDir: tempDir, port, logger: silentLogger, ephemeral: true });
    server = { urlFor: (db) => embedded.url(db), admin: createKnex(embedded.url('postgres'), 2), embedded, tempDir };
  }
  await server.admin.raw(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
  await server.admin.raw(`CREATE DATABASE ${TEMPLATE}`);
  const template = createKnex(server.urlFor(TEMPLATE), 1);
  try {
    await migrateLatest(template);
  } finally {
    await template.destroy();
  }
}

export async function stopTestServer(): Promise<void> {
  if (!server) return;
  await server.admin.raw(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
  await server.admin.destroy();
  await server.embedded?.stop();
  if (server.tempDir) fs.rmSync(server.tempDir, { recursive: true, force: true });
  server = undefined;
}

export interface TestDatabase {
  name: string;
  url: string;
  knex: Knex;
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
  return {
    name,
    url,
    knex,
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
