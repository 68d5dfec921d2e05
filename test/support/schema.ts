import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { listMigrationNames, migrationsDir } from '../../app/db/migrations';

export const snapshotFile = path.join(__dirname, '..', 'fixtures', 'schema-snapshot.json');

export interface SchemaSnapshot {
  /** SHA-256 of each migration's source: a released migration never changes. */
  migrations: Record<string, string>;
  /** The schema the migrations produce, as PostgreSQL describes it. */
  tables: Record<string, string[]>;
  functions: string[];
}

export function migrationChecksums(): Record<string, string> {
  return Object.fromEntries(
    listMigrationNames().map((name) => [
      name,
      crypto.createHash('sha256').update(fs.readFileSync(path.join(migrationsDir, `${name}.ts`))).digest('hex'),
    ]),
  );
}

/**
 * Columns, constraints, indexes and triggers of every table in the public schema.
 * NOT NULL constraints appear as columns' "not null" only (PostgreSQL 18 also
 * lists them as constraints, older servers do not).
 */
export async function describeSchema(knex: Knex): Promise<Pick<SchemaSnapshot, 'tables' | 'functions'>> {
  const ignored = ['knex_migrations', 'knex_migrations_lock'];
  const tables: Record<string, string[]> = {};
  const add = (table: string, line: string) => {
    if (!ignored.includes(table)) (tables[table] ??= []).push(line);
  };
  const columns = await knex.raw(`
    SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, character_maximum_length
    FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, column_name`);
  for (const c of columns.rows) {
    add(c.table_name, `column ${c.column_name} ${c.data_type === 'USER-DEFINED' || c.data_type === 'ARRAY' ? c.udt_name : c.data_type}${c.character_maximum_length ? `(${c.character_maximum_length})` : ''}${c.is_nullable === 'NO' ? ' not null' : ''}${c.column_default ? ` default ${c.column_default}` : ''}`);
  }
  const constraints = await knex.raw(`
    SELECT rel.relname AS table_name, con.conname, pg_get_constraintdef(con.oid) AS def
    FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid JOIN pg_namespace n ON n.oid = rel.relnamespace
    WHERE n.nspname = 'public' AND con.contype <> 'n' ORDER BY 1, 2`);
  for (const c of constraints.rows) add(c.table_name, `constraint ${c.conname} ${c.def}`);
  const indexes = await knex.raw(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2`);
  for (const i of indexes.rows) add(i.tablename, `index ${i.indexdef}`);
  const triggers = await knex.raw(`
    SELECT rel.relname AS table_name, t.tgname, pg_get_triggerdef(t.oid) AS def
    FROM pg_trigger t JOIN pg_class rel ON rel.oid = t.tgrelid JOIN pg_namespace n ON n.oid = rel.relnamespace
    WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY 1, 2`);
  for (const t of triggers.rows) add(t.table_name, `trigger ${t.def}`);
  for (const lines of Object.values(tables)) lines.sort();
  const functions = await knex.raw(`
    SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') ' || md5(p.prosrc) AS f
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    ORDER BY 1`);
  return { tables: Object.fromEntries(Object.entries(tables).sort()), functions: functions.rows.map((r: { f: string }) => r.f) };
}

export function readSnapshot(): SchemaSnapshot {
  return JSON.parse(fs.readFileSync(snapshotFile, 'utf8')) as SchemaSnapshot;
}
