import type { Knex } from 'knex';
import { z } from 'zod';
import { ForbiddenError, ValidationError } from '../core/errors';
import { organisationTimeZone } from '../organisation/time-zone';
import { isOrganisationClerk, userNames } from '../staff/store';
import { addHistogram, CHANNELS, countAtMost, countFigure, derivedFigure, histogramSize, NOT_APPLICABLE, percentile, type Figure, type Histogram, type InsightsReport, type Period } from './figures';
import { addDays, addMonths, monthEnd, monthStart, parsePeriod, weekStart } from './period';
import { InsightsSettingsStore } from './settings';
import { clerkTotals, durationsPerClerk, hourCounts, series, topProducts, totals, waitHistogram, type Selection } from './store';

/** Who asks: a signed-in admin or clerk, or the organisation's own systems (an API key with `insights:read`). */
export interface Viewer {
  organisationId: string;
  /** The signed-in user; null for an API key. */
  userId: string | null;
  role: 'admin' | 'clerk' | 'api';
}

/**
 * What to show (raw query values, validated here): `period` day|week|month|custom (default month),
 * `date` (YYYY-MM-DD, a day in the period; default today), `from`/`to` (custom), and `subject`:
 * `team` (the organisation) or a clerk's id. Default subject: the team for admins and the API, the
 * clerk themself for a clerk.
 */
export type ReportQuery = Record<string, unknown>;

const subjectSchema = z.union([z.literal('team'), z.uuid()]).optional();

/** How many products the top lists show. */
const TOP = 10;

/**
 * Insights: the report of a period, read from the daily figures only (never
 * from calls, so it stays after the calls' retention). Every query is
 * scoped to the viewer's organisation; a clerk sees their own figures and
 * the team's, and another clerk's only where the organisation allows it.
 */
export class InsightsService {
  constructor(private readonly knex: Knex) {}

  /** The report; ValidationError for bad input, ForbiddenError('insights_not_yours') when a clerk asks for another clerk's figures the organisation does not share. */
  async report(viewer: Viewer, query: ReportQuery): Promise<InsightsReport> {
    const settings = await new InsightsSettingsStore(this.knex).get(viewer.organisationId);
    const timeZone = await organisationTimeZone(this.knex, viewer.organisationId);
    const { subject: subjectInput, ...periodQuery } = query;
    const period = parsePeriod(periodQuery, timeZone);
    const parsed = subjectSchema.safeParse(subjectInput === '' ? undefined : subjectInput);
    if (!parsed.success) throw new ValidationError([{ field: 'subject', code: 'invalid_subject' }]);
    const clerkId = parsed.data === 'team' ? undefined : parsed.data ?? (viewer.role === 'clerk' ? viewer.userId ?? undefined : undefined);
    if (clerkId && viewer.role === 'clerk' && clerkId !== viewer.userId && !settings.clerksSeeEachOther) throw new ForbiddenError('insights_not_yours');
    if (clerkId && !(await isOrganisationClerk(this.knex, viewer.organisationId, clerkId))) throw new ValidationError([{ field: 'subject', code: 'unknown_clerk' }]);

    const k = settings.threshold;
    const months = wholeMonths(period);
    const s: Selection = { organisationId: viewer.organisationId, from: period.from, to: period.to, ...(clerkId ? { clerkId } : {}), ...(months ? { months } : {}) };
    const [sum, points, waits, hours, clerks, clerkDurations, top] = await Promise.all([
      totals(this.knex, s),
      series(this.knex, s, period.bucket),
      waitHistogram(this.knex, s),
      hourCounts(this.knex, s),
      clerkTotals(this.knex, s),
      durationsPerClerk(this.knex, s),
      clerkId ? { shown: [], favourited: [] } : topProducts(this.knex, s, TOP),
    ]);
    // The durations of the selection: every clerk's (and those of calls without one) added up.
    const durations: Histogram = {};
    for (const h of clerkDurations.values()) addHistogram(durations, h);
    const { shown, favourited } = top;

    // Clerks the viewer may see: all for admins and the API (and where the organisation shares them), else only themself.
    const visible = clerks.filter((c) => viewer.role !== 'clerk' || settings.clerksSeeEachOther || c.clerk_id === viewer.userId);
    const names = await userNames(this.knex, viewer.organisationId, [...visible.map((c) => c.clerk_id), ...(clerkId ? [clerkId] : [])]);

    const settled = sum.queue_answered + sum.queue_abandoned;
    const started = sum.calls_started;
    return {
      period,
      timeZone,
      threshold: k,
      serviceLevelSeconds: settings.serviceLevelSeconds,
      subject: clerkId ? { kind: 'clerk', clerkId, name: names.get(clerkId) ?? '' } : { kind: 'organisation' },
      calls: fillBuckets(period, points).map((p) => ({ bucket: p.bucket, started: countFigure(p.started, k), completed: countFigure(p.completed, k) })),
      totals: { started: countFigure(started, k), completed: countFigure(sum.calls_completed, k), unanswered: countFigure(sum.calls_unanswered, k) },
      channels: CHANNELS.map((channel) => ({ channel, calls: countFigure(sum[`via_${channel}`], k) })),
      // One clerk's queue: the customers they answered (abandoned ones belong to no clerk); the service level over those.
      queue: {
        answered: countFigure(sum.queue_answered, k),
        abandoned: clerkId ? NOT_APPLICABLE : countFigure(sum.queue_abandoned, k),
        abandonment: clerkId ? NOT_APPLICABLE : derivedFigure(settled ? sum.queue_abandoned / settled : null, settled, k),
        waitMedian: derivedFigure(percentile(waits, 0.5), histogramSize(waits), k),
        waitP90: derivedFigure(percentile(waits, 0.9), histogramSize(waits), k),
        serviceLevel: derivedFigure(settled ? countAtMost(waits, settings.serviceLevelSeconds) / settled : null, settled, k),
      },
      durations: { median: derivedFigure(percentile(durations, 0.5), histogramSize(durations), k), p90: derivedFigure(percentile(durations, 0.9), histogramSize(durations), k) },
      hours: heatMap(hours, k),
      clerks: visible
        .map((c) => {
          const h = clerkDurations.get(c.clerk_id) ?? {};
          return { clerkId: c.clerk_id, name: names.get(c.clerk_id) ?? '', calls: countFigure(c.calls, k), durationMedian: derivedFigure(percentile(h, 0.5), histogramSize(h), k), availableSeconds: Number(c.available_seconds) };
        })
        .sort((a, b) => a.name.localeCompare(b.name) || a.clerkId.localeCompare(b.clerkId)),
      curation: {
        cardsPerCall: derivedFigure(started ? sum.cards_shown / started : null, started, k),
        favouriteShare: derivedFigure(started ? sum.calls_with_favourite / started : null, started, k),
      },
      products: {
        shown: shown.map((p) => ({ name: p.name, count: countFigure(p.count, k) })),
        favourited: favourited.map((p) => ({ name: p.name, count: countFigure(p.count, k) })),
      },
      recordings: { made: countFigure(sum.recordings, k), consentsGranted: countFigure(sum.consents_granted, k), consentsRefused: countFigure(sum.consents_refused, k) },
    };
  }
}

