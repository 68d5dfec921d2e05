import { AndFilter, EqualityFilter, FilterParser, NoSuchObjectError, OrFilter, PresenceFilter, type Client, type Entry, type Filter } from 'ldapts';
import type { DirectoryIdentity, DirectoryOutcome } from './identity';
import { LdapRefusal, LdapRun } from './ldap-connection';
import { ldapTransport, type LdapSettings } from './ldap-settings';
import { dnKey, firstString, guidToBytes, isGuidString, isObjectGuid, looksLikeDn, subjectOf, valuesOf } from './ldap-values';

/**
 * The LDAP / Active Directory protocol client (issue 18): sign-in, the
 * periodic check whether the directory still has a person, and the admin's
 * Test. Settings come from `ldap-settings.ts` (parsed: defaults applied).
 *
 * The typed name only ever reaches the directory inside an equality filter
 * object (ldapts EqualityFilter: the value goes on the wire as an octet
 * string, never through a filter string), so `*`, parentheses, backslashes
 * or NUL in it match themselves and nothing else (RFC 4515). A name with
 * `@` also matches the e-mail attribute. Exactly one entry must match.
 * An empty password is refused before any connection: a simple bind with a
 * DN and no password is an anonymous bind that "succeeds" on many servers.
 */

/** Longest name we send to the directory. */
export const MAX_LDAP_NAME = 256;
/** At most this many group DNs are read for a person. */
const MAX_GROUPS = 1000;

function refusal(reason: LdapRefusal['reason'], detail: string): LdapRefusal {
  return new LdapRefusal(reason, detail);
}

/** The attributes to read of a person. */
function personAttributes(s: LdapSettings): string[] {
  const wanted = [s.userAttribute, s.emailAttribute, s.nameAttribute, 'cn', s.subjectAttribute];
  if (s.groupSource === 'memberOf') wanted.push(s.memberOfAttribute);
  return [...new Set(wanted)];
}

function searchOptions(s: LdapSettings) {
  return {
    attributes: personAttributes(s),
    explicitBufferAttributes: isObjectGuid(s.subjectAttribute) ? [s.subjectAttribute, 'objectGUID', 'objectguid'] : [],
  };
}

function withUserFilter(s: LdapSettings, match: Filter): Filter {
  return s.userFilter ? new AndFilter({ filters: [FilterParser.parseString(s.userFilter), match] }) : match;
}

/** The filter for a typed name: attribute = name (or e-mail = name when it has an `@`), as filter objects. */
export function nameFilter(s: LdapSettings, name: string): Filter {
  const byName = new EqualityFilter({ attribute: s.userAttribute, value: name });
  const byMail = name.includes('@') && s.emailAttribute.toLowerCase() !== s.userAttribute.toLowerCase();
  const match = byMail ? new OrFilter({ filters: [byName, new EqualityFilter({ attribute: s.emailAttribute, value: name })] }) : byName;
  return withUserFilter(s, match);
}

async function findPeople(client: Client, s: LdapSettings, filter: Filter): Promise<Entry[]> {
  const { searchEntries } = await client.search(s.baseDn, { scope: 'sub', filter, sizeLimit: 2, ...searchOptions(s) });
  return searchEntries;
}

/** The person's groups (DNs as the directory writes them). */
async function groupsOf(client: Client, s: LdapSettings, entry: Entry): Promise<string[]> {
  if (s.groupSource === 'memberOf') {
    return valuesOf(entry, s.memberOfAttribute)
      .map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v))
      .filter((v) => v.trim() !== '')
      .slice(0, MAX_GROUPS);
  }
  const { searchEntries } = await client.search(s.groupBaseDn!, {
    scope: 'sub',
    filter: new EqualityFilter({ attribute: s.groupMemberAttribute, value: entry.dn }),
    attributes: ['1.1'],
    sizeLimit: MAX_GROUPS,
  });
  return searchEntries.map((g) => g.dn);
}

