import type { Knex } from 'knex';
import { type AvailabilitySpanRow, type UserRow } from '../db/tables';

/**
 * The owner of `users`: every query on the table is built here; sign-in,
 * accounts, staff management, setup, the CLI, the queue and closure call
 * these functions, passing their transaction. Rules and audit stay with
 * the callers. It also owns `availability_spans`, the clerks' available
 * time until Insights counts it.
 */

const users = (db: Knex) => db('users');

/** The key of an account's sign-in throttle, computed in SQL from the e-mail (auth/throttle.ts `accountKey`). */
const accountThrottleKey = (db: Knex) => db.raw(`'account:' || encode(sha256(convert_to(lower(users.email), 'UTF8')), 'hex')`);

export type UserWithLock = UserRow & { locked_until: Date | null };

/** The user a session stands for, with what the session check needs of the organisation. */
export async function sessionUser(db: Knex, id: string) {
  return users(db)
    .join('organisations', 'organisations.id', 'users.organisation_id')
    .where('users.id', id)
    .first(
      'users.id', 'users.organisation_id', 'users.name', 'users.email', 'users.role', 'users.status', 'users.language',
      'users.sessions_valid_after', 'organisations.slug', 'organisations.name as organisation_name',
      'organisations.closed_at', 'organisations.updated_at as organisation_updated_at',
    ) as Promise<(Pick<UserRow, 'id' | 'organisation_id' | 'name' | 'email' | 'role' | 'status' | 'language' | 'sessions_valid_after'> & { slug: string; organisation_name: string; closed_at: Date | null; organisation_updated_at: Date }) | undefined>;
}

/** The account an e-mail signs in to, with its organisation's closure. */
export async function signInAccount(db: Knex, email: string) {
  return users(db)
    .join('organisations', 'organisations.id', 'users.organisation_id')
    .whereRaw('lower(users.email) = ?', [email])
    .first('users.id', 'users.organisation_id', 'users.email', 'users.status', 'users.role', 'users.password_hash', 'users.break_glass', 'users.sso_provider_id', 'organisations.closed_at', 'organisations.password_sign_in') as Promise<(Pick<UserRow, 'id' | 'organisation_id' | 'email' | 'status' | 'role' | 'password_hash' | 'break_glass' | 'sso_provider_id'> & { closed_at: Date | null; password_sign_in: boolean }) | undefined>;
}

export async function recordLogin(trx: Knex.Transaction, id: string, ip: string | null): Promise<void> {
  await users(trx).where({ id }).update({ last_login_at: trx.fn.now(), last_login_ip: ip });
}

/** A user's name and language (the clerk's side of the recording consent ledger). */
export async function userNameAndLanguage(db: Knex, id: string): Promise<Pick<UserRow, 'id' | 'name' | 'language'> | undefined> {
  return users(db).where({ id }).first('id', 'name', 'language');
}

/** Whether an account with the e-mail (any case) exists. */
export async function emailTaken(db: Knex, email: string): Promise<boolean> {
  return Boolean(await users(db).whereRaw('lower(email) = ?', [email]).first('id'));
}

export async function userByEmail(db: Knex, email: string): Promise<Pick<UserRow, 'id' | 'organisation_id' | 'status'> | undefined> {
  return users(db).whereRaw('lower(email) = ?', [email]).first('id', 'organisation_id', 'status');
}

type NewUser = Partial<Omit<UserRow, 'password_changed_at'>> & Pick<UserRow, 'organisation_id' | 'name' | 'email' | 'role' | 'status'> & { password_changed_at?: Knex.Raw };

/** Inserts a user and gives the whole row. */
export async function insertUser(trx: Knex.Transaction, values: NewUser): Promise<UserRow> {
  const [row] = await users(trx).insert(values).returning('*');
  return row!;
}

/** Inserts a user and gives its id. */
export async function insertUserId(trx: Knex.Transaction, values: NewUser): Promise<string> {
  const [row] = await users(trx).insert(values).returning(['id']);
  return row!.id;
}

