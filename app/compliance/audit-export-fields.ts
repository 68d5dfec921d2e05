/**
 * The field writers of the NDJSON export from binary COPY
 * (audit-export-lines.ts): each writes one column's JSON text into an
 * output buffer at an offset and returns the offset after it, exactly as
 * `ndjsonLine(toExportRow(row))` writes the value pg would have parsed:
 *
 * - strings (text columns, UTF-8): JSON.stringify's escaping, done on the
 *   bytes (`"`, `\`, `\b \f \n \r \t`, other control characters as
 *   `\u00xx`; UTF-8 sequences never contain those bytes, and PostgreSQL's
 *   text is valid UTF-8, so nothing else changes);
 * - bigint (`id` as a JSON string, `seq` as a number): the decimal digits;
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

const DAY_MS = 86_400_000;
/** Milliseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
const PG_EPOCH_MS = 946_684_800_000;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** The short escapes JSON.stringify uses for control characters (0 = `\u00xx`). */
const SHORT_ESCAPE = new Uint8Array(32);
SHORT_ESCAPE[8] = 0x62; // b
SHORT_ESCAPE[9] = 0x74; // t
SHORT_ESCAPE[10] = 0x6e; // n
SHORT_ESCAPE[12] = 0x66; // f
SHORT_ESCAPE[13] = 0x72; // r

/**
 * Copies `src[from, to)` into `out` at `o` and returns the end offset. Short
 * ranges byte by byte: Buffer#copy costs about 100 ns a call, more than
 * copying the dozens of bytes of a typical value (a line has 20 such parts).
 */
export function copyBytes(src: Uint8Array, from: number, to: number, out: Uint8Array, o: number): number {
  if (to - from > 48) {
    out.set(src.subarray(from, to), o);
    return o + to - from;
  }
  for (let i = from; i < to; i++) out[o++] = src[i]!;
  return o;
}

/** At most this many bytes come out of `length` bytes of text (every byte a `\u00xx`, plus the quotes). */
export function jsonStringRoom(length: number): number {
  return length * 6 + 2;
}

/** The text `src[start, start + length)` as a JSON string. */
export function writeJsonString(src: Buffer, start: number, length: number, out: Buffer, o: number): number {
  const end = start + length;
  let i = start;
  // Most values need no escape: find the first byte that does, copy up to it in one go.
  while (i < end) {
    const c = src[i]!;
    if (c < 0x20 || c === QUOTE || c === BACKSLASH) break;
    i++;
  }
  out[o++] = QUOTE;
  o = copyBytes(src, start, i, out, o);
  for (; i < end; i++) {
    const c = src[i]!;
    if (c === QUOTE || c === BACKSLASH) {
      out[o++] = BACKSLASH;
      out[o++] = c;
    } else if (c < 0x20) {
      out[o++] = BACKSLASH;
      const short = SHORT_ESCAPE[c]!;
      if (short) {
        out[o++] = short;
      } else {
        out[o++] = 0x75; // u
        out[o++] = 0x30;
        out[o++] = 0x30;
        out[o++] = HEX[c >> 4]!;
        out[o++] = HEX[c & 15]!;
      }
    } else {
      out[o++] = c;
    }
  }
  out[o++] = QUOTE;
  return o;
}

const digits = new Uint8Array(24);

/** A bigint field (8 bytes, big-endian, signed) in decimal, as `String(value)` of what pg gives for it. */
export function writeInt8(src: Buffer, at: number, out: Buffer, o: number): number {
  const high = src.readInt32BE(at);
  const low = src.readUInt32BE(at + 4);
  if (high < 0 || high >= 0x200000) return o + out.write(BigInt.asIntN(64, (BigInt(high) << 32n) | BigInt(low)).toString(), o, 'latin1');
  let n = high * 4294967296 + low; // exact below 2^53
  let d = 0;
  do {
    const q = Math.floor(n / 10);
    digits[d++] = 48 + (n - q * 10);
    n = q;
  } while (n > 0);
  while (d > 0) out[o++] = digits[--d]!;
  return o;
}

/** A timestamptz field (microseconds since 2000-01-01 UTC) as milliseconds since 1970, floored as pg does. */
export function timestampMs(src: Buffer, at: number): number {
  const high = src.readInt32BE(at);
  const low = src.readUInt32BE(at + 4);
  if (high > -0x200000 && high < 0x200000) {
    const micros = high * 4294967296 + low; // exact below 2^53
    const rest = micros % 1000;
    return (micros - rest) / 1000 - (rest < 0 ? 1 : 0) + PG_EPOCH_MS;
  }
  const micros = BigInt.asIntN(64, (BigInt(high) << 32n) | BigInt(low));
  let floored = micros / 1000n;
  if (micros % 1000n < 0n) floored -= 1n;
  return Number(floored) + PG_EPOCH_MS;
}

/**
 * Writes `new Date(ms).toISOString()` without the Date (the date part of the
 * day is cached: a million events cover few days).
 */
export class IsoTimestamps {
  /** The UTC day whose date part is cached, e.g. `2026-12-05T`. */
  private dayStart = NaN;
  private dayPrefix = Buffer.alloc(0);

  write(ms: number, out: Buffer, o: number): number {
    let t = ms - this.dayStart;
    if (!(t >= 0 && t < DAY_MS)) {
      // A new day: its date part from Date (any year form), the time of day written below.
      const iso = new Date(ms).toISOString(); // RangeError beyond JavaScript's dates, as the row path
      this.dayStart = ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
      this.dayPrefix = Buffer.from(iso.slice(0, iso.length - 13), 'latin1');
      t = ms - this.dayStart;
    }
    o = copyBytes(this.dayPrefix, 0, this.dayPrefix.length, out, o);
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
