import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';

/**
 * Migrations live in app/db/migrations as `<YYYYMMDDHHMMSS>_<verb>_<noun>.ts`
 * and are compiled to .js for production. knex records each migration by
 * name; this source names them without the extension, so the database does
 * not care whether the TypeScript sources or the compiled files ran them.
 */
export const migrationsDir = path.join(__dirname, 'migrations');
export const MIGRATION_NAME = /^\d{14}_(create|add|drop|remove|alter|rename|change|backfill|seed|enable)_[a-z0-9_]+$/;

const extension = path.extname(__filename) === '.ts' ? '.ts' : '.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations(): Promise<string[]> {
    return listMigrationNames();
  }

  getMigrationName(name: string): string {
    return name;
  }

  async getMigration(name: string): Promise<Migration> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(path.join(migrationsDir, `${name}${extension}`)) as Migration;
  }
}

/** Migration names in the order they run (timestamp order). */
export function listMigrationNames(): string[] {
  return fs
    .readdirSync(migrationsDir)
    .filter((file) => file.endsWith(extension) && !file.endsWith('.d.ts'))
    .map((file) => file.slice(0, -extension.length))
    .sort();
}

export const migratorConfig: Knex.MigratorConfig = {
  migrationSource: new DirectoryMigrationSource(),
  tableName: 'knex_migrations',
};

export async function migrateLatest(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest(migratorConfig)) as [number, string[]];
  return applied;
}

export async function migrationStatus(knex: Knex): Promise<{ applied: string[]; pending: string[] }> {
  const [completed, pending] = (await knex.migrate.list(migratorConfig)) as [{ name: string }[], string[]];
  return { applied: completed.map((m) => m.name), pending };
}

export async function rollbackAll(knex: Knex): Promise<void> {
  await knex.migrate.rollback(migratorConfig, true);
}
