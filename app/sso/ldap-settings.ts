import crypto from 'node:crypto';
import { FilterParser } from 'ldapts';
import { z } from 'zod';

/**
 * An organisation's LDAP / Active Directory settings (validated here; kept
 * and edited by the SSO settings of the organisation). Messages are stable
 * problem codes for the form. `bindPassword` is a secret: never shown back,
 * logged, audited or returned by the client.
 *
 * Sign-in: bind as `bindDn`, search one person under `baseDn` whose
 * `userAttribute` equals the typed name (when the name contains `@`, a
 * match on `emailAttribute` counts too), ANDed with `userFilter` when given;
 * then bind as that person's DN with the typed password. Groups come from
 * the person's `memberOfAttribute` (`groupSource: 'memberOf'`, OpenLDAP
 * memberof overlay, Active Directory) or from a search under `groupBaseDn`
 * for entries whose `groupMemberAttribute` holds the person's DN
 * (`groupSource: 'search'`, groupOfNames `member` / groupOfUniqueNames
 * `uniqueMember`). Active Directory: `userAttribute: 'sAMAccountName'` (or
 * `userPrincipalName`), `subjectAttribute: 'objectGUID'`, and a `userFilter`
 * such as `(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))`
 * so that disabled accounts are not found (also not by the periodic check).
 */

const ATTRIBUTE = /^(?:[A-Za-z][A-Za-z0-9-]{0,63}|\d+(?:\.\d+)+)$/;
const attribute = (fallback: string) => z.string('invalid_attribute').trim().regex(ATTRIBUTE, 'invalid_attribute').default(fallback);

/** A DN as typed by an admin: something like `ou=people,dc=example,dc=org` (the directory itself is the final judge). */
const dn = z
  .string('invalid_dn')
  .trim()
  .min(3, 'invalid_dn')
  .max(1024, 'invalid_dn')
  .refine((v) => /^[A-Za-z0-9.-]+\s*=/.test(v) && !/[\0\r\n]/.test(v), 'invalid_dn');

function isLdapUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'ldap:' || url.protocol === 'ldaps:') &&
    url.hostname !== '' &&
    url.username === '' &&
    url.password === '' &&
    (url.pathname === '' || url.pathname === '/') &&
    url.search === '' &&
    url.hash === ''
  );
}

/** Every certificate of a PEM bundle; empty when any block is not a certificate X.509 can read. */
export function pemCertificates(pem: string): crypto.X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    return blocks.map((block) => new crypto.X509Certificate(block));
  } catch {
    return [];
  }
}

/** A DN, or an Active Directory user principal name (name@domain, no spaces or control characters). */
const bindName = z
  .string('invalid_dn')
  .trim()
  .min(3, 'invalid_dn')
  .max(1024, 'invalid_dn')
  .refine((v) => (/^[A-Za-z0-9.-]+\s*=/.test(v) && !/[\0\r\n]/.test(v)) || /^[^@\s\0=,]+@[A-Za-z0-9.-]+$/.test(v), 'invalid_dn');

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

export const ldapSettingsSchema = z
  .object({
    /** `ldap://host[:port]` (plain, or StartTLS with `startTls`) or `ldaps://host[:port]`. */
    url: z.string('invalid_url').trim().max(512, 'invalid_url').refine(isLdapUrl, 'invalid_url'),
    startTls: z.boolean().default(false),
    /** The organisation's CA (PEM, one or more certificates): when given, the server is verified against it instead of the system's CAs. Verification is never off. */
    caPem: z.preprocess(
      emptyToUndefined,
      z
        .string('invalid_ca')
        .trim()
        .max(65536, 'invalid_ca')
        .refine((v) => pemCertificates(v).length > 0, 'invalid_ca')
        .optional(),
    ),
    /** The service account: a DN, or for Active Directory also its user principal name (`svc-vclerk@corp.example`), which AD accepts in a simple bind. */
    bindDn: bindName,
    bindPassword: z.string('bind_password_required').min(1, 'bind_password_required').max(1024, 'bind_password_required'),
    baseDn: dn,
    userAttribute: attribute('uid'),
    /** An extra filter the person must match (admin-written, RFC 4515), e.g. `(objectClass=inetOrgPerson)`. */
    userFilter: z.preprocess(
      emptyToUndefined,
      z
        .string('invalid_filter')
        .trim()
        .max(1024, 'invalid_filter')
        .refine((v) => parsesAsFilter(v), 'invalid_filter')
        .optional(),
    ),
    groupSource: z.enum(['memberOf', 'search'], 'invalid_group_source').default('memberOf'),
    memberOfAttribute: attribute('memberOf'),
    groupBaseDn: z.preprocess(emptyToUndefined, dn.optional()),
    groupMemberAttribute: attribute('member'),
    emailAttribute: attribute('mail'),
    /** The display name; when the entry has none, `cn`. */
    nameAttribute: attribute('displayName'),
    /** The stable id: `entryUUID` (OpenLDAP), `objectGUID` (Active Directory, binary, rendered as a GUID); an entry without it is known by its DN. */
    subjectAttribute: attribute('entryUUID'),
    /** Bound for each step (connect, TLS handshake, each request). */
    timeoutMs: z.number('invalid_timeout').int('invalid_timeout').min(500, 'invalid_timeout').max(30000, 'invalid_timeout').default(5000),
  })
  .superRefine((s, ctx) => {
    if (s.startTls && s.url.toLowerCase().startsWith('ldaps:')) ctx.addIssue({ code: 'custom', path: ['startTls'], message: 'starttls_with_ldaps' });
    if (s.groupSource === 'search' && !s.groupBaseDn) ctx.addIssue({ code: 'custom', path: ['groupBaseDn'], message: 'group_base_required' });
  });

export type LdapSettings = z.output<typeof ldapSettingsSchema>;
/** What an admin or a stored record gives (defaults not yet applied). */
export type LdapSettingsInput = z.input<typeof ldapSettingsSchema>;

function parsesAsFilter(value: string): boolean {
  if (!value.startsWith('(') || !value.endsWith(')')) return false;
  try {
    FilterParser.parseString(value);
    return true;
  } catch {
    return false;
  }
}

/** How the connection is protected: for the Test page and the audit trail. */
export function ldapTransport(s: Pick<LdapSettings, 'url' | 'startTls'>): 'ldaps' | 'starttls' | 'plain' {
  if (s.url.toLowerCase().startsWith('ldaps:')) return 'ldaps';
  return s.startTls ? 'starttls' : 'plain';
}

/** The settings as they may be shown back or audited: the service password only as "set". */
export function publicLdapSettings(s: LdapSettings): Omit<LdapSettings, 'bindPassword'> & { bindPasswordSet: boolean } {
  const { bindPassword, ...rest } = s;
  return { ...rest, bindPasswordSet: bindPassword.length > 0 };
}
