/**
 * NDJSON export lines straight from PostgreSQL's binary COPY stream
 * (audit/store.ts `exportCopySql`), byte for byte what `ndjsonLine(toExportRow(row))`
 * gives for the same row, without a JS object, Date or string per row:
 * the database writes the JSON of the plain columns, this file adds the two
 * that JavaScript formats differently from PostgreSQL, into large output
 * buffers:
 *
 * - `occurred_at`: `Date#toISOString()` of the timestamp as pg parses it,
 *   which is the microseconds since 2000 floored to milliseconds;
 * - `details`: `JSON.stringify(JSON.parse(jsonb text) ?? {})`. PostgreSQL's
 *   jsonb text differs from that only in the space after `:` and `,`, in
 *   numbers (`1.50`, `0.0000001`, integers beyond 2^53), in keys made of
 *   digits (JavaScript puts integer keys first) and in `null` (`{}`); the
 *   spaces are dropped here, and a value with any of the others goes the
 *   JSON.parse way (exactly what the row path does). Strings are copied: both
 *   escape exactly `"`, `\` and the control characters, the same way.
 */

const PGCOPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const OUT_SIZE = 1 << 20;
const DAY_MS = 86_400_000;
/** Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
const PG_EPOCH_MS = 946_684_800_000;

const ascii = (text: string) => Buffer.from(text, 'latin1');
const PREV_HASH = ascii(',"prev_hash":');
const HASH = ascii(',"hash":');
const LINE_END = ascii('}\n');

export interface LineInfo {
  seq: number;
  prev_hash: string;
  hash: string;
}

/**
 * Turns the binary COPY stream into NDJSON buffers (about 1 MB each). Feed it
 * the chunks in order (`push`), then `end()`. Counts the rows, keeps the
 * first and the last row's link, and whether every row's prev_hash is the
 * hash of the row before it.
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
  /** The UTC day whose date part is cached, e.g. `2026-12-05T`. */
  private dayStart = NaN;
  private dayPrefix = Buffer.alloc(0);

  /** The NDJSON buffers completed by this chunk (each one owned by the caller). */
  push(chunk: Buffer): Buffer[] {
    if (this.ended) throw new Error('COPY data after its end');
    const done: Buffer[] = [];
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let p = 0;
    if (!this.headerDone) {
      if (buf.length < 19) {
        this.pending = buf;
        return done;
      }
      if (!buf.subarray(0, 11).equals(PGCOPY_SIGNATURE)) throw new Error('not a binary COPY stream');
      const extension = buf.readUInt32BE(15);
      if (buf.length < 19 + extension) {
        this.pending = buf;
        return done;
      }
      p = 19 + extension;
      this.headerDone = true;
    }
    const n = buf.length;
    while (p + 2 <= n) {
      const fields = buf.readInt16BE(p);
      if (fields === -1) {
        this.ended = true;
        p += 2;
        break;
      }
      if (fields !== 6) throw new Error(`unexpected COPY row of ${fields} fields`);
      // Field offsets and lengths; stop when the row is not complete in this chunk.
      let q = p + 2;
      let complete = true;
      const starts = this.starts;
      const lengths = this.lengths;
      for (let f = 0; f < 6; f++) {
        if (q + 4 > n) {
          complete = false;
          break;
        }
        const length = buf.readInt32BE(q);
        q += 4;
        if (length < 0) throw new Error('unexpected NULL in an export row');
        starts[f] = q;
        lengths[f] = length;
        q += length;
        if (q > n) {
          complete = false;
          break;
        }
      }
      if (!complete) break;
      this.row(buf, done);
      p = q;
    }
    if (p < n) this.pending = buf.subarray(p);
    if (this.ended && p < n) throw new Error('COPY data after its trailer');
    return done;
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

  private readonly starts = new Int32Array(6);
  private readonly lengths = new Int32Array(6);

  private row(buf: Buffer, done: Buffer[]): void {
    const s = this.starts;
    const l = this.lengths;
    // Room for the fields, the timestamp (at most 30 bytes) and the constant parts.
    const room = l[0]! + l[2]! + l[3]! + l[4]! + l[5]! + 64;
    if (this.pos + room > this.out.length) {
      if (this.pos > 0) done.push(this.flush());
      if (room > this.out.length) this.out = Buffer.allocUnsafe(room * 2);
    }
    let out = this.out;
    const start = this.pos;
    let o = start;
    o += buf.copy(out, o, s[0]!, s[0]! + l[0]!);
    if (l[1] !== 8) throw new Error('unexpected occurred_at field');
    o = this.timestamp(buf, s[1]!, out, o);
    o += buf.copy(out, o, s[2]!, s[2]! + l[2]!);
    const compact = compactDetails(buf, s[3]!, s[3]! + l[3]!, out, o);
    if (compact >= 0) {
      o = compact;
    } else {
      const text = JSON.stringify(JSON.parse(buf.toString('utf8', s[3]!, s[3]! + l[3]!)) ?? {});
      const bytes = Buffer.byteLength(text);
      const needed = o - start + bytes + l[4]! + l[5]! + 32;
      if (start + needed > out.length) {
        // Longer than the room left: move the line so far into a buffer that holds it.
        const bigger = Buffer.allocUnsafe(Math.max(OUT_SIZE, needed * 2));
        out.copy(bigger, 0, start, o);
        if (start > 0) done.push(this.flush(start));
        this.out = out = bigger;
        o -= start;
        this.pos = 0;
        return this.finishRow(buf, out, 0, o + out.write(text, o), done);
      }
      o += out.write(text, o);
    }
    this.finishRow(buf, out, start, o, done);
  }

  private finishRow(buf: Buffer, out: Buffer, start: number, o: number, _done: Buffer[]): void {
    const s = this.starts;
    const l = this.lengths;
    o += PREV_HASH.copy(out, o);
    o += buf.copy(out, o, s[4]!, s[4]! + l[4]!);
    o += HASH.copy(out, o);
    o += buf.copy(out, o, s[5]!, s[5]! + l[5]!);
    o += LINE_END.copy(out, o);
    // The link: this row's prev_hash (as JSON text) against the previous row's hash.
    if (this.previousHashLength >= 0 && (l[4] !== this.previousHashLength || buf.compare(this.previousHash, 0, l[4]!, s[4]!, s[4]! + l[4]!) !== 0)) this.linked = false;
    if (l[5]! > this.previousHash.length) this.previousHash = Buffer.alloc(l[5]! * 2);
    buf.copy(this.previousHash, 0, s[5]!, s[5]! + l[5]!);
    this.previousHashLength = l[5]!;
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

  /** `occurred_at` from its 8 bytes (microseconds since 2000-01-01 UTC), as `new Date(ms).toISOString()`. */
  private timestamp(buf: Buffer, at: number, out: Buffer, o: number): number {
    const high = buf.readInt32BE(at);
    const low = buf.readUInt32BE(at + 4);
    let ms: number;
    if (high > -0x200000 && high < 0x200000) {
      const micros = high * 4294967296 + low; // exact below 2^53
      const rest = micros % 1000;
      ms = (micros - rest) / 1000 - (rest < 0 ? 1 : 0) + PG_EPOCH_MS;
    } else {
      const micros = BigInt.asIntN(64, (BigInt(high) << 32n) | BigInt(low));
      let floored = micros / 1000n;
      if (micros % 1000n < 0n) floored -= 1n;
      ms = Number(floored) + PG_EPOCH_MS;
    }
    let t = ms - this.dayStart;
    if (!(t >= 0 && t < DAY_MS)) {
      // A new day: its date part from Date (any year form), the time of day written below.
      const iso = new Date(ms).toISOString(); // RangeError beyond JavaScript's dates, as the row path
      this.dayStart = ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
      this.dayPrefix = ascii(iso.slice(0, iso.length - 13));
      t = ms - this.dayStart;
    }
    o += this.dayPrefix.copy(out, o);
    const hours = Math.floor(t / 3_600_000);
    t -= hours * 3_600_000;
    const minutes = Math.floor(t / 60_000);
    t -= minutes * 60_000;
    const seconds = Math.floor(t / 1000);
    const millis = t - seconds * 1000;
    out[o++] = 48 + Math.floor(hours / 10);
    out[o++] = 48 + (hours % 10);
    out[o++] = 58; // :
    out[o++] = 48 + Math.floor(minutes / 10);
    out[o++] = 48 + (minutes % 10);
    out[o++] = 58;
    out[o++] = 48 + Math.floor(seconds / 10);
    out[o++] = 48 + (seconds % 10);
    out[o++] = 46; // .
    out[o++] = 48 + Math.floor(millis / 100);
    out[o++] = 48 + (Math.floor(millis / 10) % 10);
    out[o++] = 48 + (millis % 10);
    out[o++] = 90; // Z
    return o;
  }
}

function lineInfo(line: string): LineInfo {
  const row = JSON.parse(line) as LineInfo;
  return { seq: row.seq, prev_hash: row.prev_hash, hash: row.hash };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Copies jsonb text `src[start, end)` into `out` at `o` as JSON.stringify
 * would write its parsed value, and returns the end offset; -1 when the
 * value needs JSON.parse (non-integer or long numbers, keys of digits only,
 * top-level null).
 */
export function compactDetails(src: Buffer, start: number, end: number, out: Buffer, o: number): number {
  if (end - start === 2 && src[start] === 0x7b && src[start + 1] === 0x7d) {
    out[o] = 0x7b;
    out[o + 1] = 0x7d;
    return o + 2;
  }
  let i = start;
  while (i < end) {
    const c = src[i]!;
    if (c === QUOTE) {
      out[o++] = c;
      i++;
      let digitsOnly = true;
      const from = i;
      for (;;) {
        if (i >= end) return -1;
        const d = src[i]!;
        if (d === QUOTE) break;
        if (d === BACKSLASH) {
          out[o++] = d;
          i++;
          digitsOnly = false;
        } else if (d < 0x30 || d > 0x39) {
          digitsOnly = false;
        }
        out[o++] = src[i++]!;
      }
      out[o++] = QUOTE;
      i++;
      // A key of digits only: JavaScript orders such keys first, jsonb by length.
      if (digitsOnly && i - from > 1 && i < end && src[i] === 0x3a) return -1;
    } else if (c === 0x20) {
      i++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let digits = 0;
      const from = i;
      while (i < end) {
        const d = src[i]!;
        if (d >= 0x30 && d <= 0x39) digits++;
        else if (d !== 0x2d) break;
        out[o++] = d;
        i++;
      }
      // Fractions, exponents, -0 and integers JavaScript may not hold exactly: the JSON.parse way.
      if (i < end && (src[i] === 0x2e || src[i] === 0x65 || src[i] === 0x45)) return -1;
      if (digits > 15 || digits === 0 || (digits === 1 && i - from === 2 && src[from + 1] === 0x30)) return -1;
    } else if (c === 0x6e && i === start) {
      return -1; // a top-level null becomes {}
    } else {
      out[o++] = c;
      i++;
    }
  }
  return o;
}
