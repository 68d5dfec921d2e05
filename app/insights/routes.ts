import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../access/caller';
import { ForbiddenError, NotFoundError, ValidationError } from '../core/errors';
import { flash } from '../http/flash';
import { renderPage, submitForm, type Form, type FormPage } from '../http/form-page';
import { fieldErrors } from '../http/forms';
import { chartViews } from './charts';
import { chartCsv, csvFileName } from './csv';
import { CHARTS, PERIOD_KINDS, type Chart, type InsightsReport } from './figures';
import { insightsFormat } from './format';
import { InsightsService, type ReportQuery, type Viewer } from './service';
import { InsightsSettingsStore, SERVICE_LEVEL_RANGE, THRESHOLD_RANGE } from './settings';

/**
 * The Insights page (issue 20): an admin sees the team's figures and each
 * clerk's, a clerk their own and the team's (another clerk's only where the
 * organisation shares them: the service decides, 403 otherwise). Charts as
 * SVG with a table each (charts.ts), a CSV file per chart (csv.ts), and for
 * admins the settings form. The period picker is a plain GET form.
 */

const PERIOD_FIELDS = ['period', 'date', 'from', 'to'] as const;
const QUERY_FIELDS = [...PERIOD_FIELDS, 'subject'] as const;

/** What the page is asked for: the query's period and subject (any other parameter is ignored). */
interface PageContext {
  query: ReportQuery;
}

function viewerOf(req: Request): Viewer {
  const { user } = callerOf(req);
  if (user.role !== 'admin' && user.role !== 'clerk') throw new ForbiddenError();
  return { organisationId: user.organisationId, userId: user.id, role: user.role };
}

function pickQuery(query: Request['query']): ReportQuery {
  const picked: ReportQuery = {};
  for (const field of QUERY_FIELDS) if (query[field] !== undefined) picked[field] = query[field];
  return picked;
}

/** The report's own period and subject as query parameters (links keep what is shown). */
function reportParams(report: InsightsReport, period?: { from: string; to: string }): Record<string, string> {
  const subject = report.subject.kind === 'clerk' ? report.subject.clerkId : 'team';
  if (report.period.kind === 'custom') return { period: 'custom', from: report.period.from, to: report.period.to, subject };
  return { period: report.period.kind, date: (period ?? report.period).from, subject };
}

function href(path: string, params: Record<string, string>): string {
  return `${path}?${new URLSearchParams(params).toString()}`;
}

function isChart(name: string): name is Chart {
  return (CHARTS as readonly string[]).includes(name);
}

