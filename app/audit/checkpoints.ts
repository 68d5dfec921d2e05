import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { canonicalJson } from './chain';
import { AuditService, chainOf, type VerifyResult } from './service';
import { ensureApplianceKey, loadApplianceKey, type ApplianceKey } from './signing';
import { chainHead, hashesAt, listChains } from './store';
import { type AuditCheckpointRow } from '../db/tables';

/**
 * Anchors for the audit hash chains. A chain verifies by recomputing its
 * hashes, so whoever can rewrite rows (the database's owner or superuser,
 * never the app's role) could re-hash a whole chain and it would verify.
 * A checkpoint fixes a chain's head (seq, hash) at a moment, signed with
 * the appliance's Ed25519 key (app/audit/signing.ts), which is kept in the
 * data directory and not in the database. Verification compares the chain
 * with every earlier checkpoint: a re-hashed or shortened chain no longer
 * matches them ("does not match the checkpoint of <time>").
 *
 * Each checkpoint is kept twice: in `audit_checkpoints` (append-only; the
 * app role may only INSERT and SELECT) and appended to
 * `<dataDir>/audit-checkpoints/<chain>.ndjson` (0600), so deleting the
 * table's rows as the database owner does not remove them either. Neither
 * place protects against someone who controls the appliance's host; the
 * exported, signed manifests kept elsewhere (docs/audit-export.md) do.
 */
export const CHECKPOINT_DIR = 'audit-checkpoints';
const FORMAT = 'vclerk-audit-checkpoint';
const VERSION = 1;

export interface Checkpoint {
  chain: string;
  seq: number;
  hash: string;
  created_at: string;
  key_id: string;
  /** Ed25519 over the canonical JSON of the fields above with format and version; base64. */
  signature: string;
}

export interface CheckpointMismatch {
  checkpoint: Checkpoint;
  /** The chain's row at that seq has another hash, or the chain no longer reaches it. */
  reason: 'hash_differs' | 'row_missing';
}

export interface ChainCheck extends VerifyResult {
  chain: string;
  /** Checkpoints compared (valid signatures, database and file together). */
  checkpoints: number;
  /** The newest checkpoint compared, or null. */
  latest: Checkpoint | null;
  /** The earliest checkpoint the chain does not match (the chain changed after it was taken). */
  mismatch: CheckpointMismatch | null;
  mismatches: number;
  /** Checkpoints whose signature does not hold (forged or changed). */
  invalidSignatures: number;
  /** Checkpoints in the data directory's copy that the database no longer holds (removed). */
  missingFromDatabase: number;
  /** The chain itself verifies, and matches every checkpoint. */
  intact: boolean;
}

function signedBytes(c: Omit<Checkpoint, 'signature'>): Buffer {
  return Buffer.from(canonicalJson({ format: FORMAT, version: VERSION, chain: c.chain, seq: c.seq, hash: c.hash, created_at: c.created_at, key_id: c.key_id }));
}

export function signCheckpoint(head: { chain: string; seq: number; hash: string }, key: ApplianceKey, at: Date): Checkpoint {
  const body = { chain: head.chain, seq: head.seq, hash: head.hash, created_at: at.toISOString(), key_id: key.info.key_id };
  return { ...body, signature: crypto.sign(null, signedBytes(body), key.privateKey).toString('base64') };
}

