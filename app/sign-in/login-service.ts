import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { refusalsFor, type RefusalRecorder } from '../audit/refusals';
import { clientKey } from '../http/limiter';
import { verifyAgainstDummy, verifyPassword } from '../security/passwords';
import { signInChecks } from '../security/verify-gate';
import { accountKey, ipKey, type LoginThrottle, type Reservation } from './throttle';
import { sha256 } from '../security/tokens';
import { recordLogin, signInAccount } from '../staff/store';

export interface LoginAttempt {
  email: string;
  password: string;
  ip: string | null;
  userAgent: string | null;
}

export type LoginOutcome =
  | { ok: true; userId: string; organisationId: string; email: string; breakGlass: boolean }
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'sso_only' }
  | { ok: false; reason: 'sso_account' }
  | { ok: false; reason: 'locked'; lockedUntil: Date };

/** The later end of the locks among the reservations (a lock set by a concurrent attempt may end later). */
function lockEnd(reservations: Reservation[]): Date {
  const ends = reservations.map((r) => r.lockedUntil?.getTime() ?? 0);
  return new Date(Math.max(Date.now() + 60_000, ...ends));
}

/**
 * Checks e-mail and password with throttling and auditing. Unknown e-mail,
 * wrong password, inactive user and closed organisation all answer the same
 * `invalid`, after the same argon2 work, so the answer reveals nothing.
 *
 * The attempt is reserved against the account's and the IP's limits before
 * the password is evaluated (LoginThrottle.reserve, one atomic statement
 * each): of any number of concurrent attempts at most the limit are
 * evaluated; the rest are refused as `locked` without argon2 work. Failures
 * are audited through the refusal recorder (the first of a source at once,
 * the rest aggregated per window); a lockout is audited at once.
 */
export class LoginService {
  private readonly audit: AuditService;
  private readonly refusals: RefusalRecorder;

  constructor(private readonly knex: Knex, private readonly throttle: LoginThrottle) {
    this.audit = new AuditService(knex);
    this.refusals = refusalsFor(knex);
  }

  async attempt(input: LoginAttempt): Promise<LoginOutcome> {
    const email = input.email.trim().toLowerCase();
    const keys = { account: accountKey(email), ip: ipKey(input.ip ?? 'unknown') };
    const [account, ip] = await Promise.all([this.throttle.reserve(keys.account, 'account'), this.throttle.reserve(keys.ip, 'ip')]);
    const user = await signInAccount(this.knex, email);
    const meta = { ip: input.ip, userAgent: input.userAgent };
    const organisationId: string | null = user?.organisation_id ?? null;
    const who = user
      ? { actor: { type: 'guest' as const, label: user.email }, target: { type: 'user', id: user.id } }
      : { actor: { type: 'guest' as const } };
    const baseDetails = user ? {} : { attempted_account: sha256(email).slice(0, 16) };
    const failed = (reason: string) => this.refusals.note({ organisationId, ...who, action: 'auth.login_failed', ...meta, details: { ...baseDetails, reason } });

    if (!account.allowed || !ip.allowed) {
      // Not evaluated, so neither key is charged: retries on a locked account must not lock its
      // users' shared (office, NAT) address, nor refusals past a lock keep it on after a right password.
      await Promise.all([this.throttle.release(keys.account, 'account'), this.throttle.release(keys.ip, 'ip')]);
      await failed('locked');
      return { ok: false, reason: 'locked', lockedUntil: lockEnd([account, ip]) };
    }

    // Fairly across clients: a flood from many addresses must not queue a colleague's sign-in behind all of its argon2 work.
    const passwordOk = await signInChecks.run(clientKey(input.ip), () => (user?.password_hash ? verifyPassword(user.password_hash, input.password) : verifyAgainstDummy(input.password)));
    const reason = !user ? 'unknown_account' : !passwordOk ? 'wrong_password' : user.status !== 'active' ? 'inactive' : user.closed_at ? 'organisation_closed' : null;
    // Break-glass counts for administrators only (a break-glass admin the directory demoted loses it).
    const breakGlass = Boolean(user?.break_glass && user.role === 'admin');
    const directory = reason !== null || breakGlass ? null : !user!.password_sign_in ? 'password_sign_in_off' : user!.sso_provider_id ? 'directory_account' : null;
    if (directory) {
      // The organisation signs in through its directory, or this account is the directory's (linked at an
      // SSO sign-in; the directory may have taken it away since): a right password is refused (and said so:
      // whoever learns it here knew the password), the throttle's counts stay as they were.
      await Promise.all([this.throttle.release(keys.account, 'account'), this.throttle.release(keys.ip, 'ip')]);
      await failed(directory);
      return { ok: false, reason: directory === 'password_sign_in_off' ? 'sso_only' : 'sso_account' };
    }
    if (reason === null) {
      await Promise.all([this.throttle.clear(keys.account), this.throttle.release(keys.ip, 'ip')]);
      return { ok: true, userId: user!.id, organisationId: user!.organisation_id, email: user!.email, breakGlass: !user!.password_sign_in };
    }

    await failed(reason);
    for (const [scope, reservation] of [['account', account], ['ip', ip]] as const) {
      if (reservation.lockedNow) await this.audit.record({ organisationId, ...who, action: 'auth.lockout', ...meta, details: { ...baseDetails, scope } });
    }
    if (account.lockedNow || ip.lockedNow) return { ok: false, reason: 'locked', lockedUntil: lockEnd([account, ip]) };
    return { ok: false, reason: 'invalid' };
  }

  /**
   * Records a successful sign-in: last login time and IP, and the audit event
   * (`method`: password, ldap or oidc). A password sign-in while the
   * organisation has password sign-in off is a break-glass administrator's:
   * audited as such too.
   */
  async succeeded(userId: string, organisationId: string, email: string, meta: { ip: string | null; userAgent: string | null }, options: { method?: 'password' | 'ldap' | 'oidc'; breakGlass?: boolean } = {}): Promise<void> {
    const actor = { type: 'user' as const, id: userId, label: email, organisationId };
    await this.knex.transaction(async (trx) => {
      await recordLogin(trx, userId, meta.ip);
      await this.audit.record({ organisationId, actor, action: 'auth.login_succeeded', target: { type: 'user', id: userId }, ...meta, details: { method: options.method ?? 'password' } }, trx);
      if (options.breakGlass) await this.audit.record({ organisationId, actor, action: 'auth.break_glass_used', target: { type: 'user', id: userId }, ...meta }, trx);
    });
  }
}
