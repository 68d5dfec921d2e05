import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { countSealedUnder } from './store';

/**
 * Crypto-shredding of customers' personal data in the audit trail. A
 * customer's IP address and user agent are stored in `audit_events` only as
 * `enc1:<key id>:<base64url(iv | ciphertext | tag)>`, AES-256-GCM under a key
 * in `audit_personal_keys`: one key per call, or per organisation and
 * calendar month (UTC) for customer events without a call. The hash chain
 * covers the stored text, so destroying a key (retention, an erasure
 * request) makes the values unreadable and leaves the chain intact.
 *
 * Staff IP addresses (sign-ins, their requests) are the staff's own
 * security log and stay in plain text.
 */
export const SEALED_PREFIX = 'enc1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SEALED = /^enc1:([0-9a-f-]{36}):([A-Za-z0-9_-]+)$/;

/** Whose personal data an event's IP and user agent are: a customer's, in a call or not. */
export interface CustomerScope {
  callId: string | null;
}

export type PersonalField = 'ip' | 'user_agent';

/** A stored value as a reader sees it: plain (staff), revealed (key still there) or erased (key destroyed). */
export type Revealed = { state: 'plain' | 'revealed'; value: string } | { state: 'erased'; value: null };

export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(SEALED_PREFIX);
}

function period(at: Date): string {
  return at.toISOString().slice(0, 7);
}