function insightsPage(knex: Knex): FormPage<PageContext> {
  return {
    view: 'insights/index',
    noStore: true,
    async load(req, context) {
      const viewer = viewerOf(req);
      const report = await new InsightsService(knex).report(viewer, context.query);
      const settings = await new InsightsSettingsStore(knex).get(viewer.organisationId);
      const params = reportParams(report);
      const fmt = insightsFormat(req.lang, req.t);
      const own = report.subject.kind === 'clerk' && report.subject.clerkId === viewer.userId;
      const mayOpenClerk = (clerkId: string) => viewer.role === 'admin' || settings.clerksSeeEachOther || clerkId === viewer.userId;
      const charts = chartViews(report, fmt, { clerkHref: (id) => (mayOpenClerk(id) ? href('/insights', { ...params, subject: id }) : null) });
      return {
        title: req.t('insights.title'),
        heading: report.subject.kind === 'organisation' ? req.t('insights.heading_team') : own ? req.t('insights.heading_own') : req.t('insights.heading_clerk', { name: report.subject.name }),
        report,
        charts,
        range: fmt.range(report.period.from, report.period.to),
        // The key figures at a glance, above the charts.
        glance: [
          { label: req.t('insights.glance.started'), text: fmt.figure(report.totals.started, 'count') },
          { label: req.t('insights.glance.completed'), text: fmt.figure(report.totals.completed, 'count') },
          { label: req.t('insights.glance.wait_median'), text: fmt.figure(report.queue.waitMedian, 'seconds') },
          { label: req.t('insights.glance.service_level', { within: fmt.seconds(report.serviceLevelSeconds) }), text: fmt.figure(report.queue.serviceLevel, 'share') },
          { label: req.t('insights.glance.duration_median'), text: fmt.figure(report.durations.median, 'seconds') },
        ],
        threshold: fmt.number(report.threshold),
        periodKinds: PERIOD_KINDS,
        exportHref: (chart: Chart) => href(`/insights/export/${chart}`, params),
        previousHref: report.period.previous ? href('/insights', reportParams(report, report.period.previous)) : null,
        nextHref: report.period.next ? href('/insights', reportParams(report, report.period.next)) : null,
        // The other views this viewer may switch to: the team's figures, their own.
        teamHref: report.subject.kind === 'clerk' ? href('/insights', { ...params, subject: 'team' }) : null,
        ownHref: viewer.role === 'clerk' && !own ? href('/insights', { ...params, subject: viewer.userId! }) : null,
        subject: params.subject,
        isAdmin: viewer.role === 'admin',
        ranges: { threshold: THRESHOLD_RANGE, serviceLevel: SERVICE_LEVEL_RANGE },
        values: {
          period: report.period.kind,
          date: report.period.kind === 'custom' ? '' : report.period.from,
          from: report.period.from,
          to: report.period.to,
          threshold: String(settings.threshold),
          service_level_seconds: String(settings.serviceLevelSeconds),
          clerks_see_each_other: settings.clerksSeeEachOther ? ['on'] : [],
        },
      };
    },
  };
}

function settingsForm(knex: Knex): Form<PageContext> {
  return { page: insightsPage(knex), fields: { threshold: 'text', service_level_seconds: 'text', clerks_see_each_other: 'list' } };
}

/**
 * GET /insights: the page for the period and subject asked for. A period the
 * service refuses (a custom range that ends before it starts, a bad date)
 * shows the page for the default period with the picker's fields marked, 400.
 */
export function insightsReportPage(knex: Knex): RequestHandler {
  const page = insightsPage(knex);
  return async (req, res) => {
    const query = pickQuery(req.query);
    try {
      await renderPage(page, req, res, { query });
    } catch (err) {
      const periodProblem = err instanceof ValidationError && err.fields.every((f) => (PERIOD_FIELDS as readonly string[]).includes(f.field));
      if (!periodProblem || res.headersSent) throw err;
      const typed = Object.fromEntries(PERIOD_FIELDS.filter((f) => typeof query[f] === 'string').map((f) => [f, query[f]]));
      res.status(400);
      await renderPage(page, req, res, { query: query.subject === undefined ? {} : { subject: query.subject } }, { values: typed, errors: fieldErrors(err) });
    }
  };
}

/** GET /insights/export/:chart: one chart's figures as CSV, for the same period and subject as the page. */
export function insightsExport(knex: Knex): RequestHandler {
  return async (req, res) => {
    const chart = String(req.params.chart);
    if (!isChart(chart)) throw new NotFoundError();
    const report = await new InsightsService(knex).report(viewerOf(req), pickQuery(req.query));
    res.set({ 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': `attachment; filename="${csvFileName(report, chart)}"`, 'Cache-Control': 'no-store' });
    res.send(chartCsv(report, chart));
  };
}

/** POST /insights/settings (admins): the threshold, the service level, whether clerks see each other; audited. */
export function saveInsightsSettings(knex: Knex): RequestHandler {
  const form = settingsForm(knex);
  return (req, res) => submitForm(form, req, res, { query: {} }, async () => {
    await new InsightsSettingsStore(knex).save(callerOf(req), req.body);
    flash(req, 'success', 'insights.settings.saved');
    res.redirect(303, '/insights');
  });
}
