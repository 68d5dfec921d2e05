import { CHART_EXTRAS } from './api-routes';
import { CHANNELS, CHARTS, PERIOD_KINDS, type Chart, type InsightsReport } from './figures';
import { MAX_CUSTOM_DAYS } from './period';

/**
 * The Insights part of the REST API's OpenAPI document (app/api/openapi.ts):
 * the two paths and their schemas. A test checks real answers against these
 * schemas (test/insights-api.test.ts), so they list exactly what is sent.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const figure = ref('InsightsFigure');
const json = (schema: object) => ({ content: { 'application/json': { schema } } });

/** An object whose every property is required and nothing else is allowed. */
function exact(properties: Record<string, object>, extra: object = {}) {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties), properties, ...extra };
}

const figures = (...names: string[]) => exact(Object.fromEntries(names.map((n) => [n, figure])));
const dateOnly = { type: 'string', format: 'date' };
const span = exact({ from: dateOnly, to: dateOnly });

/** What each chart holds (and `totals`, sent with the `calls` chart), keyed as in the report. */
const chartSchemas: Record<Chart | 'totals', object> = {
  calls: {
    type: 'array',
    description: 'Calls started and completed, one point per bucket of the period (its first day)',
    items: exact({ bucket: dateOnly, started: figure, completed: figure }),
  },
  totals: { ...figures('started', 'completed', 'unanswered'), description: 'The period\'s calls started, completed, and not answered (customers who left the queue first)' },
  channels: {
    type: 'array',
    description: 'How the customers of the started calls arrived',
    items: exact({ channel: { type: 'string', enum: [...CHANNELS] }, calls: figure }),
  },
  queue: {
    ...figures('answered', 'abandoned', 'abandonment', 'waitMedian', 'waitP90', 'serviceLevel'),
    description: 'The waiting queue: entries answered and abandoned, abandonment share (0..1), waiting time in seconds (median, 90th percentile), service level (share answered within serviceLevelSeconds, 0..1)',
  },
  durations: { ...figures('median', 'p90'), description: 'Duration of the completed calls, in seconds' },
  hours: {
    type: 'array',
    description: 'Calls started per local weekday (1 Monday .. 7 Sunday) and hour (0..23): 168 cells',
    items: exact({ weekday: { type: 'integer', minimum: 1, maximum: 7 }, hour: { type: 'integer', minimum: 0, maximum: 23 }, calls: figure }),
  },
  clerks: {
    type: 'array',
    description: 'Per clerk: calls started, median duration (seconds), time available (seconds; not a call figure, never withheld)',
    items: exact({ clerkId: { type: 'string', format: 'uuid' }, name: { type: 'string' }, calls: figure, durationMedian: figure, availableSeconds: { type: 'integer', minimum: 0 } }),
  },
  curation: { ...figures('cardsPerCall', 'favouriteShare'), description: 'Cards shown per started call (average), share of started calls with a favourite (0..1)' },
  products: {
    ...exact({
      shown: { type: 'array', maxItems: 10, items: exact({ name: { type: 'string' }, count: figure }) },
      favourited: { type: 'array', maxItems: 10, items: exact({ name: { type: 'string' }, count: figure }) },
    }),
    description: 'The most shown and the most favourited products (up to 10 each)',
  },
  recordings: { ...figures('made', 'consentsGranted', 'consentsRefused'), description: 'Recordings made, and the customers\' consents granted or refused' },
};

/** What every answer carries: whose figures, for which period, under which rules. */
const context = {
  period: ref('InsightsPeriod'),
  timeZone: { type: 'string', description: 'The organisation\'s time zone (IANA), in which days and hours are counted' },
  threshold: { type: 'integer', description: 'The small-numbers threshold: a figure built from fewer calls (but more than none) is withheld' },
  serviceLevelSeconds: { type: 'integer', description: 'The service level\'s threshold: a queue customer answered within it counts as served in time' },
  subject: ref('InsightsSubject'),
} satisfies Partial<Record<keyof InsightsReport, object>>;

