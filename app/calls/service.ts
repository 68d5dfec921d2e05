import type { Knex } from 'knex';
import type { CallRow } from '../db/tables';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { SYSTEM, type Actor } from '../audit/actions';
import { actorOf, type Caller } from '../access/caller';
import { refuseForeign } from '../access/scoped-service';
import { randomToken, sha256 } from '../security/tokens';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors';
import { customerAccess, joinAccess } from './customer-access';
import { callEvents } from './events';
import { CALL_REFERENCE_MAX, CALL_REFERENCE_PATTERN } from './shared';
import type { CallLinkTokens } from './link-token';
import { activeCallsWithin, callLinkSecret, interruptCallsOn, callOrganisation, endedCallsOf, findCall, insertCall, listOrganisationCalls, lockCall, markCallActive, markCallEnded, markCallWaiting, openCallsOf, revokeCallLink, staleWaitingCallIds, type Call, type CallStatus, type NodeScope } from './store';
import { isActiveClerk } from '../staff/store';

export type { Call, CallStatus } from './store';

/** A call's case number as a form or the API gives it (the pattern in shared.ts). */
export const callReferenceSchema = z
  .string()
  .trim()
  .max(CALL_REFERENCE_MAX, 'too_long')
  .refine((v) => v === '' || CALL_REFERENCE_PATTERN.test(v), 'invalid_reference');

/** A call link as the clerk sets it up: how long it is valid, a case number, a time. */
export const callLinkSchema = z.object({
  valid_hours: z.coerce.number().int('invalid').min(1, 'invalid').max(720, 'invalid').optional(),
  reference: callReferenceSchema.optional(),
  scheduled_at: z
    .string()
    .trim()
    .refine((v) => v === '' || !Number.isNaN(Date.parse(v)), 'invalid_date')
    .optional(),
});

export type CallLinkInput = z.infer<typeof callLinkSchema>;

/**
 * A call's customer link as its clerk may see it again: `open` with the
 * token while the link opens the call; otherwise why not (`unavailable`: the
 * link cannot be derived again, as for links made before links could be
 * shown again, queue calls, or after the session secret changed).
 */
export type LinkView =
  | { state: 'open'; call: Call; token: string }
  | { state: 'ended' | 'revoked' | 'expired' | 'unavailable'; call: Call };

/** Who a new call belongs to and who started it. */
export type CallScope = { organisationId: string; clerkId: string; actor: Actor } & Meta;

export type Participant =
  | { role: 'clerk'; userId: string; label: string; organisationId: string }
  | { role: 'customer'; label: string };

export interface Meta {
  ip: string | null;
  userAgent: string | null;
}

function actorFor(participant: Participant): Actor {
  return participant.role === 'clerk'
    ? { type: 'user', id: participant.userId, label: participant.label, organisationId: participant.organisationId }
    : { type: 'guest', label: participant.label };
}

/** A customer's IP and user agent are stored encrypted under the call's key (see audit/personal.ts); a clerk's stay plain. */
function customerOf(participant: Participant, callId: string): { customer?: { callId: string } } {
  return participant.role === 'customer' ? { customer: { callId } } : {};
}

/**
 * Calls: started by a clerk, joined by the clerk (session) and the customer
 * (link token). Every state change is audited in the same transaction.
 */
export class CallService {
  private readonly audit: AuditService;

  /** `links`: derives tokens that can be shown again (link-token.ts); without it a new call's token is random and shown once. */
  constructor(private readonly knex: Knex, private readonly links?: CallLinkTokens) {
    this.audit = new AuditService(knex);
  }

  /**
   * A new call of the caller (a clerk) and its customer link: 256 bits
   * (derived, see link-token.ts, or random), of which only the SHA-256 is
   * stored; valid for `validHours`
   * (default `linkHours`), with an optional reference and scheduled time.
   */
  async start(caller: Caller, linkHours: number, input: CallLinkInput = {}): Promise<{ call: Call; token: string }> {
    return this.create({ organisationId: caller.user.organisationId, clerkId: caller.user.id, actor: actorOf(caller.user), ip: caller.ip, userAgent: caller.userAgent }, linkHours, input, 'link');
  }

