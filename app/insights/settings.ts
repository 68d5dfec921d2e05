import type { Knex } from 'knex';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { actorOf, type Caller } from '../access/caller';
import { parseBody } from '../http/forms';
import { lockOrganisationSettings, mergeOrganisationSettings, organisationSettings } from '../organisation/store';

/**
 * The organisation's Insights settings (in `organisations.settings.insights`):
 * - `threshold`: a figure built from fewer calls than this is withheld ("too few"); 3 to 100, default 5;
 * - `serviceLevelSeconds`: the service level is the share of queue customers answered within it; 5 s to 1 h, default 60 s;
 * - `clerksSeeEachOther`: whether clerks see every clerk's figures, not only their own (default no).
 * How long the figures are kept is a retention setting (`insights`, retention/settings.ts).
 */
export interface InsightsSettings {
  threshold: number;
  serviceLevelSeconds: number;
  clerksSeeEachOther: boolean;
}

export const DEFAULT_INSIGHTS_SETTINGS: InsightsSettings = { threshold: 5, serviceLevelSeconds: 60, clerksSeeEachOther: false };
export const THRESHOLD_RANGE = { min: 3, max: 100 } as const;
export const SERVICE_LEVEL_RANGE = { min: 5, max: 3600 } as const;

const whole = (min: number, max: number) =>
  z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string('invalid_number').trim().regex(/^\d{1,5}$/, 'invalid_number').transform(Number).refine((n) => n >= min && n <= max, 'out_of_range'));

export const insightsSettingsSchema = z.object({
  threshold: whole(THRESHOLD_RANGE.min, THRESHOLD_RANGE.max),
  service_level_seconds: whole(SERVICE_LEVEL_RANGE.min, SERVICE_LEVEL_RANGE.max),
  // A checkbox: present ("on") or absent.
  clerks_see_each_other: z.preprocess((v) => v === 'on' || v === 'true' || v === true, z.boolean()),
});

function settingsOf(stored: unknown): InsightsSettings {
  const value = (stored ?? {}) as Partial<Record<keyof InsightsSettings, unknown>>;
  const inRange = (n: unknown, r: { min: number; max: number }): n is number => typeof n === 'number' && Number.isInteger(n) && n >= r.min && n <= r.max;
  return {
    threshold: inRange(value.threshold, THRESHOLD_RANGE) ? value.threshold : DEFAULT_INSIGHTS_SETTINGS.threshold,
    serviceLevelSeconds: inRange(value.serviceLevelSeconds, SERVICE_LEVEL_RANGE) ? value.serviceLevelSeconds : DEFAULT_INSIGHTS_SETTINGS.serviceLevelSeconds,
    clerksSeeEachOther: value.clerksSeeEachOther === true,
  };
}

export class InsightsSettingsStore {
  constructor(private readonly knex: Knex) {}

  async get(organisationId: string): Promise<InsightsSettings> {
    return settingsOf((await organisationSettings(this.knex, organisationId))?.insights);
  }

  /** Saves the admin's form; a change is audited with before and after. Bad input: ValidationError, nothing changed. */
  async save(caller: Caller, body: unknown): Promise<InsightsSettings> {
    const input = parseBody(insightsSettingsSchema, body);
    const after: InsightsSettings = { threshold: input.threshold, serviceLevelSeconds: input.service_level_seconds, clerksSeeEachOther: input.clerks_see_each_other };
    const organisationId = caller.user.organisationId;
    await this.knex.transaction(async (trx) => {
      const before = settingsOf((await lockOrganisationSettings(trx, organisationId))?.insights);
      if (before.threshold === after.threshold && before.serviceLevelSeconds === after.serviceLevelSeconds && before.clerksSeeEachOther === after.clerksSeeEachOther) return;
      await mergeOrganisationSettings(trx, organisationId, { insights: after });
      await new AuditService(this.knex).record(
        { organisationId, actor: actorOf(caller.user), action: 'insights.settings_changed', target: { type: 'organisation', id: organisationId }, ip: caller.ip, userAgent: caller.userAgent, details: { before, after } },
        trx,
      );
    });
    return after;
  }
}
