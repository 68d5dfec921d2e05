import type { Knex } from 'knex';
import { z } from 'zod';
import { OrganisationScopedService } from '../access/scoped-service';
import { sha256 } from '../security/tokens';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors';
import { parseBody } from '../http/forms';
import { callsWithClerk, identifiedCallIds, type CallIdentification } from '../calls/store';
import { clerksOf } from '../staff/store';
import { type SubjectRequestRow } from '../db/tables';

export const requestKinds = ['erasure', 'access'] as const;
export type RequestKind = (typeof requestKinds)[number];
export const requestStatuses = ['open', 'in_progress', 'completed', 'rejected'] as const;
export type RequestStatus = (typeof requestStatuses)[number];
export const identifications = ['call_link', 'reference', 'window'] as const;
export type Identification = (typeof identifications)[number];

/** A request must be answered within a month (GDPR Art. 12(3)); 30 days are counted. */
export const DUE_DAYS = 30;
const DAY_MS = 86_400_000;

/** Where a status may go next; completed and rejected are final. */
const NEXT: Record<RequestStatus, RequestStatus[]> = {
  open: ['in_progress', 'rejected'],
  in_progress: ['completed', 'rejected'],
  completed: [],
  rejected: [],
};

export interface SubjectRequest {
  id: string;
  kind: RequestKind;
  status: RequestStatus;
  identifiedBy: Identification;
  callReference: string | null;
  windowFrom: Date | null;
  windowTo: Date | null;
  windowClerkId: string | null;
  callIds: string[];
  dueAt: Date;
  createdAt: Date;
  executedAt: Date | null;
  result: Record<string, unknown> | null;
  closedAt: Date | null;
  overdue: boolean;
}

export interface RequestNote {
  status: RequestStatus;
  note: string;
  createdBy: string | null;
  createdAt: Date;
}

/** Calls a request may act on, as stored with it. */
export interface RequestCall {
  id: string;
  reference: string | null;
  status: string;
  createdAt: Date;
  endedAt: Date | null;
  clerkName: string | null;
}

/** A datetime-local value (no zone) counts as UTC, as the form says. */
export function utcDate(value: string): Date {
  return new Date(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value) ? `${value}Z` : value);
}

const blank = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);
const dateTime = z.preprocess(blank, z.string().trim().refine((v) => !Number.isNaN(Date.parse(v)), 'invalid_date').optional());

export const registerSchema = z
  .object({
    kind: z.enum(requestKinds, 'invalid'),
    identified_by: z.enum(identifications, 'invalid'),
    call_link: z.preprocess(blank, z.string().trim().max(2000, 'too_long').optional()),
    reference: z.preprocess(blank, z.string().trim().max(64, 'too_long').optional()),
    window_from: dateTime,
    window_to: dateTime,
    clerk_id: z.preprocess(blank, z.uuid('invalid').optional()),
    note: z.preprocess((v) => v ?? '', z.string().trim().max(2000, 'too_long')),
  })
  .superRefine((v, ctx) => {
    if (v.identified_by === 'call_link' && !v.call_link) ctx.addIssue({ code: 'custom', path: ['call_link'], message: 'required' });
    if (v.identified_by === 'reference' && !v.reference) ctx.addIssue({ code: 'custom', path: ['reference'], message: 'required' });
    if (v.identified_by === 'window') {
      if (!v.window_from) ctx.addIssue({ code: 'custom', path: ['window_from'], message: 'required' });
      if (!v.window_to) ctx.addIssue({ code: 'custom', path: ['window_to'], message: 'required' });
      if (v.window_from && v.window_to && utcDate(v.window_from) > utcDate(v.window_to)) ctx.addIssue({ code: 'custom', path: ['window_to'], message: 'date_order' });
    }
  });

export const statusSchema = z.object({
  status: z.enum(requestStatuses, 'invalid'),
  note: z.preprocess((v) => v ?? '', z.string().trim().max(2000, 'too_long')),
});

