import { destroyCallKeys } from '../audit/personal';
import { OrganisationScopedService } from '../access/scoped-service';
import { ConflictError, NotFoundError } from '../core/errors';
import { LegalHolds } from '../holds/service';
import { removeRecordingFiles } from '../recordings/storage';
import { lockOrganisationCalls, revokeCallLinkOnce } from '../calls/store';
import { deleteRecording, eraseConsentIps, recordingIdsOfCall } from '../recordings/service';
import { eraseCuration } from '../curation/service';
import { lockRequestForErasure, markExecuted } from './service';

/** What an erasure did and what it held back, kept with the request and in the audit trail. */
export interface ErasureResult {
  calls: number;
  erased: { calls: string[]; recordings: number; messages: number; items: number; notes: number; consent_ips: number };
  held: { call_id: string; reason: 'legal_hold' | 'call_open'; recordings_kept: number }[];
  /**
   * The customer's IP addresses and user agents in the audit trail: stored
   * only encrypted under the call's key, which the erasure destroyed; the
   * events stay (append-only), their values are unreadable from then on.
   */
  audit_ips_erased: { keys: number; events: number };
}

/**
 * Executes an erasure request: for each of its calls, the recordings (rows
 * and files), the chat, the selections (cards) and the clerk's notes are
 * deleted, the client IPs in the consent ledger are removed and the
 * customer link stops opening anything. The call's row stays (when, which
 * clerk, the non-personal reference) with the consent records (answer and
 * notice, without IP), so the organisation can still show that recording
 * was consented to.
 *
 * The customer's IPs and user agents in the append-only audit trail
 * (`call.joined`, `call.left`, consent events) are encrypted under the
 * call's key: the key is destroyed, so they become unreadable while the
 * events and the hash chain stay intact (crypto-shredding, audit/personal.ts).
 *
 * Held back: a call under a legal hold keeps everything except recordings
 * that are themselves not held; a call still open is left alone.
 *
 * All in one transaction with its audit event; the recording files are
 * removed inside it, so the rows go only when their files went.
 */
export class ErasureExecution extends OrganisationScopedService {
  async execute(requestId: string, dataDir: string): Promise<ErasureResult> {
    const holds = new LegalHolds(this.knex);
    return this.knex.transaction(async (trx) => {
      const request = await lockRequestForErasure(trx, this.organisationId, requestId);
      if (!request) throw new NotFoundError();
      if (request.kind !== 'erasure') throw new ConflictError('request_kind', { messageKey: 'requests.errors.kind' });
      if (request.executed_at || !['open', 'in_progress'].includes(request.status)) throw new ConflictError('request_executed', { messageKey: 'requests.errors.executed' });
      const callIds = request.call_ids ?? [];
      const calls = callIds.length ? await lockOrganisationCalls(trx, this.organisationId, callIds) : [];
      const result: ErasureResult = { calls: calls.length, erased: { calls: [], recordings: 0, messages: 0, items: 0, notes: 0, consent_ips: 0 }, held: [], audit_ips_erased: { keys: 0, events: 0 } };

      for (const call of calls) {
        if (call.status !== 'ended') {
          result.held.push({ call_id: call.id, reason: 'call_open', recordings_kept: 0 });
          continue;
        }
        const callHeld = await holds.protects(this.organisationId, { callId: call.id });
        const recordings = await recordingIdsOfCall(trx, this.organisationId, call.id);
        let kept = 0;
        for (const recordingId of recordings) {
          if (await holds.protects(this.organisationId, { recordingId })) {
            kept++;
            continue;
          }
          await deleteRecording(trx, recordingId);
          await removeRecordingFiles(dataDir, this.organisationId, recordingId);
          result.erased.recordings++;
        }
        if (callHeld) {
          result.held.push({ call_id: call.id, reason: 'legal_hold', recordings_kept: kept });
          continue;
        }
        const erased = await eraseCuration(trx, call.id);
        result.erased.messages += erased.messages;
        result.erased.items += erased.items;
        result.erased.notes += erased.notes;
        result.erased.consent_ips += await eraseConsentIps(trx, call.id);
        await revokeCallLinkOnce(trx, call.id);
        const shredded = await destroyCallKeys(trx, this.organisationId, call.id);
        result.audit_ips_erased.keys += shredded.keys;
        result.audit_ips_erased.events += shredded.events;
        result.erased.calls.push(call.id);
      }

      await markExecuted(trx, requestId, this.caller.user.id, result, request.status);
      await this.audit.record({ ...this.base(), action: 'subject_request.executed', target: { type: 'subject_request', id: requestId }, details: { kind: 'erasure', ...result } }, trx);
      return result;
    });
  }
}