/** Every bucket of the period, zero where no day had a call. */
function fillBuckets(period: Period, points: { bucket: string; started: number; completed: number }[]): { bucket: string; started: number; completed: number }[] {
  const byBucket = new Map(points.map((p) => [p.bucket, p]));
  const out = [];
  const first = period.bucket === 'day' ? period.from : period.bucket === 'week' ? weekStart(period.from) : monthStart(period.from);
  for (let b = first; b <= period.to; b = nextBucket(b, period.bucket)) out.push(byBucket.get(b) ?? { bucket: b, started: 0, completed: 0 });
  return out;
}

function nextBucket(b: string, bucket: Period['bucket']): string {
  if (bucket === 'day') return addDays(b, 1);
  if (bucket === 'week') return addDays(b, 7);
  return addMonths(b, 1);
}

/**
 * The whole months a period reads from the monthly figures: those of a
 * period longer than 62 days (counted in weeks or months), where the
 * durations' steps (see docs/insights.md) do not matter; none otherwise.
 */
function wholeMonths(period: Period): { from: string; to: string } | null {
  if (period.bucket === 'day') return null;
  const from = period.from === monthStart(period.from) ? period.from : addMonths(period.from, 1);
  const last = period.to === monthEnd(period.to) ? monthStart(period.to) : addMonths(period.to, -1);
  return from <= last ? { from, to: last } : null;
}

function heatMap(cells: { weekday: number; hour: number; calls: number }[], k: number): { weekday: number; hour: number; calls: Figure }[] {
  const at = new Map(cells.map((c) => [c.weekday * 100 + c.hour, c.calls]));
  const out = [];
  for (let weekday = 1; weekday <= 7; weekday++) for (let hour = 0; hour < 24; hour++) out.push({ weekday, hour, calls: countFigure(at.get(weekday * 100 + hour) ?? 0, k) });
  return out;
}
