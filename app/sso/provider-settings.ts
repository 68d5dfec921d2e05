import type { SsoProviderRow } from '../db/tables';
import { sealerFor, type Sealer } from '../security/sealed';
import { ldapSettingsSchema, type LdapSettings } from './ldap-settings';
import { parseOidcSettings, type OidcSettings } from './oidc-settings';

/**
 * A provider row's settings as the protocol clients need them: the stored
 * settings (jsonb, never a secret) with the secret opened from
 * `secret_sealed` (sealed under the session secret for the purpose `sso`,
 * bound to the row's id). Throws SealedSecretError when the secret cannot
 * be opened (the session secret changed), a ZodError when the stored
 * settings no longer parse.
 */
export const SSO_SEAL_PURPOSE = 'sso';

export function ssoSealer(sessionSecret: string): Sealer {
  return sealerFor(sessionSecret, SSO_SEAL_PURPOSE);
}

function secretOf(row: SsoProviderRow, sealer: Sealer): string | undefined {
  return row.secret_sealed ? sealer.open(row.secret_sealed, row.id) : undefined;
}

/** The stored settings as an object (jsonb arrives parsed from pg, as text from some drivers). */
function settingsObject(row: SsoProviderRow): Record<string, unknown> {
  const raw: unknown = typeof row.settings === 'string' ? JSON.parse(row.settings) : row.settings;
  return raw && typeof raw === 'object' ? { ...(raw as Record<string, unknown>) } : {};
}

export function ldapSettingsOf(row: SsoProviderRow, sealer: Sealer): LdapSettings {
  return ldapSettingsSchema.parse({ ...settingsObject(row), bindPassword: secretOf(row, sealer) ?? '' });
}

/** `redirectUri`, when given, replaces the stored one (the sign-in routes pass the appliance's own callback). */
export function oidcSettingsOf(row: SsoProviderRow, sealer: Sealer, redirectUri?: string): OidcSettings {
  return parseOidcSettings({ ...settingsObject(row), clientSecret: secretOf(row, sealer), ...(redirectUri ? { redirectUri } : {}) } as never);
}
