import type { Knex } from 'knex';
import type { SsoProviderRow } from '../../app/db/tables';
import { sealerFor } from '../../app/security/sealed';
import { replaceRoleMappings, saveProvider, setProviderSecret } from '../../app/sso/store';
import { TEST_SECRET } from './context';

/** An organisation's single sign-on provider as the admin pages would save it: settings, the sealed secret, the role mapping. */
export async function seedSsoProvider(
  knex: Knex,
  organisationId: string,
  kind: SsoProviderRow['kind'],
  options: { label?: string; settings: Record<string, unknown>; secret?: string; mappings: { directory_group: string; role: 'admin' | 'clerk' | 'compliance' }[]; enabled?: boolean; checkMinutes?: number },
): Promise<SsoProviderRow> {
  return knex.transaction(async (trx) => {
    const row = await saveProvider(trx, organisationId, kind, { enabled: options.enabled ?? true, label: options.label ?? (kind === 'ldap' ? 'Company directory' : 'Company login'), check_minutes: options.checkMinutes ?? 0, settings: options.settings });
    if (options.secret) await setProviderSecret(trx, organisationId, row.id, sealerFor(TEST_SECRET, 'sso').seal(options.secret, row.id));
    await replaceRoleMappings(trx, row.id, options.mappings);
    return row;
  });
}

/** The value of the session cookie a response set, as `name=value`. */
export function sessionCookie(headers: Record<string, unknown>): string | undefined {
  const cookies = ([] as string[]).concat((headers['set-cookie'] as string[] | string | undefined) ?? []);
  return cookies.find((c) => c.startsWith('vclerk_sid='))?.split(';')[0];
}
