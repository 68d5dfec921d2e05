import crypto from 'node:crypto';
import { GENESIS_HASH } from '../audit/chain';

/**
 * The offline verifier's quickest reading of a line: on the file's bytes,
 * without a string per value. It reads exactly the lines the string reading
 * (RowChecker's `quick`) reads, the same way (the export's own layout: the
 * columns in order, no whitespace, no backslash or control character), and
 * puts the hash input together in a reused buffer from the line's own JSON
 * bytes; `details` too when it is already canonical (keys sorted, no
 * spaces, numbers as JavaScript writes them), else through JSON.parse and
 * canonical. Whatever it cannot read this way it leaves to the string
 * reading (undefined), so the verdicts stay those of JSON.parse. The piece
 * it reads from must be valid UTF-8 (as decoding would leave it).
 */
export interface ByteRow {
  seq: number;
  prevHash: string;
  hash: string;
  sameOrganisation: boolean;
  /** SHA-256 (hex) of prev_hash, "\n" and the canonical content. */
  computed: string;
}

const b = (text: string) => Buffer.from(text, 'latin1');
const QUOTE = 0x22;
/** `,"prev_hash":"<64>","hash":"<64>"}`: the fixed end of every line. */
const TAIL = 14 + 64 + 10 + 64 + 2;
const ID = b('{"id":"');
const KEYS = {
  chain: b(',"chain":'), seq: b(',"seq":'), occurredAt: b(',"occurred_at":'), organisationId: b(',"organisation_id":'), actorType: b(',"actor_type":'),
  actorId: b(',"actor_id":'), actorLabel: b(',"actor_label":'), action: b(',"action":'), targetType: b(',"target_type":'), targetId: b(',"target_id":'),
  ip: b(',"ip":'), userAgent: b(',"user_agent":'), details: b(',"details":'), prevHash: b(',"prev_hash":"'), hash: b('","hash":"'),
};
/** The hash input's keys, in canonical (sorted) order, each before its value. */
const C = {
  action: b('{"action":'), actorId: b(',"actor_id":'), actorLabel: b(',"actor_label":'), actorType: b(',"actor_type":'), chain: b(',"chain":'),
  details: b(',"details":'), ip: b(',"ip":'), occurredAt: b(',"occurred_at":'), organisationId: b(',"organisation_id":'), seq: b(',"seq":'),
  targetId: b(',"target_id":'), targetType: b(',"target_type":'), userAgent: b(',"user_agent":'), end: b('}'),
};
const NULL = b('null');
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdef') HEX[c.charCodeAt(0)] = 1;

const sha256Hex: (data: Buffer) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (data) => (crypto as unknown as { hash(algorithm: string, data: Buffer, encoding: string): string }).hash('sha256', data, 'hex')
    : (data) => crypto.createHash('sha256').update(data).digest('hex');

function startsWith(buf: Buffer, at: number, part: Buffer): boolean {
  if (at + part.length > buf.length) return false;
  for (let i = 0; i < part.length; i++) if (buf[at + i] !== part[i]) return false;
  return true;
}

function isHex64(buf: Buffer, at: number): boolean {
  for (let i = 0; i < 64; i++) if (!HEX[buf[at + i]!]) return false;
  return true;
}

export class ByteRowReader {
  private content = Buffer.allocUnsafe(4096);
  private readonly organisationJson: Buffer;
  /** Where each value's JSON text is in the line: start and end. */
  private readonly at = new Int32Array(26);

  constructor(organisationJson: string, private readonly canonical: (value: unknown) => string) {
    this.organisationJson = Buffer.from(organisationJson);
  }

