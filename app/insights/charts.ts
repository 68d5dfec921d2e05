import type { Chart, Figure, InsightsReport } from './figures';
import type { FigureKind, InsightsFormat } from './format';
import { barList, columnChart, heatMap, type BarGroup, type Mark } from './svg';

/**
 * The Insights page's charts (issue 20): for each chart of CHARTS, its
 * heading, one or more SVG images and the same figures as tables, in the
 * reader's language. Views render them as they are: the SVG is escaped in
 * svg.ts, the tables' texts by EJS.
 */

export interface Cell {
  text: string;
  /** A link (a clerk's own figures). */
  href?: string;
  /** The figure is withheld ("too few"). */
  withheld?: boolean;
}

export interface ChartTable {
  caption: string;
  head: string[];
  /** Rows; the first cell of each is its header. */
  rows: Cell[][];
  /** Shown when there are no rows. */
  empty?: string;
  foot?: Cell[][];
}

export interface ChartView {
  chart: Chart;
  heading: string;
  /** What the chart shows, in a sentence (also the SVG's description, with the figures). */
  intro: string;
  figures: { svg: string; table: ChartTable }[];
}

export interface ChartOptions {
  /** The link to a clerk's own figures (same period), or null where the viewer may not open them. */
  clerkHref(clerkId: string): string | null;
}

const mark = (f: Figure, kind: FigureKind, fmt: InsightsFormat): Mark => ({ value: f.tooFew ? null : f.value, withheld: f.tooFew, text: fmt.figure(f, kind) });
const cell = (f: Figure, kind: FigureKind, fmt: InsightsFormat): Cell => ({ text: fmt.figure(f, kind), ...(f.tooFew ? { withheld: true } : {}) });

/** "label: figure; label: figure", for an SVG's description. */
function listing(pairs: [string, string][]): string {
  return pairs.map(([label, value]) => `${label}: ${value}`).join('; ');
}

function describe(intro: string, pairs: [string, string][]): string {
  return pairs.length ? `${intro} ${listing(pairs)}.` : intro;
}

export function chartViews(report: InsightsReport, fmt: InsightsFormat, options: ChartOptions): ChartView[] {
  const t = fmt.t;
  const range = fmt.range(report.period.from, report.period.to);
  const withheldLabel = t('insights.too_few_legend');
  const views: ChartView[] = [];

  // Calls started and completed, per point of the series.
  {
    const intro = t('insights.charts.calls.intro', { width: t(`insights.widths.${report.period.bucket}`), range });
    const labels = report.calls.map((p) => fmt.bucket(p.bucket, report.period.bucket));
    const totals: [string, string][] = [
      [t('insights.charts.calls.started'), fmt.figure(report.totals.started, 'count')],
      [t('insights.charts.calls.completed'), fmt.figure(report.totals.completed, 'count')],
      [t('insights.charts.calls.unanswered'), fmt.figure(report.totals.unanswered, 'count')],
    ];
    views.push({
      chart: 'calls',
      heading: t('insights.charts.calls.title'),
      intro,
      figures: [{
        svg: columnChart({
          id: 'insights-calls',
          title: t('insights.charts.calls.title'),
          desc: describe(intro, totals),
          series: [{ label: t('insights.charts.calls.started'), cls: 'series-1' }, { label: t('insights.charts.calls.completed'), cls: 'series-2' }],
          points: report.calls.map((p, i) => ({ label: labels[i]!, marks: [mark(p.started, 'count', fmt), mark(p.completed, 'count', fmt)] })),
          tick: (n) => fmt.number(n, 1),
          withheldLabel,
        }),
        table: {
          caption: t('insights.table_caption', { chart: t('insights.charts.calls.title') }),
          head: [t(`insights.columns.${report.period.bucket}`), t('insights.charts.calls.started'), t('insights.charts.calls.completed')],
          rows: report.calls.map((p, i) => [{ text: labels[i]! }, cell(p.started, 'count', fmt), cell(p.completed, 'count', fmt)]),
          foot: [
            [{ text: t('insights.total') }, cell(report.totals.started, 'count', fmt), cell(report.totals.completed, 'count', fmt)],
            [{ text: t('insights.charts.calls.unanswered') }, cell(report.totals.unanswered, 'count', fmt), { text: '' }],
          ],
        },
      }],
    });
  }

  // How the customers arrived.
  views.push(simpleBars(fmt, 'channels', report.channels.map((c) => [t(`insights.channels.${c.channel}`), c.calls, 'count']), range, withheldLabel, 'channel'));

  // Queue: answered and abandoned, waits, shares.
  {
    const q = report.queue;
    const groups: [string, [string, Figure, FigureKind][], number | undefined][] = [
      [t('insights.charts.queue.entries'), [[t('insights.charts.queue.answered'), q.answered, 'count'], [t('insights.charts.queue.abandoned'), q.abandoned, 'count']], undefined],
      [t('insights.charts.queue.waits'), [[t('insights.charts.queue.wait_median'), q.waitMedian, 'seconds'], [t('insights.charts.queue.wait_p90'), q.waitP90, 'seconds']], undefined],
      [t('insights.charts.queue.shares'), [[t('insights.charts.queue.abandonment'), q.abandonment, 'share'], [t('insights.charts.queue.service_level', { seconds: fmt.seconds(report.serviceLevelSeconds) }), q.serviceLevel, 'share']], 1],
    ];
    views.push(groupedBars(fmt, 'queue', groups, range, withheldLabel));
  }

  // Duration of completed calls.
  views.push(simpleBars(fmt, 'durations', [[t('insights.charts.durations.median'), report.durations.median, 'seconds'], [t('insights.charts.durations.p90'), report.durations.p90, 'seconds']], range, withheldLabel, 'measure'));

  views.push(hoursView(report, fmt, range, withheldLabel));
  views.push(clerksView(report, fmt, range, withheldLabel, options));

  // Curation: cards per call, share of calls with a favourite.
  views.push(groupedBars(fmt, 'curation', [
    [undefined, [[t('insights.charts.curation.cards_per_call'), report.curation.cardsPerCall, 'decimal']], undefined],
    [undefined, [[t('insights.charts.curation.favourite_share'), report.curation.favouriteShare, 'share']], 1],
  ], range, withheldLabel));

  views.push(productsView(report, fmt, range, withheldLabel));

  views.push(simpleBars(fmt, 'recordings', [
    [t('insights.charts.recordings.made'), report.recordings.made, 'count'],
    [t('insights.charts.recordings.consents_granted'), report.recordings.consentsGranted, 'count'],
    [t('insights.charts.recordings.consents_refused'), report.recordings.consentsRefused, 'count'],
  ], range, withheldLabel, 'measure'));
  return views;
}

