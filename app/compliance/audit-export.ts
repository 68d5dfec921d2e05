import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Knex } from 'knex';
import { tryHoldLock } from '../db/session-lock';
import type { Caller } from '../access/caller';
import { OrganisationScopedService } from '../access/scoped-service';
import { ConflictError, NotFoundError } from '../core/errors';
import { csvHeader, csvLine, ndjsonLine, toExportRow, type ExportRow } from './audit-export-format';
import { MANIFEST_FORMAT, MANIFEST_VERSION, manifestText, signManifest, type ChainLink, type ExportFormat, type ExportManifest } from './audit-export-manifest';
import { applyAuditFilter, type AuditFilter } from '../audit/service';
import { ensureApplianceKey } from '../audit/signing';
import { chainHead, exportBatch, exportCopySql } from '../audit/store';
import { copyOut } from '../db/copy-out';
import { CopyToNdjson } from './audit-export-lines';

/**
 * Audit exports: an organisation's audit events for a period and filter,
 * streamed from PostgreSQL in keyset batches (seq order) into a file under
 * <dataDir>/exports/<organisation>/<id>.<ndjson|csv> while its SHA-256 is
 * computed, then a signed manifest. The file is kept for EXPORT_TTL_MS and
 * then deleted; the row in `audit_exports` (with the manifest) stays as
 * the record of the export. Creating and downloading are audited; the
 * `audit.exported` event is written after the export's last row, so it is
 * never inside the export itself.
 */
export const EXPORT_TTL_MS = 24 * 60 * 60 * 1000;
export const EXPORT_BATCH = 5000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The filter as chosen on the page: whole UTC days (both inclusive), actor, action or action group. */
export interface ExportSelection {
  from?: string;
  to?: string;
  actor?: string;
  action?: string;
}

export function selectionFilter(s: ExportSelection): AuditFilter {
  return {
    from: s.from ? new Date(`${s.from}T00:00:00Z`) : undefined,
    to: s.to ? new Date(Date.parse(`${s.to}T00:00:00Z`) + DAY_MS) : undefined,
    actor: s.actor || undefined,
    action: s.action || undefined,
  };
}

export interface WrittenExport {
  rowCount: number;
  bytes: number;
  sha256: string;
  first: (ChainLink & { prev_hash: string }) | null;
  last: ChainLink | null;
  chainHead: ChainLink | null;
  /** Every row followed its predecessor in the chain (seq + 1, prev_hash = its hash). */
  contiguous: boolean;
}

/**
 * Streams one organisation's filtered events, in seq order, into `file`.
 * NDJSON: one `COPY ... TO STDOUT (FORMAT binary)` (audit/store.ts
 * `exportCopySql`), its bytes turned into lines by CopyToNdjson without an
 * object per row, hashed and written in 1 MB pieces; the socket is read only
 * as fast as the file takes the lines (backpressure), so memory stays flat
 * however many rows there are. CSV (for reading): keyset batches of
 * `batchSize` rows on the (chain, seq) index, formatted row by row. Events
 * recorded after the start (beyond the chain's head then) are left out.
 */
export async function writeAuditExport(
  knex: Knex,
  options: { organisationId: string; filter: AuditFilter; format: ExportFormat; file: string; batchSize?: number; rowByRow?: boolean },
): Promise<WrittenExport> {
  const head = await chainHead(knex, options.organisationId);
  const chainHeadLink = head ? { seq: Number(head.seq), hash: head.hash } : null;
  if (options.format === 'csv' || options.rowByRow) return writeRowByRow(knex, chainHeadLink, options);
  const result: WrittenExport = { rowCount: 0, bytes: 0, sha256: '', first: null, last: null, chainHead: chainHeadLink, contiguous: true };
  const hash = crypto.createHash('sha256');
  const lines = new CopyToNdjson(options.organisationId);
  const file = fs.createWriteStream(options.file, { mode: 0o600 });
  const failed = new Promise<never>((_, reject) => file.once('error', reject));
  failed.catch(() => undefined);
  const write = async (pieces: Buffer[]) => {
    for (const piece of pieces) {
      hash.update(piece);
      result.bytes += piece.length;
      if (!file.write(piece)) await Promise.race([once(file, 'drain'), failed]);
    }
  };
  try {
    if (chainHeadLink) {
      const sql = exportCopySql(knex, options.organisationId, chainHeadLink.seq, (query) => applyAuditFilter(query, options.filter));
      for await (const chunk of copyOut(knex, sql)) await write(lines.push(chunk));
      await write(lines.end());
    }
    await Promise.race([new Promise<void>((resolve) => file.end(resolve)), failed]);
  } finally {
    file.destroy();
  }
  result.sha256 = hash.digest('hex');
  result.rowCount = lines.rows;
  result.first = lines.first;
  const last = lines.last;
  if (last) result.last = { seq: last.seq, hash: last.hash };
  // Contiguous: every prev_hash links, and the seqs, strictly increasing, step by one.
  result.contiguous = lines.linked && (!lines.first || !last || last.seq - lines.first.seq === lines.rows - 1);
  return result;
}

