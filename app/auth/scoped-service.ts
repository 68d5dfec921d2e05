import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { NotFoundError } from '../errors';
import { actorOf, type Caller } from './caller';

/**
 * An id the caller's organisation does not have: 404 either way, and when
 * the id exists in another organisation, the attempt is audited (in its
 * own transaction, so it stays even though the request fails).
 */
export async function refuseForeign(knex: Knex, caller: Caller, table: string, targetType: string, id: string): Promise<never> {
  if (await knex(table).where({ id }).first('id')) {
    await new AuditService(knex).record({
      organisationId: caller.user.organisationId,
      actor: actorOf(caller.user),
      action: 'security.cross_organisation_denied',
      target: { type: targetType, id },
      ip: caller.ip,
      userAgent: caller.userAgent,
    });
  }
  throw new NotFoundError();
}

/**
 * The base of services built per request with the caller: the caller's
 * organisation scopes every query, and `base()` is what each audit event
 * of theirs carries.
 */
export abstract class OrganisationScopedService {
  protected readonly audit: AuditService;

  constructor(protected readonly knex: Knex, protected readonly caller: Caller) {
    this.audit = new AuditService(knex);
  }

  protected get organisationId(): string {
    return this.caller.user.organisationId;
  }

  protected base() {
    return { organisationId: this.organisationId, actor: actorOf(this.caller.user), ip: this.caller.ip, userAgent: this.caller.userAgent };
  }

  protected refuseForeign(table: string, targetType: string, id: string): Promise<never> {
    return refuseForeign(this.knex, this.caller, table, targetType, id);
  }
}