function identityOf(s: LdapSettings, entry: Entry, groups: string[]): DirectoryIdentity {
  const email = firstString(entry, s.emailAttribute);
  return {
    kind: 'ldap',
    subject: subjectOf(entry, s.subjectAttribute),
    email: email ? email.toLowerCase() : null,
    name: firstString(entry, s.nameAttribute) ?? firstString(entry, 'cn'),
    groups: [...new Map(groups.map((g) => [dnKey(g), g])).values()],
  };
}

function outcome(result: DirectoryIdentity | LdapRefusal): DirectoryOutcome {
  return result instanceof LdapRefusal ? { ok: false, reason: result.reason, detail: result.detail } : { ok: true, identity: result };
}

/**
 * Sign-in: service bind, find exactly one person by the typed name, bind as
 * them with the typed password on a connection of its own, read their
 * groups. Refusals: invalid_credentials, not_found, ambiguous,
 * directory_unavailable, tls_failed, misconfigured (a bad service account,
 * base DN or filter). Neither password is ever part of the answer.
 */
export async function ldapAuthenticate(settings: LdapSettings, username: string, password: string): Promise<DirectoryOutcome> {
  if (typeof password !== 'string' || password.length === 0) return { ok: false, reason: 'invalid_credentials', detail: 'empty password (refused before any bind)' };
  if (typeof username !== 'string' || username.length === 0) return { ok: false, reason: 'not_found', detail: 'empty name' };
  if (username.length > MAX_LDAP_NAME) return { ok: false, reason: 'not_found', detail: 'name too long' };
  const run = new LdapRun(settings, [password]);
  const result = await run.guard(async () => {
    const service = await run.serviceClient();
    run.step('user_search');
    const found = await findPeople(service, settings, nameFilter(settings, username));
    if (found.length === 0) return refusal('not_found', 'user_search: no entry matches the name');
    if (found.length > 1) return refusal('ambiguous', 'user_search: more than one entry matches the name');
    const entry = found[0]!;
    run.step('user_bind');
    const own = await run.connect();
    await own.bind(entry.dn, password);
    await run.close(own);
    run.step('groups');
    return identityOf(settings, entry, await groupsOf(service, settings, entry));
  });
  return outcome(result);
}

/**
 * The periodic check: the person with this subject as the directory has
 * them now (groups included), null when the directory no longer has them
 * (or they no longer match the user filter), 'unavailable' when it cannot
 * tell: unreachable, TLS or configuration trouble, more than one match, or a
 * subject that cannot be of the configured kind (say a UUID after the
 * subject attribute was switched to objectGUID's GUIDs; nobody is ended for
 * a settings change).
 */
export async function ldapLookup(settings: LdapSettings, subject: string): Promise<DirectoryIdentity | null | 'unavailable'> {
  if (typeof subject !== 'string' || subject.trim() === '') return 'unavailable';
  const run = new LdapRun(settings);
  const result = await run.guard(async (): Promise<DirectoryIdentity | null | LdapRefusal> => {
    const service = await run.serviceClient();
    run.step('lookup');
    let found: Entry[];
    if (looksLikeDn(subject)) {
      found = await byDn(service, settings, subject);
    } else {
      const value = subjectValue(settings, subject);
      if (value === null) return refusal('misconfigured', `lookup: the subject is not a ${settings.subjectAttribute} value`);
      found = await findPeople(service, settings, withUserFilter(settings, new EqualityFilter({ attribute: settings.subjectAttribute, value })));
    }
    if (found.length === 0) return null;
    if (found.length > 1) return refusal('ambiguous', 'lookup: more than one entry has this subject');
    run.step('groups');
    return identityOf(settings, found[0]!, await groupsOf(service, settings, found[0]!));
  });
  return result instanceof LdapRefusal ? 'unavailable' : result;
}

/** The value to search the subject attribute for; null when the subject cannot be one. */
function subjectValue(s: LdapSettings, subject: string): string | Buffer | null {
  if (isObjectGuid(s.subjectAttribute)) return guidToBytes(subject);
  if (s.subjectAttribute.toLowerCase() === 'entryuuid') return isGuidString(subject) ? subject.toLowerCase() : null;
  return subject;
}

