/**
 * NDJSON export lines straight from PostgreSQL's binary COPY stream
 * (audit/store.ts `exportCopySql`: the plain columns, nothing formatted by
 * the database), byte for byte what `ndjsonLine(toExportRow(row))` gives for
 * the same row, without a JS object, Date or string per row: each line is
 * put together in large output buffers from constant parts and the column
 * bytes, by the field writers of audit-export-fields.ts.
 */
import * as fieldWriters from './audit-export-fields';

// Bound once: code run through tsx (tests, benches) reaches an imported function through a getter at every call.
const { compactDetails, copyBytes, IsoTimestamps, jsonStringRoom, timestampMs, writeInt8, writeJsonString } = fieldWriters;

const PGCOPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const OUT_SIZE = 1 << 20;
const FIELDS = 14;
/** The fields, in the order of `exportCopySql`'s columns. */
const F = { id: 0, seq: 1, occurredAt: 2, actorType: 3, actorId: 4, actorLabel: 5, action: 6, targetType: 7, targetId: 8, ip: 9, userAgent: 10, details: 11, prevHash: 12, hash: 13 } as const;
/** The text fields between `occurred_at` and `details`, each after its key; null allowed except for actor_type and action. */
const TEXT_FIELDS = [F.actorType, F.actorId, F.actorLabel, F.action, F.targetType, F.targetId, F.ip, F.userAgent] as const;
const JSONB_VERSION = 1;

const ascii = (text: string) => Buffer.from(text, 'latin1');
const put = (part: Buffer, out: Buffer, o: number) => copyBytes(part, 0, part.length, out, o);
const NULL = ascii('null');
const TEXT_KEYS = [',"actor_type":', ',"actor_id":', ',"actor_label":', ',"action":', ',"target_type":', ',"target_id":', ',"ip":', ',"user_agent":'].map(ascii);
const ID = ascii('{"id":"');
const OCCURRED_AT = ascii(',"occurred_at":"');
const DETAILS = ascii(',"details":');
const PREV_HASH = ascii(',"prev_hash":');
const HASH = ascii(',"hash":');
const LINE_END = ascii('}\n');

export interface LineInfo {
  seq: number;
  prev_hash: string;
  hash: string;
}

/**
 * Turns the binary COPY stream of one organisation's export into NDJSON
 * buffers (about 1 MB each). Feed it the chunks in order (`push`), then
 * `end()`. Counts the rows, keeps the first and the last row's link, and
 * whether every row's prev_hash is the hash of the row before it.
 */
export class CopyToNdjson {
  rows = 0;
  /** Every row's prev_hash equals the previous row's hash (the seq steps are checked from first, last and rows). */
  linked = true;
  first: LineInfo | null = null;
  private pending: Buffer | null = null;
  private headerDone = false;
  private ended = false;
  private out = Buffer.allocUnsafe(OUT_SIZE);
  private pos = 0;
  /** Where the last line is: its buffer (never reused) and range. */
  private lastLine: { buffer: Buffer; start: number; end: number } | null = null;
  private previousHash = Buffer.alloc(128);
  private previousHashLength = -1;
  private readonly timestamps = new IsoTimestamps();
  private readonly starts = new Int32Array(FIELDS);
  private readonly lengths = new Int32Array(FIELDS);
  /** `","chain":<org>,"seq":` and `","organisation_id":<org>`: chain and organisation_id are the organisation's id (the export's WHERE). */
  private readonly chain: Buffer;
  private readonly organisation: Buffer;

  constructor(organisationId: string) {
    const json = JSON.stringify(organisationId);
    this.chain = Buffer.from(`","chain":${json},"seq":`);
    this.organisation = Buffer.from(`","organisation_id":${json}`);
  }

