import { z } from 'zod';
import { ValidationError } from '../core/errors';
import { parseBody } from '../http/forms';
import { localDate } from '../i18n/dates';
import { PERIOD_KINDS, type Period } from './figures';

/** The longest custom period, in days (about three years: the page answers within the benchmark's bound for it). */
export const MAX_CUSTOM_DAYS = 1100;

const date = z.string('invalid_date').regex(/^\d{4}-\d{2}-\d{2}$/, 'invalid_date').refine((s) => isRealDate(s), 'invalid_date');

const periodQuery = z.object({
  period: z.enum(PERIOD_KINDS, 'invalid_period').default('month'),
  date: date.optional(),
  from: date.optional(),
  to: date.optional(),
});

function isRealDate(s: string): boolean {
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/** Date arithmetic on YYYY-MM-DD (calendar days, no time zone involved). */
export function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/** Monday of the day's ISO week. */
export function weekStart(day: string): string {
  const weekday = (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7;
  return addDays(day, -weekday);
}

export function monthStart(day: string): string {
  return `${day.slice(0, 7)}-01`;
}

/** The first day of the month `n` months after the day's month. */
export function addMonths(day: string, n: number): string {
  const d = new Date(`${monthStart(day)}T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + n);
  return d.toISOString().slice(0, 10);
}

export function monthEnd(day: string): string {
  return addDays(addMonths(day, 1), -1);
}

function bucketFor(days: number): Period['bucket'] {
  if (days <= 62) return 'day';
  if (days <= 366) return 'week';
  return 'month';
}

/**
 * The period a page or API request asks for (query `period`: day, week,
 * month (default) or custom; `date`: a day in it, default today in the
 * organisation's time zone; custom: `from` and `to`, at most
 * MAX_CUSTOM_DAYS). Bad input: ValidationError naming the field.
 */
export function parsePeriod(query: unknown, timeZone: string, now = new Date()): Period {
  const input = parseBody(periodQuery, query);
  const anchor = input.date ?? localDate(now, timeZone);
  if (input.period === 'custom') {
    if (!input.from) throw fieldError('from', 'date_required');
    if (!input.to) throw fieldError('to', 'date_required');
    const length = daysBetween(input.from, input.to) + 1;
    if (length < 1) throw fieldError('to', 'before_from');
    if (length > MAX_CUSTOM_DAYS) throw fieldError('to', 'period_too_long');
    return { kind: 'custom', from: input.from, to: input.to, bucket: bucketFor(length), previous: null, next: null };
  }
  let from: string;
  let to: string;
  let shift: (day: string, n: number) => string;
  if (input.period === 'day') {
    from = to = anchor;
    shift = addDays;
  } else if (input.period === 'week') {
    from = weekStart(anchor);
    to = addDays(from, 6);
    shift = (day, n) => addDays(day, 7 * n);
  } else {
    from = monthStart(anchor);
    to = monthEnd(anchor);
    shift = addMonths;
  }
  const around = (n: number) => {
    const start = shift(from, n);
    return { from: start, to: input.period === 'month' ? monthEnd(start) : shift(to, n) };
  };
  return { kind: input.period, from, to, bucket: 'day', previous: around(-1), next: around(1) };
}

function fieldError(field: string, code: string): ValidationError {
  return new ValidationError([{ field, code }]);
}
