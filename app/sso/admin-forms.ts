import { z } from 'zod';
import { ValidationError, type FieldProblem } from '../core/errors';
import type { SsoRoleMappingRow } from '../db/tables';
import { ldapSettingsSchema, type LdapSettings } from './ldap-settings';
import { OIDC_ALGS, OidcSettings } from './oidc-settings';

/**
 * The admin forms of /admin/sso: field names (prefixed by kind, so that the
 * page's forms do not share names), and how a submitted form becomes the
 * settings the zod schemas of ldap-settings.ts and oidc-settings.ts accept
 * (checkboxes to booleans, numbers to numbers), with each schema problem
 * reported at its form field.
 */

export const MAX_MAPPINGS = 20;
export const ROLES = ['admin', 'clerk', 'compliance'] as const;
export type MappingRole = (typeof ROLES)[number];

/** Settings key -> form field, LDAP. */
export const LDAP_FIELDS = {
  url: 'ldap_url',
  startTls: 'ldap_start_tls',
  caPem: 'ldap_ca_pem',
  bindDn: 'ldap_bind_dn',
  bindPassword: 'ldap_bind_password',
  baseDn: 'ldap_base_dn',
  userAttribute: 'ldap_user_attribute',
  userFilter: 'ldap_user_filter',
  groupSource: 'ldap_group_source',
  memberOfAttribute: 'ldap_member_of_attribute',
  groupBaseDn: 'ldap_group_base_dn',
  groupMemberAttribute: 'ldap_group_member_attribute',
  emailAttribute: 'ldap_email_attribute',
  nameAttribute: 'ldap_name_attribute',
  subjectAttribute: 'ldap_subject_attribute',
  timeoutMs: 'ldap_timeout_ms',
} as const satisfies Record<keyof LdapSettings, string>;

/** Settings key -> form field, OIDC. */
export const OIDC_FIELDS = {
  issuer: 'oidc_issuer',
  clientId: 'oidc_client_id',
  clientSecret: 'oidc_client_secret',
  redirectUri: 'oidc_redirect_uri',
  scopes: 'oidc_scopes',
  groupsClaim: 'oidc_groups_claim',
  emailClaim: 'oidc_email_claim',
  nameClaim: 'oidc_name_claim',
  allowedAlgs: 'oidc_allowed_algs',
  clockSkewSeconds: 'oidc_clock_skew_seconds',
  caPem: 'oidc_ca_pem',
} as const satisfies Record<keyof OidcSettings, string>;

export type Kind = 'ldap' | 'oidc';

/** The fields common to both kinds, by kind. */
export const common = (kind: Kind) => ({ enabled: `${kind}_enabled`, label: `${kind}_label`, checkMinutes: `${kind}_check_minutes` });
export const mappingGroupField = (kind: Kind, i: number) => `${kind}_map_group_${i}`;
export const mappingRoleField = (kind: Kind, i: number) => `${kind}_map_role_${i}`;

/** The form helper's field list of a kind's settings form. */
export function settingsFields(kind: Kind): Record<string, 'text' | 'list' | 'secret'> {
  const fields: Record<string, 'text' | 'list' | 'secret'> = {};
  for (const name of Object.values(kind === 'ldap' ? LDAP_FIELDS : OIDC_FIELDS)) fields[name] = 'text';
  if (kind === 'ldap') fields[LDAP_FIELDS.bindPassword] = 'secret';
  else {
    fields[OIDC_FIELDS.clientSecret] = 'secret';
    fields[OIDC_FIELDS.allowedAlgs] = 'list';
    fields.oidc_remove_secret = 'text';
  }
  const c = common(kind);
  fields[c.enabled] = 'text';
  fields[c.label] = 'text';
  if (kind === 'ldap') fields[c.checkMinutes] = 'text';
  for (let i = 0; i < MAX_MAPPINGS; i++) {
    fields[mappingGroupField(kind, i)] = 'text';
    fields[mappingRoleField(kind, i)] = 'text';
  }
  return fields;
}

type Body = Record<string, unknown>;
const str = (body: Body, name: string): string | undefined => (typeof body[name] === 'string' ? (body[name] as string) : undefined);
const checked = (body: Body, name: string): boolean => body[name] === 'on' || body[name] === 'true' || body[name] === '1';
/** A number field: its value as a number when it is one, as typed otherwise (so that the schema refuses it at the field). */
function num(body: Body, name: string): unknown {
  const v = str(body, name)?.trim();
  if (v === undefined || v === '') return undefined;
  return /^-?\d+$/.test(v) ? Number(v) : v;
}

export interface ProviderForm<S> {
  enabled: boolean;
  label: string;
  checkMinutes: number;
  /** The settings; the secret is undefined when the field was left blank (keep the stored one). */
  settings: S;
  secret: string | undefined;
  /** The stored secret is to be removed (OIDC: a public client from now on). */
  removeSecret?: boolean;
  mappings: Pick<SsoRoleMappingRow, 'directory_group' | 'role'>[];
}

const commonSchema = z.object({
  label: z.string('required').trim().min(1, 'required').max(100, 'too_long'),
  checkMinutes: z.number('invalid_check_minutes').int('invalid_check_minutes').min(0, 'invalid_check_minutes').max(10080, 'invalid_check_minutes'),
});

