/**
 * CSV cells that spreadsheets open safely: a cell a spreadsheet would run as
 * a formula gets a leading apostrophe (`neutralise`), which an import drops
 * again (`unneutralise`); cells with separators, quotes, line breaks or
 * edge spaces are quoted.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value: string): string {
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n;]|^\s|\s$/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** A cell read back from an export: the apostrophe `csvCell` put before a formula is dropped. */
export function unneutralise(value: unknown): unknown {
  return typeof value === 'string' && value.startsWith("'") && FORMULA_START.test(value.slice(1)) ? value.slice(1) : value;
}
