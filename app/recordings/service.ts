import type { Knex } from 'knex';
import { SYSTEM, type Actor } from '../audit/actions';
import { AuditService } from '../audit/service';
import { type RecordingRow } from '../db/tables';
import type { RecordingNotice } from './policy';

export type RecordingStatus = 'recording' | 'processing' | 'ready' | 'partial' | 'failed';
export type ConsentAnswer = 'granted' | 'declined' | 'withdrawn';

export interface Recording {
  id: string;
  organisationId: string;
  callId: string;
  status: RecordingStatus;
  startedBy: string | null;
  startedAt: Date;
  stoppedAt: Date | null;
  stopReason: string | null;
  progress: number;
  durationMs: number | null;
  fileName: string | null;
  size: number | null;
  sha256: string | null;
  encrypted: boolean;
  error: string | null;
}

export interface TrackRow {
  role: 'clerk' | 'customer';
  fileName: string;
  kinds: ('audio' | 'video')[];
  startedAtMs: number;
  endedAtMs: number | null;
  exitCode: number | null;
  partial: boolean;
}

export interface Meta {
  ip: string | null;
  userAgent: string | null;
}

export function toRecording(row: RecordingRow): Recording {
  return {
    id: row.id,
    organisationId: row.organisation_id,
    callId: row.call_id,
    status: row.status,
    startedBy: row.started_by ?? null,
    startedAt: row.started_at,
    stoppedAt: row.stopped_at ?? null,
    stopReason: row.stop_reason ?? null,
    progress: Number(row.progress ?? 0),
    durationMs: row.duration_ms === null || row.duration_ms === undefined ? null : Number(row.duration_ms),
    fileName: row.file_name ?? null,
    size: row.size === null || row.size === undefined ? null : Number(row.size),
    sha256: row.sha256 ?? null,
    encrypted: row.encrypted === true,
    error: row.error ?? null,
  };
}

/**
 * The recordings' rows and the consent ledger, for the appliance itself
 * (the live recorder, the finishing job, the start-up reconciliation):
 * every state change is audited in the same transaction. Staff reach
 * recordings through RecordingAccess, which checks the policy.
 */
export class RecordingStore {
  private readonly audit: AuditService;

  constructor(private readonly knex: Knex) {
    this.audit = new AuditService(knex);
  }

  async get(id: string): Promise<Recording | undefined> {
    const row = await this.knex('recordings').where({ id }).first();
    return row ? toRecording(row) : undefined;
  }

  /** A new recording of a call; the call's pending consents (asked before joining) are tied to it. */
  async create(call: { id: string; organisationId: string }, actor: Actor, startedBy: string | null, meta: Meta): Promise<Recording> {
    return this.knex.transaction(async (trx) => {
      const [row] = (await trx('recordings').insert({ organisation_id: call.organisationId, call_id: call.id, started_by: startedBy }).returning('*'));
      await trx('recording_consents').where({ call_id: call.id }).whereNull('recording_id').update({ recording_id: row!.id });
      await this.audit.record({ organisationId: call.organisationId, actor, action: 'recording.started', target: { type: 'recording', id: row!.id }, ...meta, details: { call_id: call.id } }, trx);
      return toRecording(row!);
    });
  }

