import { z } from 'zod';
import { OrganisationScopedService } from '../access/scoped-service';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors';
import { parseBody } from '../http/forms';
import { endOrganisationCalls, revokeOrganisationLinks } from '../calls/store';
import { closeWaitingEntries } from '../queue/store';
import { closureOf, lockClosureOf, markClosed } from '../organisation/store';

/** Days between closing an organisation and purging its data. */
export const PURGE_AFTER_DAYS = 60;
export const DAY_MS = 86_400_000;

export const closeSchema = z.object({ confirm_name: z.string('required').trim().min(1, 'required').max(300, 'too_long') });

export interface ClosureResult {
  closedAt: Date;
  purgeAfter: Date;
  endedCallIds: string[];
}

/**
 * Closing the caller's organisation (admins only, confirmed by typing its
 * name). From then on: no sign-in and no session (login and
 * `loadCurrentUser` check `closed_at`), no API key, no queue or widget (they
 * check `closed_at`), and no customer link: every open call is ended and
 * every call link revoked here, in the same transaction as the audit event.
 * `purgeClosedOrganisations` deletes the data 60 days later.
 */
export class OrganisationClosure extends OrganisationScopedService {
  async status(): Promise<{ name: string; closedAt: Date | null }> {
    const row = await closureOf(this.knex, this.organisationId);
    if (!row) throw new NotFoundError();
    return { name: row.name, closedAt: row.closed_at ?? null };
  }

  async close(body: unknown): Promise<ClosureResult> {
    const input = parseBody(closeSchema, body);
    return this.knex.transaction(async (trx) => {
      const org = await lockClosureOf(trx, this.organisationId);
      if (!org) throw new NotFoundError();
      if (org.closed_at) throw new ConflictError('organisation_closed', { messageKey: 'organisation.closed' });
      if (input.confirm_name !== org.name) throw new ValidationError([{ field: 'confirm_name', code: 'name_mismatch' }]);
      const [{ now }] = (await trx.raw('SELECT now() AS now')).rows as [{ now: Date }];
      await markClosed(trx, this.organisationId, now);
      const ended = await endOrganisationCalls(trx, this.organisationId, now, 'organisation_closed');
      for (const id of ended) {
        await this.audit.record({ ...this.base(), action: 'call.ended', target: { type: 'call', id }, details: { reason: 'organisation_closed' } }, trx);
      }
      const revoked = await revokeOrganisationLinks(trx, this.organisationId, now);
      const left = await closeWaitingEntries(trx, this.organisationId, now);
      const purgeAfter = new Date(now.getTime() + PURGE_AFTER_DAYS * DAY_MS);
      await this.audit.record(
        { ...this.base(), action: 'organisation.closed', target: { type: 'organisation', id: this.organisationId }, details: { calls_ended: ended.length, links_revoked: revoked, queue_entries_closed: left, purge_after: purgeAfter.toISOString() } },
        trx,
      );
      return { closedAt: now, purgeAfter, endedCallIds: ended };
    });
  }
}
