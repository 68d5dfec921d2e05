import type { Knex } from 'knex';
import { z } from 'zod';
import { AuditService } from '../audit/service';
import { actorOf, type Caller } from '../access/caller';
import { languages, type Language } from '../i18n';
import { parseBody } from '../http/forms';
import { type PrivacyTextRow } from '../db/tables';

export const privacyTextKinds = ['privacy_notice', 'recording_notice'] as const;
export type PrivacyTextKind = (typeof privacyTextKinds)[number];

export interface PrivacyText {
  kind: PrivacyTextKind;
  language: Language;
  version: number;
  text: string;
  createdBy: string | null;
  createdAt: Date;
}

export const privacyTextSchema = z.object({
  kind: z.enum(privacyTextKinds, 'invalid'),
  language: z.enum(languages, 'invalid'),
  text: z.string('required').trim().min(1, 'required').max(10_000, 'too_long'),
});

/** The consent ledger's name for an organisation's version: `org-v3`. */
export function orgVersion(version: number): string {
  return `org-v${version}`;
}

/**
 * The organisation's own privacy notice and recording notice, per
 * language. Each save adds a version (never changed afterwards); the
 * latest version is what customers see and consent to.
 */
export class PrivacyTexts {
  constructor(private readonly knex: Knex) {}

  async latest(organisationId: string, kind: PrivacyTextKind, language: Language): Promise<PrivacyText | undefined> {
    const row = await this.knex('privacy_texts').where({ organisation_id: organisationId, kind, language }).orderBy('version', 'desc').first();
    return row ? toText(row) : undefined;
  }

  /** Every version of the organisation's texts, newest first, with who saved it. */
  async history(organisationId: string): Promise<PrivacyText[]> {
    const rows = await this.knex('privacy_texts as p')
      .leftJoin('users as u', 'u.id', 'p.created_by')
      .where('p.organisation_id', organisationId)
      .orderBy([{ column: 'p.kind' }, { column: 'p.language' }, { column: 'p.version', order: 'desc' }])
      .select('p.kind', 'p.language', 'p.version', 'p.text', 'p.created_at', 'u.name as created_by');
    return rows.map(toText);
  }

  /** Saves a new version (unchanged text saves nothing); audited with the version and the text's length. */
  async save(caller: Caller, body: unknown): Promise<{ version: number; changed: boolean }> {
    const input = parseBody(privacyTextSchema, body);
    const organisationId = caller.user.organisationId;
    return this.knex.transaction(async (trx) => {
      // One writer per organisation and text, so versions count up without gaps or clashes.
      await trx.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [`privacy_texts:${organisationId}:${input.kind}:${input.language}`]);
      const last = await trx('privacy_texts').where({ organisation_id: organisationId, kind: input.kind, language: input.language }).orderBy('version', 'desc').first('version', 'text');
      if (last && last.text === input.text) return { version: last.version, changed: false };
      const version = (last?.version ?? 0) + 1;
      await trx('privacy_texts').insert({ organisation_id: organisationId, kind: input.kind, language: input.language, version, text: input.text, created_by: caller.user.id });
      await new AuditService(this.knex).record(
        {
          organisationId,
          actor: actorOf(caller.user),
          action: 'organisation.privacy_text_saved',
          target: { type: 'organisation', id: organisationId },
          ip: caller.ip,
          userAgent: caller.userAgent,
          details: { kind: input.kind, language: input.language, version: orgVersion(version), length: input.text.length },
        },
        trx,
      );
      return { version, changed: true };
    });
  }
}

function toText(row: Pick<PrivacyTextRow, 'kind' | 'language' | 'version' | 'text' | 'created_by' | 'created_at'>): PrivacyText {
  return {
    kind: row.kind,
    language: row.language as Language,
    version: Number(row.version),
    text: row.text,
    createdBy: row.created_by ?? null,
    createdAt: row.created_at,
  };
}

/** The organisation's latest text of a kind in a language (its version and text), or undefined. */
export async function latestText(knex: Knex, organisationId: string, kind: PrivacyTextKind, language: string): Promise<{ version: number; text: string } | undefined> {
  return knex('privacy_texts').where({ organisation_id: organisationId, kind, language }).orderBy('version', 'desc').first('version', 'text');
}
