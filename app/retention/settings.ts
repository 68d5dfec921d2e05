import type { Knex } from 'knex';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { actorOf, type Caller } from '../access/caller';
import { ValidationError } from '../core/errors';
import { parseBody } from '../http/forms';
import { lockOrganisationSettings, mergeOrganisationSettings, organisationSettings } from '../organisation/store';

/**
 * How long each kind of data is kept, in whole days, per organisation
 * (kept in `organisations.settings.retention`). Everything of a call is
 * counted from the end of the call; API request logs from the request;
 * customers' IPs and user agents in the audit trail from the event (their
 * keys are destroyed: see audit/personal.ts); Insights' daily figures from
 * their day.
 * There is no "keep forever": every kind has a maximum of ten years.
 */
export const retentionKinds = ['recordings', 'chat', 'notes', 'selections', 'consents', 'calls', 'api_requests', 'audit_customer_ips', 'insights'] as const;
export type RetentionKind = (typeof retentionKinds)[number];
export type RetentionSettings = Record<RetentionKind, number>;

export const DEFAULT_RETENTION: RetentionSettings = {
  recordings: 90,
  chat: 90,
  notes: 180,
  selections: 180,
  // The recordings' 90 days plus three years (the regular limitation period), to prove consent.
  consents: 90 + 3 * 365,
  calls: 365,
  api_requests: 90,
  audit_customer_ips: 90,
  // Insights' daily figures (no personal data): two years, to compare a month with the same month a year before.
  insights: 730,
};

export const MIN_DAYS = 1;
export const MAX_DAYS = 3650;

/** Kinds kept within a call: the call's row goes last, so its setting must not be shorter than theirs. */
export const CALL_CONTENT: readonly RetentionKind[] = ['recordings', 'chat', 'notes', 'selections'];

const days = z.preprocess(
  (v) => (typeof v === 'number' ? String(v) : v),
  z
    .string('invalid_days')
    .trim()
    .regex(/^\d{1,5}$/, 'invalid_days')
    .transform(Number)
    .refine((n) => n >= MIN_DAYS && n <= MAX_DAYS, 'days_out_of_range'),
);

export const retentionSchema = z.object(Object.fromEntries(retentionKinds.map((k) => [k, days])) as Record<RetentionKind, typeof days>);

function settingsOf(stored: unknown): RetentionSettings {
  const value = (stored ?? {}) as Partial<Record<RetentionKind, unknown>>;
  const result = { ...DEFAULT_RETENTION };
  for (const kind of retentionKinds) {
    const n = value[kind];
    if (typeof n === 'number' && Number.isInteger(n) && n >= MIN_DAYS && n <= MAX_DAYS) result[kind] = n;
  }
  return result;
}

/** Rules between the settings, as field problems. */
function crossCheck(s: RetentionSettings): void {
  const problems = [];
  if (CALL_CONTENT.some((k) => s.calls < s[k])) problems.push({ field: 'calls', code: 'calls_too_short' });
  if (s.consents < s.recordings) problems.push({ field: 'consents', code: 'consents_too_short' });
  if (problems.length) throw new ValidationError(problems);
}

export class RetentionSettingsStore {
  constructor(private readonly knex: Knex) {}

  async get(organisationId: string): Promise<RetentionSettings> {
    return settingsOf((await organisationSettings(this.knex, organisationId))?.retention);
  }

  /** Saves the form; a change is audited with before and after. */
  async save(caller: Caller, body: unknown): Promise<RetentionSettings> {
    const after = parseBody(retentionSchema, body) as RetentionSettings;
    crossCheck(after);
    const organisationId = caller.user.organisationId;
    await this.knex.transaction(async (trx) => {
      const before = settingsOf((await lockOrganisationSettings(trx, organisationId))?.retention);
      if (retentionKinds.every((k) => before[k] === after[k])) return;
      await mergeOrganisationSettings(trx, organisationId, { retention: after });
      await new AuditService(this.knex).record(
        { organisationId, actor: actorOf(caller.user), action: 'retention.settings_changed', target: { type: 'organisation', id: organisationId }, ip: caller.ip, userAgent: caller.userAgent, details: { before, after } },
        trx,
      );
    });
    return after;
  }
}
