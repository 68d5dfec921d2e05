import { csvCell } from '../core/csv';
import type { Chart, Figure, InsightsReport } from './figures';

/**
 * One chart's figures as CSV (issue 20), for spreadsheets: a header row of
 * stable English column keys, then one row per point, measure or entry.
 * Numbers are machine-readable (a dot for decimals; shares 0..1; durations
 * in whole or fractional seconds), whatever the reader's language. A
 * withheld figure ("too few") is an empty cell, and the row's last column,
 * `withheld`, names the columns withheld in it (space-separated); an empty
 * cell not named there has no figure (nothing to compute it from, or, in
 * `calls`, a column only the `total` row has). Text cells (product and
 * clerk names) are neutralised against formula injection (core/csv.ts).
 * Starts with a byte-order mark, so that spreadsheets read it as UTF-8.
 */

type Entry = string | number | null | Figure;
interface Table {
  columns: string[];
  rows: Record<string, Entry>[];
}

const isFigure = (v: Entry): v is Figure => typeof v === 'object' && v !== null;

function plain(v: Entry): string {
  if (isFigure(v)) return v.tooFew || v.value === null ? '' : plain(v.value);
  if (v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(4)));
  return v;
}

const measures = (pairs: [string, Entry][]): Table => ({ columns: ['measure', 'value'], rows: pairs.map(([measure, value]) => ({ measure, value })) });

const TABLES: Record<Chart, (r: InsightsReport) => Table> = {
  calls: (r) => ({
    columns: ['bucket', 'started', 'completed', 'unanswered'],
    rows: [
      ...r.calls.map((p) => ({ bucket: p.bucket, started: p.started, completed: p.completed, unanswered: null })),
      { bucket: 'total', started: r.totals.started, completed: r.totals.completed, unanswered: r.totals.unanswered },
    ],
  }),
  channels: (r) => ({ columns: ['channel', 'calls'], rows: r.channels.map((c) => ({ channel: c.channel, calls: c.calls })) }),
  queue: (r) => measures([
    ['answered', r.queue.answered],
    ['abandoned', r.queue.abandoned],
    ['abandonment_share', r.queue.abandonment],
    ['wait_median_seconds', r.queue.waitMedian],
    ['wait_p90_seconds', r.queue.waitP90],
    ['service_level_share', r.queue.serviceLevel],
    ['service_level_threshold_seconds', r.serviceLevelSeconds],
  ]),
  durations: (r) => measures([['median_seconds', r.durations.median], ['p90_seconds', r.durations.p90]]),
  hours: (r) => ({ columns: ['weekday', 'hour', 'calls'], rows: r.hours.map((c) => ({ weekday: c.weekday, hour: c.hour, calls: c.calls })) }),
  clerks: (r) => ({
    columns: ['clerk_id', 'clerk', 'calls', 'duration_median_seconds', 'available_seconds'],
    rows: r.clerks.map((c) => ({ clerk_id: c.clerkId, clerk: c.name, calls: c.calls, duration_median_seconds: c.durationMedian, available_seconds: c.availableSeconds })),
  }),
  curation: (r) => measures([['cards_per_call', r.curation.cardsPerCall], ['favourite_share', r.curation.favouriteShare]]),
  products: (r) => ({
    columns: ['list', 'rank', 'product', 'count'],
    rows: (['shown', 'favourited'] as const).flatMap((list) => r.products[list].map((p, i) => ({ list, rank: i + 1, product: p.name, count: p.count }))),
  }),
  recordings: (r) => measures([['recordings_made', r.recordings.made], ['consents_granted', r.recordings.consentsGranted], ['consents_refused', r.recordings.consentsRefused]]),
};

export function chartCsv(report: InsightsReport, chart: Chart): string {
  const { columns, rows } = TABLES[chart](report);
  const lines = [[...columns, 'withheld'].join(',')];
  for (const row of rows) {
    const withheld = columns.filter((c) => { const v = row[c] ?? null; return isFigure(v) && v.tooFew; });
    lines.push([...columns.map((c) => csvCell(plain(row[c] ?? null))), withheld.join(' ')].join(','));
  }
  return `\ufeff${lines.join('\r\n')}\r\n`;
}

/** The file's name: insights-<chart>-<from>-<to>.csv */
export function csvFileName(report: InsightsReport, chart: Chart): string {
  return `insights-${chart}-${report.period.from}-${report.period.to}.csv`;
}
