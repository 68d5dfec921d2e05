import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { NotFoundError } from '../core/errors';
import type { SsoProviderRow } from '../db/tables';
import { endSessionsOfOidcSid, endUserSessions } from '../access/session-store';
import { findOrganisation, type Organisation } from '../organisation/store';
import { sha256 } from '../security/tokens';
import { lockSsoUser } from '../staff/store';
import type { DirectoryRefusal } from './identity';
import { ldapAuthenticate } from './ldap-client';
import type { LdapSettings } from './ldap-settings';
import { completeOidc, PENDING_MAX_AGE_MS, verifyLogoutToken, type OidcPending, type OidcSettings } from './oidc-client';
import { SeenOnce } from './seen-once';
import { SsoProvisioning, type ProvisionRefusal, type Provisioned } from './provisioning';
import { ldapSettingsOf, oidcSettingsOf, type SsoSecrets } from './provider-settings';
import { providerOf, providersOf } from './store';

/**
 * Single sign-on at the sign-in routes (`sso/routes.ts`): finds the
 * organisation's enabled provider, opens its sealed secret, asks the
 * directory, and hands what it says to provisioning. Every refusal is
 * audited here (the directory's through `directoryRefused`, provisioning's
 * by provisioning). A person refused for being in no mapped group has every
 * session ended at once.
 */
export type SsoSignInOutcome =
  | Extract<Provisioned, { ok: true }>
  | { ok: false; reason: DirectoryRefusal | ProvisionRefusal };

interface Meta {
  ip: string | null;
  userAgent: string | null;
}

/** Logout tokens already acted on (jti), kept for their maximum age so a replayed one is refused. */
/** How long a logout token's `jti` is remembered (its own age is bounded by the same). */
const LOGOUT_TOKEN_MEMORY_MS = 10 * 60 * 1000;

export class SsoSignIn {
  private readonly provisioning: SsoProvisioning;

  constructor(private readonly knex: Knex, private readonly secrets: SsoSecrets) {
    this.provisioning = new SsoProvisioning(knex);
  }

  /** The organisation of the slug (404 when there is none or it is closed). */
  async organisation(slug: string): Promise<Organisation> {
    const organisation = /^[a-z0-9-]{1,100}$/.test(slug) ? await findOrganisation(this.knex, { slug }) : undefined;
    if (!organisation || organisation.closedAt) throw new NotFoundError('not_found');
    return organisation;
  }

  /** The organisation's enabled providers, for its sign-in page. */
  async enabledProviders(organisationId: string): Promise<Pick<SsoProviderRow, 'kind' | 'label'>[]> {
    return (await providersOf(this.knex, organisationId)).filter((p) => p.enabled).map((p) => ({ kind: p.kind, label: p.label }));
  }

  /** The organisation's enabled provider of the kind (404 otherwise). */
  async provider(organisationId: string, kind: SsoProviderRow['kind']): Promise<SsoProviderRow> {
    const row = await providerOf(this.knex, organisationId, kind);
    if (!row || !row.enabled) throw new NotFoundError('not_found');
    return row;
  }

  /** The provider's LDAP settings with its service account's password, or null when they do not parse or open (misconfigured). */
  ldapSettings(row: SsoProviderRow, slug: string): LdapSettings | null {
    try {
      return ldapSettingsOf(row, slug, this.secrets);
    } catch {
      return null;
    }
  }

  /** The provider's OIDC settings with its client secret and the appliance's callback URL, or null when they do not parse or open. */
  oidcSettings(row: SsoProviderRow, slug: string, redirectUri: string): OidcSettings | null {
    try {
      return oidcSettingsOf(row, slug, this.secrets, redirectUri);
    } catch {
      return null;
    }
  }

  /** The directory refused or could not answer: audited. */
  async refused(row: SsoProviderRow, reason: DirectoryRefusal, meta: Meta, attempted?: string): Promise<{ ok: false; reason: DirectoryRefusal }> {
    await this.provisioning.directoryRefused(row, reason, meta, attempted);
    return { ok: false, reason };
  }

  /**
   * LDAP sign-in refused by the throttle (too many wrong names or passwords): audited as a refusal with
   * reason `locked`, and the lock itself once (`auth.lockout`, with its scope) when this attempt set it.
   */
  async locked(row: SsoProviderRow, meta: Meta, attempted: string, lockedNow: ('account' | 'ip')[] = []): Promise<void> {
    const audit = new AuditService(this.knex);
    const details = { provider: row.kind, attempted_account: sha256(attempted.trim().toLowerCase()).slice(0, 16) };
    for (const scope of lockedNow) await audit.record({ organisationId: row.organisation_id, actor: { type: 'guest' }, action: 'auth.lockout', ...meta, details: { ...details, scope } });
    if (lockedNow.length === 0) await audit.record({ organisationId: row.organisation_id, actor: { type: 'guest' }, action: 'sso.login_refused', ...meta, details: { ...details, reason: 'locked' } });
  }

