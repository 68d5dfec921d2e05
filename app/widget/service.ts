import type { Knex } from 'knex';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { actorOf, type Caller } from '../access/caller';
import { organisationSettings, setWidgetOrigins } from '../organisation/store';

/** An origin as browsers send it: scheme, host, optional port; nothing else. */
const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/;

export const widgetOriginsSchema = z.object({
  widget_origins: z
    .string()
    .max(4000, 'too_long')
    .transform((text) => [...new Set(text.split(/[\s,]+/).map((o) => o.trim().toLowerCase().replace(/\/+$/, '')).filter(Boolean))])
    .refine((list) => list.length <= 20, 'too_many')
    .refine((list) => list.every((o) => ORIGIN.test(o)), 'invalid_origin'),
});

/**
 * The website origins allowed to embed the organisation's widget and queue
 * page. Enforced by CORS (widget data) and frame-ancestors (queue pages);
 * kept in the organisation's settings.
 */
export class WidgetSettings {
  constructor(private readonly knex: Knex) {}

  async origins(organisationId: string): Promise<string[]> {
    const list = (await organisationSettings(this.knex, organisationId))?.widgetOrigins;
    return Array.isArray(list) ? list.filter((o): o is string => typeof o === 'string' && ORIGIN.test(o)) : [];
  }

  async setOrigins(caller: Caller, origins: string[]): Promise<void> {
    const before = await this.origins(caller.user.organisationId);
    await this.knex.transaction(async (trx) => {
      await setWidgetOrigins(trx, caller.user.organisationId, origins);
      await new AuditService(this.knex).record(
        { organisationId: caller.user.organisationId, actor: actorOf(caller.user), action: 'organisation.updated', target: { type: 'organisation', id: caller.user.organisationId }, ip: caller.ip, userAgent: caller.userAgent, details: { widget_origins: { before, after: origins } } },
        trx,
      );
    });
  }
}