  /** The row on line `buf[start, end)`, or undefined when the string reading must look at it. `lastHash`: the previous row's hash. */
  read(buf: Buffer, start: number, end: number, lastHash: string): ByteRow | undefined {
    if (end - start < TAIL + 20 || !startsWith(buf, start, ID)) return undefined;
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c < 0x20 || c === 0x5c) return undefined;
    }
    const at = this.at;
    let p = buf.indexOf(QUOTE, start + 7);
    if (p < 0 || p >= end) return undefined;
    p++;
    // chain, then seq, then the string values, each (start, end) into `at`.
    p = this.value(buf, p, end, KEYS.chain, false, 0);
    if (p < 0 || !startsWith(buf, p, KEYS.seq)) return undefined;
    const seqStart = p + KEYS.seq.length;
    let seqEnd = seqStart;
    while (seqEnd < end && buf[seqEnd] !== 0x2c) seqEnd++;
    const digits = seqEnd - seqStart;
    if (seqEnd >= end || digits < 1 || digits > 16 || (digits > 1 && buf[seqStart] === 0x30)) return undefined;
    let seq = 0;
    for (let i = seqStart; i < seqEnd; i++) {
      const d = buf[i]! - 0x30;
      if (d < 0 || d > 9) return undefined;
      seq = seq * 10 + d;
    }
    if (!Number.isSafeInteger(seq)) return undefined;
    p = seqEnd;
    p = this.value(buf, p, end, KEYS.occurredAt, false, 2);
    if (p >= 0) p = this.value(buf, p, end, KEYS.organisationId, true, 4);
    if (p >= 0) p = this.value(buf, p, end, KEYS.actorType, false, 6);
    if (p >= 0) p = this.value(buf, p, end, KEYS.actorId, true, 8);
    if (p >= 0) p = this.value(buf, p, end, KEYS.actorLabel, true, 10);
    if (p >= 0) p = this.value(buf, p, end, KEYS.action, false, 12);
    if (p >= 0) p = this.value(buf, p, end, KEYS.targetType, true, 14);
    if (p >= 0) p = this.value(buf, p, end, KEYS.targetId, true, 16);
    if (p >= 0) p = this.value(buf, p, end, KEYS.ip, true, 18);
    if (p >= 0) p = this.value(buf, p, end, KEYS.userAgent, true, 20);
    if (p < 0 || !startsWith(buf, p, KEYS.details)) return undefined;
    const tail = end - TAIL;
    if (tail <= p + 11 || !startsWith(buf, tail, KEYS.prevHash) || !startsWith(buf, tail + 78, KEYS.hash) || buf[end - 2] !== QUOTE || buf[end - 1] !== 0x7d) return undefined;
    const prevHash = buf.toString('latin1', tail + 14, tail + 78);
    const hash = buf.toString('latin1', tail + 88, tail + 152);
    // prev_hash: 64 hex digits unless it is the previous row's hash (checked then); hash: below.
    if (prevHash !== lastHash && prevHash !== GENESIS_HASH && !isHex64(buf, tail + 14)) return undefined;
    const detailsStart = p + 11;

    // The hash input: prev_hash, "\n", the content with its keys sorted.
    const room = 64 + 1 + (end - start) * 2 + 256;
    if (this.content.length < room) this.content = Buffer.allocUnsafe(room * 2);
    const out = this.content;
    let o = copy(buf, tail + 14, tail + 78, out, 0);
    out[o++] = 0x0a;
    o = this.put(C.action, buf, 12, out, o);
    o = this.put(C.actorId, buf, 8, out, o);
    o = this.put(C.actorLabel, buf, 10, out, o);
    o = this.put(C.actorType, buf, 6, out, o);
    o = this.put(C.chain, buf, 0, out, o);
    o = copy(C.details, 0, C.details.length, out, o);
    if (tail - detailsStart === 2 && buf[detailsStart] === 0x7b && buf[detailsStart + 1] === 0x7d) {
      out[o++] = 0x7b;
      out[o++] = 0x7d;
    } else if (canonicalAsIs(buf, detailsStart, tail)) {
      o = copy(buf, detailsStart, tail, out, o);
    } else {
      let parsed: unknown;
      try {
        parsed = JSON.parse(buf.toString('utf8', detailsStart, tail));
      } catch {
        return undefined;
      }
      const text = this.canonical(parsed ?? {});
      if (o + Buffer.byteLength(text) + (end - start) + 64 > out.length) return undefined;
      o += out.write(text, o);
    }
    o = this.put(C.ip, buf, 18, out, o);
    o = this.put(C.occurredAt, buf, 2, out, o);
    o = this.put(C.organisationId, buf, 4, out, o);
    o = copy(C.seq, 0, C.seq.length, out, o);
    o = copy(buf, seqStart, seqEnd, out, o);
    o = this.put(C.targetId, buf, 16, out, o);
    o = this.put(C.targetType, buf, 14, out, o);
    o = this.put(C.userAgent, buf, 20, out, o);
    o = copy(C.end, 0, 1, out, o);
    const computed = sha256Hex(out.subarray(0, o));
    // A computed hash is 64 hex digits: a hash equal to it is one; otherwise look.
    if (computed !== hash && !isHex64(buf, tail + 88)) return undefined;
    const same = (k: number) => at[k + 1]! - at[k]! === this.organisationJson.length && this.organisationJson.equals(buf.subarray(at[k]!, at[k + 1]!));
    return { seq, prevHash, hash, sameOrganisation: same(0) && same(4), computed };
  }

  /** The JSON text after `key` at `p` (a string, up to the next quote: no escapes in these lines; or null), noted at `at[slot]`; the offset after it, or -1. */
  private value(buf: Buffer, p: number, end: number, key: Buffer, nullable: boolean, slot: number): number {
    if (!startsWith(buf, p, key)) return -1;
    const start = p + key.length;
    if (buf[start] === QUOTE) {
      const close = buf.indexOf(QUOTE, start + 1);
      if (close < 0 || close >= end) return -1;
      this.at[slot] = start;
      this.at[slot + 1] = close + 1;
      return close + 1;
    }
    if (nullable && startsWith(buf, start, NULL)) {
      this.at[slot] = start;
      this.at[slot + 1] = start + 4;
      return start + 4;
    }
    return -1;
  }

  private put(key: Buffer, buf: Buffer, slot: number, out: Buffer, o: number): number {
    o = copy(key, 0, key.length, out, o);
    return copy(buf, this.at[slot]!, this.at[slot + 1]!, out, o);
  }
}

