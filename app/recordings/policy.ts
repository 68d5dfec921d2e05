import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { actorOf, type Caller } from '../access/caller';
import { isLanguage, translator, type Language } from '../i18n';
import { parseBody } from '../http/forms';
import { lockOrganisationSettings, mergeOrganisationSettings, organisationSettings } from '../organisation/store';
import { latestText } from '../privacy-texts/service';

export const recordingModes = ['off', 'on_demand', 'always'] as const;
export type RecordingMode = (typeof recordingModes)[number];

/**
 * An organisation's recording policy, kept in its settings:
 * - `mode`: off; on demand (the clerk starts and stops, the customer
 *   consents in the call first); or always (consent before joining);
 * - `allowUnrecorded`: under "always", a customer who declines may still
 *   have the call, unrecorded (else they are told it cannot proceed);
 * - `adminAccess`, `clerkAccess`: besides compliance staff, admins (all
 *   recordings) and clerks (recordings of their own calls) may list, play
 *   and download recordings.
 */
export interface RecordingPolicy {
  mode: RecordingMode;
  allowUnrecorded: boolean;
  adminAccess: boolean;
  clerkAccess: boolean;
}

export const DEFAULT_POLICY: RecordingPolicy = { mode: 'off', allowUnrecorded: false, adminAccess: false, clerkAccess: false };

const checkbox = z.preprocess((v) => v === 'on' || v === 'true' || v === true, z.boolean());

export const policySchema = z.object({
  mode: z.enum(recordingModes, 'invalid'),
  allow_unrecorded: checkbox,
  admin_access: checkbox,
  clerk_access: checkbox,
});

function policyOf(settings: Record<string, unknown>): RecordingPolicy {
  const stored = (settings.recording ?? {}) as Partial<RecordingPolicy>;
  return {
    mode: recordingModes.includes(stored.mode as RecordingMode) ? (stored.mode as RecordingMode) : DEFAULT_POLICY.mode,
    allowUnrecorded: stored.allowUnrecorded === true,
    adminAccess: stored.adminAccess === true,
    clerkAccess: stored.clerkAccess === true,
  };
}

export class RecordingPolicyStore {
  constructor(private readonly knex: Knex) {}

  async get(organisationId: string): Promise<RecordingPolicy> {
    return policyOf((await organisationSettings(this.knex, organisationId)) ?? {});
  }

  /** Saves the policy from the admin form; a change is audited with before and after. */
  async save(caller: Caller, body: unknown): Promise<RecordingPolicy> {
    const input = parseBody(policySchema, body);
    const policy: RecordingPolicy = { mode: input.mode, allowUnrecorded: input.allow_unrecorded, adminAccess: input.admin_access, clerkAccess: input.clerk_access };
    const organisationId = caller.user.organisationId;
    await this.knex.transaction(async (trx) => {
      const before = policyOf((await lockOrganisationSettings(trx, organisationId)) ?? {});
      if (JSON.stringify(before) === JSON.stringify(policy)) return;
      await mergeOrganisationSettings(trx, organisationId, { recording: policy });
      await new AuditService(this.knex).record(
        { organisationId, actor: actorOf(caller.user), action: 'organisation.recording_policy_changed', target: { type: 'organisation', id: organisationId }, ip: caller.ip, userAgent: caller.userAgent, details: { before, after: policy } },
        trx,
      );
    });
    return policy;
  }
}

export interface RecordingNotice {
  text: string;
  version: string;
  language: Language;
}

/**
 * The recording notice a participant is asked to consent to, in their
 * language, and its version (a digest of the text, so any change of the
 * wording is a new version in the consent ledger).
 */
export function recordingNotice(language: unknown): RecordingNotice {
  const lang: Language = isLanguage(language) ? language : 'en';
  const text = translator(lang)('recordings.notice_text');
  return { text, version: `builtin-${crypto.createHash('sha256').update(text).digest('hex').slice(0, 12)}`, language: lang };
}

/**
 * The recording notice the organisation has set for this language (its
 * latest saved version, `org-v<n>`), or the built-in one when it has none.
 * What the call pages show and what the consent ledger stores.
 */
export async function organisationRecordingNotice(knex: Knex, organisationId: string, language: unknown): Promise<RecordingNotice> {
  const fallback = recordingNotice(language);
  const own = await latestText(knex, organisationId, 'recording_notice', fallback.language);
  return own ? { text: own.text, version: `org-v${Number(own.version)}`, language: fallback.language } : fallback;
}
