import type { Knex } from 'knex';
import { PayloadTooLargeError, ValidationError, type FieldProblem } from '../core/errors';
import { CatalogService, formatPrice, productSchema, upsertProducts, type ProductInput } from './service';
import { csvCell, unneutralise } from '../core/csv';

export const MAX_IMPORT_BYTES = 10 * 1024 * 1024;
export const MAX_IMPORT_ROWS = 20_000;

/** The columns of an import and of the export, in this order. */
export const catalogColumns = ['sku', 'name', 'description', 'price', 'currency', 'url', 'category', 'tags', 'active'] as const;
const REQUIRED = ['sku', 'name', 'price', 'currency'] as const;

/** One row of an import file: its number as a spreadsheet shows it (the header is row 1; JSON: the element, from 1). */
export interface ImportRow {
  row: number;
  values: Record<string, unknown>;
}

export interface RowProblem {
  row: number;
  field: string;
  code: string;
}

export interface ImportPreview {
  rows: number;
  created: number;
  updated: number;
  errors: RowProblem[];
}

/**
 * RFC 4180 CSV: fields in double quotes may hold the delimiter, line breaks
 * and doubled quotes; CRLF or LF line ends; a UTF-8 BOM is dropped. The
 * delimiter is `;` when the header line has more of them than commas
 * (spreadsheets in German locales), else `,`. Returns the records with the
 * line each starts on.
 */
export function parseCsv(input: string): { line: number; cells: string[] }[] {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const delimiter = detectDelimiter(text);
  // Runs of ordinary characters are copied as slices, never character by character:
  // a 10 MB file takes tens of milliseconds, not seconds.
  const special = delimiter === ';' ? /[;"\r\n]/g : /[,"\r\n]/g;
  const records: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let i = 0;
  const endRecord = () => {
    cells.push(cell);
    if (!(cells.length === 1 && cells[0] === '')) records.push({ line: recordLine, cells });
    cells = [];
    cell = '';
  };
  while (i < text.length) {
    if (quoted) {
      const close = text.indexOf('"', i);
      if (close === -1) throw new ValidationError([{ field: 'file', code: 'csv_unterminated_quote' }]);
      const part = text.slice(i, close);
      for (let at = part.indexOf('\n'); at !== -1; at = part.indexOf('\n', at + 1)) line++;
      cell += part;
      if (text[close + 1] === '"') {
        cell += '"';
        i = close + 2;
      } else {
        quoted = false;
        i = close + 1;
      }
      continue;
    }
    const c = text[i]!;
    if (c === '"' && cell === '') {
      quoted = true;
      i++;
    } else if (c === delimiter) {
      cells.push(cell);
      cell = '';
      i++;
    } else if (c === '\r' || c === '\n') {
      endRecord();
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      recordLine = line;
    } else if (c === '"') {
      cell += c;
      i++;
    } else {
      special.lastIndex = i;
      const next = special.exec(text)?.index ?? text.length;
      cell += text.slice(i, next);
      i = next;
    }
  }
  if (quoted) throw new ValidationError([{ field: 'file', code: 'csv_unterminated_quote' }]);
  if (cell !== '' || cells.length > 0) endRecord();
  return records;
}

function detectDelimiter(text: string): ',' | ';' {
  let commas = 0;
  let semicolons = 0;
  let quoted = false;
  for (const c of text) {
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === '\n' || c === '\r')) break;
    else if (!quoted && c === ',') commas++;
    else if (!quoted && c === ';') semicolons++;
  }
  return semicolons > commas ? ';' : ',';
}

/**
 * Reads an uploaded catalog: JSON (an array of objects) when it starts with
 * `[`, else CSV with a header line. Checks size, row count and the required
 * columns; the rows themselves are checked by `preview`.
 */
export function readImport(data: Buffer): ImportRow[] {
  if (data.length > MAX_IMPORT_BYTES) throw new PayloadTooLargeError('import_too_large', { messageKey: 'catalog.errors.import_too_large' });
  const text = data.toString('utf8');
  // PostgreSQL text cannot hold NUL; a file full of them is usually UTF-16, not the UTF-8 asked for.
  if (text.includes('\u0000')) throw new ValidationError([{ field: 'file', code: 'import_binary' }]);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows = body.trimStart().startsWith('[') ? readJson(body) : readCsvRows(body);
  if (rows.length === 0) throw new ValidationError([{ field: 'file', code: 'import_empty' }]);
  if (rows.length > MAX_IMPORT_ROWS) throw new ValidationError([{ field: 'file', code: 'import_too_many_rows' }]);
  return rows;
}

function readJson(text: string): ImportRow[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ValidationError([{ field: 'file', code: 'json_invalid' }], { cause: err });
  }
  if (!Array.isArray(parsed)) throw new ValidationError([{ field: 'file', code: 'json_invalid' }]);
  return parsed.map((item, index) => {
    const values: Record<string, unknown> = {};
    if (item && typeof item === 'object' && !Array.isArray(item)) {
      for (const [key, value] of Object.entries(item as Record<string, unknown>)) {
        const column = key.trim().toLowerCase();
        if ((catalogColumns as readonly string[]).includes(column)) values[column] = typeof value === 'number' && column !== 'price' ? String(value) : value;
      }
    }
    return { row: index + 1, values };
  });
}