  /** The same for the organisation's own systems (REST API): the call is given to one of its clerks. */
  async startForClerk(scope: CallScope, linkHours: number, input: CallLinkInput = {}): Promise<{ call: Call; token: string }> {
    if (!(await isActiveClerk(this.knex, scope.organisationId, scope.clerkId))) throw new ValidationError([{ field: 'clerk_id', code: 'unknown_clerk' }]);
    return this.create(scope, linkHours, input, 'api');
  }

  private async create(scope: CallScope, linkHours: number, input: CallLinkInput, channel: 'link' | 'api'): Promise<{ call: Call; token: string }> {
    const issued = this.links?.issue();
    const token = issued?.token ?? randomToken();
    const link = issued ? { id: issued.id, link_nonce: issued.nonce } : {};
    const call = await this.knex.transaction((trx) => this.insert(trx, scope, sha256(token), linkHours, input, channel, {}, link));
    return { call, token };
  }

  /**
   * A call for a customer from the waiting queue, inside the queue's
   * transaction: the customer's ticket (already held as a hash) becomes the
   * call's customer token, so no new secret has to reach them.
   */
  async startFromQueue(trx: Knex.Transaction, scope: CallScope, ticketHash: string, linkHours: number, channel: 'queue' | 'widget', details: Record<string, unknown>): Promise<Call> {
    return this.insert(trx, scope, ticketHash, linkHours, {}, channel, details);
  }

  /** `channel`: how the customer arrives (Insights counts it). */
  private async insert(trx: Knex.Transaction, scope: CallScope, tokenHash: string, linkHours: number, input: CallLinkInput, channel: NonNullable<CallRow['channel']>, details: Record<string, unknown> = {}, link: { id?: string; link_nonce?: string } = {}): Promise<Call> {
    const hours = input.valid_hours ?? linkHours;
    const scheduledAt = input.scheduled_at ? new Date(input.scheduled_at) : null;
    const expiresAt = new Date(Math.max(Date.now(), scheduledAt?.getTime() ?? 0) + hours * 3600_000);
    const call = await insertCall(trx, {
      ...link,
      organisation_id: scope.organisationId,
      clerk_id: scope.clerkId,
      guest_token_hash: tokenHash,
      guest_token_expires_at: expiresAt,
      reference: input.reference || null,
      scheduled_at: scheduledAt,
      channel,
    });
    await this.audit.record({ organisationId: scope.organisationId, actor: scope.actor, action: 'call.started', target: { type: 'call', id: call.id }, ip: scope.ip, userAgent: scope.userAgent, details: { valid_hours: hours, scheduled: scheduledAt !== null, reference: call.reference, ...details } }, trx);
    return call;
  }

  /** One organisation's calls, newest first, keyset-paged (REST API). */
  async listForOrganisation(organisationId: string, options: { status?: CallStatus; limit: number; before?: { createdAt: Date; id: string } }): Promise<Call[]> {
    return listOrganisationCalls(this.knex, organisationId, options);
  }

  /** One call of the organisation, or undefined (REST API). */
  async getForOrganisation(organisationId: string, id: string): Promise<Call | undefined> {
    if (!z.uuid().safeParse(id).success) return undefined;
    return findCall(this.knex, { id, organisation_id: organisationId });
  }

