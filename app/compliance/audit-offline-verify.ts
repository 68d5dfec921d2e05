import fs from 'node:fs';
import { MANIFEST_FORMAT, MANIFEST_VERSION, manifestSignatureValid, type ExportManifest } from './audit-export-manifest';
import { parsePublicKey, publicKeyInfo } from '../audit/signing';
import { fileHash } from './audit-verify-hash';
import { completeLineRanges, finalLines } from './audit-verify-lines';
import { RowChecker, type BreakReason, type RowBreak } from './audit-verify-rows';
import { RowThreads, rowThreadCount } from './audit-verify-threads';

const READ_SIZE = 1 << 20;

/**
 * Reads the file in pieces (1 MB): each piece's complete lines (up to its
 * last "\n") to `lines`, then the piece to `bytes` (the file hash), which
 * may take its memory; at the end, the text after the last "\n" to `lines`
 * as final (audit-verify-lines.ts splits both).
 */
async function readPieces(
  handle: fs.promises.FileHandle,
  take: (size: number) => Buffer,
  bytes: (piece: Buffer) => Promise<void> | void,
  lines: ((piece: Buffer, final: boolean) => Promise<void> | void) | null,
  pieceSize: number,
): Promise<void> {
  let rest: Buffer | null = null;
  for (;;) {
    // The unfinished line of the last piece first, then the next bytes of the file after it.
    const kept = rest ? rest.length : 0;
    const piece = take(Math.max(pieceSize, kept * 2));
    if (rest) rest.copy(piece, 0);
    const { bytesRead } = await handle.read(piece, kept, piece.length - kept, null);
    if (bytesRead === 0) break;
    if (lines) {
      const buf = piece.subarray(0, kept + bytesRead);
      const end = buf.lastIndexOf(10);
      if (end < 0) {
        rest = Buffer.from(buf);
      } else {
        await lines(buf.subarray(0, end), false);
        rest = end + 1 < buf.length ? Buffer.from(buf.subarray(end + 1)) : null;
      }
    }
    await bytes(piece.subarray(kept, kept + bytesRead));
  }
  if (lines && rest) await lines(rest, true);
}

/**
 * Verifies an audit export away from the appliance: no database, no
 * configuration. Checks, in this order, the manifest's signature (with the
 * key it carries, and that this key is the one the officer obtained
 * independently, when given), the file's SHA-256, and, for NDJSON, every
 * row: its hash recomputed from its content, and, when the manifest says
 * the export is a complete stretch of the chain, the links between rows
 * (gapless seq, prev_hash = hash of the row before). Then the row count and
 * the first and last link against the manifest. All checks run and every
 * row is read: each broken row is named by line number (the first one in
 * `broken`), and nothing that is intact is reported as changed.
 */
export type { BreakReason, RowBreak } from './audit-verify-rows';

export type Problem =
  | 'manifest_invalid'
  | 'signature_invalid'
  | 'public_key_mismatch'
  | 'file_hash_mismatch'
  | 'chain_broken'
  | 'row_count_mismatch'
  | 'first_row_mismatch'
  | 'last_row_mismatch';

export interface ExportVerification {
  ok: boolean;
  problems: Problem[];
  manifest: ExportManifest | null;
  signature: 'valid' | 'invalid';
  publicKey: 'matches' | 'mismatch' | 'not_given';
  fileHash: 'matches' | 'mismatch' | 'skipped';
  /** Rows (lines) read from the file; for CSV not counted (0). */
  rows: number;
  /** Whether rows were checked: NDJSON only. */
  rowsChecked: boolean;
  /** The first break in the chain. */
  broken?: RowBreak;
  /** Every break found, in file order (at most 20 are listed; `breakCount` counts all). */
  breaks: RowBreak[];
  breakCount: number;
}

export interface VerifyOptions {
  /** PEM of the appliance's public key as the officer obtained it (export page, `vclerk audit public-key`). */
  publicKeyPem?: string;
  /** False skips the file's SHA-256 (to look at the chain of an edited file); the default checks it. */
  checkFileHash?: boolean;
  /** False reads every row with JSON.parse (the tests compare this with the quick reading of the export's own layout). */
  quickRows?: boolean;
  /** Threads checking rows: 0 checks them on this thread; the default is rowThreadCount() for files from THREAD_ROWS_MIN_BYTES on. */
  rowThreads?: number;
  /** The size of the pieces the file is read in (the tests make it small to cut rows across many pieces). */
  pieceBytes?: number;
}

