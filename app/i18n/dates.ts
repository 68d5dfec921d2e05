/**
 * Dates and times as people read them: in the organisation's time zone and
 * the reader's language, through one formatter (views get it as
 * `formatDateTime`, `formatDate` and `formatTime`, app/http/i18n.ts).
 * Machine-readable output (CSV, JSON, `<time datetime>`) stays ISO 8601 UTC.
 */

/** The time zone when an organisation has chosen none (the organisation page shows it as the choice). */
export const DEFAULT_TIME_ZONE = 'Europe/Berlin';

const zones = new Set(['UTC', ...Intl.supportedValuesOf('timeZone')]);

/** Every time zone the runtime knows (IANA names), for a picker. */
export function supportedTimeZones(): string[] {
  return [...zones].sort();
}

export function isTimeZone(value: unknown): value is string {
  return typeof value === 'string' && zones.has(value);
}

/** English dates are written the European way (day, month, 24 hours): the appliance's organisations are European. */
function locale(lang: string): string {
  return lang === 'en' ? 'en-GB' : lang;
}

export type DateInput = Date | string | number | null | undefined;

export interface DateTimeOptions {
  /** Show seconds (audit trails). */
  seconds?: boolean;
}

export interface DateOptions {
  /** `long` spells the month out. */
  style?: 'medium' | 'long';
}

const formats = new Map<string, Intl.DateTimeFormat>();

function formatter(lang: string, timeZone: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${lang}|${timeZone}|${JSON.stringify(options)}`;
  let format = formats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(locale(lang), { ...options, timeZone: isTimeZone(timeZone) ? timeZone : DEFAULT_TIME_ZONE });
    formats.set(key, format);
  }
  return format;
}

function toDate(value: DateInput): Date | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** A reader's formatter: empty text for no date. */
export interface DateFormat {
  dateTime(value: DateInput, options?: DateTimeOptions): string;
  date(value: DateInput, options?: DateOptions): string;
  time(value: DateInput, options?: DateTimeOptions): string;
}

export function dateFormat(lang: string, timeZone: string): DateFormat {
  const format = (value: DateInput, options: Intl.DateTimeFormatOptions) => {
    const date = toDate(value);
    return date ? formatter(lang, timeZone, options).format(date) : '';
  };
  return {
    dateTime: (value, options = {}) => format(value, { dateStyle: 'medium', timeStyle: options.seconds ? 'medium' : 'short' }),
    date: (value, options = {}) => format(value, { dateStyle: options.style ?? 'medium' }),
    time: (value, options = {}) => format(value, { timeStyle: options.seconds ? 'medium' : 'short' }),
  };
}

/** The day formatter per known time zone (so at most one per zone): localDate runs once per call and day in the Insights count. */
const dayFormats = new Map<string, Intl.DateTimeFormat>();

/** The calendar day (`YYYY-MM-DD`) it is at `at` in `timeZone`. */
export function localDate(at: Date | number, timeZone: string): string {
  const zone = isTimeZone(timeZone) ? timeZone : DEFAULT_TIME_ZONE;
  let format = dayFormats.get(zone);
  if (!format) {
    format = formatter('en', zone, { year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormats.set(zone, format);
  }
  const parts = format.formatToParts(new Date(at));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** The moment (ms) a local day begins in `timeZone`: its 00:00, or the first moment after when a clock change skips it. */
export function localMidnight(day: string, timeZone: string): number {
  const wall = Date.parse(`${day}T00:00:00Z`);
  let t = wall - offsetAt(wall, timeZone);
  t = wall - offsetAt(t, timeZone); // once more, for an offset that changes between the guesses
  return localDate(t, timeZone) === day ? t : t + 3_600_000;
}

const WALL_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;

/** How far `timeZone` is ahead of UTC at `at`, in milliseconds. */
function offsetAt(at: number, timeZone: string): number {
  const parts = formatter('en', timeZone, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(at));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - Math.floor(at / 1000) * 1000;
}

/**
 * A time as a person typed it (`YYYY-MM-DDTHH:MM`, a `datetime-local`
 * field) read in `timeZone`, as an ISO UTC string; a value with its own
 * offset or `Z` (or anything else) is returned unchanged.
 */
export function wallTimeToIso(value: string, timeZone: string): string {
  const m = WALL_TIME.exec(value.trim());
  if (!m) return value;
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  let utc = wall - offsetAt(wall, timeZone);
  utc = wall - offsetAt(utc, timeZone); // once more, for a time near a change to or from summer time
  return new Date(utc).toISOString();
}
