import type { Knex } from 'knex';
import type { Actor } from '../audit/actions';
import { AuditService } from '../audit/service';
import { NotFoundError } from '../core/errors';
import { actorOf, type Caller } from './caller';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Who asked for an id: a signed-in user or an API key, their organisation, and from where. */
export interface Prober {
  organisationId: string;
  actor: Extract<Actor, { type: 'user' | 'api_key'; label: string }>;
  ip: string | null;
  userAgent: string | null;
}

export function proberOf(caller: Pick<Caller, 'user' | 'ip' | 'userAgent'>): Prober {
  return { organisationId: caller.user.organisationId, actor: actorOf(caller.user) as Prober['actor'], ip: caller.ip, userAgent: caller.userAgent };
}

/**
 * The one check for an id that belongs to another organisation (each
 * table named here has `organisation_id`). When it does, the attempt is
 * audited as `security.cross_organisation_denied` twice, each in its own
 * transaction so that it stays although the request fails: in the
 * prober's organisation (their user or key, IP and user agent), and in the
 * target's, so that its compliance staff see who tried their data, with
 * only what they need (the prober's organisation id, the user's or key's
 * id, the IP, the kind and id of the resource; no name, e-mail or user
 * agent). Answers whether the id was another organisation's; an unknown id
 * or the prober's own is not audited here.
 */
export async function auditForeignProbe(knex: Knex, prober: Prober, table: string, targetType: string, id: string): Promise<boolean> {
  if (!UUID.test(id)) return false;
  const row = (await knex(table).where({ id }).first('organisation_id')) as { organisation_id: string } | undefined;
  if (!row || row.organisation_id === prober.organisationId) return false;
  const audit = new AuditService(knex);
  const target = { type: targetType, id };
  // Two transactions, one chain each: one holding both chains' locks could deadlock against a probe the other way round.
  await audit.record({ organisationId: prober.organisationId, actor: prober.actor, action: 'security.cross_organisation_denied', target, ip: prober.ip, userAgent: prober.userAgent });
  await audit.record({
    organisationId: row.organisation_id,
    actor: { type: prober.actor.type, id: prober.actor.id, organisationId: prober.organisationId },
    action: 'security.cross_organisation_denied',
    target,
    ip: prober.ip,
    details: { from_organisation_id: prober.organisationId },
  });
  return true;
}

/** An id the caller's organisation does not have: 404 either way, audited in both organisations when it is another's. */
export async function refuseForeign(knex: Knex, caller: Caller | Prober, table: string, targetType: string, id: string): Promise<never> {
  await auditForeignProbe(knex, 'user' in caller ? proberOf(caller) : caller, table, targetType, id);
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

  /** Audits another organisation's id without refusing (for checks that answer otherwise, e.g. a validation error). */
  protected auditForeign(table: string, targetType: string, id: string): Promise<boolean> {
    return auditForeignProbe(this.knex, proberOf(this.caller), table, targetType, id);
  }
}
