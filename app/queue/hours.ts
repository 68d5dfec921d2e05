import { z } from 'zod';

export const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof weekdays)[number];

export interface OpeningHours {
  timezone: string;
  days: Partial<Record<Weekday, { from: string; to: string }>>;
}

const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;
const timezones = new Set(Intl.supportedValuesOf('timeZone'));

/** The admin form: a time zone and, per weekday, from/to (both empty = closed that day). */
export const queueSettingsSchema = z
  .object({
    timezone: z.string().trim().refine((tz) => timezones.has(tz) || tz === 'UTC', 'invalid_timezone'),
    auto_routing: z.enum(['on']).optional(),
    ...Object.fromEntries(weekdays.flatMap((d) => [[`${d}_from`, z.string().trim().optional()], [`${d}_to`, z.string().trim().optional()]])),
  })
  .superRefine((v, ctx) => {
    const values = v as Record<string, string | undefined>;
    for (const d of weekdays) {
      const from = values[`${d}_from`] ?? '';
      const to = values[`${d}_to`] ?? '';
      if (from === '' && to === '') continue;
      if (!TIME.test(from) || !TIME.test(to) || from >= to) ctx.addIssue({ code: 'custom', path: [`${d}_from`], message: 'invalid_hours' });
    }
  });

export function hoursFromForm(input: Record<string, string | undefined>): OpeningHours {
  const days: OpeningHours['days'] = {};
  for (const d of weekdays) {
    const from = input[`${d}_from`];
    const to = input[`${d}_to`];
    if (from && to) days[d] = { from, to };
  }
  return { timezone: input.timezone ?? 'UTC', days };
}

/** Opening hours from an organisation's settings; none configured means always open. */
export function hoursOf(settings: Record<string, unknown>): OpeningHours | undefined {
  const hours = settings.openingHours as OpeningHours | undefined;
  if (!hours || typeof hours !== 'object' || !hours.days || Object.keys(hours.days).length === 0) return undefined;
  return hours;
}

/** Whether the organisation is open at `now`, in its own time zone. */
export function isOpen(hours: OpeningHours | undefined, now = new Date()): boolean {
  if (!hours) return true;
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: hours.timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(now);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = get('weekday').toLowerCase().slice(0, 3) as Weekday;
  const time = `${get('hour')}:${get('minute')}`;
  const slot = hours.days[day];
  return !!slot && time >= slot.from && time < slot.to;
}
