import type { Knex } from 'knex';
import { SYSTEM } from './actions';
import type { ChainCheck } from './checkpoints';
import { AuditService } from './service';
import { alarmRaisedSince } from './store';

const DAY_MS = 24 * 3_600_000;

/**
 * What the scheduled check found wrong with one chain, as the audit event
 * `security.audit_chain_broken` records it (no content of the rows).
 */
export function chainFinding(check: ChainCheck): Record<string, unknown> {
  return {
    chain: check.chain,
    broken_seq: check.broken?.seq ?? null,
    broken_reason: check.broken?.reason ?? null,
    checkpoint_seq: check.mismatch?.checkpoint.seq ?? null,
    checkpoint_at: check.mismatch?.checkpoint.created_at ?? null,
    checkpoint_reason: check.mismatch?.reason ?? null,
    mismatches: check.mismatches,
    invalid_signatures: check.invalidSignatures,
    missing_from_database: check.missingFromDatabase,
  };
}

/**
 * Makes a failed chain check visible where compliance staff look: the
 * event `security.audit_chain_broken` in that chain's own trail (the
 * organisation's, or the appliance-wide one), so the security-signals page
 * counts it and webhooks and exports carry it. The same finding is written
 * at most once a day, so a chain that stays broken does not fill the trail.
 * Answers whether it wrote.
 */
export async function raiseChainAlarm(knex: Knex, organisationId: string | null, check: ChainCheck, now = new Date()): Promise<boolean> {
  const details = chainFinding(check);
  if (await alarmRaisedSince(knex, organisationId, details, new Date(now.getTime() - DAY_MS))) return false;
  await new AuditService(knex).record({ organisationId, actor: SYSTEM, action: 'security.audit_chain_broken', details });
  return true;
}
