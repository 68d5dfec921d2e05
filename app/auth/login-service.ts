import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { verifyAgainstDummy, verifyPassword } from '../accounts/passwords';
import { accountKey, ipKey, type LoginThrottle } from './throttle';
import { sha256 } from './tokens';

export interface LoginAttempt {
  email: string;
  password: string;
  ip: string | null;
  userAgent: string | null;
}

export type LoginOutcome =
  | { ok: true; userId: string; organisationId: string; email: string }
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'locked'; lockedUntil: Date };

/**
 * Checks e-mail and password with throttling and auditing. Unknown e-mail,
 * wrong password, inactive user and closed organisation all answer the same
 * `invalid`, after the same argon2 work, so the answer reveals nothing.
 */
export class LoginService {
  private readonly audit: AuditService;

  constructor(private readonly knex: Knex, private readonly throttle: LoginThrottle) {
    this.audit = new AuditService(knex);
  }

  async attempt(input: LoginAttempt): Promise<LoginOutcome> {
    const email = input.email.trim().toLowerCase();
    const keys = { account: accountKey(email), ip: ipKey(input.ip ?? 'unknown') };
    const user = await this.knex('users')
      .join('organisations', 'organisations.id', 'users.organisation_id')
      .whereRaw('lower(users.email) = ?', [email])
      .first('users.id', 'users.organisation_id', 'users.email', 'users.status', 'users.password_hash', 'organisations.closed_at');
    const meta = { ip: input.ip, userAgent: input.userAgent };
    const organisationId: string | null = user?.organisation_id ?? null;
    const who = user
      ? { actor: { type: 'guest' as const, label: user.email as string }, target: { type: 'user', id: user.id as string } }
      : { actor: { type: 'guest' as const }, details: { attempted_account: sha256(email).slice(0, 16) } };

    const lock = await this.throttle.check([keys.account, keys.ip]);
    if (lock.locked) {
      await verifyAgainstDummy(input.password);
      await this.audit.record({ organisationId, ...who, action: 'auth.login_failed', ...meta, details: { ...('details' in who ? who.details : {}), reason: 'locked' } });
      return { ok: false, reason: 'locked', lockedUntil: lock.lockedUntil! };
    }

    const passwordOk = user?.password_hash ? await verifyPassword(user.password_hash, input.password) : await verifyAgainstDummy(input.password);
    const reason = !user ? 'unknown_account' : !passwordOk ? 'wrong_password' : user.status !== 'active' ? 'inactive' : user.closed_at ? 'organisation_closed' : null;
    if (reason === null) {
      await this.throttle.clear(keys.account);
      return { ok: true, userId: user.id, organisationId: user.organisation_id, email: user.email };
    }

    const accountLocked = await this.throttle.fail(keys.account, 'account');
    const ipLocked = await this.throttle.fail(keys.ip, 'ip');
    await this.audit.record({ organisationId, ...who, action: 'auth.login_failed', ...meta, details: { ...('details' in who ? who.details : {}), reason } });
    for (const [scope, locked] of [['account', accountLocked], ['ip', ipLocked]] as const) {
      if (locked) await this.audit.record({ organisationId, ...who, action: 'auth.lockout', ...meta, details: { ...('details' in who ? who.details : {}), scope } });
    }
    if (accountLocked || ipLocked) {
      const state = await this.throttle.check([keys.account, keys.ip]);
      return { ok: false, reason: 'locked', lockedUntil: state.lockedUntil! };
    }
    return { ok: false, reason: 'invalid' };
  }

  /** Records a successful sign-in: last login time and IP, and the audit event. */
  async succeeded(userId: string, organisationId: string, email: string, meta: { ip: string | null; userAgent: string | null }): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx('users').where({ id: userId }).update({ last_login_at: trx.fn.now(), last_login_ip: meta.ip });
      await this.audit.record({ organisationId, actor: { type: 'user', id: userId, label: email, organisationId }, action: 'auth.login_succeeded', target: { type: 'user', id: userId }, ...meta }, trx);
    });
  }
}
