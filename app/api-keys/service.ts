import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import { commonPasswords } from '../security/common-passwords';
import type { AuditAction } from '../audit/actions';
import { OrganisationScopedService } from '../access/scoped-service';
import { sha256 } from '../security/tokens';
import { NotFoundError, ValidationError } from '../core/errors';
import type { ApiKeyRow } from '../db/tables';

/** What an API key may be allowed to do. */
export const apiScopes = ['calls:read', 'calls:write', 'recordings:read', 'insights:read'] as const;
export type ApiScope = (typeof apiScopes)[number];

/** The audit actions of this feature. */
export type ApiAuditAction = Extract<AuditAction, 'api_key.created' | 'api_key.revoked' | 'api.request' | 'api.refused'>;
export type ApiRefusal = 'missing' | 'malformed' | 'unknown' | 'revoked' | 'scope';

export const KEY_PREFIX_LENGTH = 12;
export const PROVIDED_KEY_MIN = 32;
export const PROVIDED_KEY_MAX = 256;
/** Estimated bits of the part of a provided key that is never shown (after the prefix). */
export const PROVIDED_KEY_MIN_BITS = 128;

/** Generated keys: `vck_` and 256 random bits, base64url. */
const GENERATED_PREFIX = 'vck_';
/** Anything a client could present: printable ASCII without spaces. */
const KEY_SHAPE = /^[\x21-\x7e]+$/;

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: ApiScope[];
  origin: 'generated' | 'provided';
  createdAt: Date;
  createdBy: string | null;
  lastUsedAt: Date | null;
  lastUsedIp: string | null;
  revokedAt: Date | null;
}

/** The key an API request authenticated with. */
export interface AuthenticatedKey {
  id: string;
  organisationId: string;
  organisationSlug: string;
  name: string;
  scopes: ApiScope[];
  prefix: string;
}

export type KeyLookup =
  | { status: 'ok'; key: AuthenticatedKey }
  | { status: 'revoked'; key: AuthenticatedKey }
  | { status: 'malformed' | 'unknown' };

const scopeList = z.preprocess(
  (value) => (value === undefined || value === '' ? [] : Array.isArray(value) ? value : [value]),
  z.array(z.enum(apiScopes, 'invalid_scope')).min(1, 'scopes_required'),
);

export const createKeySchema = z.object({
  name: z.string('required').trim().min(1, 'required').max(100, 'too_long'),
  scopes: scopeList.transform((scopes) => apiScopes.filter((s) => scopes.includes(s))),
  own_key: z.string().trim().optional().transform((value) => (value ? value : undefined)),
});

export type KeyProblem = 'key_too_short' | 'key_too_long' | 'key_invalid_characters' | 'key_too_weak';

/**
 * Whether an organisation's own key is strong enough: 32 to 256 printable
 * ASCII characters without spaces, and at least 128 bits estimated in the
 * part after the shown prefix. The estimate counts, per character, log2 of
 * the smaller of the character classes' size (lower, upper, digits,
 * symbols) and the number of distinct characters; characters that repeat
 * or continue a sequence from the one before count for nothing, and so do
 * common passwords inside the key. A run of three or more characters that
 * already occurred earlier in the key counts as one character, however long
 * (as a compressor would store it), so `ac` × 122 after a random prefix is
 * refused. A key made of a repeated unit is refused.
 */
export function checkProvidedKey(key: string): KeyProblem | null {
  if (key.length < PROVIDED_KEY_MIN) return 'key_too_short';
  if (key.length > PROVIDED_KEY_MAX) return 'key_too_long';
  if (!KEY_SHAPE.test(key)) return 'key_invalid_characters';
  const lower = key.toLowerCase();
  if (commonPasswords.has(lower) || isRepetition(lower)) return 'key_too_weak';
  return estimateBits(key.slice(KEY_PREFIX_LENGTH)) >= PROVIDED_KEY_MIN_BITS ? null : 'key_too_weak';
}

