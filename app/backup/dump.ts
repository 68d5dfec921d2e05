/**
 * The database part of a backup, without pg_dump: the embedded PostgreSQL
 * ships no client tools, and Debian's pg_dump cannot dump a newer server.
 *
 * Dump: one REPEATABLE READ, READ ONLY transaction (one snapshot, the same
 * one the caller uses to list the recording files), each table of the
 * `public` schema read through a cursor as `row_to_json` text and written
 * as gzip'd NDJSON. Row text is never parsed in Node, so big integers and
 * numerics pass through unchanged. The schema itself is not dumped: it is
 * the list of applied migrations, which restore replays.
 *
 *   #{"format":"vclerk-db-dump","version":1}
 *   #{"table":"organisations","columns":["id","name",...]}
 *   {"id":"...","name":"..."}                    one line per row
 *   #{"end":"organisations","rows":1}
 *   #{"sequence":"audit_events_id_seq","lastValue":"41","isCalled":true}
 *
 * Load (into a database migrated to exactly the dump's migrations, inside
 * one transaction): foreign keys are dropped and re-added afterwards (which
 * checks every row), user triggers (the audit trail's append-only guard)
 * are disabled meanwhile, rows the migrations seeded are removed, rows are
 * inserted in batches through json_populate_recordset, and sequences are
 * set to their dumped values. Needs only table ownership, no superuser.
 *
 * Not dumped: pg-boss's schema (queued jobs; the appliance schedules its
 * recurring jobs again at start) and knex's migration bookkeeping.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import zlib from 'node:zlib';
import type { Knex } from 'knex';
import { BackupError, EXIT } from './manifest';

const DUMP_FORMAT = 'vclerk-db-dump';
const SKIPPED_TABLES = new Set(['knex_migrations', 'knex_migrations_lock']);
const FETCH_ROWS = 1000;
const INSERT_BATCH_BYTES = 4 * 1024 * 1024;
const INSERT_BATCH_ROWS = 2000;

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function tables(db: Knex | Knex.Transaction): Promise<string[]> {
  const { rows } = await db.raw(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname`,
  );
  return (rows as { name: string }[]).map((r) => r.name).filter((name) => !SKIPPED_TABLES.has(name));
}

/** Stored (non-generated) columns in table order. */
async function columns(db: Knex | Knex.Transaction, table: string): Promise<string[]> {
  const { rows } = await db.raw(
    `SELECT a.attname AS name FROM pg_attribute a
      WHERE a.attrelid = ?::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum`,
    [`public.${ident(table)}`],
  );
  return (rows as { name: string }[]).map((r) => r.name);
}

export interface DumpResult {
  bytes: number;
  sha256: string;
  migrations: string[];
  tables: { name: string; rows: number }[];
}

/** The migrations recorded in the database, in the order they ran. */
export async function appliedMigrations(db: Knex | Knex.Transaction): Promise<string[]> {
  const exists = await db.raw(`SELECT to_regclass('public.knex_migrations') AS t`);
  if (!exists.rows[0].t) throw new BackupError('the database has no VClerk schema (no migrations applied): nothing to back up');
  const rows = (await db('knex_migrations').orderBy('id').select('name')) as { name: string }[];
  return rows.map((r) => r.name);
}

/** Writes the dump of `trx`'s snapshot to `file` (gzip'd NDJSON). */
export async function dumpDatabase(trx: Knex.Transaction, file: string): Promise<DumpResult> {
  const migrations = await appliedMigrations(trx);
  const gzip = zlib.createGzip();
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const counter = new PassThrough();
  counter.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash.update(chunk);
  });
  const done = pipeline(gzip, counter, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
  const write = async (line: string) => {
    if (!gzip.write(`${line}\n`)) await new Promise((resolve) => gzip.once('drain', resolve));
  };
  const result: { name: string; rows: number }[] = [];
  try {
    await write(`#${JSON.stringify({ format: DUMP_FORMAT, version: 1, migrations })}`);
    for (const table of await tables(trx)) {
      const cols = await columns(trx, table);
      await write(`#${JSON.stringify({ table, columns: cols })}`);
      await trx.raw(`DECLARE vclerk_backup NO SCROLL CURSOR FOR SELECT row_to_json(r)::text AS j FROM (SELECT ${cols.map(ident).join(', ')} FROM public.${ident(table)}) r`);
      let rows = 0;
      for (;;) {
        const fetched = (await trx.raw(`FETCH FORWARD ${FETCH_ROWS} FROM vclerk_backup`)).rows as { j: string }[];
        for (const row of fetched) await write(row.j);
        rows += fetched.length;
        if (fetched.length < FETCH_ROWS) break;
      }
      await trx.raw('CLOSE vclerk_backup');
      await write(`#${JSON.stringify({ end: table, rows })}`);
      result.push({ name: table, rows });
    }
    const sequences = (
      await trx.raw(`SELECT sequencename AS name, last_value::text AS "lastValue" FROM pg_sequences WHERE schemaname = 'public' ORDER BY sequencename`)
    ).rows as { name: string; lastValue: string | null }[];
    for (const s of sequences) await write(`#${JSON.stringify({ sequence: s.name, lastValue: s.lastValue, isCalled: s.lastValue !== null })}`);
    gzip.end();
    await done;
  } catch (err) {
    gzip.destroy();
    await done.catch(() => undefined);
    throw err;
  }
  return { bytes, sha256: hash.digest('hex'), migrations, tables: result };
}

