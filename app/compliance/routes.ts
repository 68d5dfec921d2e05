import { selectionFilter } from './audit-export';
import type { Request, RequestHandler } from 'express';
import type { Config } from '../../config';
import type { Knex } from 'knex';
import { z } from 'zod';
import { auditActions } from '../audit/actions';
import { AuditCheckpoints } from '../audit/checkpoints';
import { AuditService, type AuditFilter } from '../audit/service';
import { callerOf } from '../access/caller';
import { ValidationError } from '../core/errors';
import { fieldErrors } from '../http/forms';
import { parseQuery } from '../http/query';

export const PAGE_SIZE = 50;

/** The action groups (`auth`, `user`, ...) in the order the actions list them. */
export const actionGroups = [...new Set(auditActions.map((a) => a.split('.')[0]!))];

/** The i18n key of an action's label: `compliance.actions.auth_login_failed`. */
export function actionKey(action: string): string {
  return `compliance.actions.${action.replace(/\./g, '_')}`;
}

const blank = (value: unknown) => (value === '' ? undefined : value);
const day = z.iso.date('invalid_day').refine((d) => d >= '1900-01-01', 'invalid_day');

/** The filter form's query: empty fields count as absent, every value is checked. */
export const auditQuerySchema = z
  .object({
    from: z.preprocess(blank, day.optional()),
    to: z.preprocess(blank, day.optional()),
    actor: z.preprocess(blank, z.string('invalid').trim().max(200, 'too_long').optional()),
    action: z.preprocess(blank, z.enum([...auditActions, ...actionGroups], 'invalid_action').optional()),
    page: z.preprocess(blank, z.string('invalid_page').regex(/^[1-9]\d{0,5}$/, 'invalid_page').transform(Number).optional()),
  })
  .refine((q) => !q.from || !q.to || q.from <= q.to, { path: ['to'], message: 'date_order' });

type AuditQuery = z.infer<typeof auditQuerySchema>;

/** Dates are whole UTC days: `from` from its midnight, `to` up to the end of its day (as the export reads them). */
function toFilter(q: AuditQuery): AuditFilter {
  return selectionFilter(q);
}

/** The link to another page of the same filtered list. */
function pageLink(q: AuditQuery, page: number): string {
  const params = new URLSearchParams();
  for (const name of ['from', 'to', 'actor', 'action'] as const) if (q[name]) params.set(name, q[name]);
  if (page > 1) params.set('page', String(page));
  const query = params.toString();
  return query ? `/compliance/audit?${query}` : '/compliance/audit';
}

/** The submitted filter values, as typed, to fill the form again. */
function submitted(req: Request): Record<string, string> {
  return Object.fromEntries(Object.entries(req.query).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** GET /compliance/audit: the organisation's audit events, filtered and paged. */
export function auditLog(knex: Knex): RequestHandler {
  return async (req, res) => {
    const { organisationId } = callerOf(req).user;
    const locals = { title: req.t('compliance.audit_title'), actions: auditActions, groups: actionGroups, actionKey };
    let query: AuditQuery;
    try {
      query = parseQuery(auditQuerySchema, req);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      res.status(400).render('compliance/audit', { ...locals, values: submitted(req), errors: fieldErrors(err), result: null });
      return;
    }
    const page = query.page ?? 1;
    const offset = (page - 1) * PAGE_SIZE;
    const { events, total } = await new AuditService(knex).list(organisationId, toFilter(query), { limit: PAGE_SIZE, offset });
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    res.render('compliance/audit', {
      ...locals,
      values: { from: query.from, to: query.to, actor: query.actor, action: query.action },
      errors: {},
      result: {
        events,
        total,
        page,
        pages,
        first: events.length ? offset + 1 : 0,
        last: offset + events.length,
        prev: page > 1 ? pageLink(query, Math.min(page - 1, pages)) : null,
        next: page < pages ? pageLink(query, page + 1) : null,
      },
    });
  };
}

/** GET /compliance/audit/verify: recomputes the organisation's hash chain and compares it with its signed checkpoints. */
export function verifyAudit(deps: { knex: Knex; config: Pick<Config, 'dataDir'> }): RequestHandler {
  return async (req, res) => {
    const result = await new AuditCheckpoints(deps.knex, deps.config.dataDir).verify(callerOf(req).user.organisationId);
    res.render('compliance/verify', { title: req.t('compliance.verify_title'), result });
  };
}