/** A user who is not deactivated (a one-time link's form). */
export async function usableUser(db: Knex, id: string): Promise<Pick<UserRow, 'id' | 'name' | 'email'> | undefined> {
  return users(db).where({ id }).whereNot({ status: 'deactivated' }).first('id', 'name', 'email');
}

/** The same, locked for the transaction (setting a password through a link). */
export async function lockUsableUser(trx: Knex.Transaction, id: string): Promise<UserRow | undefined> {
  return users(trx).where({ id }).whereNot({ status: 'deactivated' }).forUpdate().first();
}

/** A user of the organisation, locked for the transaction (changing one's own password). */
export async function lockOrganisationUser(trx: Knex.Transaction, organisationId: string, id: string): Promise<UserRow | undefined> {
  return users(trx).where({ id, organisation_id: organisationId }).forUpdate().first();
}

/** A new password: every earlier session ends; `activate` makes an invited user active. */
export async function setPassword(trx: Knex.Transaction, id: string, passwordHash: string, activate: boolean): Promise<void> {
  await users(trx).where({ id }).update({
    password_hash: passwordHash,
    ...(activate ? { status: 'active' } : {}),
    password_changed_at: trx.fn.now(),
    sessions_valid_after: trx.fn.now(),
    updated_at: trx.fn.now(),
  });
}

export async function setLanguage(trx: Knex.Transaction, organisationId: string, id: string, language: UserRow['language']): Promise<void> {
  await users(trx).where({ id, organisation_id: organisationId }).update({ language, updated_at: trx.fn.now() });
}

/**
 * Sets a clerk's availability. The time a clerk is available counts in
 * Insights: becoming available notes since when; leaving it keeps the span
 * in `availability_spans` until the insights job folds it into the day's
 * figures (takeAvailabilitySpans).
 */
export async function setAvailability(db: Knex, organisationId: string, id: string, availability: UserRow['availability']): Promise<void> {
  await db.transaction(async (trx) => {
    const user = await users(trx).where({ id, organisation_id: organisationId }).forUpdate().first('availability', 'available_since');
    if (!user) return;
    const now = new Date();
    if (user.availability === 'available' && availability !== 'available' && user.available_since) {
      await trx('availability_spans').insert({ organisation_id: organisationId, user_id: id, started_at: user.available_since, ended_at: now });
    }
    const since = availability === 'available' ? (user.availability === 'available' ? user.available_since ?? now : now) : null;
    await users(trx).where({ id, organisation_id: organisationId }).update({ availability, available_since: since });
  });
}

/**
 * The organisation's available time not yet counted, as spans, removed as
 * they are answered (in the caller's transaction): the kept spans, and for
 * each clerk available now the time up to `now` (their `available_since`
 * moves to `now`).
 */
export async function takeAvailabilitySpans(trx: Knex.Transaction, organisationId: string, now: Date): Promise<Pick<AvailabilitySpanRow, 'user_id' | 'started_at' | 'ended_at'>[]> {
  const open = await users(trx).where({ organisation_id: organisationId, availability: 'available' }).where('available_since', '<', now).forUpdate().select('id', 'available_since');
  if (open.length) {
    await trx('availability_spans').insert(open.map((u) => ({ organisation_id: organisationId, user_id: u.id, started_at: u.available_since!, ended_at: now })));
    await users(trx).whereIn('id', open.map((u) => u.id)).update({ available_since: now });
  }
  return trx('availability_spans').where({ organisation_id: organisationId }).del().returning(['user_id', 'started_at', 'ended_at']);
}

/** Names of the organisation's users among `ids` (Insights' clerk rows). */
export async function userNames(db: Knex, organisationId: string, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await users(db).where({ organisation_id: organisationId }).whereIn('id', ids).select('id', 'name');
  return new Map(rows.map((r) => [r.id, r.name]));
}

/** Whether the user is a clerk of the organisation (any status: past clerks keep their figures). */
export async function isOrganisationClerk(db: Knex, organisationId: string, id: string): Promise<boolean> {
  return Boolean(await users(db).where({ id, organisation_id: organisationId, role: 'clerk' }).first('id'));
}

