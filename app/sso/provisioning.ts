import type { Knex } from 'knex';
import { AuditService } from '../audit/service';
import { endUserSessions } from '../access/session-store';
import type { SsoProviderRow, SsoRoleMappingRow, UserRow } from '../db/tables';
import { closureOf } from '../organisation/store';
import { sha256 } from '../security/tokens';
import { activeSsoUsers, insertUser, lockSsoUser, lockUserByEmail, updateSsoUser } from '../staff/store';
import type { DirectoryIdentity, DirectoryRefusal } from './identity';
import { dnKey } from './ldap-values';
import { roleMappingsOf } from './store';

/**
 * From what a directory says about a person to a staff user with a role,
 * at each single sign-on and at the periodic check:
 *
 * - the role comes from the provider's mapping of groups (LDAP) or claim
 *   values (OIDC) to roles; of several matches the most privileged wins
 *   (admin, then compliance, then clerk); no match refuses the sign-in and
 *   ends the user's sessions (deprovisioning: no one has to touch VClerk);
 * - the first sign-in creates the user (no password), or links the
 *   organisation's own user of the same e-mail address; later sign-ins
 *   apply the directory's role, name and e-mail;
 * - an administrator's deactivation wins: a deactivated user is refused.
 *
 * Every sign-in, refusal (with its reason), mapping decision, creation and
 * deprovisioning is audited with the client's address.
 */
export type ProvisionRefusal = 'no_mapped_group' | 'no_email' | 'email_taken' | 'organisation_closed' | 'provider_disabled' | 'deactivated';

export type Provisioned =
  | { ok: true; userId: string; organisationId: string; email: string; role: UserRow['role']; created: boolean }
  | { ok: false; reason: ProvisionRefusal };

type Role = UserRow['role'];
const PRECEDENCE: Role[] = ['admin', 'compliance', 'clerk'];

/** The role the mapping gives for these groups, with the groups that matched; null when none matches. */
export function roleFor(groups: readonly string[], mappings: readonly Pick<SsoRoleMappingRow, 'directory_group' | 'role'>[]): { role: Role; matched: string[] } | null {
  // Compared as DNs are (case, spaces and escapes do not matter: `CN=Doe\, John` is `cn=doe\2c john`); a claim value is one plain RDN.
  const held = new Set(groups.map(dnKey));
  const matches = mappings.filter((m) => held.has(dnKey(m.directory_group)));
  for (const role of PRECEDENCE) {
    if (matches.some((m) => m.role === role)) return { role, matched: matches.filter((m) => m.role === role).map((m) => m.directory_group) };
  }
  return null;
}

interface Meta {
  ip: string | null;
  userAgent: string | null;
}

export class SsoProvisioning {
  private readonly audit: AuditService;

  constructor(private readonly knex: Knex) {
    this.audit = new AuditService(knex);
  }

  /** A person the directory vouched for signs in: the user to start a session for, or why not (audited either way). */
  async signIn(provider: SsoProviderRow, identity: DirectoryIdentity, meta: Meta): Promise<Provisioned> {
    const organisationId = provider.organisation_id;
    if (!provider.enabled) return this.refused(provider, identity, 'provider_disabled', meta);
    if ((await closureOf(this.knex, organisationId))?.closed_at) return this.refused(provider, identity, 'organisation_closed', meta);
    const mapping = roleFor(identity.groups, await roleMappingsOf(this.knex, provider.id));
    const outcome = await this.knex.transaction(async (trx): Promise<Provisioned | { ok: false; reason: ProvisionRefusal; userId?: string; label?: string }> => {
      let user = await lockSsoUser(trx, provider.id, identity.subject);
      let linked = false;
      if (!user && identity.email) {
        const same = await lockUserByEmail(trx, identity.email);
        if (same && (same.organisation_id !== organisationId || same.sso_subject !== null)) return { ok: false, reason: 'email_taken' };
        user = same;
        linked = Boolean(same);
      }
      if (!mapping) {
        if (user && !user.sso_deprovisioned_at) {
          // Deprovisioning: out of every mapped group, so every session of the user ends now (once; later refusals are login_refused only).
          await updateSsoUser(trx, organisationId, user.id, { sessions_valid_after: trx.fn.now(), sso_deprovisioned_at: trx.fn.now() });
          await this.audit.record({ organisationId, actor: this.directoryActor(provider), action: 'sso.deprovisioned', target: { type: 'user', id: user.id }, ...meta, details: { provider: provider.kind, reason: 'no_mapped_group' } }, trx);
        }
        return { ok: false, reason: 'no_mapped_group', userId: user?.id, label: user?.email };
      }
      if (user?.status === 'deactivated') return { ok: false, reason: 'deactivated', userId: user.id, label: user.email };
      const name = (identity.name ?? '').trim().slice(0, 200) || identity.email || identity.subject.slice(0, 200);
      if (!user) {
        if (!identity.email) return { ok: false, reason: 'no_email' };
        const created = await insertUser(trx, { organisation_id: organisationId, name, email: identity.email, role: mapping.role, status: 'active', sso_provider_id: provider.id, sso_subject: identity.subject });
        await this.audit.record({ organisationId, actor: this.directoryActor(provider), action: 'sso.user_provisioned', target: { type: 'user', id: created.id }, ...meta, details: { provider: provider.kind, role: mapping.role, groups: mapping.matched, linked: false } }, trx);
        return { ok: true, userId: created.id, organisationId, email: created.email, role: mapping.role, created: true };
      }
      const changes: Parameters<typeof updateSsoUser>[3] = {};
      if (linked) Object.assign(changes, { sso_provider_id: provider.id, sso_subject: identity.subject });
      if (user.role !== mapping.role) changes.role = mapping.role;
      if (user.status === 'invited') changes.status = 'active';
      if (user.sso_deprovisioned_at) changes.sso_deprovisioned_at = null;
      if (identity.name && user.name !== name) changes.name = name;
      if (identity.email && user.email.toLowerCase() !== identity.email) changes.email = identity.email;
      if (Object.keys(changes).length) await updateSsoUser(trx, organisationId, user.id, changes);
      if (linked) await this.audit.record({ organisationId, actor: this.directoryActor(provider), action: 'sso.user_provisioned', target: { type: 'user', id: user.id }, ...meta, details: { provider: provider.kind, role: mapping.role, groups: mapping.matched, linked: true } }, trx);
      // The mapping decision of every sign-in: which groups gave which role, and what it was before.
      await this.audit.record({ organisationId, actor: this.directoryActor(provider), action: 'sso.role_mapped', target: { type: 'user', id: user.id }, ...meta, details: { provider: provider.kind, role: mapping.role, previous_role: user.role, groups: mapping.matched } }, trx);
      return { ok: true, userId: user.id, organisationId, email: changes.email ?? user.email, role: mapping.role, created: false };
    });
    if (!outcome.ok) return this.refused(provider, identity, outcome.reason, meta, 'userId' in outcome ? outcome.userId : undefined);
    return outcome;
  }

