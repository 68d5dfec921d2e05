import crypto from 'node:crypto';
import { contentOf, eventHash, GENESIS_HASH, type ChainRow } from '../audit/chain';
import type { ExportManifest } from './audit-export-manifest';
import { ByteRowReader } from './audit-verify-bytes';

/**
 * The row checks of the offline verifier (audit-offline-verify.ts), fed one
 * line of the NDJSON export at a time. A line in exactly the layout the
 * export writes (the columns in order, no whitespace, no backslash or
 * control character, 64-hex hashes) is taken apart with string searches and
 * its hash input put together from the line's own JSON texts, which are
 * then already what canonicalJson writes (only `details` is parsed and
 * written again, with its keys sorted). Any other line goes the general
 * way: JSON.parse, then contentOf and canonicalJson. Both ways give the
 * same verdict for the same line; the quick one only skips building
 * objects for the common case.
 */
export type BreakReason = 'invalid_row' | 'organisation_mismatch' | 'sequence_gap' | 'order' | 'prev_hash_mismatch' | 'hash_mismatch';

export interface RowBreak {
  /** 1-based line of the export file. */
  line: number;
  seq: number | null;
  reason: BreakReason;
}

/** Breaks kept beyond the first (the report names them; the count goes on). */
export const MAX_BREAKS = 20;
const HEX64 = /^[0-9a-f]{64}$/;
/** A line the quick way can read has none of these. */
const NOT_PLAIN = /[\x00-\x1f\\]/;
const SEQ = /^(?:0|[1-9][0-9]{0,15})$/;
/** `,"prev_hash":"<64>","hash":"<64>"}`: the fixed end of every line. */
const TAIL = 14 + 64 + 10 + 64 + 2;