function copy(src: Uint8Array, from: number, to: number, out: Uint8Array, o: number): number {
  if (to - from > 48) {
    out.set(src.subarray(from, to), o);
    return o + to - from;
  }
  for (let i = from; i < to; i++) out[o++] = src[i]!;
  return o;
}

/**
 * Whether JSON text `buf[start, end)` (no whitespace-free guarantee, no
 * backslash or control character: the caller checked) is already what
 * canonical(JSON.parse(text) ?? {}) writes: objects with ASCII keys in
 * strictly increasing order, arrays, strings, integers JavaScript writes
 * the same (at most 15 digits, no leading zero, no -0), true, false, null
 * (not at the top), nothing else, not deeper than 32.
 */
export function canonicalAsIs(buf: Buffer, start: number, end: number): boolean {
  if (buf[start] === 0x6e) return false; // a top-level null becomes {}
  const after = canonicalValue(buf, start, end, 0);
  return after === end;
}

/** The offset after the canonical value at `p`, or -1. */
function canonicalValue(buf: Buffer, p: number, end: number, depth: number): number {
  if (p >= end || depth > 32) return -1;
  const c = buf[p]!;
  if (c === QUOTE) {
    const close = buf.indexOf(QUOTE, p + 1);
    return close < 0 || close >= end ? -1 : close + 1;
  }
  if (c === 0x7b) {
    p++;
    if (buf[p] === 0x7d) return p + 1;
    let previousKey = -1;
    let previousKeyEnd = -1;
    for (;;) {
      if (buf[p] !== QUOTE) return -1;
      const keyStart = p + 1;
      const keyEnd = buf.indexOf(QUOTE, keyStart);
      if (keyEnd < 0 || keyEnd >= end) return -1;
      for (let i = keyStart; i < keyEnd; i++) if (buf[i]! >= 0x80) return -1;
      if (previousKey >= 0 && compareBytes(buf, previousKey, previousKeyEnd, keyStart, keyEnd) >= 0) return -1;
      previousKey = keyStart;
      previousKeyEnd = keyEnd;
      if (buf[keyEnd + 1] !== 0x3a) return -1;
      p = canonicalValue(buf, keyEnd + 2, end, depth + 1);
      if (p < 0) return -1;
      if (buf[p] === 0x7d) return p + 1;
      if (buf[p] !== 0x2c) return -1;
      p++;
    }
  }
  if (c === 0x5b) {
    p++;
    if (buf[p] === 0x5d) return p + 1;
    for (;;) {
      p = canonicalValue(buf, p, end, depth + 1);
      if (p < 0) return -1;
      if (buf[p] === 0x5d) return p + 1;
      if (buf[p] !== 0x2c) return -1;
      p++;
    }
  }
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
    const negative = c === 0x2d;
    let i = negative ? p + 1 : p;
    const first = i;
    while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39) i++;
    const digits = i - first;
    if (digits < 1 || digits > 15 || (digits > 1 && buf[first] === 0x30) || (negative && digits === 1 && buf[first] === 0x30)) return -1;
    const next = buf[i];
    if (next === 0x2e || next === 0x65 || next === 0x45) return -1;
    return i;
  }
  for (const word of WORDS) if (startsWith(buf, p, word) && p + word.length <= end) return p + word.length;
  return -1;
}

const WORDS = [b('true'), b('false'), b('null')];

function compareBytes(buf: Buffer, a: number, aEnd: number, c: number, cEnd: number): number {
  const n = Math.min(aEnd - a, cEnd - c);
  for (let i = 0; i < n; i++) {
    const d = buf[a + i]! - buf[c + i]!;
    if (d !== 0) return d;
  }
  return aEnd - a - (cEnd - c);
}
