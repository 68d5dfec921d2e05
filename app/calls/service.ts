import type { Knex } from 'knex';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { SYSTEM, type Actor } from '../audit/actions';
import { actorOf, type Caller } from '../auth/caller';
import { refuseForeign } from '../auth/scoped-service';
import { randomToken, sha256 } from '../auth/tokens';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { customerAccess, joinAccess } from './customer-access';
import { callEvents } from './events';
import { CALL_REFERENCE_MAX, CALL_REFERENCE_PATTERN } from './shared';

export type CallStatus = 'waiting' | 'active' | 'ended';

export interface Call {
  id: string;
  organisationId: string;
  clerkId: string | null;
  status: CallStatus;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  endReason: string | null;
  guestTokenExpiresAt: Date | null;
  reference: string | null;
  scheduledAt: Date | null;
  linkRevokedAt: Date | null;
}

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

/** Who a new call belongs to and who started it. */
export type CallScope = { organisationId: string; clerkId: string; actor: Actor } & Meta;

export type Participant =
  | { role: 'clerk'; userId: string; label: string; organisationId: string }
  | { role: 'customer'; label: string };

export interface Meta {
  ip: string | null;
  userAgent: string | null;
}

const COLUMNS = ['id', 'organisation_id', 'clerk_id', 'status', 'created_at', 'started_at', 'ended_at', 'end_reason', 'guest_token_expires_at', 'reference', 'scheduled_at', 'link_revoked_at'];