  /** Revokes a call's customer link on behalf of the organisation's systems; a connected customer is disconnected (callEvents). */
  async revokeLinkForOrganisation(organisationId: string, id: string, actor: Actor, meta: Meta): Promise<Call | undefined> {
    const call = await this.getForOrganisation(organisationId, id);
    if (!call) return undefined;
    if (!call.linkRevokedAt) {
      await this.knex.transaction(async (trx) => {
        await revokeCallLink(trx, id);
        await this.audit.record({ organisationId, actor, action: 'call.link_revoked', target: { type: 'call', id }, ...meta }, trx);
        await callEvents.emit(this.knex, 'linkRevoked', [id], trx);
      });
    } else {
      await callEvents.emit(this.knex, 'linkRevoked', [id]);
    }
    return this.getForOrganisation(organisationId, id);
  }

  /** The caller's calls that have not ended, newest first (the dashboard list). */
  async listOpen(caller: Caller): Promise<Call[]> {
    return openCallsOf(this.knex, caller.user.organisationId, caller.user.id);
  }

  /** The caller's ended calls, newest first (the dashboard's history). */
  async listEnded(caller: Caller, limit = 20): Promise<Call[]> {
    return endedCallsOf(this.knex, caller.user.organisationId, caller.user.id, limit);
  }

  /** Revokes the customer link of one of the caller's calls: it opens nothing any more, and a connected customer is disconnected at once (callEvents). */
  async revokeLink(caller: Caller, id: string): Promise<void> {
    const call = await this.getOwn(caller, id);
    if (call.linkRevokedAt) return;
    await this.knex.transaction(async (trx) => {
      await revokeCallLink(trx, call.id);
      await this.audit.record({ organisationId: call.organisationId, actor: actorOf(caller.user), action: 'call.link_revoked', target: { type: 'call', id: call.id }, ip: caller.ip, userAgent: caller.userAgent }, trx);
      // Sent with the commit: every node's hub disconnects the customer.
      await callEvents.emit(this.knex, 'linkRevoked', [call.id], trx);
    });
  }

  /**
   * One of the caller's calls with its customer link, while the link still
   * opens the call (not revoked, not expired, call not ended); each time
   * the link is shown is audited (`call.link_viewed`). Others' calls 404.
   */
  async showLink(caller: Caller, id: string, now: Date = new Date()): Promise<LinkView> {
    const call = await this.getOwn(caller, id);
    if (call.status === 'ended') return { state: 'ended', call };
    if (call.linkRevokedAt) return { state: 'revoked', call };
    if (!call.guestTokenExpiresAt || call.guestTokenExpiresAt <= now) return { state: 'expired', call };
    const secret = await callLinkSecret(this.knex, call.id);
    const token = secret?.nonce && this.links ? this.links.token(call.id, secret.nonce) : undefined;
    // The derived token must be the one issued (the session secret may have changed since).
    if (!token || sha256(token) !== secret?.tokenHash) return { state: 'unavailable', call };
    await this.audit.record({ organisationId: call.organisationId, actor: actorOf(caller.user), action: 'call.link_viewed', target: { type: 'call', id: call.id }, ip: caller.ip, userAgent: caller.userAgent });
    return { state: 'open', call, token };
  }

  /** A call of the caller's organisation that the caller runs; others answer 404 (and other organisations' are audited). */
  async getOwn(caller: Caller, id: string): Promise<Call> {
    if (!z.uuid().safeParse(id).success) throw new NotFoundError();
    const call = await findCall(this.knex, { id, organisation_id: caller.user.organisationId, clerk_id: caller.user.id });
    if (call) return call;
    // Another clerk's call of the same organisation is simply not found; another organisation's is audited too.
    const elsewhere = await callOrganisation(this.knex, id);
    if (elsewhere && elsewhere !== caller.user.organisationId) return refuseForeign(this.knex, caller, 'calls', 'call', id);
    throw new NotFoundError();
  }

  /** The call a customer link token belongs to, whatever its state (customer-access.ts decides what it opens). */
  async byCustomerToken(token: unknown): Promise<Call | undefined> {
    if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    return findCall(this.knex, { guest_token_hash: sha256(token) });
  }

  /** The open call a customer link token joins, or why not (the signalling's answer). */
  async byGuestToken(token: unknown): Promise<{ call: Call } | { error: 'token_invalid' | 'call_ended' }> {
    return joinAccess(await customerAccess(this, token, 0));
  }

