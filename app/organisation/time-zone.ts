import type { RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import { DEFAULT_TIME_ZONE, isTimeZone } from '../i18n/dates';
import { useTimeZone } from '../http/i18n';
import { organisationSettings } from './store';

/**
 * The organisation's time zone: the one its admin chose on the organisation
 * page (kept with the opening hours, which are read in it), else
 * DEFAULT_TIME_ZONE. Staff pages, customer pages and the summaries show
 * dates in it.
 */
export function timeZoneOf(settings: Record<string, unknown> | undefined): string {
  const hours = settings?.openingHours as { timezone?: unknown } | undefined;
  return isTimeZone(hours?.timezone) ? hours.timezone : DEFAULT_TIME_ZONE;
}

export async function organisationTimeZone(knex: Knex, organisationId: string): Promise<string> {
  return timeZoneOf(await organisationSettings(knex, organisationId));
}

/** Dates on this response in the organisation's time zone (customer pages, whose organisation the handler finds). */
export async function showDatesOf(knex: Knex, res: Response, organisationId: string): Promise<string> {
  const zone = await organisationTimeZone(knex, organisationId);
  useTimeZone(res, zone);
  return zone;
}

/** A signed-in user sees dates in their organisation's time zone. */
export function staffTimeZone(knex: Knex): RequestHandler {
  return (req, res, next) => {
    if (!req.user) return next();
    showDatesOf(knex, res, req.user.organisationId).then(() => next(), next);
  };
}
