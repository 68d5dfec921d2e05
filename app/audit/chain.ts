import crypto from 'node:crypto';

/**
 * The audit hash chain, free of any database code so that an offline
 * verifier can use it too. Each event's hash is
 * SHA-256(prev_hash + "\n" + canonical JSON of the event's content),
 * canonical meaning object keys sorted at every level and no whitespace.
 */
export const GENESIS_HASH = '0'.repeat(64);

export interface ChainedContent {
  chain: string;
  seq: number;
  occurred_at: string;
  organisation_id: string | null;
  actor_type: string;
  actor_id: string | null;
  actor_label: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: unknown;
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function eventHash(prevHash: string, content: ChainedContent): string {
  return crypto.createHash('sha256').update(`${prevHash}\n${canonicalJson(content)}`).digest('hex');
}

export interface ChainRow extends ChainedContent {
  id: string | number;
  prev_hash: string;
  hash: string;
}

export type ChainBreak = { id: string | number; seq: number; reason: 'sequence_gap' | 'prev_hash_mismatch' | 'hash_mismatch' };

/**
 * Checks rows of one chain, fed in seq order, batch by batch. Reports the
 * first broken link: a missing or reordered row (sequence gap), a row whose
 * predecessor changed (prev_hash mismatch), or a changed row (hash mismatch).
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private lastHash = GENESIS_HASH;
  count = 0;
  broken: ChainBreak | undefined;

  /** Feeds rows; returns false once the chain is broken. */
  feed(rows: Iterable<ChainRow>): boolean {
    for (const row of rows) {
      if (this.broken) return false;
      this.count++;
      const seq = Number(row.seq);
      if (seq !== this.expectedSeq) {
        this.broken = { id: row.id, seq, reason: 'sequence_gap' };
      } else if (row.prev_hash !== this.lastHash) {
        this.broken = { id: row.id, seq, reason: 'prev_hash_mismatch' };
      } else if (eventHash(row.prev_hash, contentOf(row)) !== row.hash) {
        this.broken = { id: row.id, seq, reason: 'hash_mismatch' };
      }
      this.expectedSeq = seq + 1;
      this.lastHash = row.hash;
    }
    return !this.broken;
  }

  get headHash(): string {
    return this.lastHash;
  }
}

export function contentOf(row: ChainedContent): ChainedContent {
  return {
    chain: row.chain,
    seq: Number(row.seq),
    occurred_at: row.occurred_at,
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
  };
}