  /** LDAP: the name and password checked by the directory, then provisioning. */
  async ldap(row: SsoProviderRow, slug: string, username: string, password: string, meta: Meta): Promise<SsoSignInOutcome> {
    const settings = this.ldapSettings(row, slug);
    if (!settings) return this.refused(row, 'misconfigured', meta, username);
    const outcome = await ldapAuthenticate(settings, username, password);
    if (!outcome.ok) return this.refused(row, outcome.reason, meta, username);
    return this.provision(row, outcome.identity, meta);
  }

  /** OIDC callback: the pending attempt (already taken out of the session) and the callback's parameters. */
  async oidc(row: SsoProviderRow, settings: OidcSettings, pending: OidcPending | undefined, callback: string, meta: Meta): Promise<SsoSignInOutcome & { sid?: string | null; sub?: string }> {
    const outcome = await completeOidc(settings, pending, callback, new SeenOnce(this.knex, PENDING_MAX_AGE_MS));
    if (!outcome.ok) return this.refused(row, outcome.reason, meta);
    const provisioned = await this.provision(row, outcome.identity, meta);
    return provisioned.ok ? { ...provisioned, sid: outcome.sid, sub: outcome.identity.subject } : provisioned;
  }

  private async provision(row: SsoProviderRow, identity: Parameters<SsoProvisioning['signIn']>[1], meta: Meta): Promise<SsoSignInOutcome> {
    const provisioned = await this.provisioning.signIn(row, identity, meta);
    if (!provisioned.ok && (provisioned.reason === 'no_mapped_group' || provisioned.reason === 'deactivated')) {
      // Provisioning moved sessions_valid_after; the session rows go too, so that no session started in the last second survives.
      await this.endSessionsOfSubject(row, identity.subject);
    }
    return provisioned;
  }

  /** Ends every session of the user linked to this subject at the provider; the count ended. */
  async endSessionsOfSubject(row: SsoProviderRow, subject: string): Promise<number> {
    return this.knex.transaction(async (trx) => {
      const user = await lockSsoUser(trx, row.id, subject);
      return user ? endUserSessions(trx, user.id) : 0;
    });
  }

  /**
   * Back-channel logout: verifies the logout token, refuses a replayed one,
   * and ends the sessions started with that provider session (`sid`), or
   * all of the subject's sessions when the token names only `sub`.
   */
  async backchannelLogout(row: SsoProviderRow, settings: OidcSettings, logoutToken: unknown, meta: Meta): Promise<{ ok: true; ended: number } | { ok: false; reason: DirectoryRefusal | 'replayed' }> {
    const outcome = await verifyLogoutToken(settings, logoutToken);
    if (!outcome.ok) {
      await this.provisioning.directoryRefused(row, outcome.reason, meta);
      return { ok: false, reason: outcome.reason };
    }
    if (!(await new SeenOnce(this.knex, LOGOUT_TOKEN_MEMORY_MS).firstUse(`jti:${row.id}:${outcome.jti}`))) return { ok: false, reason: 'replayed' };
    let ended: { userId: string; count: number }[];
    if (outcome.sid !== undefined) {
      const users = (await endSessionsOfOidcSid(this.knex, row.id, outcome.sid)).filter((id): id is string => id !== null);
      ended = [...new Set(users)].map((userId) => ({ userId, count: users.filter((u) => u === userId).length }));
    } else {
      ended = await this.knex.transaction(async (trx) => {
        const user = await lockSsoUser(trx, row.id, outcome.sub!);
        return user ? [{ userId: user.id, count: await endUserSessions(trx, user.id) }] : [];
      });
    }
    // Audited as a sign-out of each user whose sessions the provider ended.
    const audit = new AuditService(this.knex);
    for (const { userId, count } of ended) {
      await audit.record({ organisationId: row.organisation_id, actor: { type: 'system', label: `OpenID Connect: ${row.label}` }, action: 'auth.logout', target: { type: 'user', id: userId }, ...meta, details: { method: 'oidc_backchannel', by: outcome.sid !== undefined ? 'sid' : 'sub', sessions: count } });
    }
    return { ok: true, ended: ended.reduce((sum, e) => sum + e.count, 0) };
  }
}