export async function availabilityOf(db: Knex, id: string): Promise<UserRow['availability'] | undefined> {
  return (await users(db).where({ id }).first('availability'))?.availability;
}

/** Whether the organisation has the user as an active clerk. */
export async function isActiveClerk(db: Knex, organisationId: string, id: string): Promise<boolean> {
  return Boolean(await users(db).where({ id, organisation_id: organisationId, role: 'clerk', status: 'active' }).first('id'));
}

/** The organisation's active clerks, by name (REST API). */
export async function activeClerkRows(db: Knex, organisationId: string): Promise<{ id: string; name: string }[]> {
  return users(db).where({ organisation_id: organisationId, role: 'clerk', status: 'active' }).orderByRaw('lower(name), id').select('id', 'name');
}

/** Every clerk of the organisation, any status, by name. */
export async function clerksOf(db: Knex, organisationId: string): Promise<{ id: string; name: string }[]> {
  return users(db).where({ organisation_id: organisationId, role: 'clerk' }).orderBy('name').select('id', 'name');
}

export async function countAvailableClerks(db: Knex, organisationId: string): Promise<number> {
  const [row] = (await users(db).where({ organisation_id: organisationId, role: 'clerk', status: 'active', availability: 'available' }).count({ n: '*' })) as unknown as [{ n: string }];
  return Number(row.n);
}

/**
 * An available clerk of the organisation, at random, who has no active call
 * and was not given a customer by automatic routing in the last two minutes.
 */
export async function routableClerk(db: Knex, organisationId: string): Promise<Pick<UserRow, 'id' | 'email' | 'name'> | undefined> {
  return users(db)
    .where({ organisation_id: organisationId, role: 'clerk', status: 'active', availability: 'available' })
    .whereNotExists((q) => q.select(db.raw('1')).from('calls').whereRaw('calls.clerk_id = users.id').where('calls.status', 'active'))
    .whereNotExists((q) => q.select(db.raw('1')).from('queue_entries').whereRaw('queue_entries.accepted_by = users.id').where('queue_entries.auto_routed', true).where('queue_entries.accepted_at', '>', new Date(Date.now() - 120_000)))
    .orderByRaw('random()')
    .first('id', 'email', 'name');
}

/** The organisation's users with their sign-in lock, the deactivated last, by name. */
export async function organisationUsersWithLock(db: Knex, organisationId: string): Promise<UserWithLock[]> {
  return users(db)
    .where('users.organisation_id', organisationId)
    .leftJoin('login_throttles', 'login_throttles.key', accountThrottleKey(db))
    .orderByRaw(`CASE users.status WHEN 'deactivated' THEN 1 ELSE 0 END, lower(users.name)`)
    .select('users.*', 'login_throttles.locked_until') as Promise<UserWithLock[]>;
}

export async function organisationUserWithLock(db: Knex, organisationId: string, id: string): Promise<UserWithLock | undefined> {
  return users(db)
    .where('users.organisation_id', organisationId)
    .leftJoin('login_throttles', 'login_throttles.key', accountThrottleKey(db))
    .where('users.id', id)
    .first('users.*', 'login_throttles.locked_until') as Promise<UserWithLock | undefined>;
}

/** Changes one user of the organisation (role, status, ...); `updated_at` is the caller's to set. */
export async function updateOrganisationUser(trx: Knex.Transaction, organisationId: string, id: string, values: Partial<Pick<UserRow, 'role' | 'status'>> & { updated_at?: Knex.Raw; sessions_valid_after?: Knex.Raw }): Promise<void> {
  await users(trx).where('users.organisation_id', organisationId).where({ id }).update(values);
}

export async function passwordHashOf(db: Knex, organisationId: string, id: string): Promise<string | null | undefined> {
  return (await users(db).where('users.organisation_id', organisationId).where({ id }).first('password_hash'))?.password_hash;
}

/** Locks the organisation's active admins other than `exceptId` and gives their ids. */
export async function lockOtherActiveAdmins(trx: Knex.Transaction, organisationId: string, exceptId: string): Promise<string[]> {
  return (await users(trx).where('users.organisation_id', organisationId).where({ role: 'admin', status: 'active' }).whereNot({ id: exceptId }).forUpdate().select('id')).map((u) => u.id);
}