const sha256Hex: (text: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (text) => (crypto as unknown as { hash(algorithm: string, data: string, encoding: string): string }).hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

function isRow(value: unknown): value is ChainRow {
  const r = value as Record<string, unknown>;
  return (
    typeof r === 'object' && r !== null && !Array.isArray(r) &&
    typeof r.chain === 'string' && Number.isSafeInteger(r.seq) && typeof r.occurred_at === 'string' &&
    typeof r.actor_type === 'string' && typeof r.action === 'string' &&
    typeof r.prev_hash === 'string' && HEX64.test(r.prev_hash) && typeof r.hash === 'string' && HEX64.test(r.hash)
  );
}

/** canonicalJson of a parsed JSON value (no undefined in it): keys sorted at every level. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) text += (i ? ',' : '') + canonical(value[i]);
    return `${text}]`;
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).sort();
  let text = '{';
  for (let i = 0; i < keys.length; i++) text += `${i ? ',' : ''}${JSON.stringify(keys[i])}:${canonical(object[keys[i]!])}`;
  return `${text}}`;
}

/**
 * Checks the rows of one NDJSON export as they stream by. Reads on to the
 * end after a break: each later row is still checked (its own hash, and its
 * link to the row read before it), so a single changed row is named alone,
 * and the last row is compared with the manifest whatever broke before it.
 */
export class RowChecker {
  rows = 0;
  /** Every break found (the first MAX_BREAKS); `breakCount` counts them all. */
  breaks: RowBreak[] = [];
  breakCount = 0;
  first: { seq: number; hash: string } | undefined;
  private lastSeq = 0;
  private lastHash = '';
  private readonly organisation: string;
  private readonly organisationJson: string;
  /** The organisation id needs no escaping in JSON (a UUID): lines are compared as text. */
  private readonly plainOrganisation: boolean;

  /** With `piece`, the first row's verdict waits for the row before it (`head`): the lines are one piece of a file, checked on a thread. */
  head: PieceHead | undefined;

  /** `quick: false` reads every line the general way (the tests compare the two); `piece`: see `head`. */
  constructor(private readonly manifest: ExportManifest, private readonly options: { quick?: boolean; piece?: boolean } = {}) {
    this.organisation = manifest.organisation_id;
    this.organisationJson = JSON.stringify(manifest.organisation_id);
    this.plainOrganisation = !NOT_PLAIN.test(this.organisationJson);
    this.bytes = new ByteRowReader(this.organisationJson, canonical);
  }

  get broken(): RowBreak | undefined {
    return this.breaks[0];
  }

  get last(): { seq: number; hash: string } | undefined {
    return this.first ? { seq: this.lastSeq, hash: this.lastHash } : undefined;
  }

  line(text: string): void {
    this.rows++;
    if (this.options.quick === false || !this.quick(text)) this.general(text);
  }

  /** The line `buf[start, end)` of a piece that is valid UTF-8: read on its bytes (audit-verify-bytes.ts), or as text. */
  lineBytes(buf: Buffer, start: number, end: number): void {
    const row = this.options.quick === false || !this.plainOrganisation ? undefined : this.bytes.read(buf, start, end, this.lastHash);
    if (!row) {
      this.line(buf.toString('utf8', start, end));
      return;
    }
    this.rows++;
    const reason = this.check(row.seq, row.prevHash, row.hash, row.sameOrganisation, () => row.computed);
    if (reason) this.fail({ line: this.rows, seq: row.seq, reason });
  }

  private readonly bytes: ByteRowReader;

  /** The export's own layout, read without JSON.parse of the line; false when the line is not in it. */
  private quick(line: string): boolean {
    const n = line.length;
    if (n < TAIL + 20 || !this.plainOrganisation || NOT_PLAIN.test(line) || !line.startsWith('{"id":"')) return false;
    let p = line.indexOf('"', 7) + 1; // after the id
    if (p === 0) return false;
    this.at = p;
    const chain = this.value(line, ',"chain":', false);
    p = this.at;
    if (chain === undefined || !line.startsWith(',"seq":', p)) return false;
    const seqStart = p + 7;
    const seqEnd = line.indexOf(',', seqStart);
    if (seqEnd < 0) return false;
    const seqText = line.slice(seqStart, seqEnd);
    if (!SEQ.test(seqText)) return false;
    const seq = Number(seqText);
    if (!Number.isSafeInteger(seq)) return false;
    this.at = seqEnd;
    const occurredAt = this.value(line, ',"occurred_at":', false);
    const organisationId = occurredAt && this.value(line, ',"organisation_id":', true);
    const actorType = organisationId && this.value(line, ',"actor_type":', false);
    const actorId = actorType && this.value(line, ',"actor_id":', true);
    const actorLabel = actorId && this.value(line, ',"actor_label":', true);
    const action = actorLabel && this.value(line, ',"action":', false);
    const targetType = action && this.value(line, ',"target_type":', true);
    const targetId = targetType && this.value(line, ',"target_id":', true);
    const ip = targetId && this.value(line, ',"ip":', true);
    const userAgent = ip && this.value(line, ',"user_agent":', true);
    p = this.at;
    if (!userAgent || !line.startsWith(',"details":', p)) return false;
    const tail = n - TAIL;
    if (tail <= p + 11 || !line.startsWith(',"prev_hash":"', tail) || !line.startsWith('","hash":"', tail + 78) || !line.endsWith('"}')) return false;
    const prevHash = line.slice(tail + 14, tail + 78);
    const hash = line.slice(tail + 88, tail + 152);
    // prev_hash: 64 hex digits unless it is the previous row's hash (checked then); hash: below.
    if (prevHash !== this.lastHash && prevHash !== GENESIS_HASH && !HEX64.test(prevHash)) return false;
    const detailsText = line.slice(p + 11, tail);
    let details: string;
    if (detailsText === '{}') {
      details = '{}';
    } else {
      let parsed: unknown;
      try {
        parsed = JSON.parse(detailsText);
      } catch {
        return false;
      }
      details = canonical(parsed ?? {});
    }
    // The hash input, keys in canonical (sorted) order; each value's JSON text as canonicalJson writes it.
    const content = `{"action":${action},"actor_id":${actorId},"actor_label":${actorLabel},"actor_type":${actorType},"chain":${chain},"details":${details},"ip":${ip},"occurred_at":${occurredAt},"organisation_id":${organisationId},"seq":${seqText},"target_id":${targetId},"target_type":${targetType},"user_agent":${userAgent}}`;
    const sameOrganisation = chain === this.organisationJson && organisationId === this.organisationJson;
    const computed = sha256Hex(`${prevHash}\n${content}`);
    // A computed hash is 64 hex digits: a hash equal to it is one; otherwise look.
    if (computed !== hash && !HEX64.test(hash)) return false;
    const reason = this.check(seq, prevHash, hash, sameOrganisation, () => computed);
    if (reason) this.fail({ line: this.rows, seq, reason });
    return true;
  }

  /** Where `value` goes on reading the line. */
  private at = 0;

  /** The JSON text of the value after `key` at `this.at` (a string: no escapes in these lines, so up to the next quote; or null), and moves past it. */
  private value(line: string, key: string, nullable: boolean): string | undefined {
    const p = this.at;
    if (!line.startsWith(key, p)) return undefined;
    const start = p + key.length;
    if (line.charCodeAt(start) === 34) {
      const end = line.indexOf('"', start + 1) + 1;
      if (end === 0) return undefined;
      this.at = end;
      return line.slice(start, end);
    }
    if (nullable && line.startsWith('null', start)) {
      this.at = start + 4;
      return 'null';
    }
    return undefined;
  }

  private general(text: string): void {
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
    const valid = row;
    const sameOrganisation = valid.chain === this.organisation && valid.organisation_id === this.organisation;
    const reason = this.check(valid.seq, valid.prev_hash, valid.hash, sameOrganisation, () => eventHash(valid.prev_hash, contentOf(valid)));
    if (reason) this.fail({ line, seq: valid.seq, reason });
  }

  private fail(problem: RowBreak): void {
    this.breakCount++;
    if (this.breaks.length < MAX_BREAKS) this.breaks.push(problem);
  }

  private check(seq: number, prevHash: string, hash: string, sameOrganisation: boolean, computed: () => string): BreakReason | null {
    const previous = this.first ? { seq: this.lastSeq, hash: this.lastHash } : undefined;
    this.first ??= { seq, hash };
    this.lastSeq = seq;
    this.lastHash = hash;
    if (!previous && this.options.piece) {
      // The piece's first row: its link is checked where the row before it is known (mergePieceHead).
      this.head = { line: this.rows, seq, prevHash, hash, sameOrganisation, own: ownReason(seq, prevHash, hash, computed) };
      return null;
    }
    if (!sameOrganisation) return 'organisation_mismatch';
    return linkReason(this.manifest, previous, seq, prevHash) ?? ownReason(seq, prevHash, hash, computed);
  }
}

/** What breaks between a row and the one before it (none: the file's first row, checked against the manifest). */
function linkReason(m: ExportManifest, previous: { seq: number; hash: string } | undefined, seq: number, prevHash: string): BreakReason | null {
  if (previous) {
    if (seq <= previous.seq) return 'order';
    if (m.complete_chain && seq !== previous.seq + 1) return 'sequence_gap';
    if (m.complete_chain && prevHash !== previous.hash) return 'prev_hash_mismatch';
  } else if (m.complete_chain && m.first) {
    // The first row of a complete export: where the manifest says the stretch starts.
    if (seq !== m.first.seq) return 'sequence_gap';
    if (prevHash !== m.first.prev_hash) return 'prev_hash_mismatch';
  }
  return null;
}

/** What breaks in a row by itself: the chain's first row not on the genesis hash, or its hash not its content's. */
function ownReason(seq: number, prevHash: string, hash: string, computed: () => string): BreakReason | null {
  if (seq === 1 && prevHash !== GENESIS_HASH) return 'prev_hash_mismatch';
  if (computed() !== hash) return 'hash_mismatch';
  return null;
}

/** The first row of a piece checked by itself (RowChecker with `piece`), to be linked to the row before it. */
export interface PieceHead {
  /** Its line within the piece (1-based). */
  line: number;
  seq: number;
  prevHash: string;
  hash: string;
  sameOrganisation: boolean;
  /** Its own verdict (ownReason). */
  own: BreakReason | null;
}

/** The verdict on a piece's first row, given the last row of the pieces before it (none: it is the file's first row). */
export function pieceHeadReason(m: ExportManifest, previous: { seq: number; hash: string } | undefined, head: PieceHead): BreakReason | null {
  if (!head.sameOrganisation) return 'organisation_mismatch';
  return linkReason(m, previous, head.seq, head.prevHash) ?? head.own;
}
