import type { Entry } from 'ldapts';

/**
 * Reading values of LDAP entries: attributes by name whatever their case,
 * Active Directory's binary objectGUID as a canonical GUID string and back,
 * and a comparison key for DNs.
 */

type Value = Entry[string];

/** The entry's values of an attribute (names compare case-insensitively); strings, or Buffers when asked for as binary. */
export function valuesOf(entry: Entry, attribute: string): (string | Buffer)[] {
  const wanted = attribute.toLowerCase();
  for (const [key, value] of Object.entries(entry) as [string, Value][]) {
    if (key === 'dn' || key.toLowerCase() !== wanted) continue;
    return Array.isArray(value) ? value : [value];
  }
  return [];
}

/** The first non-empty string value, or null. */
export function firstString(entry: Entry, attribute: string): string | null {
  for (const value of valuesOf(entry, attribute)) {
    const text = Buffer.isBuffer(value) ? value.toString('utf8') : value;
    if (text.trim() !== '') return text.trim();
  }
  return null;
}

export function isObjectGuid(attribute: string): boolean {
  return attribute.toLowerCase() === 'objectguid';
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isGuidString = (value: string): boolean => GUID.test(value);

/**
 * objectGUID's 16 bytes as Windows writes the GUID: the first three fields
 * little-endian, the last two as they are (`{00112233-...}` is stored as 33 22 11 00 ...).
 */
export function guidToString(bytes: Buffer): string | null {
  if (bytes.length !== 16) return null;
  const hex = (from: number, to: number, reverse: boolean) => {
    const part = Buffer.from(bytes.subarray(from, to));
    return (reverse ? part.reverse() : part).toString('hex');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}

/** The inverse of `guidToString`; null for anything but a GUID string. */
export function guidToBytes(guid: string): Buffer | null {
  if (!isGuidString(guid)) return null;
  const h = guid.replace(/-/g, '');
  const le = (from: number, to: number) => Buffer.from(h.slice(from, to), 'hex').reverse();
  return Buffer.concat([le(0, 8), le(8, 12), le(12, 16), Buffer.from(h.slice(16), 'hex')]);
}

/** The stable id of an entry: the subject attribute (objectGUID as GUID, UUIDs lower-cased), or the DN without one. */
export function subjectOf(entry: Entry, subjectAttribute: string): string {
  const values = valuesOf(entry, subjectAttribute);
  const first = values[0];
  if (first !== undefined) {
    if (isObjectGuid(subjectAttribute)) {
      const guid = Buffer.isBuffer(first) ? guidToString(first) : null;
      if (guid) return guid;
    } else {
      const text = (Buffer.isBuffer(first) ? first.toString('utf8') : first).trim();
      if (text !== '') return isGuidString(text) ? text.toLowerCase() : text;
    }
  }
  return entry.dn;
}

/** A subject that is a DN (the fallback for entries without the subject attribute). */
export const looksLikeDn = (subject: string): boolean => /^[A-Za-z0-9.-]+\s*=/.test(subject);

function unescapeValue(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i + 1 < value.length) {
      const pair = value.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 2;
        continue;
      }
      i += 1;
      bytes.push(...Buffer.from(value[i]!, 'utf8'));
      continue;
    }
    bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Splits on `sep` outside of backslash escapes and double quotes. */
function splitUnescaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      current += c + text[i + 1];
      i += 1;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === sep && !quoted) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

/**
 * A key to compare DNs by: attribute types and values lower-cased, spaces
 * around separators dropped, escapes (`\,` or `\2C`) and quotes resolved,
 * multi-valued RDNs sorted. `CN=Clerks, OU=Groups,DC=example,DC=org` and
 * `cn=clerks,ou=groups,dc=example,dc=org` give the same key. For matching
 * a directory's group DNs with the DNs an admin typed into the role mapping.
 */
export function dnKey(dn: string): string {
  return splitUnescaped(dn.trim(), ',')
    .map((rdn) =>
      splitUnescaped(rdn, '+')
        .map((ava) => {
          const eq = ava.indexOf('=');
          if (eq < 0) return ava.trim().toLowerCase();
          const type = ava.slice(0, eq).trim().toLowerCase();
          let value = ava.slice(eq + 1).trim();
          if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
          const plain = unescapeValue(value).toLowerCase();
          return `${type}=${plain.replace(/[\\,+"<>;=]/g, (m) => `\\${m}`)}`;
        })
        .sort()
        .join('+'),
    )
    .join(',');
}