  /** The NDJSON buffers completed by this chunk (each one owned by the caller). */
  push(chunk: Buffer): Buffer[] {
    if (this.ended) throw new Error('COPY data after its end');
    const done: Buffer[] = [];
    let buf = chunk;
    let p = 0;
    if (this.pending) {
      // The row cut at the last chunk's end: completed from the start of this one (not the whole chunk copied).
      const pending = this.pending;
      this.pending = null;
      for (let take = Math.min(chunk.length, 1 << 16); ; take = Math.min(chunk.length, take * 4)) {
        const joined = Buffer.concat([pending, chunk.subarray(0, take)]);
        const q = this.headerDone ? this.rows1(joined, 0, done) : this.header(joined);
        if (q > pending.length) {
          p = q - pending.length;
          break;
        }
        if (take === chunk.length) {
          this.pending = joined.subarray(q);
          return done;
        }
      }
    } else if (!this.headerDone) {
      p = this.header(buf);
      if (!this.headerDone) {
        this.pending = buf;
        return done;
      }
    }
    while (!this.ended) {
      const q = this.rows1(buf, p, done);
      if (q === p) break;
      p = q;
    }
    if (p < buf.length) {
      if (this.ended) throw new Error('COPY data after its trailer');
      this.pending = Buffer.from(buf.subarray(p));
    }
    return done;
  }

  /** The file header at the start of `buf`: the offset after it, or 0 when it is not complete yet. */
  private header(buf: Buffer): number {
    if (buf.length < 19) return 0;
    if (!buf.subarray(0, 11).equals(PGCOPY_SIGNATURE)) throw new Error('not a binary COPY stream');
    const extension = buf.readUInt32BE(15);
    if (buf.length < 19 + extension) return 0;
    this.headerDone = true;
    return 19 + extension;
  }

  /** One row (or the trailer) at `p` in `buf`: the offset after it, or `p` when it is not complete in `buf`. */
  private rows1(buf: Buffer, p: number, done: Buffer[]): number {
    const n = buf.length;
    if (p + 2 > n) return p;
    const fields = buf.readInt16BE(p);
    if (fields === -1) {
      this.ended = true;
      return p + 2;
    }
    if (fields !== FIELDS) throw new Error(`unexpected COPY row of ${fields} fields`);
    // Field offsets and lengths (-1: NULL).
    const starts = this.starts;
    const lengths = this.lengths;
    let q = p + 2;
    for (let f = 0; f < FIELDS; f++) {
      if (q + 4 > n) return p;
      const length = buf.readInt32BE(q);
      q += 4;
      starts[f] = q;
      lengths[f] = length;
      if (length > 0) q += length;
      if (q > n) return p;
    }
    this.row(buf, done);
    return q;
  }

  /** The last buffer; throws when the stream ended before its trailer. */
  end(): Buffer[] {
    if (!this.ended || this.pending) throw new Error('the COPY stream ended early');
    const done: Buffer[] = [];
    if (this.pos > 0) done.push(this.flush());
    return done;
  }

  /** The last row's seq and hash, parsed from its line (null without rows). */
  get last(): LineInfo | null {
    if (!this.lastLine) return null;
    const { buffer, start, end } = this.lastLine;
    return lineInfo(buffer.toString('utf8', start, end));
  }

