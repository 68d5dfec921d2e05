import crypto from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { contentOf, eventHash, GENESIS_HASH, type ChainRow } from '../audit/chain';
import { MANIFEST_FORMAT, MANIFEST_VERSION, manifestSignatureValid, type ExportManifest } from './audit-export-manifest';
import { parsePublicKey, publicKeyInfo } from '../audit/signing';

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
export type BreakReason = 'invalid_row' | 'organisation_mismatch' | 'sequence_gap' | 'order' | 'prev_hash_mismatch' | 'hash_mismatch';

export type Problem =
  | 'manifest_invalid'
  | 'signature_invalid'
  | 'public_key_mismatch'
  | 'file_hash_mismatch'
  | 'chain_broken'
  | 'row_count_mismatch'
  | 'first_row_mismatch'
  | 'last_row_mismatch';

export interface RowBreak {
  /** 1-based line of the export file. */
  line: number;
  seq: number | null;
  reason: BreakReason;
}

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
}

/** A file could not be read: a usage or I/O problem, not a verdict on the export (exit code 2). */
export class VerifyInputError extends Error {}

const HEX64 = /^[0-9a-f]{64}$/;

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

function isRow(value: unknown): value is ChainRow {
  const r = value as Record<string, unknown>;
  return (
    typeof r === 'object' && r !== null && !Array.isArray(r) &&
    typeof r.chain === 'string' && Number.isSafeInteger(r.seq) && typeof r.occurred_at === 'string' &&
    typeof r.actor_type === 'string' && typeof r.action === 'string' &&
    typeof r.prev_hash === 'string' && HEX64.test(r.prev_hash) && typeof r.hash === 'string' && HEX64.test(r.hash)
  );
}

function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new VerifyInputError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** Breaks kept beyond the first (the report names them; the count goes on). */
const MAX_BREAKS = 20;

/**
 * Checks the rows of one NDJSON export as they stream by. Reads on to the
 * end after a break: each later row is still checked (its own hash, and its
 * link to the row read before it), so a single changed row is named alone,
 * and the last row is compared with the manifest whatever broke before it.
 */
class RowChecker {
  rows = 0;
  /** Every break found (the first MAX_BREAKS); `breakCount` counts them all. */
  breaks: RowBreak[] = [];
  breakCount = 0;
  first: ChainRow | undefined;
  last: ChainRow | undefined;

  constructor(private readonly manifest: ExportManifest) {}

  get broken(): RowBreak | undefined {
    return this.breaks[0];
  }

  line(text: string): void {
    this.rows++;
    const line = this.rows;
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch {
      row = undefined;
    }
    if (!isRow(row)) {
      this.fail({ line, seq: typeof (row as ChainRow | undefined)?.seq === 'number' ? (row as ChainRow).seq : null, reason: 'invalid_row' });
      return;
    }
    const reason = this.check(row);
    if (reason) this.fail({ line, seq: row.seq, reason });
  }

  private fail(problem: RowBreak): void {
    this.breakCount++;
    if (this.breaks.length < MAX_BREAKS) this.breaks.push(problem);
  }

  private check(row: ChainRow): BreakReason | null {
    const previous = this.last;
    this.first ??= row;
    this.last = row;
    const m = this.manifest;
    if (row.chain !== m.organisation_id || row.organisation_id !== m.organisation_id) return 'organisation_mismatch';
    if (previous) {
      if (row.seq <= previous.seq) return 'order';
      if (m.complete_chain && row.seq !== previous.seq + 1) return 'sequence_gap';
      if (m.complete_chain && row.prev_hash !== previous.hash) return 'prev_hash_mismatch';
    } else if (m.complete_chain && m.first) {
      // The first row of a complete export: where the manifest says the stretch starts.
      if (row.seq !== m.first.seq) return 'sequence_gap';
      if (row.prev_hash !== m.first.prev_hash) return 'prev_hash_mismatch';
    }
    if (row.seq === 1 && row.prev_hash !== GENESIS_HASH) return 'prev_hash_mismatch';
    if (eventHash(row.prev_hash, contentOf(row)) !== row.hash) return 'hash_mismatch';
    return null;
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
  const hash = crypto.createHash('sha256');
  const checker = manifest.file.format === 'ndjson' ? new RowChecker(manifest) : null;
  let stream: fs.ReadStream;
  try {
    stream = fs.createReadStream(exportFile);
    await new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject));
  } catch (err) {
    throw new VerifyInputError(`cannot read the export ${exportFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (checkHash) stream.on('data', (chunk) => hash.update(chunk));
  if (checker) {
    const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
    for await (const line of lines) checker.line(line);
  } else {
    await new Promise<void>((resolve, reject) => stream.on('end', resolve).on('error', reject).resume());
  }

  if (checkHash) {
    result.fileHash = hash.digest('hex') === manifest.file.sha256 ? 'matches' : 'mismatch';
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
