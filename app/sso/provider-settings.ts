import type { SsoProviderRow } from '../db/tables';
import { sealerFor, type Sealer } from '../security/sealed';
import { ldapSettingsSchema, type LdapSettings } from './ldap-settings';
import { parseOidcSettings, type OidcSettings } from './oidc-settings';

export const SSO_SEAL_PURPOSE = 'sso';

export function ssoSealer(sessionSecret: string): Sealer {
  return sealerFor(sessionSecret, SSO_SEAL_PURPOSE);
}

/** Secrets from the appliance's configuration (VCLERK_SSO_SECRETS, or its `_FILE` form): organisation slug -> kind -> secret. */
export type ConfiguredSsoSecrets = Readonly<Record<string, Readonly<{ ldap?: string; oidc?: string }>>>;

/** Where a provider's secret comes from: the configuration (wins), the admin page (sealed in the row), or nowhere. */
export type SecretSource = 'config' | 'stored' | 'none';

/**
 * The single sign-on secrets: the LDAP service account's password and the
 * OIDC client secret. Either given in the configuration (never in the
 * database, never shown) or typed on the admin page and stored sealed in
 * `secret_sealed` (AES-256-GCM under a key derived from the session secret
 * for the purpose `sso`, bound to the row's id). A configured secret wins.
 */
export class SsoSecrets {
  private sealer?: Sealer;

  constructor(private readonly sessionSecret: string, private readonly configured: ConfiguredSsoSecrets = {}) {}

  private sealed(): Sealer {
    return (this.sealer ??= ssoSealer(this.sessionSecret));
  }

  sourceOf(row: Pick<SsoProviderRow, 'kind' | 'secret_sealed'>, slug: string): SecretSource {
    if (this.configured[slug]?.[row.kind] !== undefined) return 'config';
    return row.secret_sealed ? 'stored' : 'none';
  }

  /** The secret in clear (throws SealedSecretError when a stored one cannot be opened: the session secret changed). */
  secretOf(row: SsoProviderRow, slug: string): string | undefined {
    const configured = this.configured[slug]?.[row.kind];
    if (configured !== undefined) return configured;
    return row.secret_sealed ? this.sealed().open(row.secret_sealed, row.id) : undefined;
  }

  /** The admin's secret sealed for the row. */
  seal(secret: string, rowId: string): string {
    return this.sealed().seal(secret, rowId);
  }
}

/** The stored settings as an object (jsonb arrives parsed from pg, as text from some drivers). */
function settingsObject(row: SsoProviderRow): Record<string, unknown> {
  const raw: unknown = typeof row.settings === 'string' ? JSON.parse(row.settings) : row.settings;
  return raw && typeof raw === 'object' ? { ...(raw as Record<string, unknown>) } : {};
}

/**
 * A provider row's settings as the protocol clients need them: the stored
 * settings (jsonb, never a secret) with the secret. Throws SealedSecretError
 * when a stored secret cannot be opened, a ZodError when the stored settings
 * no longer parse.
 */
export function ldapSettingsOf(row: SsoProviderRow, slug: string, secrets: SsoSecrets): LdapSettings {
  return ldapSettingsSchema.parse({ ...settingsObject(row), bindPassword: secrets.secretOf(row, slug) ?? '' });
}

/** `redirectUri`, when given, replaces the stored one (the sign-in routes pass the appliance's own callback). */
export function oidcSettingsOf(row: SsoProviderRow, slug: string, secrets: SsoSecrets, redirectUri?: string): OidcSettings {
  return parseOidcSettings({ ...settingsObject(row), clientSecret: secrets.secretOf(row, slug), ...(redirectUri ? { redirectUri } : {}) } as never);
}