export async function organisationUserIds(db: Knex, organisationId: string): Promise<string[]> {
  return (await users(db).where({ organisation_id: organisationId }).select('id')).map((u) => u.id);
}

export async function emailsOf(db: Knex, ids: string[]): Promise<string[]> {
  return users(db).whereIn('id', ids).pluck('email');
}

/** Purging an organisation: its users lose name, e-mail, password, language and last sign-in IP, and are deactivated; returns how many. */
export async function anonymiseUsers(trx: Knex.Transaction, ids: string[], now: Date): Promise<number> {
  return users(trx)
    .whereIn('id', ids)
    .update({
      name: trx.raw(`'Deleted user ' || substr(id::text, 1, 8)`),
      email: trx.raw(`'deleted-' || id::text || '@invalid'`),
      password_hash: null,
      language: null,
      last_login_ip: null,
      // The directory's id for the person goes too (single sign-on).
      sso_provider_id: null,
      sso_subject: null,
      break_glass: false,
      status: 'deactivated',
      sessions_valid_after: now,
      updated_at: now,
    });
}

/** The user a directory subject is linked to (single sign-on), locked for the transaction. */
export async function lockSsoUser(trx: Knex.Transaction, providerId: string, subject: string): Promise<UserRow | undefined> {
  return users(trx).where({ sso_provider_id: providerId, sso_subject: subject }).forUpdate().first();
}

/** Any user with this e-mail (lower-cased), locked: a first SSO sign-in links the organisation's own user of that address. */
export async function lockUserByEmail(trx: Knex.Transaction, email: string): Promise<UserRow | undefined> {
  return users(trx).whereRaw('lower(email) = ?', [email]).forUpdate().first();
}

/** What single sign-on keeps up to date on a linked user (its link, role, status, name, e-mail; sessions ended on demotion or removal). */
export async function updateSsoUser(
  trx: Knex.Transaction,
  organisationId: string,
  id: string,
  values: Partial<Pick<UserRow, 'role' | 'status' | 'name' | 'email' | 'sso_provider_id' | 'sso_subject'>> & { sessions_valid_after?: Knex.Raw; sso_deprovisioned_at?: Knex.Raw | null },
): Promise<void> {
  await users(trx).where({ id, organisation_id: organisationId }).update({ ...values, updated_at: trx.fn.now() });
}

/** The users linked to a provider who are not deactivated (the periodic directory check). */
export async function activeSsoUsers(db: Knex, providerId: string): Promise<Pick<UserRow, 'id' | 'organisation_id' | 'email' | 'sso_subject'>[]> {
  return users(db).where({ sso_provider_id: providerId }).whereNot({ status: 'deactivated' }).whereNull('sso_deprovisioned_at').select('id', 'organisation_id', 'email', 'sso_subject');
}

/** Whether the user may sign in with a password although the organisation turned password sign-in off. */
export async function setBreakGlass(trx: Knex.Transaction, organisationId: string, id: string, breakGlass: boolean): Promise<void> {
  await users(trx).where({ id, organisation_id: organisationId }).update({ break_glass: breakGlass, updated_at: trx.fn.now() });
}

/** Who may be named break-glass: the organisation's active admins, and anyone already named (to take it back). */
export async function breakGlassCandidates(db: Knex, organisationId: string): Promise<Pick<UserRow, 'id' | 'name' | 'email' | 'role' | 'status' | 'break_glass'>[]> {
  return users(db)
    .where({ organisation_id: organisationId })
    .where((w) => w.where({ role: 'admin', status: 'active' }).orWhere({ break_glass: true }))
    .orderBy('name')
    .select('id', 'name', 'email', 'role', 'status', 'break_glass');
}

/** Deletes the available time of an organisation's clerks not yet counted (its purge after closure). */
export async function deleteAvailabilitySpansOf(trx: Knex.Transaction, organisationId: string): Promise<void> {
  await trx('availability_spans').where({ organisation_id: organisationId }).del();
}
