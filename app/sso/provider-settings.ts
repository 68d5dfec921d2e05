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

export function ldapSettingsOf(row: SsoProviderRow, sealer: Sealer): LdapSettings {
  return ldapSettingsSchema.parse({ ...(row.settings as Record<string, unknown>), bindPassword: secretOf(row, sealer) ?? '' });
}

export function oidcSettingsOf(row: SsoProviderRow, sealer: Sealer): OidcSettings {
  return parseOidcSettings({ ...(row.settings as Record<string, unknown>), clientSecret: secretOf(row, sealer) } as never);
}