function problems(error: z.ZodError, fieldOf: (key: string) => string): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const issue of error.issues) {
    const field = fieldOf(String(issue.path[0] ?? '_'));
    if (out.some((p) => p.field === field)) continue;
    out.push({ field, code: /^[a-z_]+$/.test(issue.message) ? issue.message : 'invalid' });
  }
  return out;
}

function mappingsOf(kind: Kind, body: Body, found: FieldProblem[]): ProviderForm<unknown>['mappings'] {
  const rows: ProviderForm<unknown>['mappings'] = [];
  const seen = new Set<string>();
  for (let i = 0; i < MAX_MAPPINGS; i++) {
    const group = (str(body, mappingGroupField(kind, i)) ?? '').trim();
    const role = str(body, mappingRoleField(kind, i)) ?? '';
    if (group === '') continue;
    if (group.length > 1000 || /[\0\r\n]/.test(group)) found.push({ field: mappingGroupField(kind, i), code: 'too_long' });
    else if (!(ROLES as readonly string[]).includes(role)) found.push({ field: mappingRoleField(kind, i), code: 'invalid_role' });
    else if (seen.has(group.toLowerCase())) found.push({ field: mappingGroupField(kind, i), code: 'duplicate_mapping' });
    else {
      seen.add(group.toLowerCase());
      rows.push({ directory_group: group, role: role as MappingRole });
    }
  }
  return rows;
}

function commonOf(kind: Kind, body: Body, found: FieldProblem[]): { enabled: boolean; label: string; checkMinutes: number } {
  const c = common(kind);
  const parsed = commonSchema.safeParse({ label: str(body, c.label), checkMinutes: kind === 'ldap' ? (num(body, c.checkMinutes) ?? 60) : 0 });
  if (!parsed.success) found.push(...problems(parsed.error, (k) => (k === 'label' ? c.label : c.checkMinutes)));
  return { enabled: checked(body, c.enabled), label: parsed.data?.label ?? '', checkMinutes: parsed.data?.checkMinutes ?? 0 };
}

/**
 * The LDAP form. `secretStored`: whether a blank password keeps a stored
 * one (then the schema is checked with a stand-in that is never kept).
 */
export function parseLdapForm(body: Body, secretStored: boolean): ProviderForm<Omit<LdapSettings, 'bindPassword'>> {
  const found: FieldProblem[] = [];
  const base = commonOf('ldap', body, found);
  const typed = str(body, LDAP_FIELDS.bindPassword) ?? '';
  const secret = typed === '' ? undefined : typed;
  const input: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(LDAP_FIELDS)) {
    if (key === 'startTls') input[key] = checked(body, field);
    else if (key === 'timeoutMs') input[key] = num(body, field);
    else if (key === 'bindPassword') input[key] = secret ?? (secretStored ? 'stored' : '');
    else {
      const v = str(body, field);
      input[key] = v === undefined || v.trim() === '' ? undefined : v;
    }
  }
  const parsed = ldapSettingsSchema.safeParse(input);
  if (!parsed.success) found.push(...problems(parsed.error, (k) => LDAP_FIELDS[k as keyof typeof LDAP_FIELDS] ?? LDAP_FIELDS.url));
  const mappings = mappingsOf('ldap', body, found);
  if (found.length || !parsed.success) throw new ValidationError(found);
  const { bindPassword: _stand_in, ...settings } = parsed.data;
  return { ...base, settings, secret, mappings };
}

/**
 * The OIDC form: scopes space-separated, algorithms as checkboxes; a blank
 * client secret keeps the stored one. The redirect URI is the appliance's
 * own callback (`callback`), not a field.
 */
export function parseOidcForm(body: Body, callback: string): ProviderForm<Omit<OidcSettings, 'clientSecret'>> {
  const found: FieldProblem[] = [];
  const base = commonOf('oidc', body, found);
  const typed = str(body, OIDC_FIELDS.clientSecret) ?? '';
  const secret = typed === '' ? undefined : typed;
  const text = (field: string) => {
    const v = str(body, field);
    return v === undefined || v.trim() === '' ? undefined : v;
  };
  const algs = ([] as unknown[]).concat(body[OIDC_FIELDS.allowedAlgs] ?? []).filter((v): v is string => typeof v === 'string');
  const input = {
    issuer: text(OIDC_FIELDS.issuer) ?? '',
    clientId: text(OIDC_FIELDS.clientId) ?? '',
    clientSecret: secret,
    redirectUri: callback,
    scopes: text(OIDC_FIELDS.scopes)?.trim().split(/\s+/),
    groupsClaim: text(OIDC_FIELDS.groupsClaim),
    emailClaim: text(OIDC_FIELDS.emailClaim),
    nameClaim: text(OIDC_FIELDS.nameClaim),
    allowedAlgs: algs.length ? algs : undefined,
    clockSkewSeconds: num(body, OIDC_FIELDS.clockSkewSeconds),
    caPem: text(OIDC_FIELDS.caPem),
  };
  const parsed = OidcSettings.safeParse(input);
  if (!parsed.success) found.push(...problems(parsed.error, (k) => OIDC_FIELDS[k as keyof typeof OIDC_FIELDS] ?? OIDC_FIELDS.issuer));
  const mappings = mappingsOf('oidc', body, found);
  if (found.length || !parsed.success) throw new ValidationError(found);
  const { clientSecret: _secret, ...settings } = parsed.data;
  return { ...base, settings, secret, removeSecret: secret === undefined && checked(body, 'oidc_remove_secret'), mappings };
}

export const allowedAlgs = OIDC_ALGS;