/** The customer's token from what staff paste: the whole link (`.../join/<token>`, with or without a fragment) or the token alone. */
export function tokenFromLink(input: string): string | undefined {
  const match = /(?:^|\/join\/|#customer=)([A-Za-z0-9_-]{43})(?=$|[/?#])/.exec(input.trim());
  return match?.[1];
}

const COLUMNS = ['id', 'kind', 'status', 'identified_by', 'call_reference', 'window_from', 'window_to', 'window_clerk_id', 'call_ids', 'due_at', 'created_at', 'executed_at', 'result', 'closed_at'] as const;

function toRequest(row: Pick<SubjectRequestRow, (typeof COLUMNS)[number]>, now: Date): SubjectRequest {
  const status = row.status;
  const dueAt = row.due_at;
  return {
    id: row.id,
    kind: row.kind,
    status,
    identifiedBy: row.identified_by,
    callReference: row.call_reference ?? null,
    windowFrom: row.window_from ?? null,
    windowTo: row.window_to ?? null,
    windowClerkId: row.window_clerk_id ?? null,
    callIds: row.call_ids ?? [],
    dueAt,
    createdAt: row.created_at,
    executedAt: row.executed_at ?? null,
    result: row.result ?? null,
    closedAt: row.closed_at ?? null,
    overdue: isOverdue(status, dueAt, now),
  };
}

/** Due date passed and the request not answered (completed or rejected). */
export function isOverdue(status: RequestStatus, dueAt: Date, now: Date): boolean {
  return (status === 'open' || status === 'in_progress') && dueAt.getTime() < now.getTime();
}

/** Counts the organisation's overdue requests (the dashboard's flag). */
export async function overdueRequestCount(knex: Knex, organisationId: string, now = new Date()): Promise<number> {
  const [{ n }] = (await knex('subject_requests').where({ organisation_id: organisationId }).whereIn('status', ['open', 'in_progress']).where('due_at', '<', now).count({ n: '*' })) as [{ n: string }];
  return Number(n);
}

/**
 * Data-subject requests of the caller's organisation: registered, tracked,
 * listed with the overdue ones flagged. Execution lives in `erasure.ts`
 * and `access-zip.ts`. Every change is audited in its transaction.
 */
export class SubjectRequests extends OrganisationScopedService {
  private now(): Date {
    return new Date();
  }

  /** Registers a request: the customer's calls are found now and kept with it; due in 30 days. */
  async register(body: unknown): Promise<SubjectRequest> {
    const input = parseBody(registerSchema, body);
    const callIds = await this.findCalls(input);
    const dueAt = new Date(this.now().getTime() + DUE_DAYS * DAY_MS);
    return this.knex.transaction(async (trx) => {
      const [row] = await trx('subject_requests')
        .insert({
          organisation_id: this.organisationId,
          kind: input.kind,
          identified_by: input.identified_by,
          call_reference: input.identified_by === 'reference' ? input.reference : null,
          window_from: input.identified_by === 'window' ? utcDate(input.window_from!) : null,
          window_to: input.identified_by === 'window' ? utcDate(input.window_to!) : null,
          window_clerk_id: input.identified_by === 'window' ? input.clerk_id ?? null : null,
          call_ids: callIds,
          due_at: dueAt,
          created_by: this.caller.user.id,
        })
        .returning(COLUMNS);
      await trx('subject_request_notes').insert({ request_id: row!.id, status: 'open', note: input.note, created_by: this.caller.user.id });
      await this.audit.record(
        { ...this.base(), action: 'subject_request.registered', target: { type: 'subject_request', id: row!.id }, details: { kind: input.kind, identified_by: input.identified_by, calls: callIds.length, due_at: dueAt.toISOString() } },
        trx,
      );
      return toRequest(row!, this.now());
    });
  }

  /** The calls of the organisation the identification names; none found is a validation problem of that field. */
  private async findCalls(input: z.infer<typeof registerSchema>): Promise<string[]> {
    let field: string;
    let identification: CallIdentification;
    if (input.identified_by === 'call_link') {
      field = 'call_link';
      const token = tokenFromLink(input.call_link!);
      if (!token) throw new ValidationError([{ field, code: 'invalid_link' }]);
      identification = { by: 'token_hash', hash: sha256(token) };
    } else if (input.identified_by === 'reference') {
      field = 'reference';
      identification = { by: 'reference', reference: input.reference };
    } else {
      field = 'window_from';
      identification = { by: 'window', from: utcDate(input.window_from!), to: utcDate(input.window_to!), ...(input.clerk_id ? { clerkId: input.clerk_id } : {}) };
    }
    const ids = await identifiedCallIds(this.knex, this.organisationId, identification);
    if (ids.length === 0) throw new ValidationError([{ field, code: 'no_calls' }]);
    return ids;
  }

  async list(): Promise<SubjectRequest[]> {
    const rows = await this.knex('subject_requests')
      .where({ organisation_id: this.organisationId })
      .orderByRaw(`CASE WHEN status IN ('open', 'in_progress') THEN 0 ELSE 1 END, due_at ASC, created_at DESC`)
      .limit(500)
      .select(...COLUMNS);
    const now = this.now();
    return rows.map((r) => toRequest(r, now));
  }

  /** One request of the organisation; another organisation's id answers 404 and is audited. */
  async get(id: string): Promise<SubjectRequest> {
    if (!z.uuid().safeParse(id).success) throw new NotFoundError();
    const row = await this.knex('subject_requests').where({ id, organisation_id: this.organisationId }).first(...COLUMNS);
    if (!row) return this.refuseForeign('subject_requests', 'subject_request', id);
    return toRequest(row, this.now());
  }

  async notes(id: string): Promise<RequestNote[]> {
    const rows = await this.knex('subject_request_notes as n').leftJoin('users as u', 'u.id', 'n.created_by').where('n.request_id', id).orderBy('n.created_at').select('n.status', 'n.note', 'u.name as created_by', 'n.created_at');
    return rows.map((r) => ({ status: r.status, note: r.note, createdBy: r.created_by ?? null, createdAt: r.created_at }));
  }

  /** The request's calls as they are now (erased content leaves the call's metadata). */
  async calls(request: SubjectRequest): Promise<RequestCall[]> {
    if (request.callIds.length === 0) return [];
    const rows = await callsWithClerk(this.knex, this.organisationId, request.callIds);
    return rows.map((r) => ({ id: r.id, reference: r.reference, status: r.status, createdAt: r.created_at, endedAt: r.ended_at, clerkName: r.clerk_name ?? null }));
  }

  /** Moves the status one step (with a note); completing needs the request executed first. */
  async changeStatus(id: string, body: unknown): Promise<void> {
    const input = parseBody(statusSchema, body);
    await this.knex.transaction(async (trx) => {
      const row = await trx('subject_requests').where({ id, organisation_id: this.organisationId }).forUpdate().first('status', 'executed_at', 'kind');
      if (!row) throw new NotFoundError();
      const from = row.status as RequestStatus;
      if (!NEXT[from].includes(input.status)) throw new ConflictError('request_status', { messageKey: 'requests.errors.status' });
      if (input.status === 'completed' && !row.executed_at) throw new ConflictError('request_not_executed', { messageKey: 'requests.errors.not_executed' });
      await trx('subject_requests').where({ id }).update({ status: input.status, updated_at: trx.fn.now(), closed_at: input.status === 'completed' || input.status === 'rejected' ? trx.fn.now() : null });
      await trx('subject_request_notes').insert({ request_id: id, status: input.status, note: input.note, created_by: this.caller.user.id });
      await this.audit.record({ ...this.base(), action: 'subject_request.status_changed', target: { type: 'subject_request', id }, details: { kind: row.kind, from, to: input.status } }, trx);
    });
  }

  /** The organisation's clerks, for the time-window form. */
  async clerks(): Promise<{ id: string; name: string }[]> {
    return clerksOf(this.knex, this.organisationId);
  }
}

// --- For the executions and closure (their transaction passed in) ------------

/** The organisation's request with what executing it needs. */
export async function requestForExecution(db: Knex, organisationId: string, id: string): Promise<Pick<SubjectRequestRow, 'id' | 'kind' | 'status' | 'executed_at' | 'call_ids' | 'created_at' | 'due_at'> | undefined> {
  return db('subject_requests').where({ id, organisation_id: organisationId }).first('id', 'kind', 'status', 'executed_at', 'call_ids', 'created_at', 'due_at');
}

/** Locks the organisation's request for the transaction. */
export async function lockRequest(trx: Knex.Transaction, organisationId: string, id: string): Promise<void> {
  await trx('subject_requests').where({ id, organisation_id: organisationId }).forUpdate().first('id');
}

/** Locks the organisation's request and gives what an erasure needs. */
export async function lockRequestForErasure(trx: Knex.Transaction, organisationId: string, id: string): Promise<Pick<SubjectRequestRow, 'kind' | 'status' | 'executed_at' | 'call_ids'> | undefined> {
  return trx('subject_requests').where({ id, organisation_id: organisationId }).forUpdate().first('kind', 'status', 'executed_at', 'call_ids');
}

/** Marks the request executed by the user, with its result; an open request is in progress from then on. */
export async function markExecuted(trx: Knex.Transaction, id: string, userId: string, result: unknown, status: SubjectRequestRow['status']): Promise<void> {
  await trx('subject_requests').where({ id }).update({ executed_at: trx.fn.now(), executed_by: userId, result: JSON.stringify(result), status: status === 'open' ? 'in_progress' : status, updated_at: trx.fn.now() });
}

/** Deletes the organisation's requests (purging it); returns how many. */
export async function deleteOrganisationRequests(trx: Knex.Transaction, organisationId: string): Promise<number> {
  return trx('subject_requests').where({ organisation_id: organisationId }).delete();
}