  /** One answer in the consent ledger (with the notice shown and the client's IP), audited. */
  async consent(
    call: { id: string; organisationId: string },
    entry: { recordingId: string | null; role: 'clerk' | 'customer'; userId: string | null; answer: ConsentAnswer; notice: RecordingNotice },
    actor: Actor,
    meta: Meta,
  ): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const [row] = await trx('recording_consents')
        .insert({
          organisation_id: call.organisationId,
          call_id: call.id,
          recording_id: entry.recordingId,
          role: entry.role,
          user_id: entry.userId,
          answer: entry.answer,
          notice_text: entry.notice.text,
          notice_version: entry.notice.version,
          language: entry.notice.language,
          ip: meta.ip,
        })
        .returning('id');
      await this.audit.record(
        {
          organisationId: call.organisationId,
          actor,
          action: 'recording.consent',
          target: entry.recordingId ? { type: 'recording', id: entry.recordingId } : { type: 'call', id: call.id },
          ...meta,
          // The customer's IP and user agent: encrypted under the call's key (audit/personal.ts).
          ...(entry.role === 'customer' ? { customer: { callId: call.id } } : {}),
          details: { consent_id: row!.id, call_id: call.id, role: entry.role, answer: entry.answer, notice_version: entry.notice.version },
        },
        trx,
      );
    });
  }

  /** The customer's latest answer in this call (before joining or during it). */
  async latestAnswer(callId: string, role: 'clerk' | 'customer'): Promise<ConsentAnswer | undefined> {
    const row = await this.knex('recording_consents').where({ call_id: callId, role }).orderBy([{ column: 'answered_at', order: 'desc' }, { column: 'id', order: 'desc' }]).first('answer');
    return row?.answer;
  }

  async consents(recordingId: string): Promise<{ role: string; answer: ConsentAnswer; noticeVersion: string; noticeText: string; language: string; ip: string | null; answeredAt: Date }[]> {
    const rows = await this.knex('recording_consents').where({ recording_id: recordingId }).orderBy('answered_at');
    return rows.map((r) => ({ role: r.role, answer: r.answer, noticeVersion: r.notice_version, noticeText: r.notice_text, language: r.language, ip: r.ip, answeredAt: r.answered_at }));
  }

  async addTrack(recordingId: string, track: TrackRow): Promise<void> {
    await this.knex('recording_tracks')
      .insert({ recording_id: recordingId, role: track.role, file_name: track.fileName, kinds: track.kinds, started_at_ms: track.startedAtMs, ended_at_ms: track.endedAtMs, exit_code: track.exitCode, partial: track.partial })
      .onConflict(['recording_id', 'file_name'])
      .merge(['kinds', 'ended_at_ms', 'exit_code', 'partial']);
  }

  async tracks(recordingId: string): Promise<TrackRow[]> {
    const rows = await this.knex('recording_tracks').where({ recording_id: recordingId }).orderBy('started_at_ms');
    return rows.map((r) => ({ role: r.role, fileName: r.file_name, kinds: r.kinds as TrackRow['kinds'], startedAtMs: Number(r.started_at_ms), endedAtMs: r.ended_at_ms === null ? null : Number(r.ended_at_ms), exitCode: r.exit_code, partial: r.partial }));
  }

  /** Recording stopped: the final file is to be made (status processing). `partial` marks an interrupted one. False when it was no longer running. */
  async stopped(id: string, reason: string, partial: boolean, actor: Actor = SYSTEM, meta: Meta = { ip: null, userAgent: null }): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const row = await trx('recordings').where({ id }).forUpdate().first('organisation_id', 'call_id', 'status', 'stop_reason');
      if (!row || row.status !== 'recording') return false;
      await trx('recordings').where({ id }).update({ status: 'processing', stopped_at: trx.fn.now(), stop_reason: partial ? `partial:${reason}` : reason });
      await this.audit.record({ organisationId: row.organisation_id, actor, action: 'recording.stopped', target: { type: 'recording', id }, ...meta, ...(actor.type === 'guest' ? { customer: { callId: row.call_id } } : {}), details: { reason, partial } }, trx);
      return true;
    });
  }

  /** Running recordings of calls within `scope` (app/calls/store.ts NodeScope): on these nodes, or (`unplaced`) on none. */
  async runningWithin(scope: { nodeIds: string[]; unplaced: boolean }): Promise<Recording[]> {
    const rows = await this.knex('recordings')
      .join('calls', 'calls.id', 'recordings.call_id')
      .where('recordings.status', 'recording')
      .where((q) => {
        q.whereIn('calls.node_id', scope.nodeIds);
        if (scope.unplaced) q.orWhereNull('calls.node_id');
      })
      .select('recordings.*');
    return rows.map(toRecording);
  }

  async setProgress(id: string, percent: number): Promise<void> {
    await this.knex('recordings').where({ id, status: 'processing' }).update({ progress: Math.max(0, Math.min(100, Math.round(percent))) });
  }

  /** The final file is there: ready, or partial when the recording was interrupted. */
  async finalised(id: string, file: { fileName: string; size: number; sha256: string; encrypted: boolean; durationMs: number }): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const row = await trx('recordings').where({ id }).forUpdate().first('organisation_id', 'stop_reason');
      if (!row) return;
      const partial = String(row.stop_reason ?? '').startsWith('partial:');
      await trx('recordings').where({ id }).update({
        status: partial ? 'partial' : 'ready', progress: 100, file_name: file.fileName, size: file.size, sha256: file.sha256, encrypted: file.encrypted, duration_ms: file.durationMs, finalised_at: trx.fn.now(), error: null,
      });
      await this.audit.record(
        { organisationId: row.organisation_id, actor: SYSTEM, action: 'recording.finalised', target: { type: 'recording', id }, details: { sha256: file.sha256, size: file.size, duration_ms: file.durationMs, encrypted: file.encrypted, partial } },
        trx,
      );
    });
  }

  async failed(id: string, error: string): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const row = await trx('recordings').where({ id }).forUpdate().first('organisation_id');
      if (!row) return;
      await trx('recordings').where({ id }).update({ status: 'failed', error: error.slice(0, 500), finalised_at: trx.fn.now() });
      await this.audit.record({ organisationId: row.organisation_id, actor: SYSTEM, action: 'recording.failed', target: { type: 'recording', id }, details: { error: error.slice(0, 200) } }, trx);
    });
  }

  async withStatus(status: RecordingStatus): Promise<Recording[]> {
    return (await this.knex('recordings').where({ status }).select('*')).map(toRecording);
  }
}

// --- For other features (their transaction passed in) ------------------------

const FINISHED = ['ready', 'partial', 'failed'];

/** Ids of the recordings of the calls (purging an organisation). */
export async function recordingIdsOfCalls(trx: Knex.Transaction, callIds: string[]): Promise<string[]> {
  return (await trx('recordings').whereIn('call_id', callIds).select('id')).map((r: { id: string }) => r.id);
}