/** One group of bars on one scale, and its table of two columns. */
function simpleBars(fmt: InsightsFormat, chart: Chart, rows: [string, Figure, FigureKind][], range: string, withheldLabel: string, firstColumn: 'channel' | 'measure'): ChartView {
  const view = groupedBars(fmt, chart, [[undefined, rows, undefined]], range, withheldLabel);
  view.figures[0]!.table.head[0] = fmt.t(`insights.columns.${firstColumn}`);
  return view;
}

/** Groups of bars, each on its own scale (`max`: a full bar's value, e.g. 1 for shares). */
function groupedBars(fmt: InsightsFormat, chart: Chart, groups: [string | undefined, [string, Figure, FigureKind][], number | undefined][], range: string, withheldLabel: string): ChartView {
  const t = fmt.t;
  const title = t(`insights.charts.${chart}.title`);
  const intro = t(`insights.charts.${chart}.intro`, { range });
  const all = groups.flatMap(([, rows]) => rows);
  const barGroups: BarGroup[] = groups.map(([label, rows, max], i) => ({
    ...(label && groups.length > 1 ? { label } : {}),
    ...(max !== undefined ? { max } : {}),
    rows: rows.map(([name, f, kind]) => ({ label: name, mark: mark(f, kind, fmt), cls: `series-${(i % 3) + 1}` })),
  }));
  return {
    chart,
    heading: title,
    intro,
    figures: [{
      svg: barList({ id: `insights-${chart}`, title, desc: describe(intro, all.map(([name, f, kind]) => [name, fmt.figure(f, kind)])), groups: barGroups, withheldLabel }),
      table: {
        caption: t('insights.table_caption', { chart: title }),
        head: [t('insights.columns.measure'), t('insights.columns.value')],
        rows: all.map(([name, f, kind]) => [{ text: name }, cell(f, kind, fmt)]),
      },
    }],
  };
}

