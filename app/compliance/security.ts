import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { AuditAction } from '../audit/actions';
import { revealEvents, type AuditEvent } from '../audit/service';
import { REFUSAL_COUNT_SQL } from '../audit/refusals';
import { callerOf } from '../access/caller';
import { eventsOfActions, weightedCounts } from '../audit/store';

/** The audit actions that signal an attack or a misconfiguration, in the order the page shows them. */
export const securitySignals = [
  'auth.login_failed',
  'auth.lockout',
  'auth.break_glass_used',
  'sso.login_refused',
  'api.refused',
  'security.cross_organisation_denied',
  'security.role_denied',
  'security.csrf_rejected',
  'security.signalling_refused',
  'security.recording_access_denied',
  'security.audit_chain_broken',
] as const satisfies readonly AuditAction[];

export type SecuritySignal = (typeof securitySignals)[number];

const HOUR_MS = 3_600_000;
export const windows = { day: 24 * HOUR_MS, week: 7 * 24 * HOUR_MS, month: 30 * 24 * HOUR_MS } as const;
export const SECURITY_PAGE_SIZE = 50;

export interface SignalCounts {
  kind: SecuritySignal;
  day: number;
  week: number;
  month: number;
}

/**
 * Security signals of one organisation, read from its audit trail: how
 * often each kind happened in the last 24 hours, 7 days and 30 days
 * (summing the counts of aggregated refusal rows), and
 * the latest events (with IPs), paged, optionally of one kind.
 */
export class SecuritySignals {
  constructor(private readonly knex: Knex) {}

  async counts(organisationId: string, now = new Date()): Promise<SignalCounts[]> {
    const since = (ms: number) => new Date(now.getTime() - ms);
    // An aggregated refusal row stands for `details.count` refusals (audit/refusals.ts).
    const rows = await weightedCounts(this.knex, organisationId, securitySignals, { from: since(windows.month), to: now, day: since(windows.day), week: since(windows.week) }, REFUSAL_COUNT_SQL);
    const byAction = new Map(rows.map((r) => [r.action, r]));
    return securitySignals.map((kind) => {
      const r = byAction.get(kind);
      return { kind, day: Number(r?.day ?? 0), week: Number(r?.week ?? 0), month: Number(r?.month ?? 0) };
    });
  }

  async latest(organisationId: string, kind: SecuritySignal | undefined, page: number): Promise<{ events: AuditEvent[]; total: number }> {
    const { rows, total } = await eventsOfActions(this.knex, organisationId, kind, securitySignals, { limit: SECURITY_PAGE_SIZE, offset: (page - 1) * SECURITY_PAGE_SIZE });
    return { events: await revealEvents(this.knex, rows), total };
  }
}

const querySchema = z.object({
  kind: z.enum(securitySignals).optional().catch(undefined),
  page: z.coerce.number().int().min(1).max(100_000).catch(1).default(1),
});

/** GET /compliance/security: counts per kind (24 h, 7 d, 30 d) and the latest events, paged, filtered by kind. */
export function securityPage(knex: Knex): RequestHandler {
  return async (req, res) => {
    const { organisationId } = callerOf(req).user;
    const { kind, page } = querySchema.parse({ kind: req.query.kind || undefined, page: req.query.page ?? 1 });
    const signals = new SecuritySignals(knex);
    const { events, total } = await signals.latest(organisationId, kind, page);
    const pages = Math.max(1, Math.ceil(total / SECURITY_PAGE_SIZE));
    const link = (p: number) => {
      const params = new URLSearchParams();
      if (kind) params.set('kind', kind);
      if (p > 1) params.set('page', String(p));
      const q = params.toString();
      return q ? `/compliance/security?${q}` : '/compliance/security';
    };
    res.render('compliance/security', {
      title: req.t('requests.security.title'),
      counts: await signals.counts(organisationId),
      kinds: securitySignals,
      kind: kind ?? '',
      events,
      total,
      page,
      pages,
      prev: page > 1 ? link(Math.min(page - 1, pages)) : null,
      next: page < pages ? link(page + 1) : null,
    });
  };
}
