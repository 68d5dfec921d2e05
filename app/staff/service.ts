import type { Knex } from 'knex';
import { z } from 'zod';
import { OrganisationScopedService } from '../access/scoped-service';
import { roles, type Caller, type Role } from '../access/caller';
import { endUserSessions } from '../access/session-store';
import { LoginThrottle, accountKey } from '../sign-in/throttle';
import { OneTimeTokens } from '../access/one-time-tokens';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors';
import type { UserRow } from '../db/tables';
import { activeClerkRows, emailTaken, insertUser, lockOtherActiveAdmins, organisationUserWithLock, organisationUsersWithLock, passwordHashOf, updateOrganisationUser } from './store';

export interface StaffUser {
  id: string;
  name: string;
  email: string;
  role: Role;
  status: 'invited' | 'active' | 'deactivated';
  lastLoginAt: Date | null;
  lastLoginIp: string | null;
  lockedUntil: Date | null;
  createdAt: Date;
}

export const inviteSchema = z.object({
  name: z.string().trim().min(1, 'required').max(200, 'too_long'),
  email: z.string().trim().toLowerCase().max(254, 'too_long').pipe(z.email('invalid_email')),
  role: z.enum(roles, 'invalid_role'),
});

export const roleSchema = z.object({ role: z.enum(roles, 'invalid_role') });

export interface UserServiceOptions {
  inviteLinkHours: number;
  passwordResetLinkHours: number;
  throttle: LoginThrottle;
}

/**
 * Staff management for an organisation's admins. Built per request with the
 * caller: every query is scoped to the caller's organisation, and every
 * change is audited in the same transaction.
 */
export class UserService extends OrganisationScopedService {
  private readonly tokens: OneTimeTokens;

  constructor(knex: Knex, caller: Caller, private readonly options: UserServiceOptions) {
    super(knex, caller);
    this.tokens = new OneTimeTokens(knex);
  }

  async list(): Promise<StaffUser[]> {
    const rows = await organisationUsersWithLock(this.knex, this.organisationId);
    return rows.map(toStaffUser);
  }

  /**
   * One user of the caller's organisation. An id that exists in another
   * organisation answers exactly like one that does not exist, and is
   * audited as a cross-organisation attempt.
   */
  async get(id: string, trx: Knex | Knex.Transaction = this.knex): Promise<StaffUser> {
    if (!z.uuid().safeParse(id).success) throw new NotFoundError();
    const row = await organisationUserWithLock(trx, this.organisationId, id);
    if (!row) return this.refuseForeign('users', 'user', id);
    return toStaffUser(row);
  }

  /** Creates an invited user and returns the one-time link token for setting a password. */
  async invite(input: z.infer<typeof inviteSchema>): Promise<{ user: StaffUser; token: string; expiresAt: Date }> {
    return this.knex.transaction(async (trx) => {
      if (await emailTaken(trx, input.email)) {
        throw new ValidationError([{ field: 'email', code: 'email_taken' }]);
      }
      const row = await insertUser(trx, { organisation_id: this.organisationId, name: input.name, email: input.email, role: input.role, status: 'invited' });
      const { token, expiresAt } = await this.tokens.issue('invite', { organisationId: this.organisationId, userId: row.id }, this.options.inviteLinkHours, trx);
      await this.record(trx, 'user.invited', row.id, { email: input.email, role: input.role });
      return { user: toStaffUser(row), token, expiresAt };
    });
  }

  async changeRole(id: string, role: Role): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const user = await this.get(id, trx);
      if (user.role === role) return;
      if (user.role === 'admin') await this.keepAnAdmin(trx, id);
      await updateOrganisationUser(trx, this.organisationId, id, { role, updated_at: trx.fn.now() });
      await this.record(trx, 'user.role_changed', id, { from: user.role, to: role });
    });
  }

  async deactivate(id: string): Promise<void> {
    if (id === this.caller.user.id) throw new ConflictError('cannot_deactivate_self');
    await this.knex.transaction(async (trx) => {
      const user = await this.get(id, trx);
      if (user.status === 'deactivated') return;
      if (user.role === 'admin') await this.keepAnAdmin(trx, id);
      await updateOrganisationUser(trx, this.organisationId, id, { status: 'deactivated', sessions_valid_after: trx.fn.now(), updated_at: trx.fn.now() });
      const ended = await endUserSessions(trx, id);
      await this.tokens.revokeForUser(id, trx);
      await this.record(trx, 'user.deactivated', id, { sessions_ended: ended });
    });
  }

  async reactivate(id: string): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const user = await this.get(id, trx);
      if (user.status !== 'deactivated') return;
      const passwordHash = await passwordHashOf(trx, this.organisationId, id);
      await updateOrganisationUser(trx, this.organisationId, id, { status: passwordHash ? 'active' : 'invited', updated_at: trx.fn.now() });
      await this.record(trx, 'user.reactivated', id, {});
    });
  }

  /** A one-time link for the user to choose a new password. */
  async issuePasswordReset(id: string): Promise<{ token: string; expiresAt: Date; purpose: 'invite' | 'password_reset' }> {
    return this.knex.transaction(async (trx) => {
      const user = await this.get(id, trx);
      if (user.status === 'deactivated') throw new ConflictError('user_deactivated');
      const purpose = user.status === 'invited' ? 'invite' : 'password_reset';
      const hours = purpose === 'invite' ? this.options.inviteLinkHours : this.options.passwordResetLinkHours;
      const issued = await this.tokens.issue(purpose, { organisationId: this.organisationId, userId: id }, hours, trx);
      await this.record(trx, purpose === 'invite' ? 'user.invited' : 'password.reset_issued', id, { reissued: purpose === 'invite' });
      return { ...issued, purpose };
    });
  }

  async unlock(id: string): Promise<void> {
    const user = await this.get(id);
    await this.options.throttle.clear(accountKey(user.email));
    await this.audit.record({ ...this.base(), action: 'user.unlocked', target: { type: 'user', id } });
  }

  private async keepAnAdmin(trx: Knex.Transaction, leavingId: string): Promise<void> {
    // Lock the organisation's admin rows so two admins cannot demote each other at once.
    const admins = await lockOtherActiveAdmins(trx, this.organisationId, leavingId);
    if (admins.length === 0) throw new ConflictError('last_admin');
  }

  private record(trx: Knex.Transaction, action: 'user.invited' | 'user.role_changed' | 'user.deactivated' | 'user.reactivated' | 'password.reset_issued', id: string, details: Record<string, unknown>) {
    return this.audit.record({ ...this.base(), action, target: { type: 'user', id }, details }, trx);
  }
}

function toStaffUser(row: UserRow & { locked_until?: Date | null }): StaffUser {
  const lockedUntil = row.locked_until ?? null;
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    role: row.role,
    status: row.status,
    lastLoginAt: row.last_login_at ?? null,
    lastLoginIp: row.last_login_ip ?? null,
    lockedUntil: lockedUntil && lockedUntil > new Date() ? lockedUntil : null,
    createdAt: row.created_at,
  };
}

/** A clerk as integrators see it: the id to pass as `clerkId`, and the name. */
export interface ClerkListing {
  id: string;
  name: string;
}

/**
 * The organisation's active clerks (the ones a call link may be created
 * for), by name. For the REST API, which authenticates a key, not a user;
 * invited and deactivated users and other roles are left out.
 */
export async function activeClerks(knex: Knex, organisationId: string): Promise<ClerkListing[]> {
  const rows = await activeClerkRows(knex, organisationId);
  return rows.map((r) => ({ id: r.id, name: r.name }));
}
