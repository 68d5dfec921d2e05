import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { actorOf, type Caller } from '../access/caller';
import { hoursOf, type OpeningHours } from './hours';
import { mergeOrganisationSettings, organisationSettings } from '../organisation/store';

export interface QueueSettings {
  hours: OpeningHours | undefined;
  /** Automatic routing of waiting customers to free clerks: an automated decision, off unless the organisation opts in. */
  autoRouting: boolean;
}

/** An organisation's queue settings, kept in its settings. */
export class QueueSettingsStore {
  constructor(private readonly knex: Knex) {}

  async get(organisationId: string): Promise<QueueSettings> {
    const settings = (await organisationSettings(this.knex, organisationId)) ?? {};
    return { hours: hoursOf(settings), autoRouting: settings.autoRouting === true };
  }

  /** Saves both; a change of automatic routing is audited as its own event (compliance shows its history). */
  async save(caller: Caller, hours: OpeningHours, autoRouting: boolean): Promise<void> {
    const organisationId = caller.user.organisationId;
    const before = await this.get(organisationId);
    const meta = { organisationId, actor: actorOf(caller.user), target: { type: 'organisation', id: organisationId }, ip: caller.ip, userAgent: caller.userAgent };
    await this.knex.transaction(async (trx) => {
      await mergeOrganisationSettings(trx, organisationId, { openingHours: hours, autoRouting });
      const audit = new AuditService(this.knex);
      await audit.record({ ...meta, action: 'organisation.updated', details: { opening_hours: { before: before.hours ?? null, after: hours } } }, trx);
      if (before.autoRouting !== autoRouting) {
        await audit.record({ ...meta, action: 'organisation.auto_routing_changed', details: { automated_decision: true, enabled: autoRouting } }, trx);
      }
    });
  }
}