/** Below this, the rows are checked on the calling thread (starting threads costs more than it saves). */
export const THREAD_ROWS_MIN_BYTES = 16 << 20;

/** A file could not be read: a usage or I/O problem, not a verdict on the export (exit code 2). */
export class VerifyInputError extends Error {}

function isManifest(value: unknown): value is ExportManifest {
  const m = value as ExportManifest;
  return (
    typeof m === 'object' && m !== null &&
    m.format === MANIFEST_FORMAT && m.version === MANIFEST_VERSION &&
    typeof m.organisation_id === 'string' &&
    typeof m.file === 'object' && m.file !== null && (m.file.format === 'ndjson' || m.file.format === 'csv') && typeof m.file.sha256 === 'string' &&
    Number.isSafeInteger(m.row_count) && typeof m.complete_chain === 'boolean' &&
    typeof m.public_key === 'object' && m.public_key !== null && typeof m.public_key.pem === 'string'
  );
}

function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new VerifyInputError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

export async function verifyExport(exportFile: string, manifestFile: string, options: VerifyOptions = {}): Promise<ExportVerification> {
  const manifestSource = readText(manifestFile, 'manifest');
  let parsed: unknown;
  try {
    parsed = JSON.parse(manifestSource);
  } catch {
    parsed = undefined;
  }
  const result: ExportVerification = {
    ok: false, problems: [], manifest: null, signature: 'invalid', publicKey: 'not_given', fileHash: 'skipped', rows: 0, rowsChecked: false, breaks: [], breakCount: 0,
  };
  if (!isManifest(parsed)) {
    result.problems.push('manifest_invalid');
    return result;
  }
  const manifest = parsed;
  result.manifest = manifest;

  result.signature = manifestSignatureValid(manifest) ? 'valid' : 'invalid';
  if (result.signature === 'invalid') result.problems.push('signature_invalid');
  if (options.publicKeyPem !== undefined) {
    let fingerprint: string;
    try {
      fingerprint = publicKeyInfo(parsePublicKey(options.publicKeyPem)).fingerprint;
    } catch {
      throw new VerifyInputError('the --public-key file does not hold an Ed25519 public key in PEM form');
    }
    result.publicKey = fingerprint === manifest.public_key.fingerprint ? 'matches' : 'mismatch';
    if (result.publicKey === 'mismatch') result.problems.push('public_key_mismatch');
  }

  const checkHash = options.checkFileHash !== false;
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(exportFile, 'r');
  } catch (err) {
    throw new VerifyInputError(`cannot read the export ${exportFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let fileSha256 = '';
  let checker: RowChecker | RowThreads | null = null;
  try {
    const size = (await handle.stat()).size;
    const threads = manifest.file.format !== 'ndjson' ? 0 : options.rowThreads ?? (size >= THREAD_ROWS_MIN_BYTES ? rowThreadCount() : 0);
    let lines: ((piece: Buffer, final: boolean) => Promise<void> | void) | null = null;
    if (threads > 0) {
      // The rows on threads, the file hash here (a thread of its own would take a core from them).
      const rows = (checker = new RowThreads(manifest, threads, options.quickRows));
      lines = (piece, final) => {
        const copy = rows.take(piece.length);
        piece.copy(copy);
        return rows.send(copy, final);
      };
    } else if (manifest.file.format === 'ndjson') {
      const rows = (checker = new RowChecker(manifest, { quick: options.quickRows }));
      const line = (text: string) => rows.line(text);
      const lineBytes = (buf: Buffer, start: number, end: number) => rows.lineBytes(buf, start, end);
      lines = (piece, final) => (final ? finalLines(piece, line) : completeLineRanges(piece, lineBytes, line));
    }
    const hash = checkHash ? fileHash(size, threads === 0) : null;
    try {
      await readPieces(handle, (n) => (hash ? hash.take(n) : Buffer.allocUnsafe(n)), (piece) => hash?.update(piece), lines, options.pieceBytes ?? READ_SIZE);
      if (checker instanceof RowThreads) await checker.finish();
      if (hash) fileSha256 = await hash.digest();
    } finally {
      await hash?.close();
      if (checker instanceof RowThreads) await checker.close();
    }
  } finally {
    await handle.close();
  }

  if (checkHash) {
    result.fileHash = fileSha256 === manifest.file.sha256 ? 'matches' : 'mismatch';
    if (result.fileHash === 'mismatch') result.problems.push('file_hash_mismatch');
  }
  if (checker) {
    result.rowsChecked = true;
    result.rows = checker.rows;
    result.broken = checker.broken;
    result.breaks = checker.breaks;
    result.breakCount = checker.breakCount;
    if (checker.broken) result.problems.push('chain_broken');
    if (checker.rows !== manifest.row_count) result.problems.push('row_count_mismatch');
    const same = (a: { seq: number; hash: string } | undefined, b: { seq: number; hash: string } | null) => (!a && !b) || (!!a && !!b && a.seq === b.seq && a.hash === b.hash);
    if (!same(checker.first, manifest.first)) result.problems.push('first_row_mismatch');
    if (!same(checker.last, manifest.last)) result.problems.push('last_row_mismatch');
  }
  result.ok = result.problems.length === 0;
  return result;
}

const reasonText: Record<BreakReason, string> = {
  invalid_row: 'not a valid export row',
  organisation_mismatch: 'row of another organisation',
  sequence_gap: 'sequence gap (a row before it is missing or out of order)',
  order: 'out of order (seq not increasing)',
  prev_hash_mismatch: 'prev-hash mismatch (does not link to the row before it)',
  hash_mismatch: 'hash mismatch (content changed after it was recorded)',
};

const problemText: Record<Problem, string> = {
  manifest_invalid: 'the manifest is not a VClerk audit-export manifest (version 1)',
  signature_invalid: 'the manifest signature is not valid: the manifest was changed or not signed by the key it names',
  public_key_mismatch: 'the manifest was signed by a different key than the --public-key given',
  file_hash_mismatch: 'the file\'s SHA-256 differs from the manifest: the file was changed',
  chain_broken: 'the hash chain is broken',
  row_count_mismatch: 'the number of rows differs from the manifest',
  first_row_mismatch: 'the first row differs from the manifest',
  last_row_mismatch: 'the last row differs from the manifest',
};

/** The report the CLI prints. */
export function describeVerification(result: ExportVerification): string {
  const lines: string[] = [];
  const m = result.manifest;
  if (m) {
    lines.push(`export       ${m.export_id} of organisation ${m.organisation_id}, ${m.file.format}, created ${m.created_at}`);
    lines.push(`manifest     ${m.row_count} rows${m.first && m.last ? `, seq ${m.first.seq}..${m.last.seq}` : ''}, ${m.complete_chain ? 'complete chain (links checked)' : 'filtered (each row\'s own hash checked; links not)'}`);
    lines.push(`signature    ${result.signature} (ed25519, key ${m.public_key.fingerprint})`);
    lines.push(`public key   ${result.publicKey === 'not_given' ? 'not compared: pass --public-key, or compare the fingerprint with the one the appliance shows' : result.publicKey}`);
    lines.push(`file sha256  ${result.fileHash}`);
    if (result.rowsChecked) {
      lines.push(`rows         ${result.rows} read`);
      if (result.breaks.length === 0) lines.push('chain        ok');
      for (const [i, b] of result.breaks.entries()) {
        lines.push(`${i === 0 ? 'chain        BROKEN' : '             and'} at line ${b.line}${b.seq !== null ? ` (seq ${b.seq})` : ''}: ${reasonText[b.reason]}`);
      }
      if (result.breakCount > result.breaks.length) lines.push(`             and ${result.breakCount - result.breaks.length} more break(s)`);
    } else {
      lines.push('rows         not checked: the hash chain can be checked in the NDJSON export only');
    }
  }
  for (const problem of result.problems) lines.push(`problem      ${problemText[problem]}`);
  lines.push(result.ok ? `OK: ${result.rowsChecked ? `${result.rows} rows verified` : 'signature and file hash verified'}` : 'FAILED');
  return lines.join('\n');
}
