import type { Knex } from 'knex';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { actorOf, type Caller } from '../access/caller';
import { endUserSessions } from '../access/session-store';
import { OneTimeTokens } from '../access/one-time-tokens';
import { ipKey, passwordCheckKey, type LoginThrottle } from '../sign-in/throttle';
import { NotFoundError, ValidationError } from '../core/errors';
import { checkPassword, PASSWORD_MAX } from '../security/password-policy';
import { hashPassword, verifyPassword } from '../security/passwords';
import { lockOrganisationUser, lockUsableUser, setLanguage, setPassword, usableUser } from './store';

export const newPasswordSchema = z
  .object({
    password: z.string().max(PASSWORD_MAX * 4, 'too_long'),
    password_confirm: z.string(),
  })
  .refine((v) => v.password === v.password_confirm, { message: 'passwords_differ', path: ['password_confirm'] });

export const changePasswordSchema = z
  .object({
    current_password: z.string().min(1, 'required').max(PASSWORD_MAX * 4, 'too_long'),
    password: z.string().max(PASSWORD_MAX * 4, 'too_long'),
    password_confirm: z.string(),
  })
  .refine((v) => v.password === v.password_confirm, { message: 'passwords_differ', path: ['password_confirm'] });

export const languageSchema = z.object({ language: z.enum(['en', 'de'], 'invalid_language') });

/** Throws a ValidationError on `password` when the policy refuses it. */
export function enforcePolicy(password: string, context: { email?: string; name?: string }): void {
  const problem = checkPassword(password, context);
  if (problem) throw new ValidationError([{ field: 'password', code: `password_${problem}` }]);
}

/**
 * A staff user's own account: choosing a password through a one-time link
 * (invitation, reset), changing it, and the preferred language.
 */
export class AccountService {
  private readonly audit: AuditService;
  private readonly tokens: OneTimeTokens;

  constructor(private readonly knex: Knex) {
    this.audit = new AuditService(knex);
    this.tokens = new OneTimeTokens(knex);
  }

  /** The user a valid invitation or reset link belongs to (for the form), or undefined. */
  async linkUser(purpose: 'invite' | 'password_reset', token: unknown): Promise<{ id: string; name: string; email: string } | undefined> {
    const record = await this.tokens.find(purpose, token);
    if (!record?.userId) return undefined;
    return usableUser(this.knex, record.userId);
  }

  /**
   * Sets the password through a one-time link. Ends every session of the
   * user; an invited user becomes active.
   */
  async setPasswordWithLink(
    purpose: 'invite' | 'password_reset',
    token: unknown,
    password: string,
    meta: { ip: string | null; userAgent: string | null },
  ): Promise<{ userId: string }> {
    return this.knex.transaction(async (trx) => {
      const record = await this.tokens.consume(purpose, token, trx);
      const user = record?.userId ? await lockUsableUser(trx, record.userId) : undefined;
      if (!user) throw new NotFoundError('link_invalid');
      enforcePolicy(password, { email: user.email, name: user.name });
      await setPassword(trx, user.id, await hashPassword(password), true);
      await endUserSessions(trx, user.id);
      await this.audit.record(
        {
          organisationId: user.organisation_id,
          actor: { type: 'user', id: user.id, label: user.email, organisationId: user.organisation_id },
          action: purpose === 'invite' ? 'user.activated' : 'password.reset_completed',
          target: { type: 'user', id: user.id },
          ...meta,
        },
        trx,
      );
      return { userId: user.id };
    });
  }

  /**
   * Changes the caller's own password; every other session of theirs ends.
   * The current-password check is throttled like a sign-in (per user and per
   * client IP, reserved before the password is evaluated): past the limit it
   * is refused, even with the right password, until the window passes.
   */
  async changePassword(caller: Caller, current: string, password: string, throttle: LoginThrottle): Promise<void> {
    const keys = { user: passwordCheckKey(caller.user.id), ip: ipKey(caller.ip ?? 'unknown') };
    const [user, ip] = await Promise.all([throttle.reserve(keys.user, 'account'), throttle.reserve(keys.ip, 'ip')]);
    if (!user.allowed || !ip.allowed) {
      // Not evaluated: neither key is charged (as at sign-in).
      await Promise.all([throttle.release(keys.user, 'account'), throttle.release(keys.ip, 'ip')]);
      throw new ValidationError([{ field: 'current_password', code: 'too_many_attempts' }]);
    }
    let verified = false;
    try {
      await this.changeVerified(caller, current, password, () => (verified = true));
    } catch (err) {
      if (!verified && (user.lockedNow || ip.lockedNow)) {
        await this.audit.record({ organisationId: caller.user.organisationId, actor: actorOf(caller.user), action: 'auth.lockout', target: { type: 'user', id: caller.user.id }, ip: caller.ip, userAgent: caller.userAgent, details: { scope: user.lockedNow ? 'password_check' : 'ip' } });
      }
      throw err;
    } finally {
      if (verified) await Promise.all([throttle.clear(keys.user), throttle.release(keys.ip, 'ip')]);
    }
  }

  private async changeVerified(caller: Caller, current: string, password: string, onVerified: () => void): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const user = await lockOrganisationUser(trx, caller.user.organisationId, caller.user.id);
      if (!user || !user.password_hash || !(await verifyPassword(user.password_hash, current))) {
        throw new ValidationError([{ field: 'current_password', code: 'wrong_password' }]);
      }
      onVerified();
      enforcePolicy(password, { email: user.email, name: user.name });
      if (await verifyPassword(user.password_hash, password)) throw new ValidationError([{ field: 'password', code: 'password_unchanged' }]);
      await setPassword(trx, user.id, await hashPassword(password), false);
      const ended = await endUserSessions(trx, user.id, caller.sessionId);
      await this.audit.record(
        { organisationId: caller.user.organisationId, actor: actorOf(caller.user), action: 'password.changed', target: { type: 'user', id: user.id }, ip: caller.ip, userAgent: caller.userAgent, details: { other_sessions_ended: ended } },
        trx,
      );
    });
  }

  async setLanguage(caller: Caller, language: 'en' | 'de'): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await setLanguage(trx, caller.user.organisationId, caller.user.id, language);
      await this.audit.record(
        { organisationId: caller.user.organisationId, actor: actorOf(caller.user), action: 'user.language_changed', target: { type: 'user', id: caller.user.id }, ip: caller.ip, userAgent: caller.userAgent, details: { language } },
        trx,
      );
    });
  }
}