/** The export row by row from keyset batches (CSV; and NDJSON for the tests' comparison). */
async function writeRowByRow(
  knex: Knex,
  head: ChainLink | null,
  options: { organisationId: string; filter: AuditFilter; format: ExportFormat; file: string; batchSize?: number },
): Promise<WrittenExport> {
  const { organisationId, filter, format } = options;
  const batchSize = options.batchSize ?? EXPORT_BATCH;
  const result: WrittenExport = { rowCount: 0, bytes: 0, sha256: '', first: null, last: null, chainHead: head, contiguous: true };
  const hash = crypto.createHash('sha256');
  const line = format === 'ndjson' ? ndjsonLine : csvLine;
  let previous: ExportRow | undefined;

  async function* chunks(): AsyncGenerator<Buffer> {
    const emit = (text: string) => {
      const buffer = Buffer.from(text, 'utf8');
      hash.update(buffer);
      result.bytes += buffer.length;
      return buffer;
    };
    if (format === 'csv') yield emit(csvHeader);
    if (!head) return;
    let after = 0;
    for (;;) {
      const rows = await exportBatch(knex, organisationId, after, head.seq, (query) => applyAuditFilter(query, filter), batchSize);
      if (rows.length === 0) return;
      let text = '';
      for (const raw of rows) {
        const row = toExportRow(raw);
        if (previous && (row.seq !== previous.seq + 1 || row.prev_hash !== previous.hash)) result.contiguous = false;
        result.first ??= { seq: row.seq, prev_hash: row.prev_hash, hash: row.hash };
        previous = row;
        text += line(row);
      }
      result.rowCount += rows.length;
      after = previous!.seq;
      yield emit(text);
      if (rows.length < batchSize) return;
    }
  }

  await pipeline(Readable.from(chunks(), { objectMode: false }), fs.createWriteStream(options.file, { mode: 0o600 }));
  result.sha256 = hash.digest('hex');
  if (previous) result.last = { seq: previous.seq, hash: previous.hash };
  return result;
}

export interface AuditExport {
  id: string;
  format: ExportFormat;
  selection: ExportSelection;
  rowCount: number;
  bytes: number;
  sha256: string;
  fileName: string;
  createdAt: Date;
  expiresAt: Date;
  createdByLabel: string | null;
  /** The file is still there to download. */
  available: boolean;
  manifest: string;
}

/** `<dataDir>/exports`, absolute. */
export function exportsDir(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'exports');
}