function hoursView(report: InsightsReport, fmt: InsightsFormat, range: string, withheldLabel: string): ChartView {
  const t = fmt.t;
  const title = t('insights.charts.hours.title');
  const intro = t('insights.charts.hours.intro', { range });
  const weekdays = [1, 2, 3, 4, 5, 6, 7];
  const hours = Array.from({ length: 24 }, (_, h) => h);
  const at = new Map(report.hours.map((c) => [c.weekday * 100 + c.hour, c.calls]));
  const figure = (w: number, h: number): Figure => at.get(w * 100 + h) ?? { value: 0, basis: 0, tooFew: false };
  let busiest: { w: number; h: number; n: number } | null = null;
  for (const w of weekdays) for (const h of hours) {
    const n = figure(w, h).value ?? 0;
    if (n > 0 && (!busiest || n > busiest.n)) busiest = { w, h, n };
  }
  const name = (w: number, h: number) => t('insights.charts.hours.cell', { weekday: fmt.weekday(w, 'long'), hour: fmt.hour(h) });
  const summary = busiest ? t('insights.charts.hours.busiest', { cell: name(busiest.w, busiest.h), calls: fmt.number(busiest.n) }) : t('insights.charts.hours.no_calls');
  return {
    chart: 'hours',
    heading: title,
    intro,
    figures: [{
      svg: heatMap({
        id: 'insights-hours',
        title,
        desc: `${intro} ${summary}`,
        rows: weekdays.map((w) => fmt.weekday(w)),
        columns: hours.map((h) => fmt.hour(h)),
        cells: weekdays.map((w) => hours.map((h) => mark(figure(w, h), 'count', fmt))),
        cellName: (i, j) => name(i + 1, j),
        legend: { fewer: t('insights.charts.hours.fewer'), more: t('insights.charts.hours.more') },
        withheldLabel,
      }),
      table: {
        caption: t('insights.table_caption', { chart: title }),
        head: [t('insights.columns.weekday'), ...hours.map((h) => fmt.hour(h))],
        rows: weekdays.map((w) => [{ text: fmt.weekday(w, 'long') }, ...hours.map((h) => cell(figure(w, h), 'count', fmt))]),
      },
    }],
  };
}

function clerksView(report: InsightsReport, fmt: InsightsFormat, range: string, withheldLabel: string, options: ChartOptions): ChartView {
  const t = fmt.t;
  const title = t('insights.charts.clerks.title');
  const intro = t('insights.charts.clerks.intro', { range });
  const clerkName = (name: string) => name || t('insights.charts.clerks.unnamed');
  return {
    chart: 'clerks',
    heading: title,
    intro,
    figures: [{
      svg: barList({
        id: 'insights-clerks',
        title,
        desc: describe(intro, report.clerks.map((c) => [clerkName(c.name), fmt.figure(c.calls, 'count')])),
        groups: [{ rows: report.clerks.map((c) => ({ label: clerkName(c.name), mark: mark(c.calls, 'count', fmt), cls: 'series-1' })) }],
        withheldLabel,
      }),
      table: {
        caption: t('insights.table_caption', { chart: title }),
        head: [t('insights.columns.clerk'), t('insights.charts.clerks.calls'), t('insights.charts.clerks.duration_median'), t('insights.charts.clerks.available')],
        rows: report.clerks.map((c) => {
          const href = options.clerkHref(c.clerkId);
          return [
            { text: clerkName(c.name), ...(href ? { href } : {}) },
            cell(c.calls, 'count', fmt),
            cell(c.durationMedian, 'seconds', fmt),
            { text: fmt.seconds(c.availableSeconds) },
          ];
        }),
        empty: t('insights.charts.clerks.none'),
      },
    }],
  };
}

function productsView(report: InsightsReport, fmt: InsightsFormat, range: string, withheldLabel: string): ChartView {
  const t = fmt.t;
  const title = t('insights.charts.products.title');
  const intro = t(report.subject.kind === 'clerk' ? 'insights.charts.products.intro_team_only' : 'insights.charts.products.intro', { range });
  const figures = (['shown', 'favourited'] as const).map((list) => {
    const listTitle = t(`insights.charts.products.${list}`);
    const rows = report.products[list];
    return {
      svg: barList({
        id: `insights-products-${list}`,
        title: listTitle,
        desc: describe(`${intro} ${listTitle}.`, rows.map((p) => [p.name, fmt.figure(p.count, 'count')])),
        groups: [{ rows: rows.map((p) => ({ label: p.name, mark: mark(p.count, 'count', fmt), cls: list === 'shown' ? 'series-1' : 'series-2' })) }],
        withheldLabel,
      }),
      table: {
        caption: t('insights.table_caption', { chart: listTitle }),
        head: [t('insights.columns.product'), t(`insights.charts.products.${list}_count`)],
        rows: rows.map((p) => [{ text: p.name }, cell(p.count, 'count', fmt)]),
        empty: t('insights.charts.products.none'),
      },
    };
  });
  return { chart: 'products', heading: title, intro, figures };
}
