import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { snapshotFile } from './support/schema';
import { genericFiles, tableOwners } from './support/table-owners';

const ROOT = path.join(__dirname, '..');

/**
 * Queries on a table outside its owner that other helpers of issue 15 are
 * rewriting in their own branches (signalling, live call features, jobs,
 * schedulers). Each moves to the owner's functions once the branches are
 * merged; the lead empties this list then. `file: [tables]`. The owner
 * functions are there already: calls/store.ts `closedCallsAmong` (the hub's
 * sweep), `callOrganisation` and `findCall` (recordings/live.ts),
 * users/store.ts `userNameAndLanguage` (recordings/live.ts).
 */
const pending: Record<string, string[]> = {};

/** The tables the migrations create (the schema snapshot the migrations test keeps current). */
function schemaTables(): string[] {
  const snapshot = JSON.parse(fs.readFileSync(snapshotFile, 'utf8')) as { tables: Record<string, string[]> };
  return Object.keys(snapshot.tables);
}

function appFiles(): string[] {
  return fs.readdirSync(path.join(ROOT, 'app'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

/** The source without comments (kept line by line, so line numbers stay). */
function code(text: string): string[] {
  const withoutBlocks = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '));
  return withoutBlocks.split('\n').map((line) => line.replace(/(^|\s)\/\/.*$/, '$1'));
}

export interface TableReference {
  file: string;
  line: number;
  table: string;
  /** Only read through a join or a subquery of another table's query. */
  joined: boolean;
}

/**
 * Every place a file builds a query on a table: a query builder started or
 * joined on it (`knex('t')`, `trx('t as x')`, `.from('t')`, `.into('t')`,
 * `.join('t', ...)`, `.leftJoin(...)`, `.hasTable('t')`, any call whose
 * first argument is the table's name, a helper's `table(db, 't')`)
 * and SQL text naming it after FROM, JOIN, INTO, UPDATE or TABLE. A
 * reference is `joined` when it only reads the table through a join or a
 * subquery (`.join`, `.from`, SQL `FROM`/`JOIN`). Naming a table for the
 * generic cross-organisation check (`refuseForeign('users', ...)` in
 * access/scoped-service.ts) builds no query of the caller's.
 */
export function tableReferences(file: string, text: string, tables: string[]): TableReference[] {
  const names = [...tables].sort((a, b) => b.length - a.length).join('|');
  const builder = new RegExp(`([\\w$]+)\\s*\\(\\s*['"\`](${names})(?:\\s+as\\s+\\w+)?['"\`]`, 'g');
  const joins = /^(?:join|leftJoin|rightJoin|innerJoin|fullOuterJoin|from)$/;
  const typed = new RegExp(`\\btable\\(\\s*[\\w$.]+\\s*,\\s*['"\`](${names})['"\`]`, 'g');
  const sql = new RegExp(`\\b(from|join|into|update|table)\\s+"?(${names})"?(?![\\w.-])`, 'gi');
  const found: TableReference[] = [];
  code(text).forEach((content, i) => {
    const seen = new Map<string, boolean>();
    const add = (table: string, joined: boolean) => seen.set(table, (seen.get(table) ?? true) && joined);
    for (const m of content.matchAll(builder)) if (!/Foreign/.test(m[1]!)) add(m[2]!, joins.test(m[1]!));
    for (const m of content.matchAll(typed)) add(m[1]!, false);
    for (const m of content.matchAll(sql)) add(m[2]!.toLowerCase(), /^(from|join)$/i.test(m[1]!));
    for (const [table, joined] of seen) found.push({ file, line: i + 1, table, joined });
  });
  return found;
}

function generic(file: string): boolean {
  return Object.keys(genericFiles).some((prefix) => file === prefix || (prefix.endsWith('/') && file.startsWith(prefix)));
}

describe('table owners', () => {
  const tables = schemaTables();

  it('every table of the schema has one owner module, which exists', () => {
    assert.deepEqual(tables.filter((t) => !tableOwners[t]), [], 'tables without an owner in test/support/table-owners.ts');
    assert.deepEqual(Object.keys(tableOwners).filter((t) => !tables.includes(t)), [], 'owners of tables the schema does not have');
    const missing = [...new Set(Object.entries(tableOwners).map(([, f]) => f))].filter((f) => !fs.existsSync(path.join(ROOT, f)));
    assert.deepEqual(missing, [], 'owner modules that do not exist');
  });

  it('finds the references it is meant to find', () => {
    const sample = [
      "const a = await knex('calls').where({ id });",
      "await trx('users as u').update({ name });",
      ".leftJoin('organisations as o', 'o.id', 'u.organisation_id')",
      "q.select(1).from('queue_entries')",
      'await knex.raw(`SELECT min(chain) FROM audit_events`);',
      "const row = await table(trx, 'recording_tracks').first();",
      "// knex('sessions') in a comment is no query",
      "return this.refuseForeign('recordings', 'recording', id);",
      "logger.child({ component: 'recordings' })",
    ].join('\n');
    assert.deepEqual(tableReferences('x.ts', sample, tables).map((r) => `${r.line}:${r.table}${r.joined ? ' (joined)' : ''}`), [
      '1:calls', '2:users', '3:organisations (joined)', '4:queue_entries (joined)', '5:audit_events (joined)', '6:recording_tracks',
    ]);
  });

  it('no module but a table\'s owner builds a query on it', () => {
    const stray: string[] = [];
    const stale: string[] = [];
    for (const file of appFiles()) {
      if (generic(file)) continue;
      const refs = tableReferences(file, fs.readFileSync(path.join(ROOT, file), 'utf8'), tables);
      const allowed = pending[file] ?? [];
      const owner = Object.values(tableOwners).includes(file);
      for (const ref of refs) {
        if (tableOwners[ref.table] === file || allowed.includes(ref.table)) continue;
        // An owner's query may read another table through a join or a subquery; it never writes it.
        if (owner && ref.joined) continue;
        stray.push(`${ref.file}:${ref.line} queries ${ref.table} (owner: ${tableOwners[ref.table] ?? 'none'})`);
      }
      for (const table of allowed) if (!refs.some((r) => r.table === table)) stale.push(`${file}: ${table}`);
    }
    assert.deepEqual(stray, [], 'queries outside the table\'s owner: call the owner instead');
    assert.deepEqual(stale, [], 'pending entries no longer needed: remove them');
  });
});
