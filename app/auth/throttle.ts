import type { Knex } from 'knex';
import { sha256 } from './tokens';

export interface ThrottleLimits {
  maxPerAccount: number;
  maxPerIp: number;
  lockoutMinutes: number;
}

export interface LockState {
  locked: boolean;
  lockedUntil?: Date;
}

export function accountKey(email: string): string {
  return `account:${sha256(email.trim().toLowerCase())}`;
}

export function ipKey(ip: string): string {
  return `ip:${ip}`;
}

/**
 * Brute-force protection for sign-in. Failures are counted per e-mail
 * address (whether or not such an account exists, so the answer gives
 * nothing away) and per client IP, in a window of `lockoutMinutes`; past the
 * limit the key is locked for `lockoutMinutes`. A lock ends by itself, or
 * when an admin unlocks the account.
 */
export class LoginThrottle {
  constructor(private readonly knex: Knex, private readonly limits: ThrottleLimits) {}

  async state(key: string): Promise<LockState> {
    const row = await this.knex('login_throttles').where({ key }).first('locked_until');
    const until: Date | null = row?.locked_until ?? null;
    return until && until > new Date() ? { locked: true, lockedUntil: until } : { locked: false };
  }

  /** Whether either key is locked now; the later of the two lock ends. */
  async check(keys: string[]): Promise<LockState> {
    const states = await Promise.all(keys.map((k) => this.state(k)));
    const locked = states.filter((s) => s.locked);
    if (locked.length === 0) return { locked: false };
    return { locked: true, lockedUntil: new Date(Math.max(...locked.map((s) => s.lockedUntil!.getTime()))) };
  }

  /**
   * Counts one failure against the key. Returns true when this failure
   * locked the key (so the caller audits the lockout once).
   */
  async fail(key: string, kind: 'account' | 'ip'): Promise<boolean> {
    const max = kind === 'account' ? this.limits.maxPerAccount : this.limits.maxPerIp;
    const windowMs = this.limits.lockoutMinutes * 60_000;
    return this.knex.transaction(async (trx) => {
      const now = new Date();
      const row = await trx('login_throttles').where({ key }).forUpdate().first();
      const fresh = !row || now.getTime() - new Date(row.window_started_at).getTime() > windowMs
        || (row.locked_until !== null && row.locked_until <= now);
      const failures = fresh ? 1 : row.failures + 1;
      const lock = failures >= max;
      const values = {
        failures,
        window_started_at: fresh ? now : row.window_started_at,
        locked_until: lock ? new Date(now.getTime() + windowMs) : null,
        updated_at: now,
      };
      if (row) await trx('login_throttles').where({ key }).update(values);
      else await trx('login_throttles').insert({ key, ...values });
      const wasLocked = row?.locked_until && row.locked_until > now;
      return lock && !wasLocked;
    });
  }

  async clear(key: string): Promise<void> {
    await this.knex('login_throttles').where({ key }).delete();
  }
}