  /** The directory refused the person or could not answer (wrong password, tampered token, ...): audited, nothing else changes. */
  async directoryRefused(provider: SsoProviderRow, reason: DirectoryRefusal, meta: Meta, attempted?: string): Promise<void> {
    await this.audit.record({
      organisationId: provider.organisation_id,
      actor: { type: 'guest' },
      action: 'sso.login_refused',
      ...meta,
      // The name typed is kept only as a short hash (it may be a mistyped password).
      details: { provider: provider.kind, reason, ...(attempted ? { attempted_account: sha256(attempted.trim().toLowerCase()).slice(0, 16) } : {}) },
    });
  }

  /**
   * The periodic check: each linked user the directory no longer has (null)
   * or who is in no mapped group any more has every session ended, audited,
   * and is marked deprovisioned (`sso_deprovisioned_at`), so later runs skip
   * them until the directory lets them sign in again.
   * A directory that cannot answer changes nothing. Returns the count ended.
   */
  async check(provider: SsoProviderRow, lookup: (subject: string) => Promise<DirectoryIdentity | null | 'unavailable'>): Promise<{ checked: number; deprovisioned: number; unavailable: boolean }> {
    const mappings = await roleMappingsOf(this.knex, provider.id);
    let checked = 0;
    let deprovisioned = 0;
    for (const user of await activeSsoUsers(this.knex, provider.id)) {
      const found = await lookup(user.sso_subject!);
      if (found === 'unavailable') return { checked, deprovisioned, unavailable: true };
      checked++;
      const reason = found === null ? 'not_in_directory' : roleFor(found.groups, mappings) ? null : 'no_mapped_group';
      if (!reason) continue;
      await this.knex.transaction(async (trx) => {
        await updateSsoUser(trx, provider.organisation_id, user.id, { sessions_valid_after: trx.fn.now(), sso_deprovisioned_at: trx.fn.now() });
        // The session rows go too, so that no session started in this second survives.
        const sessions = await endUserSessions(trx, user.id);
        await this.audit.record({ organisationId: provider.organisation_id, actor: this.directoryActor(provider), action: 'sso.deprovisioned', target: { type: 'user', id: user.id }, ip: null, userAgent: null, details: { provider: provider.kind, reason, periodic: true, sessions } }, trx);
      });
      deprovisioned++;
    }
    return { checked, deprovisioned, unavailable: false };
  }

  private directoryActor(provider: SsoProviderRow) {
    return { type: 'system' as const, label: `${provider.kind === 'ldap' ? 'LDAP' : 'OpenID Connect'}: ${provider.label}` };
  }

  private async refused(provider: SsoProviderRow, identity: DirectoryIdentity, reason: ProvisionRefusal, meta: Meta, userId?: string): Promise<Provisioned> {
    await this.audit.record({
      organisationId: provider.organisation_id,
      actor: { type: 'guest' },
      action: 'sso.login_refused',
      ...(userId ? { target: { type: 'user', id: userId } } : {}),
      ...meta,
      details: { provider: provider.kind, reason, ...(userId ? {} : { attempted_account: sha256(identity.subject).slice(0, 16) }) },
    });
    return { ok: false, reason };
  }
}