export function estimateBits(secret: string): number {
  let rest = secret;
  const lower = rest.toLowerCase();
  for (const common of commonPasswords) {
    let at = lower.indexOf(common);
    while (at !== -1) {
      rest = rest.slice(0, at) + ' '.repeat(common.length) + rest.slice(at + common.length);
      at = lower.indexOf(common, at + common.length);
    }
  }
  const pool =
    (/[a-z]/.test(rest) ? 26 : 0) + (/[A-Z]/.test(rest) ? 26 : 0) + (/[0-9]/.test(rest) ? 10 : 0) + (/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(rest) ? 32 : 0);
  const distinct = new Set(rest.replace(/ /g, '')).size;
  const perChar = Math.log2(Math.max(1, Math.min(pool, distinct)));
  let counted = 0;
  for (let i = 0; i < rest.length; ) {
    const c = rest.charCodeAt(i);
    if (c === 0x20) {
      i++;
      continue;
    }
    const repeated = repeatedRunAt(rest, i);
    if (repeated >= MIN_REPEATED_RUN) {
      counted++;
      i += repeated;
      continue;
    }
    const before = i > 0 ? rest.charCodeAt(i - 1) : -10;
    if (Math.abs(c - before) > 1) counted++;
    i++;
  }
  return counted * perChar;
}

/** Runs this long that occurred before in the key count as one character. */
const MIN_REPEATED_RUN = 3;

/**
 * The length of the longest run starting at `at` that also starts at an
 * earlier position (the two may overlap, as in LZ77: "acacac" at 2 repeats
 * the run at 0); blanked characters (spaces) end a run.
 */
function repeatedRunAt(text: string, at: number): number {
  let longest = 0;
  for (let from = 0; from < at; from++) {
    let length = 0;
    while (at + length < text.length && text[at + length] !== ' ' && text[from + length] === text[at + length]) length++;
    if (length > longest) longest = length;
  }
  return longest;
}

/** The whole value is one unit of up to half its length repeated ("abcabcabc..."). */
function isRepetition(value: string): boolean {
  for (let unit = 1; unit <= value.length / 2; unit++) {
    if (value.length % unit !== 0) continue;
    if (value.slice(0, unit).repeat(value.length / unit) === value) return true;
  }
  return false;
}

export function generateKey(): string {
  return `${GENERATED_PREFIX}${crypto.randomBytes(32).toString('base64url')}`;
}

/**
 * An organisation's API keys, for its admins. Built per request with the
 * caller: every query is scoped to the caller's organisation, and every
 * change is audited in the same transaction. Keys are returned once, at
 * creation; afterwards only their prefix is known.
 */
export class ApiKeyService extends OrganisationScopedService {

  private scoped(trx: Knex | Knex.Transaction = this.knex) {
    return trx('api_keys').where('api_keys.organisation_id', this.organisationId);
  }

  async list(): Promise<ApiKey[]> {
    const rows = await this.scoped()
      .orderByRaw('revoked_at IS NOT NULL, lower(name), created_at')
      .select('id', 'name', 'prefix', 'scopes', 'origin', 'created_at', 'created_by', 'last_used_at', 'last_used_ip', 'revoked_at');
    return rows.map(toApiKey);
  }

  /** Creates a key (the appliance's, or the organisation's own); the key is in the answer and nowhere else. */
  async create(input: z.infer<typeof createKeySchema>): Promise<{ apiKey: ApiKey; key: string }> {
    if (input.own_key !== undefined) {
      const problem = checkProvidedKey(input.own_key);
      if (problem) throw new ValidationError([{ field: 'own_key', code: problem }]);
    }
    for (let attempt = 0; ; attempt++) {
      const key = input.own_key ?? generateKey();
      try {
        return await this.insert(input, key);
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        // A generated key's prefix carries 48 random bits; a clash is rare enough to just draw again.
        if (input.own_key !== undefined || attempt >= 3) throw new ValidationError([{ field: 'own_key', code: 'key_not_accepted' }]);
      }
    }
  }