  async byId(id: string): Promise<Call | undefined> {
    return findCall(this.knex, { id });
  }

  /** A participant joined the call's media; the first time both are there, the call becomes active. */
  async joined(callId: string, participant: Participant, bothPresent: boolean, meta: Meta): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const call = await lockCall(trx, { id: callId });
      if (!call || call.status === 'ended') return;
      if (bothPresent && call.status === 'waiting') await markCallActive(trx, callId, call.startedAt);
      await this.audit.record({ organisationId: call.organisationId, actor: actorFor(participant), action: 'call.joined', target: { type: 'call', id: callId }, ...meta, ...customerOf(participant, callId), details: { role: participant.role } }, trx);
    });
  }

  async left(callId: string, participant: Participant, reason: string, meta: Meta): Promise<void> {
    const call = await this.byId(callId);
    if (!call) return;
    await this.audit.record({ organisationId: call.organisationId, actor: actorFor(participant), action: 'call.left', target: { type: 'call', id: callId }, ...meta, ...customerOf(participant, callId), details: { role: participant.role, reason } });
  }

  /** Ends a call (idempotent); returns false if it had already ended. */
  async end(callId: string, reason: string, actor: Actor, meta: Partial<Meta> = {}): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const call = await lockCall(trx, { id: callId });
      if (!call || call.status === 'ended') return false;
      await markCallEnded(trx, callId, reason);
      await this.audit.record({ organisationId: call.organisationId, actor, action: 'call.ended', target: { type: 'call', id: callId }, ip: meta.ip ?? null, userAgent: meta.userAgent ?? null, details: { reason, was: call.status } }, trx);
      return true;
    });
  }

  async endByClerk(caller: Caller, id: string): Promise<void> {
    const call = await this.getOwn(caller, id);
    if (call.status === 'ended') throw new ConflictError('call_ended');
    await this.end(call.id, 'ended_by_clerk', actorOf(caller.user), caller);
  }

  /**
   * After a restart no media room exists: active calls go back to waiting
   * (participants reconnect and rejoin by themselves), and calls whose
   * customer link expired before anyone came are ended. With several nodes
   * (`scope`): only the calls this node held (or no node), and those of
   * nodes that are gone; the living nodes' calls are theirs.
   */
  async reconcileOnStart(scope?: NodeScope): Promise<{ interrupted: number; expired: number }> {
    const active = await activeCallsWithin(this.knex, scope);
    for (const call of active) {
      await this.knex.transaction(async (trx) => {
        await markCallWaiting(trx, call.id);
        await this.audit.record({ organisationId: call.organisation_id, actor: SYSTEM, action: 'call.interrupted', target: { type: 'call', id: call.id }, details: { reason: 'restart' } }, trx);
      });
    }
    const expired = await this.expireStale();
    return { interrupted: active.length, expired };
  }

  /**
   * The active calls of nodes that are gone go back to waiting, each once
   * however many nodes sweep at the same time (audited `call.interrupted`,
   * reason `node_lost`): their participants reconnect, and the call is
   * placed again on a living node.
   */
  async interruptLost(nodeIds: string[]): Promise<number> {
    if (nodeIds.length === 0) return 0;
    return this.knex.transaction(async (trx) => {
      const changed = await interruptCallsOn(trx, nodeIds);
      for (const call of changed) {
        await this.audit.record({ organisationId: call.organisation_id, actor: SYSTEM, action: 'call.interrupted', target: { type: 'call', id: call.id }, details: { reason: 'node_lost' } }, trx);
      }
      return changed.length;
    });
  }

  /** Ends waiting calls whose customer link has expired. */
  async expireStale(): Promise<number> {
    const stale = await staleWaitingCallIds(this.knex);
    for (const id of stale) await this.end(id, 'expired', SYSTEM);
    return stale.length;
  }
}
