import type { Knex } from 'knex';
import { clientKey } from '../http/limiter';
import { sha256 } from '../security/tokens';

export interface ThrottleLimits {
  maxPerAccount: number;
  maxPerIp: number;
  lockoutMinutes: number;
}

export interface LockState {
  locked: boolean;
  lockedUntil?: Date;
}

/** The answer to a reservation: whether the attempt may be evaluated. */
export interface Reservation {
  allowed: boolean;
  /** This reservation reached the limit and locked the key (audit the lockout once, if the attempt fails). */
  lockedNow: boolean;
  /** When the lock ends, if the key is locked now. */
  lockedUntil: Date | null;
}

export type ThrottleKind = 'account' | 'ip';

export function accountKey(email: string): string {
  return `account:${sha256(email.trim().toLowerCase())}`;
}

/** A client's key: its IPv4 address, or an IPv6 client's /64 (as the refusal limiter counts it), so that rotating addresses in one network is one client. */
export function ipKey(ip: string): string {
  return `ip:${clientKey(ip)}`;
}

/** The key of a signed-in user's current-password check (password change). */
export function passwordCheckKey(userId: string): string {
  return `password:${userId}`;
}

/**
 * Brute-force protection for password checks (sign-in, password change).
 * Attempts are counted per e-mail address or user (whether or not such an
 * account exists, so the answer gives nothing away) and per client IP, in a
 * window of `lockoutMinutes`; reaching the limit locks the key for
 * `lockoutMinutes`. A lock ends by itself, or when an admin unlocks the account.
 *
 * An attempt is reserved BEFORE the password is evaluated, in one atomic
 * statement (an upsert that counts and answers whether the attempt is within
 * the limit), so that concurrent attempts cannot all pass a check made
 * before any of them was counted. A successful attempt then clears its
 * account key and gives its IP reservation back.
 */
export class LoginThrottle {
  constructor(private readonly knex: Knex, private readonly limits: ThrottleLimits) {}

  private max(kind: ThrottleKind): number {
    return kind === 'account' ? this.limits.maxPerAccount : this.limits.maxPerIp;
  }

  async state(key: string): Promise<LockState> {
    const row = await this.knex('login_throttles').where({ key }).first('locked_until');
    const until: Date | null = row?.locked_until ?? null;
    return until && until > new Date() ? { locked: true, lockedUntil: until } : { locked: false };
  }

  /**
   * Counts one attempt against the key and answers whether it may be
   * evaluated: the attempts 1..max of a window are, and the max-th locks the
   * key (a failure there is the one that locks); later ones are refused
   * until the lock ends. A window starts afresh when it is over or a lock
   * has ended.
   */
  async reserve(key: string, kind: ThrottleKind): Promise<Reservation> {
    const max = this.max(kind);
    const windowMs = this.limits.lockoutMinutes * 60_000;
    const now = new Date();
    const windowStart = new Date(now.getTime() - windowMs);
    const lockEnd = new Date(now.getTime() + windowMs);
    // "fresh": no lock and the window is over, or a lock that has ended.
    const fresh = '((t.locked_until IS NULL AND t.window_started_at <= :windowStart) OR t.locked_until <= :now)';
    const { rows } = await this.knex.raw(
      `INSERT INTO login_throttles AS t (key, failures, window_started_at, locked_until, updated_at)
       VALUES (:key, 1, :now, CASE WHEN 1 >= :max THEN CAST(:lockEnd AS timestamptz) END, :now)
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN ${fresh} THEN 1 ELSE t.failures + 1 END,
         window_started_at = CASE WHEN ${fresh} THEN :now ELSE t.window_started_at END,
         locked_until = CASE
           WHEN ${fresh} THEN CASE WHEN 1 >= :max THEN CAST(:lockEnd AS timestamptz) END
           WHEN t.locked_until IS NOT NULL THEN t.locked_until
           WHEN t.failures + 1 >= :max THEN CAST(:lockEnd AS timestamptz)
         END,
         updated_at = :now
       RETURNING failures, locked_until`,
      { key, now, windowStart, lockEnd, max },
    );
    const row = rows[0] as { failures: number; locked_until: Date | null };
    return { allowed: row.failures <= max, lockedNow: row.failures === max, lockedUntil: row.locked_until };
  }

  /**
   * Gives back a reservation whose attempt succeeded (an IP key is not
   * charged for a right password) or was never evaluated (refused by a
   * lock): the count goes down by one, and the lock ends when the count is
   * below the limit again.
   */
  async release(key: string, kind: ThrottleKind): Promise<void> {
    await this.knex('login_throttles')
      .where({ key })
      .where('failures', '>', 0)
      .update({
        failures: this.knex.raw('failures - 1'),
        locked_until: this.knex.raw('CASE WHEN failures - 1 >= ? THEN locked_until END', [this.max(kind)]),
        updated_at: new Date(),
      });
  }

  async clear(key: string): Promise<void> {
    await this.knex('login_throttles').where({ key }).delete();
  }
}

/** Deletes the sign-in throttles of the keys (purging an organisation). */
export async function deleteThrottles(trx: Knex.Transaction, keys: string[]): Promise<void> {
  await trx('login_throttles').whereIn('key', keys).delete();
}
