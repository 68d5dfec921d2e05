import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../core/errors';
import { parseQuery } from '../http/query';
import { CHARTS, type Chart, type InsightsReport } from './figures';
import { InsightsService, type ReportQuery, type Viewer } from './service';

/**
 * The Insights figures in the REST API (scope `insights:read`, issue 20):
 * the organisation's report, whole or one chart at a time. The same service
 * as the page, asked as the organisation's own systems (`role: 'api'`): the
 * team's figures by default, one clerk's with `clerk_id`. Only counts and
 * durations; figures built from too few calls are withheld (`tooFew`).
 */

const text = z.string('invalid').max(40, 'invalid');

/** The query string: the page's period parameters, and `clerk_id` for one clerk's figures. Anything else is refused. */
const insightsQuery = z
  .object({ period: text.optional(), date: text.optional(), from: text.optional(), to: text.optional(), clerk_id: z.uuid('invalid').optional() })
  .strict();

/** What a chart's answer carries beside the chart itself, to be read alone: the calls chart, the period's totals. */
export const CHART_EXTRAS: Partial<Record<Chart, 'totals'[]>> = { calls: ['totals'] };

function viewer(req: Request): Viewer {
  return { organisationId: req.apiKey!.organisationId, userId: null, role: 'api' };
}

async function report(knex: Knex, req: Request): Promise<InsightsReport> {
  const { clerk_id: clerkId, ...period } = parseQuery(insightsQuery, req);
  const query: ReportQuery = { ...period, subject: clerkId ?? 'team' };
  try {
    return await new InsightsService(knex).report(viewer(req), query);
  } catch (err) {
    // The service names the subject `subject`; the API's parameter is `clerk_id`.
    if (err instanceof ValidationError && err.fields.some((f) => f.field === 'subject')) {
      throw new ValidationError(err.fields.map((f) => (f.field === 'subject' ? { ...f, field: 'clerk_id' } : f)));
    }
    throw err;
  }
}

function isChart(name: string): name is Chart {
  return (CHARTS as readonly string[]).includes(name);
}

/** GET /api/v1/insights: the whole report. */
export function insightsReport(knex: Knex): RequestHandler {
  return async (req, res) => {
    res.set('Cache-Control', 'no-store').json(await report(knex, req));
  };
}

/** GET /api/v1/insights/:chart: one chart's figures, with the period, time zone, threshold and subject they are for. */
export function insightsChart(knex: Knex): RequestHandler {
  return async (req, res) => {
    const chart = String(req.params.chart);
    if (!isChart(chart)) throw new NotFoundError('chart_not_found', { messageKey: 'errors.not_found', details: { charts: CHARTS } });
    const all = await report(knex, req);
    const extras = Object.fromEntries((CHART_EXTRAS[chart] ?? []).map((key) => [key, all[key]]));
    res.set('Cache-Control', 'no-store').json({
      period: all.period,
      timeZone: all.timeZone,
      threshold: all.threshold,
      serviceLevelSeconds: all.serviceLevelSeconds,
      subject: all.subject,
      [chart]: all[chart],
      ...extras,
    });
  };
}
