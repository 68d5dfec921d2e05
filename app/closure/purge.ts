import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { SYSTEM } from '../audit/actions';
import { sha256 } from '../security/tokens';
import { AuditService } from '../audit/service';
import { LegalHolds } from '../holds/service';
import { recordingsDir, removeRecordingFiles } from '../recordings/storage';
import { DAY_MS, PURGE_AFTER_DAYS } from './service';
import { deleteCalls, organisationCallIds } from '../calls/store';
import { deleteEntriesOfCalls, deleteEntriesWithoutCall } from '../queue/store';
import { anonymiseUsers, deleteAvailabilitySpansOf, emailsOf, organisationUserIds } from '../staff/store';
import { clearPurgedOrganisation, lockForPurge, organisationsDueForPurge } from '../organisation/store';
import { deleteSessionsOfUsers } from '../access/session-store';
import { deleteThrottles } from '../sign-in/throttle';
import { deleteTokensOfOrganisation, deleteTokensOfUsers } from '../access/one-time-tokens';
import { deleteRequestLogOf } from '../retention/api-requests';
import { recordingIdsOfCalls } from '../recordings/service';
import { deleteOrganisationRequests } from '../requests/service';
import { deleteOrganisationKeys } from '../api-keys/service';
import { deleteOrganisationProducts } from '../catalog/service';
import { deleteOrganisationEndpoints } from '../webhooks/store';
import { deleteOrganisationFigures } from '../insights/store';

export interface PurgeReceipt {
  organisationId: string;
  /** Nothing was purged: the organisation as a whole is under a legal hold. */
  held: boolean;
  /** Calls kept because something of them is under a legal hold; purged on a later run once lifted. */
  heldCalls: number;
  users: number;
  calls: number;
  recordings: number;
  apiKeys: number;
  webhooks: number;
  products: number;
  requests: number;
  completed: boolean;
}

/**
 * Deletes or anonymises the data of organisations closed at least 60 days
 * before `now`; the retention job calls it. What stays is the organisation
 * row as a closed shell (name, VAT number, dates: what accounting may need;
 * the appliance itself keeps no billing data), its privacy-text versions,
 * and its audit trail, which is append-only and the proof of what happened,
 * ending with the receipt event `organisation.purged`.
 *
 * - users: name and e-mail replaced, password hash, language and last
 *   sign-in IP removed, deactivated; their sessions, one-time links and
 *   sign-in throttles go;
 * - calls with all their content (cards, chat, notes, consent records,
 *   recordings: rows and files), queue entries;
 * - API keys, webhooks (with deliveries), the catalog (products, images),
 *   data-subject requests, Insights' figures and available time;
 * - logo, colour and settings of the organisation.
 *
 * An organisation-wide legal hold stops all of it until lifted; calls with
 * something held are kept (with their recordings) and the organisation is
 * marked purged only once nothing is held any more.
 */
export async function purgeClosedOrganisations(knex: Knex, options: { dataDir: string; now?: Date }): Promise<PurgeReceipt[]> {
  const now = options.now ?? new Date();
  const cutoff = new Date(now.getTime() - PURGE_AFTER_DAYS * DAY_MS);
  const due = await organisationsDueForPurge(knex, cutoff);
  const receipts: PurgeReceipt[] = [];
  for (const id of due) receipts.push(await purgeOne(knex, id, options.dataDir, now));
  return receipts;
}

async function purgeOne(knex: Knex, organisationId: string, dataDir: string, now: Date): Promise<PurgeReceipt> {
  const receipt: PurgeReceipt = { organisationId, held: false, heldCalls: 0, users: 0, calls: 0, recordings: 0, apiKeys: 0, webhooks: 0, products: 0, requests: 0, completed: false };
  const held = await new LegalHolds(knex).heldCallIds(organisationId);
  if (held === 'all') return { ...receipt, held: true };
  receipt.heldCalls = held.size;
  await knex.transaction(async (trx) => {
    const org = await lockForPurge(trx, organisationId);
    if (!org?.closed_at || org.purged_at) return;
    const calls = (await organisationCallIds(trx, organisationId)).filter((id) => !held.has(id));
    const recordings = calls.length ? await recordingIdsOfCalls(trx, calls) : [];
    if (calls.length) {
      await deleteEntriesOfCalls(trx, calls);
      receipt.calls = await deleteCalls(trx, calls);
    }
    await deleteEntriesWithoutCall(trx, organisationId);
    receipt.recordings = recordings.length;
    const userIds = await organisationUserIds(trx, organisationId);
    if (userIds.length) {
      await deleteSessionsOfUsers(trx, userIds);
      await deleteTokensOfUsers(trx, userIds);
      const emails = await emailsOf(trx, userIds);
      await deleteThrottles(trx, emails.map((e: string) => `account:${sha256(e.toLowerCase())}`));
      receipt.users = await anonymiseUsers(trx, userIds, now);
    }
    await deleteTokensOfOrganisation(trx, organisationId);
    // The API request log (client IPs) goes with the keys.
    await deleteRequestLogOf(trx, organisationId);
    receipt.apiKeys = await deleteOrganisationKeys(trx, organisationId);
    receipt.webhooks = await deleteOrganisationEndpoints(trx, organisationId);
    receipt.products = await deleteOrganisationProducts(trx, organisationId);
    receipt.requests = await deleteOrganisationRequests(trx, organisationId);
    await deleteOrganisationFigures(trx, organisationId);
    await deleteAvailabilitySpansOf(trx, organisationId);
    receipt.completed = held.size === 0;
    await clearPurgedOrganisation(trx, organisationId, now, receipt.completed);
    // Files last, inside the transaction: the rows go only when their files went.
    for (const id of recordings) await removeRecordingFiles(dataDir, organisationId, id);
    if (receipt.completed) await fs.promises.rm(path.join(recordingsDir(dataDir), organisationId.toLowerCase()), { recursive: true, force: true });
    const changed = receipt.calls + receipt.users + receipt.apiKeys + receipt.webhooks + receipt.products + receipt.requests > 0;
    if (changed || receipt.completed) {
      await new AuditService(knex).record(
        {
          organisationId,
          actor: SYSTEM,
          action: 'organisation.purged',
          target: { type: 'organisation', id: organisationId },
          details: { closed_at: org.closed_at.toISOString(), users_anonymised: receipt.users, calls_deleted: receipt.calls, recordings_deleted: receipt.recordings, api_keys_deleted: receipt.apiKeys, webhooks_deleted: receipt.webhooks, products_deleted: receipt.products, requests_deleted: receipt.requests, calls_held: receipt.heldCalls, completed: receipt.completed },
        },
        trx,
      );
    }
  });
  return receipt;
}