export function checkpointSignatureValid(c: Checkpoint, key: ApplianceKey): boolean {
  if (c.key_id !== key.info.key_id) return false;
  try {
    return crypto.verify(null, signedBytes(c), key.publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

function fromRow(row: AuditCheckpointRow): Checkpoint {
  return {
    chain: row.chain,
    seq: Number(row.seq),
    hash: row.hash,
    created_at: row.created_at.toISOString(),
    key_id: row.key_id,
    signature: row.signature,
  };
}

export class AuditCheckpoints {
  constructor(private readonly knex: Knex, private readonly dataDir: string, private readonly now: () => Date = () => new Date()) {}

  private fileOf(chain: string): string {
    return path.resolve(this.dataDir, CHECKPOINT_DIR, `${chain.replace(/[^A-Za-z0-9_-]/g, '_')}.ndjson`);
  }

  /** The checkpoints of a chain in the file copy (lines that do not parse are skipped: their signatures could not hold). */
  private readFile(chain: string): Checkpoint[] {
    let text: string;
    try {
      text = fs.readFileSync(this.fileOf(chain), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: Checkpoint[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const c = JSON.parse(line) as Checkpoint;
        if (c.chain === chain && Number.isSafeInteger(c.seq) && typeof c.hash === 'string' && typeof c.signature === 'string') out.push(c);
      } catch {
        // A torn last line (a crash while appending): the database copy has it.
      }
    }
    return out;
  }

  /**
   * Takes a checkpoint of the chain's current head, unless the newest one
   * already names it. Call it after the chain verified (a checkpoint of a
   * broken chain would anchor the damage). `verified`: the head that
   * verification reached, so that rows added since are not signed unchecked.
   * Answers the new checkpoint or null.
   */
  async anchor(organisationId: string | null, verified?: { seq: number; hash: string }): Promise<Checkpoint | null> {
    const chain = chainOf(organisationId);
    const head = verified ?? (await chainHead(this.knex, chain));
    if (!head || Number(head.seq) === 0) return null;
    const newest = await this.knex('audit_checkpoints').where({ chain }).orderBy('seq', 'desc').first('seq');
    if (newest && Number(newest.seq) >= Number(head.seq)) return null;
    const checkpoint = signCheckpoint({ chain, seq: Number(head.seq), hash: head.hash }, ensureApplianceKey(this.dataDir), this.now());
    await this.knex('audit_checkpoints').insert(checkpoint);
    const file = this.fileOf(chain);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.appendFileSync(file, `${JSON.stringify(checkpoint)}\n`, { mode: 0o600 });
    return checkpoint;
  }

  /** Recomputes the chain, then compares it with every checkpoint taken of it. */
  async verify(organisationId: string | null): Promise<ChainCheck> {
    const chain = chainOf(organisationId);
    const result = await new AuditService(this.knex).verify(organisationId);
    const stored = (await this.knex('audit_checkpoints').where({ chain }).orderBy('id')).map(fromRow);
    const inFile = this.readFile(chain);
    const known = new Set(stored.map((c) => c.signature));
    const missingFromDatabase = inFile.filter((c) => !known.has(c.signature));
    const key = loadApplianceKey(this.dataDir);
    const all = [...stored, ...missingFromDatabase];
    const valid = key ? all.filter((c) => checkpointSignatureValid(c, key)) : [];
    valid.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.seq - b.seq));

    const hashes = new Map<number, string>();
    const seqs = [...new Set(valid.map((c) => c.seq))];
    for (let i = 0; i < seqs.length; i += 1000) {
      const rows = await hashesAt(this.knex, chain, seqs.slice(i, i + 1000));
      for (const r of rows) hashes.set(Number(r.seq), r.hash);
    }
    const mismatches: CheckpointMismatch[] = [];
    for (const c of valid) {
      const hash = hashes.get(c.seq);
      if (hash === undefined) mismatches.push({ checkpoint: c, reason: 'row_missing' });
      else if (hash !== c.hash) mismatches.push({ checkpoint: c, reason: 'hash_differs' });
    }
    const invalidSignatures = all.length - valid.length;
    return {
      ...result,
      chain,
      checkpoints: valid.length,
      latest: valid[valid.length - 1] ?? null,
      mismatch: mismatches[0] ?? null,
      mismatches: mismatches.length,
      invalidSignatures,
      missingFromDatabase: missingFromDatabase.length,
      intact: result.ok && mismatches.length === 0 && invalidSignatures === 0 && missingFromDatabase.length === 0,
    };
  }

  /** Every chain (each organisation's and the appliance-wide one): verified, and anchored anew when intact. */
  async verifyAndAnchorAll(): Promise<{ checks: ChainCheck[]; anchored: number }> {
    const checks: ChainCheck[] = [];
    let anchored = 0;
    for (const chain of await listChains(this.knex)) {
      const organisationId = chain === chainOf(null) ? null : chain;
      const check = await this.verify(organisationId);
      checks.push(check);
      // A verified chain's rows are numbered 1..count without gaps: its head is (count, headHash).
      if (check.intact && (await this.anchor(organisationId, { seq: check.count, hash: check.headHash }))) anchored++;
    }
    return { checks, anchored };
  }
}