function readCsvRows(text: string): ImportRow[] {
  const [header, ...records] = parseCsv(text);
  if (!header) return [];
  const names = header.cells.map((c) => c.trim().toLowerCase());
  const missing = REQUIRED.filter((c) => !names.includes(c));
  if (missing.length > 0) throw new ValidationError(missing.map((c) => ({ field: c, code: 'missing_column' })));
  return records.map((record, index) => {
    const values: Record<string, unknown> = {};
    names.forEach((name, i) => {
      if ((catalogColumns as readonly string[]).includes(name) && record.cells[i] !== undefined) values[name] = unneutralise(record.cells[i]);
    });
    return { row: index + 2, values };
  });
}

/** An import file read and every row checked: what `preview` and `apply` work from. */
export interface CheckedImport {
  rows: number;
  products: ProductInput[];
  errors: RowProblem[];
}

/**
 * Reads a file and checks every row, without the database. CPU-bound: the
 * routes run it in a worker thread (`import-thread.ts`), never on the
 * event loop. Throws the file-level problems (`ValidationError`, too large).
 */
export function checkImport(data: Buffer): CheckedImport {
  const rows = readImport(data);
  return { rows: rows.length, ...check(rows) };
}

/** What the preview needs of a checked import: counts, problems and SKUs, not the products. */
export interface ImportSummary {
  rows: number;
  skus: string[];
  errors: RowProblem[];
}

export function summarise(checked: CheckedImport): ImportSummary {
  return { rows: checked.rows, skus: checked.products.map((p) => p.sku), errors: checked.errors };
}

function check(rows: ImportRow[]): Omit<CheckedImport, 'rows'> {
  const products: ProductInput[] = [];
  const errors: RowProblem[] = [];
  const seen = new Map<string, number>();
  for (const { row, values } of rows) {
    const result = productSchema.safeParse(values);
    if (!result.success) {
      const fields = new Set<string>();
      for (const issue of result.error.issues) {
        const field = String(issue.path[0] ?? '_');
        if (fields.has(field)) continue;
        fields.add(field);
        errors.push({ row, field, code: /^[a-z_]+$/.test(issue.message) ? issue.message : 'invalid' });
      }
      continue;
    }
    const key = result.data.sku.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      errors.push({ row, field: 'sku', code: 'duplicate_sku' });
      continue;
    }
    seen.set(key, row);
    products.push(result.data);
  }
  return { products, errors };
}

/**
 * Catalog import and export for the caller's organisation. `preview` checks
 * every row and counts what would be created or updated, writing nothing;
 * `apply` writes all rows in one transaction, or none (upsert by SKU).
 */
export class CatalogImport {
  private readonly catalog: CatalogService;

  constructor(private readonly knex: Knex, catalog: CatalogService) {
    this.catalog = catalog;
  }

  async preview(summary: ImportSummary, trx: Knex | Knex.Transaction = this.knex): Promise<ImportPreview> {
    const { skus, errors } = summary;
    let existing = 0;
    for (let i = 0; i < skus.length; i += 5000) {
      const [counted] = await this.catalog.scoped(trx).whereIn('sku', skus.slice(i, i + 5000)).count<{ count: string }[]>({ count: '*' });
      existing += Number(counted?.count ?? 0);
    }
    return { rows: summary.rows, created: skus.length - existing, updated: existing, errors };
  }

  /** Writes the whole import, or nothing when any row is bad (a ValidationError lists them). */
  async apply(checked: CheckedImport): Promise<ImportPreview> {
    return this.knex.transaction(async (trx) => {
      // One import at a time per organisation, so that the counts hold.
      await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`catalog-import:${this.catalog.organisationId}`]);
      const preview = await this.preview(summarise(checked), trx);
      if (preview.errors.length > 0) {
        const fields: FieldProblem[] = preview.errors.slice(0, 100).map((e) => ({ field: `row_${e.row}.${e.field}`, code: e.code }));
        throw new ValidationError(fields);
      }
      const { products } = checked;
      for (let i = 0; i < products.length; i += 1000) {
        await upsertProducts(trx, this.catalog.organisationId, products.slice(i, i + 1000));
      }
      await this.catalog.record(trx, 'import_applied', null, null, { rows: preview.rows, created: preview.created, updated: preview.updated });
      return preview;
    });
  }

  /** The whole catalog as CSV (comma, CRLF, UTF-8 with a header line); formula-like cells are neutralised. */
  async exportCsv(): Promise<string> {
    const products = await this.catalog.all();
    const lines = [catalogColumns.join(',')];
    for (const p of products) {
      lines.push(
        [p.sku, p.name, p.description, formatPrice(p.priceCents), p.currency, p.url ?? '', p.category ?? '', p.tags.join('|'), p.active ? 'true' : 'false']
          .map(csvCell)
          .join(','),
      );
    }
    return `${lines.join('\r\n')}\r\n`;
  }
}
