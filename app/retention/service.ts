import { OrganisationScopedService } from '../access/scoped-service';
import type { AuditEvent } from '../audit/service';
import { LegalHolds } from '../holds/service';
import { runRetention, type Receipt } from './run';

/** Compliance staff's view of retention: the latest receipts, whether a hold suspends it, and "Run now". */
export class RetentionService extends OrganisationScopedService {
  /** The latest deletion receipts of the organisation, newest first. */
  async receipts(limit = 20): Promise<AuditEvent[]> {
    const { events } = await this.audit.list(this.organisationId, { action: 'retention.deleted' }, { limit, offset: 0 });
    return events;
  }

  async organisationHeld(): Promise<boolean> {
    return (await new LegalHolds(this.knex).heldCallIds(this.organisationId)) === 'all';
  }

  /** Runs retention for the caller's organisation now; the request is audited before the run (and the receipts after it). */
  async runNow(dataDir: string): Promise<Receipt[]> {
    await this.audit.record({ ...this.base(), action: 'retention.run_requested', target: { type: 'organisation', id: this.organisationId } });
    return runRetention(this.knex, { dataDir, organisationId: this.organisationId });
  }
}