function exportFile(dataDir: string, organisationId: string, id: string, format: ExportFormat): string {
  return path.join(exportsDir(dataDir), organisationId, `${id}.${format}`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Organisations with an export being written in this process: one at a time each (and across nodes: a lock in the database). */
const running = new Set<string>();

/** Deletes the files of expired exports (of every organisation); their rows and manifests stay. */
export async function pruneExpiredExports(knex: Knex, dataDir: string, now = new Date()): Promise<number> {
  const expired = await knex('audit_exports').whereNull('file_removed_at').where('expires_at', '<=', now).select('id', 'organisation_id', 'format');
  for (const row of expired) {
    await fs.promises.rm(exportFile(dataDir, row.organisation_id, row.id, row.format), { force: true });
    await knex('audit_exports').where({ id: row.id }).update({ file_removed_at: now });
  }
  return expired.length;
}

/** Creating, listing and handing out one organisation's exports, per request with the caller. */
export class AuditExports extends OrganisationScopedService {
  constructor(knex: Knex, caller: Caller, private readonly dataDir: string, private readonly now: () => Date = () => new Date()) {
    super(knex, caller);
  }

  async create(selection: ExportSelection, format: ExportFormat): Promise<AuditExport> {
    const org = this.organisationId;
    if (running.has(org)) throw new ConflictError('export_running', { messageKey: 'compliance.export.errors.export_running' });
    running.add(org);
    // Another node may be writing one: the database's lock says.
    const unlock = await tryHoldLock(this.knex, `vclerk.audit-export:${org}`).catch((err: unknown) => {
      running.delete(org);
      throw err;
    });
    if (!unlock) {
      running.delete(org);
      throw new ConflictError('export_running', { messageKey: 'compliance.export.errors.export_running' });
    }
    const id = crypto.randomUUID();
    const file = exportFile(this.dataDir, org, id, format);
    const partial = `${file}.part`;
    try {
      await pruneExpiredExports(this.knex, this.dataDir, this.now());
      const key = ensureApplianceKey(this.dataDir);
      await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const filter = selectionFilter(selection);
      const written = await writeAuditExport(this.knex, { organisationId: org, filter, format, file: partial });
      const createdAt = this.now();
      const fileName = `audit-export-${createdAt.toISOString().slice(0, 10)}-${id.slice(0, 8)}.${format}`;
      const user = this.caller.user;
      const manifest = signManifest(
        {
          format: MANIFEST_FORMAT,
          version: MANIFEST_VERSION,
          export_id: id,
          organisation_id: org,
          created_at: createdAt.toISOString(),
          created_by: { id: user.id, label: user.email },
          file: { name: fileName, format, bytes: written.bytes, sha256: written.sha256 },
          period: {
            from: selection.from ?? null,
            to: selection.to ?? null,
            from_time: filter.from?.toISOString() ?? null,
            to_time: filter.to?.toISOString() ?? null,
          },
          filters: { actor: selection.actor ?? null, action: selection.action ?? null },
          complete_chain: !selection.actor && !selection.action && written.contiguous,
          row_count: written.rowCount,
          first: written.first,
          last: written.last,
          chain_head: written.chainHead,
        },
        key,
      );
      const text = manifestText(manifest);
      await fs.promises.rename(partial, file);
      const expiresAt = new Date(createdAt.getTime() + EXPORT_TTL_MS);
      await this.knex.transaction(async (trx) => {
        await trx('audit_exports').insert({
          id,
          organisation_id: org,
          format,
          filters: JSON.stringify(selection),
          row_count: written.rowCount,
          first_seq: written.first?.seq ?? null,
          first_hash: written.first?.hash ?? null,
          last_seq: written.last?.seq ?? null,
          last_hash: written.last?.hash ?? null,
          complete_chain: manifest.complete_chain,
          bytes: written.bytes,
          sha256: written.sha256,
          file_name: fileName,
          manifest: text,
          key_fingerprint: key.info.fingerprint,
          created_by: user.id,
          created_by_label: user.email,
          created_at: createdAt,
          expires_at: expiresAt,
        });
        await this.audit.record(
          {
            ...this.base(),
            action: 'audit.exported',
            target: { type: 'audit_export', id },
            details: {
              format,
              period: manifest.period,
              filters: manifest.filters,
              row_count: written.rowCount,
              first_seq: written.first?.seq ?? null,
              last_seq: written.last?.seq ?? null,
              complete_chain: manifest.complete_chain,
              sha256: written.sha256,
              key_fingerprint: key.info.fingerprint,
            },
          },
          trx,
        );
      });
      return this.get(id);
    } catch (err) {
      await fs.promises.rm(partial, { force: true });
      await fs.promises.rm(file, { force: true });
      throw err;
    } finally {
      running.delete(org);
      await unlock();
    }
  }

  /** The organisation's most recent exports, newest first (expired ones stay listed without their file). */
  async list(limit = 20): Promise<AuditExport[]> {
    await pruneExpiredExports(this.knex, this.dataDir, this.now());
    const rows = await this.knex('audit_exports').where({ organisation_id: this.organisationId }).orderBy('created_at', 'desc').limit(limit);
    return rows.map((r) => this.toExport(r));
  }

  async get(id: string): Promise<AuditExport> {
    if (!UUID.test(id)) throw new NotFoundError();
    const row = await this.knex('audit_exports').where({ id, organisation_id: this.organisationId }).first();
    if (!row) return this.refuseForeign('audit_exports', 'audit_export', id);
    return this.toExport(row);
  }

  /** The export's file for download (audited); 404 once it expired. */
  async download(id: string): Promise<{ export: AuditExport; path: string }> {
    const found = await this.get(id);
    if (!found.available) throw new NotFoundError('export_expired', { messageKey: 'compliance.export.errors.export_expired' });
    const file = exportFile(this.dataDir, this.organisationId, found.id, found.format);
    await this.audit.record({ ...this.base(), action: 'audit.export_downloaded', target: { type: 'audit_export', id: found.id }, details: { format: found.format, sha256: found.sha256 } });
    return { export: found, path: file };
  }

  private toExport(row: Record<string, any>): AuditExport {
    const expiresAt = row.expires_at as Date;
    return {
      id: row.id,
      format: row.format,
      selection: row.filters ?? {},
      rowCount: Number(row.row_count),
      bytes: Number(row.bytes),
      sha256: row.sha256,
      fileName: row.file_name,
      createdAt: row.created_at,
      expiresAt,
      createdByLabel: row.created_by_label ?? null,
      available: !row.file_removed_at && expiresAt.getTime() > this.now().getTime(),
      manifest: row.manifest,
    };
  }
}
