import { z } from 'zod';
import { OrganisationScopedService } from '../access/scoped-service';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors';
import { parseBody } from '../http/forms';
import { holdScopes, type HoldScope } from './service';
import { organisationCallId } from '../calls/store';
import { organisationRecording } from '../recordings/service';
import { activeHoldExists, insertHold, lockHold, markLifted, organisationHolds } from './store';

export interface ListedHold {
  id: string;
  scope: HoldScope;
  callId: string | null;
  recordingId: string | null;
  reason: string;
  createdAt: Date;
  createdBy: string | null;
  liftedAt: Date | null;
  liftedBy: string | null;
  liftReason: string | null;
}

const reason = z.string('reason_required').trim().min(1, 'reason_required').max(1000, 'reason_too_long');

export const placeSchema = z.object({
  scope: z.enum(holdScopes, 'invalid_scope'),
  target: z.string().trim().optional(),
  reason,
});

export const liftSchema = z.object({ lift_reason: reason });

const uuid = z.uuid();

/**
 * Compliance staff's side of legal holds: list, place and lift, scoped to
 * the caller's organisation, each change audited with its reason in the
 * same transaction.
 */
export class HoldManager extends OrganisationScopedService {
  async list(): Promise<{ active: ListedHold[]; lifted: ListedHold[] }> {
    const rows = await organisationHolds(this.knex, this.organisationId);
    const holds: ListedHold[] = rows.map((r) => ({
      id: r.id,
      scope: r.scope,
      callId: r.call_id,
      recordingId: r.recording_id,
      reason: r.reason,
      createdAt: r.created_at,
      createdBy: r.created_by_name ?? null,
      liftedAt: r.lifted_at,
      liftedBy: r.lifted_by_name ?? null,
      liftReason: r.lift_reason,
    }));
    return { active: holds.filter((h) => !h.liftedAt), lifted: holds.filter((h) => h.liftedAt) };
  }

  /** Places a hold on the organisation, one of its calls or one of its recordings. */
  async place(body: unknown): Promise<string> {
    const input = parseBody(placeSchema, body);
    const target = await this.resolveTarget(input.scope, input.target ?? '');
    return this.knex.transaction(async (trx) => {
      // One writer per organisation, so two requests cannot both place the same hold.
      await trx.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [`holds:${this.organisationId}`]);
      if (await activeHoldExists(trx, this.organisationId, { scope: input.scope, call_id: target.callId, recording_id: target.recordingId })) throw new ValidationError([{ field: 'target', code: 'already_held' }]);
      const id = await insertHold(trx, { organisation_id: this.organisationId, scope: input.scope, call_id: target.callId, recording_id: target.recordingId, reason: input.reason, created_by: this.caller.user.id });
      await this.audit.record(
        { ...this.base(), action: 'legal_hold.placed', target: { type: 'legal_hold', id }, details: { scope: input.scope, call_id: target.callId, recording_id: target.recordingId, reason: input.reason } },
        trx,
      );
      return id;
    });
  }

  /** Lifts an active hold, with a reason. */
  async lift(id: string, body: unknown): Promise<void> {
    if (!uuid.safeParse(id).success) throw new NotFoundError();
    const input = parseBody(liftSchema, body);
    await this.knex.transaction(async (trx) => {
      const hold = await lockHold(trx, this.organisationId, id);
      if (!hold) return this.refuseForeign('legal_holds', 'legal_hold', id);
      if (hold.lifted_at) throw new ConflictError('hold_already_lifted', { messageKey: 'retention.holds.already_lifted' });
      await markLifted(trx, id, this.caller.user.id, input.lift_reason);
      await this.audit.record(
        { ...this.base(), action: 'legal_hold.lifted', target: { type: 'legal_hold', id }, details: { scope: hold.scope, call_id: hold.call_id, recording_id: hold.recording_id, reason: input.lift_reason } },
        trx,
      );
    });
  }

  /** The call (and recording) a hold names; the id must be one of the caller's organisation. */
  private async resolveTarget(scope: HoldScope, target: string): Promise<{ callId: string | null; recordingId: string | null }> {
    if (scope === 'organisation') return { callId: null, recordingId: null };
    if (!target) throw new ValidationError([{ field: 'target', code: 'target_required' }]);
    const unknown = new ValidationError([{ field: 'target', code: 'unknown_target' }]);
    if (!uuid.safeParse(target).success) throw unknown;
    if (scope === 'call') {
      const callId = await organisationCallId(this.knex, this.organisationId, target);
      if (!callId) {
        await this.auditForeign('calls', 'call', target);
        throw unknown;
      }
      return { callId, recordingId: null };
    }
    const recording = await organisationRecording(this.knex, this.organisationId, target);
    if (!recording) {
      await this.auditForeign('recordings', 'recording', target);
      throw unknown;
    }
    return { callId: recording.call_id, recordingId: recording.id };
  }
}