export function insightsSchemas() {
  return {
    InsightsFigure: exact(
      {
        value: { type: ['number', 'null'], description: 'The figure; null when withheld (tooFew) or when there is nothing to show (basis 0: an average, a share or a percentile of nothing)' },
        basis: { type: ['integer', 'null'], minimum: 0, description: 'How many calls or queue entries it was built from; null when withheld (it would tell the count)' },
        tooFew: { type: 'boolean', description: 'Withheld (value and basis null): built from more than none but fewer than the threshold, so that no single customer can be singled out' },
      },
      { description: 'One figure: only counts and durations, never a customer\'s identity' },
    ),
    InsightsPeriod: exact({
      kind: { type: 'string', enum: [...PERIOD_KINDS] },
      from: dateOnly,
      to: dateOnly,
      bucket: { type: 'string', enum: ['day', 'week', 'month'], description: 'The width of one point of the series' },
      previous: { oneOf: [span, { type: 'null' }], description: 'The period before (null for custom)' },
      next: { oneOf: [span, { type: 'null' }], description: 'The period after (null for custom)' },
    }),
    InsightsSubject: {
      oneOf: [
        exact({ kind: { type: 'string', const: 'organisation' } }),
        exact({ kind: { type: 'string', const: 'clerk' }, clerkId: { type: 'string', format: 'uuid' }, name: { type: 'string' } }),
      ],
    },
    InsightsReport: exact({ ...context, ...chartSchemas }, { description: 'Every chart of the Insights page, from the daily figures of the organisation (or one clerk)' }),
    InsightsChart: {
      description: 'One chart, with the period, time zone, threshold and subject it is for; the chart\'s figures under its own name (the calls chart with the period\'s totals)',
      oneOf: CHARTS.map((chart) => {
        const extras = Object.fromEntries((CHART_EXTRAS[chart] ?? []).map((key) => [key, chartSchemas[key]]));
        return exact({ ...context, [chart]: chartSchemas[chart], ...extras }, { title: chart });
      }),
    },
  };
}

const parameters = [
  { name: 'period', in: 'query', schema: { type: 'string', enum: [...PERIOD_KINDS], default: 'month' } },
  { name: 'date', in: 'query', schema: dateOnly, description: 'A day in the period (day, week, month); default today in the organisation\'s time zone' },
  { name: 'from', in: 'query', schema: dateOnly, description: 'First day of a custom period' },
  { name: 'to', in: 'query', schema: dateOnly, description: `Last day of a custom period (at most ${MAX_CUSTOM_DAYS} days)` },
  { name: 'clerk_id', in: 'query', schema: { type: 'string', format: 'uuid' }, description: 'One clerk\'s figures (GET /api/v1/clerks lists the ids); default the whole organisation' },
];

const privacy =
  'Daily figures, kept apart from the calls (they outlive the calls\' retention); only counts and durations, never a customer\'s identity. A figure built from fewer calls than the organisation\'s threshold (default 5) is withheld: `value` and `basis` null, `tooFew` true. Days are counted in the organisation\'s time zone.';

/** The two Insights paths, with the document's shared error responses. */
export function insightsPaths(errors: Record<string, object>) {
  return {
    '/api/v1/insights': {
      get: {
        summary: 'The Insights report: every chart\'s figures for a period (scope insights:read)',
        description: privacy,
        security: [{ apiKey: ['insights:read'] }],
        parameters,
        responses: { '200': { description: 'The report', ...json(ref('InsightsReport')) }, ...errors },
      },
    },
    '/api/v1/insights/{chart}': {
      get: {
        summary: 'One chart of the Insights report (scope insights:read)',
        description: `${privacy} An unknown chart answers 404 \`chart_not_found\`.`,
        security: [{ apiKey: ['insights:read'] }],
        parameters: [{ name: 'chart', in: 'path', required: true, schema: { type: 'string', enum: [...CHARTS] } }, ...parameters],
        responses: { '200': { description: 'The chart', ...json(ref('InsightsChart')) }, ...errors },
      },
    },
  };
}
