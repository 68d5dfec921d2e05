import type { Call } from './store';

/** Finds the call of a customer link token (CallService.byCustomerToken). */
export interface CallByToken {
  byCustomerToken(token: unknown): Promise<Call | undefined>;
}

/**
 * What a customer's link token opens, decided in one place for the call
 * page (`/join/<token>`), the summary's PDF and pictures, and the
 * signalling; each maps the outcome to its own answer.
 *
 * - `open`: a call not ended whose link is neither revoked nor expired: it can be joined.
 * - `summary`: an ended call, link not revoked, within `summaryDays` of its end: its summary can be seen.
 * - `unknown`: no such link (or not a token's shape at all).
 * - `revoked`: the clerk revoked the link (`ended`: the call has ended since, or before).
 * - `expired`: the link's time for joining passed, and the call has not ended.
 * - `ended`: the call ended and its summary can no longer be seen (the window passed, or is 0 days).
 *
 * The last three name the call's organisation, whose page (calls/link-page.ts) tells the customer what to do next.
 */
export type CustomerAccess =
  | { outcome: 'open'; call: Call }
  | { outcome: 'summary'; call: Call }
  | { outcome: 'unknown' }
  | { outcome: 'revoked'; ended: boolean; organisationId: string }
  | { outcome: 'expired'; organisationId: string }
  | { outcome: 'ended'; organisationId: string };

/** The one loader of a customer link: what `token` opens now. */
export async function customerAccess(calls: CallByToken, token: unknown, summaryDays: number, now: Date = new Date()): Promise<CustomerAccess> {
  const call = await calls.byCustomerToken(token);
  if (!call) return { outcome: 'unknown' };
  const ended = call.status === 'ended';
  const { organisationId } = call;
  if (call.linkRevokedAt) return { outcome: 'revoked', ended, organisationId };
  if (ended) {
    const within = summaryDays > 0 && call.endedAt !== null && call.endedAt.getTime() + summaryDays * 86_400_000 > now.getTime();
    return within ? { outcome: 'summary', call } : { outcome: 'ended', organisationId };
  }
  if (!call.guestTokenExpiresAt || call.guestTokenExpiresAt <= now) return { outcome: 'expired', organisationId };
  return { outcome: 'open', call };
}

/**
 * The signalling's answer (and the call service's `byGuestToken`): the
 * open call, `call_ended` for any ended call (revoked or not, summary or
 * not), `token_invalid` for the rest.
 */
export function joinAccess(access: CustomerAccess): { call: Call } | { error: 'token_invalid' | 'call_ended' } {
  if (access.outcome === 'open') return { call: access.call };
  const ended = access.outcome === 'summary' || access.outcome === 'ended' || (access.outcome === 'revoked' && access.ended);
  return { error: ended ? 'call_ended' : 'token_invalid' };
}
