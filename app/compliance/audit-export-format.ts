import { csvCell } from '../core/csv';
import type { ChainRow } from '../audit/chain';
import type { AuditEventRow } from '../db/tables';

/**
 * The rows of an audit export. Each carries every chained field exactly as
 * the hash was computed over it (see AuditService.verify: `seq` as a
 * number, `occurred_at` as the ISO string of the stored timestamp,
 * `details` as the stored JSON), plus `prev_hash`, `hash` and the row `id`.
 */
export const exportColumns = [
  'id', 'chain', 'seq', 'occurred_at', 'organisation_id', 'actor_type', 'actor_id', 'actor_label',
  'action', 'target_type', 'target_id', 'ip', 'user_agent', 'details', 'prev_hash', 'hash',
] as const;

export type ExportRow = ChainRow & { id: string };

/** A database row of `audit_events` in the form the hash was computed over (mirrors AuditService.verify). */
export function toExportRow(row: AuditEventRow): ExportRow {
  return {
    id: String(row.id),
    chain: row.chain,
    seq: Number(row.seq),
    occurred_at: row.occurred_at.toISOString(),
    organisation_id: row.organisation_id ?? null,
    actor_type: row.actor_type,
    actor_id: row.actor_id ?? null,
    actor_label: row.actor_label ?? null,
    action: row.action,
    target_type: row.target_type ?? null,
    target_id: row.target_id ?? null,
    ip: row.ip ?? null,
    user_agent: row.user_agent ?? null,
    details: row.details ?? {},
    prev_hash: row.prev_hash,
    hash: row.hash,
  };
}

/**
 * One NDJSON line: the columns in a fixed order, then "\n". The same text
 * as JSON.stringify of an object with the columns in that order (every
 * value is present: null, not undefined), written field by field because
 * the export writes a million of them (no object built per row).
 */
export function ndjsonLine(row: ExportRow): string {
  return `{"id":${JSON.stringify(row.id)},"chain":${JSON.stringify(row.chain)},"seq":${JSON.stringify(row.seq)},"occurred_at":${JSON.stringify(row.occurred_at)},"organisation_id":${JSON.stringify(row.organisation_id)},"actor_type":${JSON.stringify(row.actor_type)},"actor_id":${JSON.stringify(row.actor_id)},"actor_label":${JSON.stringify(row.actor_label)},"action":${JSON.stringify(row.action)},"target_type":${JSON.stringify(row.target_type)},"target_id":${JSON.stringify(row.target_id)},"ip":${JSON.stringify(row.ip)},"user_agent":${JSON.stringify(row.user_agent)},"details":${JSON.stringify(row.details)},"prev_hash":${JSON.stringify(row.prev_hash)},"hash":${JSON.stringify(row.hash)}}\n`;
}

/** The CSV header (UTF-8 byte order mark for spreadsheets, CRLF). */
export const csvHeader = `\ufeff${exportColumns.join(',')}\r\n`;

/**
 * One CSV line: empty for null, `details` as JSON text, and cells a
 * spreadsheet would run as a formula neutralised with a leading apostrophe
 * (as the catalog export does). For reading; the NDJSON file is the one to verify.
 */
export function csvLine(row: ExportRow): string {
  return `${exportColumns
    .map((column) => {
      const value = row[column];
      if (value === null || value === undefined) return '';
      return csvCell(column === 'details' ? JSON.stringify(value) : String(value));
    })
    .join(',')}\r\n`;
}
