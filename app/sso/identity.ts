/**
 * What a directory says about a person at sign-in or at the periodic check:
 * the contract between the protocol clients (`ldap-client.ts`,
 * `oidc-client.ts`) and the provisioning service that turns it into a
 * staff user with a role. No secret is ever part of it.
 */
export type SsoKind = 'ldap' | 'oidc';

export interface DirectoryIdentity {
  kind: SsoKind;
  /** Stable id at the directory: OIDC `sub`; LDAP the entry's UUID attribute (entryUUID, objectGUID) or, without one, its DN. */
  subject: string;
  /** The person's e-mail address as the directory has it (lower-cased), or null. */
  email: string | null;
  /** Display name, or null. */
  name: string | null;
  /** LDAP: the DNs of the groups the person is in; OIDC: the values of the groups claim. Compared case-insensitively by the role mapping. */
  groups: string[];
}

/** Why a directory refused or could not answer (stable codes: audited and shown as translated messages). */
export type DirectoryRefusal =
  | 'invalid_credentials'
  | 'not_found'
  | 'ambiguous'
  | 'directory_unavailable'
  | 'tls_failed'
  | 'misconfigured'
  | 'state_mismatch'
  | 'nonce_mismatch'
  | 'token_invalid'
  | 'token_expired'
  | 'wrong_audience'
  | 'wrong_issuer'
  | 'alg_not_allowed'
  | 'provider_error';

export type DirectoryOutcome = { ok: true; identity: DirectoryIdentity } | { ok: false; reason: DirectoryRefusal; detail?: string };
