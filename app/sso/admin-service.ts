import type { Knex } from 'knex';
import { z } from 'zod';
import type { Caller } from '../access/caller';
import { OrganisationScopedService } from '../access/scoped-service';
import { ValidationError } from '../core/errors';
import type { SsoProviderRow, SsoRoleMappingRow } from '../db/tables';
import { passwordSignInOf, setPasswordSignIn } from '../organisation/store';
import { SealedSecretError } from '../security/sealed';
import { breakGlassCandidates, setBreakGlass } from '../staff/store';
import { parseLdapForm, parseOidcForm, type Kind, type ProviderForm } from './admin-forms';
import { ldapTest, type LdapTestResult } from './ldap-client';
import { oidcTest, type OidcTestReport } from './oidc-test';
import type { OidcRefusal } from './oidc-errors';
import { ldapSettingsOf, oidcSettingsOf, type SsoSecrets } from './provider-settings';
import { roleFor } from './provisioning';
import { providerOf, providersOf, replaceRoleMappings, roleMappingsOf, saveProvider, setProviderSecret } from './store';

/** A provider as the admin page shows it: settings without the secret, whether one is stored, and its mapping. */
export interface ProviderView {
  id: string;
  kind: Kind;
  enabled: boolean;
  label: string;
  checkMinutes: number;
  checkedAt: Date | null;
  settings: Record<string, unknown>;
  secretSet: boolean;
  /** The secret comes from the appliance's configuration (VCLERK_SSO_SECRETS): the page neither asks for nor stores one. */
  secretFromConfig: boolean;
  mappings: Pick<SsoRoleMappingRow, 'directory_group' | 'role'>[];
}

export type SsoTestResult =
  | { kind: 'ldap'; ok: boolean; username: string | null; ldap: LdapTestResult; role: { role: string; matched: string[] } | null }
  | { kind: 'oidc'; ok: boolean; oidc: OidcTestReport | OidcRefusal; claimValues: string[] | null; role: { role: string; matched: string[] } | null }
  | { kind: Kind; ok: false; unreadable: 'secret' | 'settings' };

export interface BreakGlassCandidate {
  id: string;
  name: string;
  email: string;
  role: string;
  active: boolean;
  breakGlass: boolean;
}

const breakGlassSchema = z.object({
  password_sign_in: z.preprocess((v) => v === 'on' || v === 'true' || v === '1', z.boolean()),
  break_glass: z.preprocess((v) => ([] as unknown[]).concat(v ?? []), z.array(z.string().max(100, 'invalid')).max(1000, 'invalid')),
});

/**
 * Single sign-on settings of the caller's organisation (admin pages): the
 * LDAP and OIDC providers with their role mapping, the Test of each, and
 * password sign-in with its break-glass administrators. Every query is
 * scoped to the caller's organisation; every change and test is audited.
 * Secrets are sealed (security/sealed.ts) and never leave this service, not
 * in a view, an audit event or an error.
 */
export class SsoAdminService extends OrganisationScopedService {
  private readonly slug: string;

  constructor(knex: Knex, caller: Caller, private readonly secrets: SsoSecrets) {
    super(knex, caller);
    this.slug = caller.user.organisationSlug;
  }

  /** Per kind, whether the configuration gives its secret (also before a provider is saved). */
  secretsFromConfig(): Record<Kind, boolean> {
    const from = (kind: Kind) => this.secrets.sourceOf({ kind, secret_sealed: null }, this.slug) === 'config';
    return { ldap: from('ldap'), oidc: from('oidc') };
  }

  async providers(): Promise<Partial<Record<Kind, ProviderView>>> {
    const out: Partial<Record<Kind, ProviderView>> = {};
    for (const row of await providersOf(this.knex, this.organisationId)) out[row.kind] = await this.view(row);
    return out;
  }

  private async view(row: SsoProviderRow): Promise<ProviderView> {
    const settings = { ...(row.settings as Record<string, unknown>) };
    delete settings.bindPassword;
    delete settings.clientSecret;
    return {
      id: row.id,
      kind: row.kind,
      enabled: row.enabled,
      label: row.label,
      checkMinutes: row.check_minutes,
      checkedAt: row.checked_at,
      settings,
      secretSet: this.secrets.sourceOf(row, this.slug) !== 'none',
      secretFromConfig: this.secrets.sourceOf(row, this.slug) === 'config',
      mappings: (await roleMappingsOf(this.knex, row.id)).map((m) => ({ directory_group: m.directory_group, role: m.role })),
    };
  }

  /**
   * Saves the provider of `kind` from its form (field problems as a
   * ValidationError; nothing changes then). `callback` is the appliance's
   * OIDC callback URL, kept with the settings for the Test.
   */
  async save(kind: Kind, body: Record<string, unknown>, callback: string): Promise<void> {
    const stored = await providerOf(this.knex, this.organisationId, kind);
    const source = this.secrets.sourceOf(stored ?? { kind, secret_sealed: null }, this.slug);
    const parsed: ProviderForm<Record<string, unknown>> = kind === 'ldap' ? parseLdapForm(body, source !== 'none') : parseOidcForm(body, callback);
    // A secret the configuration gives is neither asked for nor stored.
    const form = source === 'config' ? { ...parsed, secret: undefined, removeSecret: false } : parsed;
    await this.knex.transaction(async (trx) => {
      const row = await saveProvider(trx, this.organisationId, kind, { enabled: form.enabled, label: form.label, check_minutes: form.checkMinutes, settings: form.settings });
      if (form.secret !== undefined) await setProviderSecret(trx, this.organisationId, row.id, this.secrets.seal(form.secret, row.id));
      else if (form.removeSecret && stored?.secret_sealed) await setProviderSecret(trx, this.organisationId, row.id, null);
      await replaceRoleMappings(trx, row.id, form.mappings);
      await this.audit.record(
        {
          ...this.base(),
          action: 'sso.settings_changed',
          target: { type: 'sso_provider', id: row.id },
          details: {
            provider: kind,
            created: !stored,
            enabled: form.enabled,
            label: form.label,
            check_minutes: form.checkMinutes,
            settings: form.settings,
            secret: source === 'config' ? 'config' : form.secret !== undefined ? 'changed' : !stored?.secret_sealed ? 'not_set' : form.removeSecret ? 'removed' : 'kept',
            mappings: form.mappings.map((m) => ({ group: m.directory_group, role: m.role })),
          },
        },
        trx,
      );
    });
  }