function seal(keyId: string, key: Buffer, field: PersonalField, plaintext: string): string {
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  // The field and key id are bound in: a value cannot be moved to another field or key unnoticed.
  cipher.setAAD(Buffer.from(`${field}:${keyId}`, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${SEALED_PREFIX}${keyId}:${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`;
}

function open(keyId: string, key: Buffer, field: PersonalField, data: string): string | null {
  const raw = Buffer.from(data, 'base64url');
  if (raw.length < IV_BYTES + TAG_BYTES) return null;
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(`${field}:${keyId}`, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}

/**
 * The live key of a scope, made when there is none, with its last use set to
 * `at`. Call inside the audit writer's transaction (which holds the
 * organisation's chain lock, so two writers never make two keys of a scope).
 */
async function liveKey(trx: Knex.Transaction, organisationId: string, scope: CustomerScope, at: Date): Promise<{ id: string; key: Buffer }> {
  const where = scope.callId ? { organisation_id: organisationId, call_id: scope.callId } : { organisation_id: organisationId, period: period(at) };
  // Locked, so that retention or an erasure destroying this key waits for this event (and then, by
  // its newer last use, retention leaves it): no event is sealed under a key destroyed at the same moment.
  const found = await trx('audit_personal_keys').where(where).whereNull('destroyed_at').forUpdate().first('id', 'key');
  if (found) {
    await trx('audit_personal_keys').where({ id: found.id }).whereNull('destroyed_at').where('last_used_at', '<', at).update({ last_used_at: at });
    // A key not destroyed still has its bytes.
    return { id: found.id, key: found.key! };
  }
  const key = crypto.randomBytes(32);
  const [row] = await trx('audit_personal_keys').insert({ ...where, key, created_at: at, last_used_at: at }).returning('id');
  return { id: row!.id, key };
}

/** A customer's IP and user agent as the audit trail stores them: encrypted under the scope's key (null stays null). */
export async function sealCustomerMeta(
  trx: Knex.Transaction,
  organisationId: string,
  scope: CustomerScope,
  at: Date,
  values: { ip: string | null; user_agent: string | null },
): Promise<{ ip: string | null; user_agent: string | null }> {
  if (values.ip === null && values.user_agent === null) return values;
  const { id, key } = await liveKey(trx, organisationId, scope, at);
  return {
    ip: values.ip === null ? null : seal(id, key, 'ip', values.ip),
    user_agent: values.user_agent === null ? null : seal(id, key, 'user_agent', values.user_agent),
  };
}

/**
 * Reads stored IP and user-agent values: plain ones as they are, sealed
 * ones decrypted while their key exists and "erased" after. One query for
 * all the keys the values name.
 */
export async function revealAll(knex: Knex, items: { field: PersonalField; value: string | null }[]): Promise<(Revealed | null)[]> {
  const ids = new Set<string>();
  for (const { value } of items) {
    const m = value ? SEALED.exec(value) : null;
    if (m) ids.add(m[1]!);
  }
  const keys = new Map<string, Buffer | null>();
  if (ids.size) {
    for (const row of await knex('audit_personal_keys').whereIn('id', [...ids]).select('id', 'key')) keys.set(row.id, row.key ?? null);
  }
  return items.map(({ field, value }) => {
    if (value === null) return null;
    if (!value.startsWith(SEALED_PREFIX)) return { state: 'plain', value };
    const m = SEALED.exec(value);
    const key = m ? keys.get(m[1]!) : undefined;
    const plain = m && key ? open(m[1]!, key, field, m[2]!) : null;
    return plain === null ? { state: 'erased', value: null } : { state: 'revealed', value: plain };
  });
}

/** Rows with `ip` and `user_agent` as stored, revealed in place; `erased` names the values that were there but are unreadable now. */
export async function revealRows<T extends { ip: string | null; user_agent: string | null }>(knex: Knex, rows: T[]): Promise<(T & { erased: PersonalField[] })[]> {
  const revealed = await revealAll(knex, rows.flatMap((r) => [{ field: 'ip' as const, value: r.ip }, { field: 'user_agent' as const, value: r.user_agent }]));
  return rows.map((row, i) => {
    const ip = revealed[2 * i];
    const ua = revealed[2 * i + 1];
    const erased: PersonalField[] = [];
    if (ip?.state === 'erased') erased.push('ip');
    if (ua?.state === 'erased') erased.push('user_agent');
    return { ...row, ip: ip?.value ?? null, user_agent: ua?.value ?? null, erased };
  });
}

/**
 * Retention: destroys the organisation's live keys last used before
 * `cutoff`, except the keys of calls in `keepCalls` (legal holds). Answers
 * how many were destroyed.
 */
export async function destroyKeysUsedBefore(knex: Knex, organisationId: string, cutoff: Date, keepCalls: readonly string[], now: Date): Promise<number> {
  const query = knex('audit_personal_keys').where({ organisation_id: organisationId }).whereNull('destroyed_at').where('last_used_at', '<', cutoff);
  if (keepCalls.length) query.where((w) => w.whereNull('call_id').orWhereNotIn('call_id', keepCalls));
  return query.update({ key: null, destroyed_at: now, destroyed_by: 'retention' });
}

/** The organisation's live keys that retention would destroy, for counting what a hold keeps. */
export async function countKeysUsedBefore(knex: Knex, organisationId: string, cutoff: Date, onlyCalls?: readonly string[]): Promise<number> {
  const query = knex('audit_personal_keys').where({ organisation_id: organisationId }).whereNull('destroyed_at').where('last_used_at', '<', cutoff);
  if (onlyCalls) {
    if (!onlyCalls.length) return 0;
    query.whereIn('call_id', onlyCalls);
  }
  const [row] = await query.count({ n: '*' });
  return Number(row?.n ?? 0);
}

/**
 * Erasure: destroys every key of one call (inside the erasure's
 * transaction). Answers the keys destroyed and how many audit events held
 * a value under them.
 */
export async function destroyCallKeys(trx: Knex.Transaction, organisationId: string, callId: string): Promise<{ keys: number; events: number }> {
  const ids = (await trx('audit_personal_keys').where({ organisation_id: organisationId, call_id: callId }).select('id')).map((r) => r.id);
  if (!ids.length) return { keys: 0, events: 0 };
  const keys = await trx('audit_personal_keys').whereIn('id', ids).whereNull('destroyed_at').update({ key: null, destroyed_at: trx.fn.now(), destroyed_by: 'erasure' });
  return { keys, events: await countSealedUnder(trx, organisationId, SEALED_PREFIX, ids) };
}
