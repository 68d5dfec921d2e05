import type { Language, Translate } from '../i18n';
import type { Figure, Period } from './figures';

/**
 * The Insights page's figures as people read them, in the reader's language:
 * counts and shares with the language's separators, durations in minutes and
 * seconds, local days (the period's YYYY-MM-DD, calendar days that are
 * already in the organisation's time zone, so formatted in UTC to stay the
 * same day). A withheld figure reads "too few", one without basis "no data"
 * (issue 20: a withheld figure is never shown as a number).
 */
export interface InsightsFormat {
  lang: Language;
  t: Translate;
  /** A figure's text: `kind` says how its value reads. */
  figure(f: Figure, kind: FigureKind): string;
  /** A plain number (axis ticks, the threshold). */
  number(n: number, fractionDigits?: number): string;
  seconds(n: number): string;
  /** A point of the calls series (its first day), by the width of one point. */
  bucket(first: string, width: Period['bucket']): string;
  /** A local day (YYYY-MM-DD). */
  day(day: string): string;
  /** The period's first and last day. */
  range(from: string, to: string): string;
  /** ISO weekday 1 (Monday) .. 7, short or long. */
  weekday(n: number, width?: 'short' | 'long'): string;
  hour(h: number): string;
}

export type FigureKind = 'count' | 'decimal' | 'share' | 'seconds';

/** English is written the European way, as everywhere in the appliance (app/i18n/dates.ts). */
function locale(lang: Language): string {
  return lang === 'en' ? 'en-GB' : lang;
}

/** A day as a UTC instant at noon: formatting it in UTC never moves it to another day. */
function noon(day: string): Date {
  return new Date(`${day}T12:00:00Z`);
}

export function insightsFormat(lang: Language, t: Translate): InsightsFormat {
  const loc = locale(lang);
  const numbers = new Map<number, Intl.NumberFormat>();
  const number = (n: number, fractionDigits = 0): string => {
    let f = numbers.get(fractionDigits);
    if (!f) numbers.set(fractionDigits, (f = new Intl.NumberFormat(loc, { maximumFractionDigits: fractionDigits })));
    return f.format(n);
  };
  const percent = new Intl.NumberFormat(loc, { style: 'percent', maximumFractionDigits: 1 });
  const dayFormat = new Intl.DateTimeFormat(loc, { dateStyle: 'medium', timeZone: 'UTC' });
  const shortDay = new Intl.DateTimeFormat(loc, { day: 'numeric', month: 'short', timeZone: 'UTC' });
  const monthFormat = new Intl.DateTimeFormat(loc, { month: 'short', year: 'numeric', timeZone: 'UTC' });
  const weekdays = { short: new Intl.DateTimeFormat(loc, { weekday: 'short', timeZone: 'UTC' }), long: new Intl.DateTimeFormat(loc, { weekday: 'long', timeZone: 'UTC' }) };

  const seconds = (total: number): string => {
    const s = Math.round(total);
    if (s < 60) return t('insights.units.seconds', { s: number(s) });
    if (s < 3600) return t(s % 60 ? 'insights.units.minutes' : 'insights.units.whole_minutes', { m: number(Math.floor(s / 60)), s: number(s % 60) });
    return t('insights.units.hours', { h: number(Math.floor(s / 3600)), m: number(Math.floor((s % 3600) / 60)) });
  };

  return {
    lang,
    t,
    figure(f, kind) {
      if (f.tooFew) return t('insights.too_few');
      if (f.value === null) return t('insights.no_data');
      switch (kind) {
        case 'count':
          return number(f.value);
        case 'decimal':
          return number(f.value, 1);
        case 'share':
          return percent.format(f.value);
        case 'seconds':
          return seconds(f.value);
      }
    },
    number,
    seconds,
    bucket(first, width) {
      if (width === 'month') return monthFormat.format(noon(first));
      if (width === 'week') return t('insights.week_of', { day: shortDay.format(noon(first)) });
      return shortDay.format(noon(first));
    },
    day: (day) => dayFormat.format(noon(day)),
    range: (from, to) => (from === to ? dayFormat.format(noon(from)) : dayFormat.formatRange(noon(from), noon(to))),
    // 2024-01-01 was a Monday.
    weekday: (n, width = 'short') => weekdays[width].format(noon(`2024-01-0${n}`)),
    hour: (h) => String(h).padStart(2, '0'),
  };
}