  /** The admin's Test: LDAP with an optional user name, OIDC discovery; what was found and the role it maps to; audited. */
  async test(kind: Kind, username?: string, claimValues?: string[]): Promise<SsoTestResult> {
    const row = await providerOf(this.knex, this.organisationId, kind);
    if (!row) throw new ValidationError([{ field: `${kind}_test`, code: 'sso_not_configured' }]);
    const result = await this.run(row, username, claimValues);
    await this.audit.record({
      ...this.base(),
      action: 'sso.tested',
      target: { type: 'sso_provider', id: row.id },
      details: {
        provider: kind,
        ok: result.ok,
        ...('unreadable' in result ? { unreadable: result.unreadable } : {}),
        ...(result.kind === 'ldap' && 'ldap' in result
          ? {
              username: result.username,
              steps: result.ldap.steps.map((s) => (s.ok ? s.step : `${s.step}: ${s.reason ?? 'failed'}`)),
              dn: result.ldap.user?.dn ?? null,
              groups: result.ldap.user?.groups ?? [],
              role: result.role?.role ?? null,
            }
          : {}),
        ...(result.kind === 'oidc' && 'oidc' in result
          ? { issuer: result.oidc.ok ? result.oidc.issuer : null, reason: result.oidc.ok ? null : result.oidc.reason, claim_values: result.claimValues, role: result.role?.role ?? null }
          : {}),
      },
    });
    return result;
  }

  private async run(row: SsoProviderRow, username?: string, claimValues?: string[]): Promise<SsoTestResult> {
    const kind = row.kind;
    let settings;
    try {
      settings = kind === 'ldap' ? ldapSettingsOf(row, this.slug, this.secrets) : oidcSettingsOf(row, this.slug, this.secrets);
    } catch (err) {
      return { kind, ok: false, unreadable: err instanceof SealedSecretError ? 'secret' : 'settings' };
    }
    if (kind === 'oidc') {
      const oidc = await oidcTest(settings as ReturnType<typeof oidcSettingsOf>);
      // What the mapping gives for claim values the admin typed (a person's real claims are seen at their sign-in).
      const values = claimValues?.length ? claimValues : null;
      const role = values ? roleFor(values, await roleMappingsOf(this.knex, row.id)) : null;
      return { kind, ok: oidc.ok, oidc, claimValues: values, role };
    }
    const name = username?.trim() || null;
    const ldap = await ldapTest(settings as ReturnType<typeof ldapSettingsOf>, name ?? undefined);
    const role = ldap.user ? roleFor(ldap.user.groups, await roleMappingsOf(this.knex, row.id)) : null;
    return { kind, ok: ldap.ok, username: name, ldap, role };
  }

  async passwordSignIn(): Promise<boolean> {
    return (await passwordSignInOf(this.knex, this.organisationId)) ?? true;
  }

  async breakGlassCandidates(): Promise<BreakGlassCandidate[]> {
    return (await breakGlassCandidates(this.knex, this.organisationId)).map((u) => ({
      id: u.id,
      name: u.name,
      email: u.email,
      role: u.role,
      active: u.role === 'admin' && u.status === 'active',
      breakGlass: u.break_glass,
    }));
  }

  /**
   * Password sign-in on or off, and who is break-glass. Off needs at least
   * one active administrator named break-glass (else nobody could sign in
   * when the directory is down). Each change is audited.
   */
  async setPasswordSignIn(body: unknown): Promise<void> {
    const parsed = breakGlassSchema.safeParse(body ?? {});
    if (!parsed.success) throw new ValidationError([{ field: 'break_glass', code: 'invalid' }]);
    const { password_sign_in: on, break_glass: named } = parsed.data;
    await this.knex.transaction(async (trx) => {
      const before = await passwordSignInOf(trx, this.organisationId, true);
      const candidates = await breakGlassCandidates(trx, this.organisationId);
      const chosen = new Set(named.filter((id) => candidates.some((c) => c.id === id)));
      if (chosen.size !== new Set(named).size) throw new ValidationError([{ field: 'break_glass', code: 'invalid' }]);
      if (!on && !candidates.some((c) => chosen.has(c.id) && c.role === 'admin' && c.status === 'active')) {
        throw new ValidationError([{ field: 'break_glass', code: 'break_glass_required' }]);
      }
      for (const c of candidates) {
        const next = chosen.has(c.id);
        if (next === c.break_glass) continue;
        await setBreakGlass(trx, this.organisationId, c.id, next);
        await this.audit.record({ ...this.base(), action: 'user.break_glass_changed', target: { type: 'user', id: c.id }, details: { email: c.email, break_glass: next } }, trx);
      }
      if (before !== on) {
        await setPasswordSignIn(trx, this.organisationId, on);
        await this.audit.record({ ...this.base(), action: 'organisation.password_sign_in_changed', target: { type: 'organisation', id: this.organisationId }, details: { password_sign_in: on } }, trx);
      }
    });
  }
}