/** Recordings running and being finished, counted (the status page); `organisationId` limits them to one organisation. */
export async function countUnfinishedRecordings(db: Knex, organisationId?: string): Promise<{ recording: number; processing: number }> {
  const query = db('recordings').whereIn('status', ['recording', 'processing']);
  if (organisationId) query.where({ organisation_id: organisationId });
  const rows = (await query.select('status').count({ n: '*' }).groupBy('status')) as unknown as { status: string; n: string }[];
  const by = new Map(rows.map((r) => [String(r.status), Number(r.n)]));
  return { recording: by.get('recording') ?? 0, processing: by.get('processing') ?? 0 };
}

/** The organisation's finished recordings of the calls `dueCalls` selects (retention). */
export function finishedRecordingsOf(db: Knex, organisationId: string, dueCalls: Knex.QueryBuilder): Knex.QueryBuilder {
  return db('recordings').where('organisation_id', organisationId).whereIn('status', FINISHED).whereIn('call_id', dueCalls);
}

/** Deletes one finished recording of the organisation (its tracks go with it); returns whether it did. */
export async function deleteFinishedRecording(trx: Knex.Transaction, organisationId: string, id: string): Promise<boolean> {
  return (await trx('recordings').where({ id, organisation_id: organisationId }).whereIn('status', FINISHED).del()) > 0;
}

/** Consent records of the calls `dueCalls` selects that no recording of their call is left for (retention; aliased `rc`). */
export function orphanedConsentsOf(db: Knex, organisationId: string, dueCalls: Knex.QueryBuilder): Knex.QueryBuilder {
  return db('recording_consents as rc')
    .where('rc.organisation_id', organisationId)
    .whereIn('rc.call_id', dueCalls)
    .whereNotExists((q) => q.select(db.raw('1')).from('recordings as r').whereRaw('r.call_id = rc.call_id'));
}

/** Deletes the consent records `ids` selects; returns how many. */
export async function deleteConsents(db: Knex, ids: Knex.QueryBuilder): Promise<number> {
  return db('recording_consents').whereIn('id', ids).del();
}

/** The organisation's playable recordings (ready or partial, with a file) of the calls, oldest first (data-subject access). */
export async function playableRecordingsOf(db: Knex, organisationId: string, callIds: string[]): Promise<Pick<RecordingRow, 'id' | 'call_id' | 'file_name' | 'size' | 'sha256' | 'encrypted'>[]> {
  return db('recordings').where({ organisation_id: organisationId }).whereIn('call_id', callIds).whereIn('status', ['ready', 'partial']).whereNotNull('file_name').orderBy('started_at').select('id', 'call_id', 'file_name', 'size', 'sha256', 'encrypted');
}

/** The customer's consent records of a call, as a data-subject access export shows them. */
export async function customerConsentsOf(db: Knex, callId: string) {
  return db('recording_consents').where({ call_id: callId, role: 'customer' }).orderBy('answered_at').select('recording_id', 'answer', 'notice_text', 'notice_version', 'language', 'ip', 'answered_at');
}

/** Ids of the organisation's recordings of a call (erasure). */
export async function recordingIdsOfCall(trx: Knex.Transaction, organisationId: string, callId: string): Promise<string[]> {
  return (await trx('recordings').where({ call_id: callId, organisation_id: organisationId }).select('id')).map((r: { id: string }) => r.id);
}

export async function deleteRecording(trx: Knex.Transaction, id: string): Promise<void> {
  await trx('recordings').where({ id }).delete();
}

/** Removes the IP from a call's consent records (erasure); returns how many had one. */
export async function eraseConsentIps(trx: Knex.Transaction, callId: string): Promise<number> {
  return trx('recording_consents').where({ call_id: callId }).whereNotNull('ip').update({ ip: null });
}

/** The organisation's recording: its id as stored and its call, or undefined. */
export async function organisationRecording(db: Knex, organisationId: string, id: string): Promise<Pick<RecordingRow, 'id' | 'call_id'> | undefined> {
  return db('recordings').where({ id, organisation_id: organisationId }).first('id', 'call_id');
}

/** The organisation a recording belongs to, whatever organisation asks (for the cross-organisation check). */
export async function recordingOrganisation(db: Knex, id: string): Promise<string | undefined> {
  return (await db('recordings').where({ id }).first('organisation_id'))?.organisation_id;
}

/** The organisation's recordings with their call's reference and clerk's name (aliased `r`); `clerkId` keeps a clerk's own. */
export function recordingsWithCall(db: Knex, organisationId: string, clerkId?: string): Knex.QueryBuilder {
  const query = db('recordings as r')
    .join('calls as c', 'c.id', 'r.call_id')
    .leftJoin('users as u', 'u.id', 'c.clerk_id')
    .where('r.organisation_id', organisationId);
  if (clerkId) query.where('c.clerk_id', clerkId);
  return query.select('r.*', 'c.reference as call_reference', 'u.name as clerk_name');
}