function toCall(row: Record<string, unknown>): Call {
  return {
    id: row.id as string,
    organisationId: row.organisation_id as string,
    clerkId: (row.clerk_id as string | null) ?? null,
    status: row.status as CallStatus,
    createdAt: row.created_at as Date,
    startedAt: (row.started_at as Date | null) ?? null,
    endedAt: (row.ended_at as Date | null) ?? null,
    endReason: (row.end_reason as string | null) ?? null,
    guestTokenExpiresAt: (row.guest_token_expires_at as Date | null) ?? null,
    reference: (row.reference as string | null) ?? null,
    scheduledAt: (row.scheduled_at as Date | null) ?? null,
    linkRevokedAt: (row.link_revoked_at as Date | null) ?? null,
  };
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

  constructor(private readonly knex: Knex) {
    this.audit = new AuditService(knex);
  }

  /**
   * A new call of the caller (a clerk) and its customer link: 256 random
   * bits, of which only the SHA-256 is stored; valid for `validHours`
   * (default `linkHours`), with an optional reference and scheduled time.
   */
  async start(caller: Caller, linkHours: number, input: CallLinkInput = {}): Promise<{ call: Call; token: string }> {
    return this.create({ organisationId: caller.user.organisationId, clerkId: caller.user.id, actor: actorOf(caller.user), ip: caller.ip, userAgent: caller.userAgent }, linkHours, input);
  }

  /** The same for the organisation's own systems (REST API): the call is given to one of its clerks. */
  async startForClerk(scope: CallScope, linkHours: number, input: CallLinkInput = {}): Promise<{ call: Call; token: string }> {
    const clerk = await this.knex('users').where({ id: scope.clerkId, organisation_id: scope.organisationId, role: 'clerk', status: 'active' }).first('id');
    if (!clerk) throw new ValidationError([{ field: 'clerk_id', code: 'unknown_clerk' }]);
    return this.create(scope, linkHours, input);
  }

  private async create(scope: CallScope, linkHours: number, input: CallLinkInput): Promise<{ call: Call; token: string }> {
    const token = randomToken();
    const call = await this.knex.transaction((trx) => this.insert(trx, scope, sha256(token), linkHours, input));
    return { call, token };
  }

  /**
   * A call for a customer from the waiting queue, inside the queue's
   * transaction: the customer's ticket (already held as a hash) becomes the
   * call's customer token, so no new secret has to reach them.
   */
  async startFromQueue(trx: Knex.Transaction, scope: CallScope, ticketHash: string, linkHours: number, details: Record<string, unknown>): Promise<Call> {
    return this.insert(trx, scope, ticketHash, linkHours, {}, details);
  }

  private async insert(trx: Knex.Transaction, scope: CallScope, tokenHash: string, linkHours: number, input: CallLinkInput, details: Record<string, unknown> = {}): Promise<Call> {
    const hours = input.valid_hours ?? linkHours;
    const scheduledAt = input.scheduled_at ? new Date(input.scheduled_at) : null;
    const expiresAt = new Date(Math.max(Date.now(), scheduledAt?.getTime() ?? 0) + hours * 3600_000);
    const [row] = await trx('calls')
      .insert({
        organisation_id: scope.organisationId,
        clerk_id: scope.clerkId,
        guest_token_hash: tokenHash,
        guest_token_expires_at: expiresAt,
        reference: input.reference || null,
        scheduled_at: scheduledAt,
      })
      .returning(COLUMNS);
    await this.audit.record({ organisationId: scope.organisationId, actor: scope.actor, action: 'call.started', target: { type: 'call', id: row.id }, ip: scope.ip, userAgent: scope.userAgent, details: { valid_hours: hours, scheduled: scheduledAt !== null, reference: row.reference, ...details } }, trx);
    return toCall(row);
  }

  /** One organisation's calls, newest first, keyset-paged (REST API). */
  async listForOrganisation(organisationId: string, options: { status?: CallStatus; limit: number; before?: { createdAt: Date; id: string } }): Promise<Call[]> {
    const query = this.knex('calls').where({ organisation_id: organisationId });
    if (options.status) query.where({ status: options.status });
    if (options.before) {
      const { createdAt, id } = options.before;
      query.where((q) => q.where('created_at', '<', createdAt).orWhere((q2) => q2.where('created_at', '=', createdAt).andWhere('id', '<', id)));
    }
    const rows = await query.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(options.limit).select(COLUMNS);
    return rows.map(toCall);
  }

  /** One call of the organisation, or undefined (REST API). */
  async getForOrganisation(organisationId: string, id: string): Promise<Call | undefined> {
    if (!z.uuid().safeParse(id).success) return undefined;
    const row = await this.knex('calls').where({ id, organisation_id: organisationId }).first(COLUMNS);
    return row ? toCall(row) : undefined;
  }

  /** Revokes a call's customer link on behalf of the organisation's systems; a connected customer is disconnected (callEvents). */
  async revokeLinkForOrganisation(organisationId: string, id: string, actor: Actor, meta: Meta): Promise<Call | undefined> {
    const call = await this.getForOrganisation(organisationId, id);
    if (!call) return undefined;
    if (!call.linkRevokedAt) {
      await this.knex.transaction(async (trx) => {
        await trx('calls').where({ id }).update({ link_revoked_at: trx.fn.now() });
        await this.audit.record({ organisationId, actor, action: 'call.link_revoked', target: { type: 'call', id }, ...meta }, trx);
      });
    }
    callEvents.emit('linkRevoked', id);
    return this.getForOrganisation(organisationId, id);
  }

  /** The caller's calls that have not ended, newest first (the dashboard list). */
  async listOpen(caller: Caller): Promise<Call[]> {
    const rows = await this.knex('calls')
      .where({ organisation_id: caller.user.organisationId, clerk_id: caller.user.id })
      .whereNot({ status: 'ended' })
      .orderBy('created_at', 'desc')
      .limit(50)
      .select(COLUMNS);
    return rows.map(toCall);
  }

  /** The caller's ended calls, newest first (the dashboard's history). */
  async listEnded(caller: Caller, limit = 20): Promise<Call[]> {
    const rows = await this.knex('calls')
      .where({ organisation_id: caller.user.organisationId, clerk_id: caller.user.id, status: 'ended' })
      .orderBy('ended_at', 'desc')
      .limit(limit)
      .select(COLUMNS);
    return rows.map(toCall);
  }

  /** Revokes the customer link of one of the caller's calls: it opens nothing any more, and a connected customer is disconnected at once (callEvents). */
  async revokeLink(caller: Caller, id: string): Promise<void> {
    const call = await this.getOwn(caller, id);
    if (call.linkRevokedAt) return;
    await this.knex.transaction(async (trx) => {
      await trx('calls').where({ id: call.id }).update({ link_revoked_at: trx.fn.now() });
      await this.audit.record({ organisationId: call.organisationId, actor: actorOf(caller.user), action: 'call.link_revoked', target: { type: 'call', id: call.id }, ip: caller.ip, userAgent: caller.userAgent }, trx);
    });
    callEvents.emit('linkRevoked', call.id);
  }

  /** A call of the caller's organisation that the caller runs; others answer 404 (and other organisations' are audited). */
  async getOwn(caller: Caller, id: string): Promise<Call> {
    if (!z.uuid().safeParse(id).success) throw new NotFoundError();
    const row = await this.knex('calls').where({ id, organisation_id: caller.user.organisationId, clerk_id: caller.user.id }).first(COLUMNS);
    if (row) return toCall(row);
    // Another clerk's call of the same organisation is simply not found; another organisation's is audited too.
    const elsewhere = await this.knex('calls').where({ id }).first('organisation_id');
    if (elsewhere && elsewhere.organisation_id !== caller.user.organisationId) return refuseForeign(this.knex, caller, 'calls', 'call', id);
    throw new NotFoundError();
  }

  /** The call a customer link token belongs to, whatever its state (customer-access.ts decides what it opens). */
  async byCustomerToken(token: unknown): Promise<Call | undefined> {
    if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    const row = await this.knex('calls').where({ guest_token_hash: sha256(token) }).first(COLUMNS);
    return row ? toCall(row) : undefined;
  }

  /** The open call a customer link token joins, or why not (the signalling's answer). */
  async byGuestToken(token: unknown): Promise<{ call: Call } | { error: 'token_invalid' | 'call_ended' }> {
    return joinAccess(await customerAccess(this, token, 0));
  }

  async byId(id: string): Promise<Call | undefined> {
    const row = await this.knex('calls').where({ id }).first(COLUMNS);
    return row ? toCall(row) : undefined;
  }

  /** A participant joined the call's media; the first time both are there, the call becomes active. */
  async joined(callId: string, participant: Participant, bothPresent: boolean, meta: Meta): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const call = await trx('calls').where({ id: callId }).forUpdate().first(COLUMNS);
      if (!call || call.status === 'ended') return;
      if (bothPresent && call.status === 'waiting') {
        await trx('calls').where({ id: callId }).update({ status: 'active', started_at: call.started_at ?? trx.fn.now() });
      }
      await this.audit.record({ organisationId: call.organisation_id, actor: actorFor(participant), action: 'call.joined', target: { type: 'call', id: callId }, ...meta, ...customerOf(participant, callId), details: { role: participant.role } }, trx);
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
      const call = await trx('calls').where({ id: callId }).forUpdate().first(COLUMNS);
      if (!call || call.status === 'ended') return false;
      await trx('calls').where({ id: callId }).update({ status: 'ended', ended_at: trx.fn.now(), end_reason: reason });
      await this.audit.record({ organisationId: call.organisation_id, actor, action: 'call.ended', target: { type: 'call', id: callId }, ip: meta.ip ?? null, userAgent: meta.userAgent ?? null, details: { reason, was: call.status } }, trx);
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
   * customer link expired before anyone came are ended.
   */
  async reconcileOnStart(): Promise<{ interrupted: number; expired: number }> {
    const active = await this.knex('calls').where({ status: 'active' }).select('id', 'organisation_id');
    for (const call of active) {
      await this.knex.transaction(async (trx) => {
        await trx('calls').where({ id: call.id }).update({ status: 'waiting' });
        await this.audit.record({ organisationId: call.organisation_id, actor: SYSTEM, action: 'call.interrupted', target: { type: 'call', id: call.id }, details: { reason: 'restart' } }, trx);
      });
    }
    const expired = await this.expireStale();
    return { interrupted: active.length, expired };
  }

  /** Ends waiting calls whose customer link has expired. */
  async expireStale(): Promise<number> {
    const stale = await this.knex('calls').where({ status: 'waiting' }).where('guest_token_expires_at', '<=', this.knex.fn.now()).select('id');
    for (const call of stale) await this.end(call.id, 'expired', SYSTEM);
    return stale.length;
  }
}