  private insert(input: z.infer<typeof createKeySchema>, key: string): Promise<{ apiKey: ApiKey; key: string }> {
    return this.knex.transaction(async (trx) => {
      const [row] = await trx('api_keys')
        .insert({
          organisation_id: this.organisationId,
          name: input.name,
          prefix: key.slice(0, KEY_PREFIX_LENGTH),
          key_hash: sha256(key),
          scopes: input.scopes,
          origin: input.own_key === undefined ? 'generated' : 'provided',
          created_by: this.caller.user.id,
        })
        .returning('*');
      const apiKey = toApiKey(row!);
      await this.record(trx, 'api_key.created', apiKey.id, { name: apiKey.name, prefix: apiKey.prefix, scopes: apiKey.scopes, origin: apiKey.origin });
      return { apiKey, key };
    });
  }

  /**
   * Revokes a key of the caller's organisation; revoking it again changes
   * nothing. An id from another organisation answers like an unknown one,
   * and the attempt is audited.
   */
  async revoke(id: string): Promise<ApiKey> {
    if (!z.uuid().safeParse(id).success) throw new NotFoundError();
    if (!(await this.scoped().where({ id }).first('id'))) await this.refuseForeign('api_keys', 'api_key', id);
    return this.knex.transaction(async (trx) => {
      const row = await this.scoped(trx).where({ id }).forUpdate().first();
      if (!row) throw new NotFoundError();
      if (row.revoked_at) return toApiKey(row);
      const [updated] = await this.scoped(trx).where({ id }).update({ revoked_at: trx.fn.now(), revoked_by: this.caller.user.id }).returning('*');
      await this.record(trx, 'api_key.revoked', id, { name: row.name, prefix: row.prefix });
      return toApiKey(updated!);
    });
  }

  private record(trx: Knex.Transaction, action: 'api_key.created' | 'api_key.revoked', id: string, details: Record<string, unknown>) {
    return this.audit.record({ ...this.base(), action, target: { type: 'api_key', id }, details }, trx);
  }

  /**
   * Looks a presented key up by its SHA-256 (so no comparison of secrets
   * happens here) and, when it is valid, notes when and from where it was
   * last used. Keys of a closed organisation count as revoked.
   */
  static async lookup(knex: Knex, presented: unknown, ip: string | null): Promise<KeyLookup> {
    if (typeof presented !== 'string' || presented.length < PROVIDED_KEY_MIN || presented.length > PROVIDED_KEY_MAX || !KEY_SHAPE.test(presented)) {
      return { status: 'malformed' };
    }
    const row = await knex('api_keys')
      .join('organisations', 'organisations.id', 'api_keys.organisation_id')
      .where('api_keys.key_hash', sha256(presented))
      .first('api_keys.id', 'api_keys.organisation_id', 'api_keys.name', 'api_keys.scopes', 'api_keys.prefix', 'api_keys.revoked_at', 'organisations.slug', 'organisations.closed_at');
    if (!row) return { status: 'unknown' };
    const key: AuthenticatedKey = { id: row.id, organisationId: row.organisation_id, organisationSlug: row.slug, name: row.name, scopes: row.scopes, prefix: row.prefix };
    if (row.revoked_at || row.closed_at) return { status: 'revoked', key };
    await knex('api_keys').where({ id: row.id }).update({ last_used_at: knex.fn.now(), last_used_ip: ip });
    return { status: 'ok', key };
  }
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown })?.code === '23505';
}

/** The columns a key is listed with (neither its hash nor who revoked it). */
type ListedKeyRow = Pick<ApiKeyRow, 'id' | 'name' | 'prefix' | 'scopes' | 'origin' | 'created_at' | 'created_by' | 'last_used_at' | 'last_used_ip' | 'revoked_at'>;

function toApiKey(row: ListedKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes as ApiScope[],
    origin: row.origin,
    createdAt: row.created_at,
    createdBy: row.created_by ?? null,
    lastUsedAt: row.last_used_at ?? null,
    lastUsedIp: row.last_used_ip ?? null,
    revokedAt: row.revoked_at ?? null,
  };
}

/** Deletes the organisation's keys (purging it); returns how many. */
export async function deleteOrganisationKeys(trx: Knex.Transaction, organisationId: string): Promise<number> {
  return trx('api_keys').where({ organisation_id: organisationId }).delete();
}
