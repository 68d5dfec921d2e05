import { z } from 'zod';
import { OrganisationScopedService } from '../access/scoped-service';
import { ForbiddenError, NotFoundError } from '../core/errors';
import { RecordingPolicyStore, type RecordingPolicy } from './policy';
import { RecordingStore, toRecording, type Recording } from './service';
import type { RecordingRow } from '../db/tables';
import { recordingOrganisation, recordingsWithCall } from './service';

export interface ListedRecording extends Recording {
  callReference: string | null;
  clerkName: string | null;
}

const PAGE_SIZE = 50;

/** The one rule of who may open recordings: compliance always, admins and clerks as the organisation's policy says. */
export function mayOpenRecordings(role: string, policy: RecordingPolicy): boolean {
  return role === 'compliance' || (role === 'admin' && policy.adminAccess) || (role === 'clerk' && policy.clerkAccess);
}

/**
 * Staff access to recordings, per request with the caller. Compliance
 * staff always; admins and clerks only when the organisation's policy
 * allows it (clerks then see the recordings of their own calls). A refusal
 * answers 403 and is audited; an id of another organisation answers 404
 * and is audited too. Every playback start and download is audited.
 */
export class RecordingAccess extends OrganisationScopedService {
  private policy?: RecordingPolicy;

  private async allowed(): Promise<RecordingPolicy> {
    this.policy ??= await new RecordingPolicyStore(this.knex).get(this.organisationId);
    const role = this.caller.user.role;
    if (!mayOpenRecordings(role, this.policy)) {
      await this.audit.record({ ...this.base(), action: 'security.recording_access_denied', details: { role } });
      throw new ForbiddenError('recording_access_denied');
    }
    return this.policy;
  }

  /** Whether the caller may see recordings at all (for navigation: the same rule as `allowed`), without auditing. */
  async mayAccess(): Promise<boolean> {
    if (this.caller.user.role === 'compliance') return true;
    return mayOpenRecordings(this.caller.user.role, await new RecordingPolicyStore(this.knex).get(this.organisationId));
  }

  private scoped() {
    return recordingsWithCall(this.knex, this.organisationId, this.caller.user.role === 'clerk' ? this.caller.user.id : undefined);
  }

  async list(page = 1): Promise<{ recordings: ListedRecording[]; more: boolean }> {
    await this.allowed();
    const rows = await this.scoped().orderBy('r.started_at', 'desc').limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE);
    return { recordings: rows.slice(0, PAGE_SIZE).map(listed), more: rows.length > PAGE_SIZE };
  }

  async get(id: string): Promise<ListedRecording> {
    await this.allowed();
    if (!z.uuid().safeParse(id).success) throw new NotFoundError();
    const row = await this.scoped().where('r.id', id).first();
    if (row) return listed(row);
    const elsewhere = await recordingOrganisation(this.knex, id);
    if (elsewhere && elsewhere !== this.organisationId) return this.refuseForeign('recordings', 'recording', id);
    throw new NotFoundError();
  }

  async consents(id: string) {
    await this.get(id);
    return new RecordingStore(this.knex).consents(id);
  }

  /** A recording with a final file, for playback or download (audited when `audit` names the action). */
  async media(id: string, audit: 'recording.played' | 'recording.downloaded' | null): Promise<ListedRecording> {
    const recording = await this.get(id);
    if (!recording.fileName || (recording.status !== 'ready' && recording.status !== 'partial')) throw new NotFoundError('recording_not_ready');
    if (audit) await this.audit.record({ ...this.base(), action: audit, target: { type: 'recording', id }, details: { sha256: recording.sha256, call_id: recording.callId } });
    return recording;
  }
}

function listed(row: RecordingRow & { call_reference: string | null; clerk_name: string | null }): ListedRecording {
  return { ...toRecording(row), callReference: row.call_reference ?? null, clerkName: row.clerk_name ?? null };
}