/** True when the database holds no relation outside PostgreSQL's own schemas. */
export async function databaseIsEmpty(db: Knex): Promise<{ empty: boolean; relations: number }> {
  const { rows } = await db.raw(
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`,
  );
  return { empty: rows[0].n === 0, relations: rows[0].n };
}

type DumpLine =
  | { format: string; version: number; migrations: string[] }
  | { table: string; columns: string[] }
  | { end: string; rows: number }
  | { sequence: string; lastValue: string | null; isCalled: boolean };

/** Reads the dump's first line: the migrations it was made at. */
export async function dumpMigrations(file: string): Promise<string[]> {
  const lines = readline.createInterface({ input: fs.createReadStream(file).pipe(zlib.createGunzip()), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      const head = line.startsWith('#') ? (JSON.parse(line.slice(1)) as { format?: string; migrations?: string[] }) : undefined;
      if (head?.format !== DUMP_FORMAT || !Array.isArray(head.migrations)) break;
      return head.migrations;
    }
  } finally {
    lines.close();
  }
  throw new BackupError('the database dump in the archive is not a VClerk dump', EXIT.invalidArchive);
}

/**
 * Loads a dump into a database whose schema is at exactly the dump's
 * migrations, in one transaction: all rows or none.
 */
export async function loadDatabase(knex: Knex, file: string): Promise<{ tables: number; rows: number }> {
  return knex.transaction(async (trx) => {
    const all = await tables(trx);
    const { rows: fks } = await trx.raw(
      `SELECT c.conrelid::regclass::text AS tbl, c.conname AS name, pg_get_constraintdef(c.oid) AS def
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE c.contype = 'f' AND n.nspname = 'public'`,
    );
    for (const fk of fks as { tbl: string; name: string; def: string }[]) await trx.raw(`ALTER TABLE ${fk.tbl} DROP CONSTRAINT ${ident(fk.name)}`);
    for (const table of all) await trx.raw(`ALTER TABLE public.${ident(table)} DISABLE TRIGGER USER`);
    if (all.length) await trx.raw(`TRUNCATE ${all.map((t) => `public.${ident(t)}`).join(', ')}`);

    let current: { table: string; columns: string[] } | undefined;
    let batch: string[] = [];
    let batchBytes = 0;
    let tableRows = 0;
    let totalRows = 0;
    let tableCount = 0;
    const flush = async () => {
      if (!current || batch.length === 0) return;
      const cols = current.columns.map(ident).join(', ');
      await trx.raw(
        `INSERT INTO public.${ident(current.table)} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM json_populate_recordset(NULL::public.${ident(current.table)}, CAST(? AS json))`,
        [`[${batch.join(',')}]`],
      );
      batch = [];
      batchBytes = 0;
    };

    const lines = readline.createInterface({ input: fs.createReadStream(file).pipe(zlib.createGunzip()), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line === '') continue;
      if (!line.startsWith('#')) {
        if (!current) throw new BackupError('the database dump is damaged (a row outside any table)', EXIT.invalidArchive);
        batch.push(line);
        batchBytes += line.length;
        tableRows++;
        if (batch.length >= INSERT_BATCH_ROWS || batchBytes >= INSERT_BATCH_BYTES) await flush();
        continue;
      }
      const control = JSON.parse(line.slice(1)) as DumpLine;
      if ('table' in control) {
        if (!all.includes(control.table)) throw new BackupError(`the dump holds table "${control.table}", which this schema does not have`, EXIT.invalidArchive);
        current = control;
        tableRows = 0;
      } else if ('end' in control) {
        await flush();
        if (!current || control.end !== current.table || control.rows !== tableRows) throw new BackupError(`the database dump is damaged (table ${control.end})`, EXIT.invalidArchive);
        totalRows += tableRows;
        tableCount++;
        current = undefined;
      } else if ('sequence' in control) {
        await trx.raw('SELECT setval(?::regclass, ?::bigint, ?)', [`public.${ident(control.sequence)}`, control.lastValue ?? '1', control.isCalled]);
      }
    }
    if (current) throw new BackupError(`the database dump is truncated (in table ${current.table})`, EXIT.invalidArchive);

    for (const table of all) await trx.raw(`ALTER TABLE public.${ident(table)} ENABLE TRIGGER USER`);
    for (const fk of fks as { tbl: string; name: string; def: string }[]) await trx.raw(`ALTER TABLE ${fk.tbl} ADD CONSTRAINT ${ident(fk.name)} ${fk.def}`);
    return { tables: tableCount, rows: totalRows };
  });
}
