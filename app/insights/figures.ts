/**
 * What the Insights page, its CSV files and the REST API show (issue 20):
 * one report per period and viewer, built by InsightsService from the daily
 * aggregates. Pure types and arithmetic, no database.
 *
 * Privacy: only counts and durations. Every figure says how many calls (or
 * queue entries) it was built from (`basis`); one built from fewer than the
 * organisation's threshold (default 5) but more than none is withheld
 * (`value` and `basis` null, `tooFew` true: the basis would tell the count),
 * so that no single customer can be singled out. A figure built from none
 * shows 0 (or null for an average, a share or a percentile, with `tooFew`
 * false).
 */

export const CHANNELS = ['link', 'queue', 'widget', 'api'] as const;
export type Channel = (typeof CHANNELS)[number];

/** The charts of the page, each with a CSV file and an API path of the same name. */
export const CHARTS = ['calls', 'channels', 'queue', 'durations', 'hours', 'clerks', 'curation', 'products', 'recordings'] as const;
export type Chart = (typeof CHARTS)[number];

export const PERIOD_KINDS = ['day', 'week', 'month', 'custom'] as const;
export type PeriodKind = (typeof PERIOD_KINDS)[number];

/** A period of whole local days (`from` and `to` included, YYYY-MM-DD), and the width of one point of its series. */
export interface Period {
  kind: PeriodKind;
  from: string;
  to: string;
  bucket: 'day' | 'week' | 'month';
  /** The periods before and after (same kind and length), for the page's arrows; null for custom. */
  previous: { from: string; to: string } | null;
  next: { from: string; to: string } | null;
}

export interface Figure {
  /** The figure; null when withheld (too few) or when there is nothing to show (no basis). */
  value: number | null;
  /** How many calls or queue entries it was built from; null when withheld (it would tell the count). */
  basis: number | null;
  tooFew: boolean;
}

export interface InsightsReport {
  period: Period;
  /** The organisation's time zone, in which the days are counted. */
  timeZone: string;
  /** The small-numbers threshold, and the service level's threshold in seconds. */
  threshold: number;
  serviceLevelSeconds: number;
  /** Whose figures: the whole organisation (the team), or one clerk's. */
  subject: { kind: 'organisation' } | { kind: 'clerk'; clerkId: string; name: string };
  /** Calls started (a customer and the clerk met) and completed (ended normally), per point of the series. */
  calls: { bucket: string; started: Figure; completed: Figure }[];
  totals: { started: Figure; completed: Figure; unanswered: Figure };
  /** How the customers of the started calls arrived. */
  channels: { channel: Channel; calls: Figure }[];
  /** Queue: answered and abandoned entries, abandonment share (0..1), waits in seconds, service level share (0..1). */
  queue: { answered: Figure; abandoned: Figure; abandonment: Figure; waitMedian: Figure; waitP90: Figure; serviceLevel: Figure };
  /** Duration of completed calls, in seconds. */
  durations: { median: Figure; p90: Figure };
  /** Calls started per local weekday (1 Monday .. 7 Sunday) and hour (0..23): 168 cells. */
  hours: { weekday: number; hour: number; calls: Figure }[];
  /** Per clerk (only those the viewer may see): calls started, median duration, time available (seconds, not a call figure). */
  clerks: { clerkId: string; name: string; calls: Figure; durationMedian: Figure; availableSeconds: number }[];
  /** Cards shown per started call (average), share of started calls with a favourite (0..1). */
  curation: { cardsPerCall: Figure; favouriteShare: Figure };
  /** The most shown and the most favourited products (up to 10 each). */
  products: { shown: { name: string; count: Figure }[]; favourited: { name: string; count: Figure }[] };
  recordings: { made: Figure; consentsGranted: Figure; consentsRefused: Figure };
}

/** A count, withheld when 0 < count < threshold. */
export function countFigure(count: number, threshold: number): Figure {
  const tooFew = count > 0 && count < threshold;
  return tooFew ? WITHHELD : { value: count, basis: count, tooFew };
}

/** A figure derived from `basis` items (a share, an average, a percentile): null without basis, withheld below the threshold. */
export function derivedFigure(value: number | null, basis: number, threshold: number): Figure {
  const tooFew = basis > 0 && basis < threshold;
  return tooFew ? WITHHELD : { value: basis === 0 ? null : value, basis, tooFew };
}

/** A figure not applicable to what is shown (abandonment of one clerk: abandoned customers belong to no clerk). */
export const NOT_APPLICABLE: Figure = Object.freeze({ value: null, basis: 0, tooFew: false });

const WITHHELD: Figure = Object.freeze({ value: null, basis: null, tooFew: true });

/** A histogram of whole seconds: `{ "12": 3 }` is three values of 12 s. */
export type Histogram = Record<string, number>;

export function histogramSize(h: Histogram): number {
  let n = 0;
  for (const count of Object.values(h)) n += count;
  return n;
}

/** Adds `b` into `a` (in place) and answers `a`. */
export function addHistogram(a: Histogram, b: Histogram): Histogram {
  for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
  return a;
}

/**
 * The p-th percentile (0..1) of the values a histogram holds, interpolated
 * linearly between neighbours as PostgreSQL's percentile_cont does; null
 * when it is empty.
 */
export function percentile(h: Histogram, p: number): number | null {
  const entries = Object.entries(h).map(([k, v]) => [Number(k), v] as const).filter(([, v]) => v > 0).sort((x, y) => x[0] - y[0]);
  const n = entries.reduce((s, [, v]) => s + v, 0);
  if (n === 0) return null;
  const rank = p * (n - 1);
  const lower = Math.floor(rank);
  const valueAt = (i: number): number => {
    let seen = 0;
    for (const [value, count] of entries) {
      seen += count;
      if (i < seen) return value;
    }
    return entries[entries.length - 1]![0];
  };
  const a = valueAt(lower);
  if (rank === lower) return a;
  const b = valueAt(lower + 1);
  return a + (b - a) * (rank - lower);
}

/** How many values of a histogram are at most `limit`. */
export function countAtMost(h: Histogram, limit: number): number {
  let n = 0;
  for (const [k, v] of Object.entries(h)) if (Number(k) <= limit) n += v;
  return n;
}