  private row(buf: Buffer, done: Buffer[]): void {
    const s = this.starts;
    const l = this.lengths;
    if (l[F.id] !== 8 || l[F.seq] !== 8 || l[F.occurredAt] !== 8 || l[F.details]! < 1 || l[F.prevHash]! < 0 || l[F.hash]! < 0) throw new Error('unexpected export row fields');
    if (buf[s[F.details]!] !== JSONB_VERSION) throw new Error('unexpected jsonb version in the COPY stream');
    // Room for the line at worst (every text byte escaped) with the constant parts.
    let text = l[F.prevHash]! + l[F.hash]!;
    for (const f of TEXT_FIELDS) text += Math.max(l[f]!, 0);
    const room = jsonStringRoom(text) + l[F.details]! + 512 + this.chain.length + this.organisation.length;
    if (this.pos + room > this.out.length) {
      if (this.pos > 0) done.push(this.flush());
      if (room > this.out.length) this.out = Buffer.allocUnsafe(room * 2);
    }
    let out = this.out;
    const start = this.pos;
    let o = start;
    o = put(ID, out, o);
    o = writeInt8(buf, s[F.id]!, out, o);
    o = put(this.chain, out, o);
    o = writeInt8(buf, s[F.seq]!, out, o);
    o = put(OCCURRED_AT, out, o);
    o = this.timestamps.write(timestampMs(buf, s[F.occurredAt]!), out, o);
    o = put(this.organisation, out, o);
    for (let k = 0; k < TEXT_FIELDS.length; k++) {
      const f = TEXT_FIELDS[k]!;
      o = put(TEXT_KEYS[k]!, out, o);
      o = l[f]! < 0 ? put(NULL, out, o) : writeJsonString(buf, s[f]!, l[f]!, out, o);
    }
    o = put(DETAILS, out, o);
    const detailsStart = s[F.details]! + 1;
    const detailsEnd = s[F.details]! + l[F.details]!;
    const compact = compactDetails(buf, detailsStart, detailsEnd, out, o);
    if (compact >= 0) {
      o = compact;
    } else {
      const details = JSON.stringify(JSON.parse(buf.toString('utf8', detailsStart, detailsEnd)) ?? {});
      const bytes = Buffer.byteLength(details);
      const needed = o - start + bytes + jsonStringRoom(l[F.prevHash]! + l[F.hash]!) + 64;
      if (start + needed > out.length) {
        // Longer than the room left: move the line so far into a buffer that holds it.
        const bigger = Buffer.allocUnsafe(Math.max(OUT_SIZE, needed * 2));
        out.copy(bigger, 0, start, o);
        if (start > 0) done.push(this.flush(start));
        this.out = out = bigger;
        o -= start;
        this.pos = 0;
        return this.finishRow(buf, out, 0, o + out.write(details, o));
      }
      o += out.write(details, o);
    }
    this.finishRow(buf, out, start, o);
  }

  private finishRow(buf: Buffer, out: Buffer, start: number, o: number): void {
    const s = this.starts;
    const l = this.lengths;
    o = put(PREV_HASH, out, o);
    o = writeJsonString(buf, s[F.prevHash]!, l[F.prevHash]!, out, o);
    o = put(HASH, out, o);
    o = writeJsonString(buf, s[F.hash]!, l[F.hash]!, out, o);
    o = put(LINE_END, out, o);
    // The link: this row's prev_hash against the previous row's hash.
    const prevLength = l[F.prevHash]!;
    if (this.previousHashLength >= 0 && (prevLength !== this.previousHashLength || !sameBytes(buf, s[F.prevHash]!, this.previousHash, prevLength))) this.linked = false;
    const hashLength = l[F.hash]!;
    if (hashLength > this.previousHash.length) this.previousHash = Buffer.alloc(hashLength * 2);
    copyBytes(buf, s[F.hash]!, s[F.hash]! + hashLength, this.previousHash, 0);
    this.previousHashLength = hashLength;
    if (this.rows === 0) this.first = lineInfo(out.toString('utf8', start, o - 1));
    this.rows++;
    this.lastLine = { buffer: out, start, end: o - 1 };
    this.pos = o;
  }

  /** Hands out the filled part of the output buffer and starts a new one. */
  private flush(upTo = this.pos): Buffer {
    const filled = this.out.subarray(0, upTo);
    this.out = Buffer.allocUnsafe(OUT_SIZE);
    this.pos = 0;
    return filled;
  }
}

function sameBytes(a: Buffer, at: number, b: Buffer, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[at + i] !== b[i]) return false;
  return true;
}

function lineInfo(line: string): LineInfo {
  const row = JSON.parse(line) as LineInfo;
  return { seq: row.seq, prev_hash: row.prev_hash, hash: row.hash };
}