/** The entry at a DN (base search), if it still is a person the settings find; a DN that is gone gives none, once the base DN is seen to exist. */
async function byDn(client: Client, s: LdapSettings, dn: string): Promise<Entry[]> {
  if (!dnKey(dn).endsWith(dnKey(s.baseDn))) throw refusal('misconfigured', 'lookup: the DN is outside the base DN');
  const filter = s.userFilter ? FilterParser.parseString(s.userFilter) : new PresenceFilter({ attribute: 'objectClass' });
  try {
    const { searchEntries } = await client.search(dn, { scope: 'base', filter, ...searchOptions(s) });
    return searchEntries;
  } catch (err) {
    if (!(err instanceof NoSuchObjectError)) throw err;
    // Only a missing person, not a missing (mistyped, moved) base, means "gone".
    await client.search(s.baseDn, { scope: 'base', attributes: ['1.1'] });
    return [];
  }
}

export type LdapTestStepName = 'connect' | 'service_bind' | 'base_dn' | 'group_base_dn' | 'user_search' | 'groups';

export interface LdapTestStep {
  step: LdapTestStepName;
  ok: boolean;
  /** Why it failed (a stable code) and a short detail; never a secret. */
  reason?: LdapRefusal['reason'];
  detail?: string;
}

export interface LdapTestResult {
  ok: boolean;
  transport: ReturnType<typeof ldapTransport>;
  steps: LdapTestStep[];
  /** What the directory has for the name given, when one was given and found. */
  user?: { dn: string; subject: string; email: string | null; name: string | null; groups: string[] };
}

/**
 * The admin's Test: connect (and StartTLS), bind as the service account,
 * read the base DN (and the group base DN), and when a name is given find
 * that person and their groups, as steps that passed or failed. No
 * password of anyone is asked for, bound with (but the service account's) or shown.
 */
export async function ldapTest(settings: LdapSettings, username?: string): Promise<LdapTestResult> {
  const steps: LdapTestStep[] = [];
  const report: LdapTestResult = { ok: false, transport: ldapTransport(settings), steps };
  const run = new LdapRun(settings);
  const pass = (step: LdapTestStepName) => steps.push({ step, ok: true });
  const result = await run.guard(async () => {
    const service = await run.serviceClient();
    pass('connect');
    pass('service_bind');
    run.step('base_dn');
    await service.search(settings.baseDn, { scope: 'base', attributes: ['1.1'] });
    pass('base_dn');
    if (settings.groupSource === 'search') {
      await service.search(settings.groupBaseDn!, { scope: 'base', attributes: ['1.1'] });
      pass('group_base_dn');
    }
    if (username === undefined || username === '') return null;
    run.step('user_search');
    if (username.length > MAX_LDAP_NAME) return refusal('not_found', 'name too long');
    const found = await findPeople(service, settings, nameFilter(settings, username));
    if (found.length !== 1) return refusal(found.length ? 'ambiguous' : 'not_found', `user_search: ${found.length} entries match the name`);
    const entry = found[0]!;
    pass('user_search');
    run.step('groups');
    const identity = identityOf(settings, entry, await groupsOf(service, settings, entry));
    pass('groups');
    report.user = { dn: entry.dn, subject: identity.subject, email: identity.email, name: identity.name, groups: identity.groups };
    return null;
  });
  if (result instanceof LdapRefusal) {
    const failedAt = run.currentPhase;
    const step: LdapTestStepName =
      failedAt === 'connect' || failedAt === 'starttls' || (failedAt === 'service_bind' && (result.reason === 'directory_unavailable' || result.reason === 'tls_failed'))
        ? 'connect'
        : failedAt === 'service_bind'
          ? 'service_bind'
          : failedAt === 'base_dn'
            ? steps.some((s) => s.step === 'base_dn') ? 'group_base_dn' : 'base_dn'
            : failedAt === 'groups'
              ? 'groups'
              : 'user_search';
    if (step === 'service_bind') pass('connect');
    steps.push({ step, ok: false, reason: result.reason, detail: run.scrub(result.detail) });
  }
  report.ok = steps.every((s) => s.ok);
  return report;
}
