import type { Knex } from 'knex';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { actorOf, type Caller } from '../access/caller';
import { mergeOrganisationSettings, organisationSettings } from './store';

export const privacyContactSchema = z.object({
  privacy_contact: z.string().trim().max(300, 'too_long'),
});

/**
 * Who customers can contact about their data (the organisation's data
 * protection contact), shown in the privacy notice before a call.
 */
export class PrivacyContact {
  constructor(private readonly knex: Knex) {}

  async get(organisationId: string): Promise<string> {
    const value = (await organisationSettings(this.knex, organisationId))?.privacyContact;
    return typeof value === 'string' ? value : '';
  }

  async set(caller: Caller, contact: string): Promise<void> {
    const before = await this.get(caller.user.organisationId);
    await this.knex.transaction(async (trx) => {
      await mergeOrganisationSettings(trx, caller.user.organisationId, { privacyContact: contact });
      await new AuditService(this.knex).record(
        { organisationId: caller.user.organisationId, actor: actorOf(caller.user), action: 'organisation.updated', target: { type: 'organisation', id: caller.user.organisationId }, ip: caller.ip, userAgent: caller.userAgent, details: { privacy_contact: { before, after: contact } } },
        trx,
      );
    });
  }
}
