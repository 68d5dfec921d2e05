import assert from 'node:assert/strict';
import net from 'node:net';
import type { DirectoryIdentity, DirectoryOutcome } from '../app/sso/identity';
import { ldapAuthenticate, ldapLookup, ldapTest } from '../app/sso/ldap-client';
import { ldapSettingsSchema, publicLdapSettings, type LdapSettings, type LdapSettingsInput } from '../app/sso/ldap-settings';
import { dnKey, guidToBytes, guidToString } from '../app/sso/ldap-values';
import { BASE_DN, GROUPS_DN, LEGACY_GROUP, PEOPLE, SERVICE_DN, groupDn, personDn, startSlapd, type Slapd } from './support/slapd';

/**
 * The LDAP client against a real OpenLDAP (Debian slapd, test/support/slapd.ts):
 * plain, StartTLS and LDAPS with a throwaway CA; refusals with their codes;
 * injection attempts; groups by memberOf and by group search; removal from a
 * group and deletion seen at the next sign-in and by the periodic lookup.
 */

const password = (uid: string) => PEOPLE[uid]!.password;

function identity(outcome: DirectoryOutcome): DirectoryIdentity {
  assert.ok(outcome.ok, `expected a sign-in, got ${JSON.stringify(outcome)}`);
  return outcome.identity;
}

function refused(outcome: DirectoryOutcome, reason: string): void {
  assert.equal(outcome.ok, false, `expected a refusal (${reason}), got ${JSON.stringify(outcome)}`);
  if (!outcome.ok) assert.equal(outcome.reason, reason, JSON.stringify(outcome));
}

const sortedKeys = (dns: string[]) => dns.map(dnKey).sort();

/**
 * A TCP listener that counts connections and never answers (no LDAP server
 * behind it); with `acceptStartTls` it says yes to the first request (a
 * StartTLS extended request) and then stays silent through the handshake.
 */
async function blackHole(acceptStartTls = false): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    if (acceptStartTls) {
      socket.once('data', (request: Buffer) => {
        // LDAPMessage { messageID (as in the request: 30 len 02 01 id), extendedResp [APPLICATION 24] { success, "", "" } }
        const id = request[4] ?? 1;
        socket.write(Buffer.from([0x30, 0x0c, 0x02, 0x01, id, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]));
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `ldap://127.0.0.1:${port}`,
    connections: () => count,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('SSO: LDAP client against a real OpenLDAP', function () {
  this.timeout(30000);
  let slapd: Slapd;

  const settings = (over: Partial<LdapSettingsInput> = {}): LdapSettings =>
    ldapSettingsSchema.parse({ url: slapd.url, bindDn: SERVICE_DN, bindPassword: slapd.servicePassword, baseDn: BASE_DN, timeoutMs: 3000, ...over });
  const startTls = (over: Partial<LdapSettingsInput> = {}) => settings({ startTls: true, caPem: slapd.caPem, ...over });

  before(async function () {
    this.timeout(30000);
    slapd = await startSlapd();
  });

  after(async () => {
    await slapd?.stop();
  });

  describe('settings', () => {
    it('applies the defaults and refuses bad values with stable codes', () => {
      const s = settings();
      assert.equal(s.userAttribute, 'uid');
      assert.equal(s.subjectAttribute, 'entryUUID');
      assert.equal(s.groupSource, 'memberOf');
      assert.equal(s.startTls, false);
      const problems = (input: Partial<LdapSettingsInput>) => {
        const result = ldapSettingsSchema.safeParse({ url: slapd.url, bindDn: SERVICE_DN, bindPassword: 'x', baseDn: BASE_DN, ...input });
        return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}:${i.message}`).sort();
      };
      assert.deepEqual(problems({ url: 'http://127.0.0.1' }), ['url:invalid_url']);
      assert.deepEqual(problems({ url: 'ldap://user:pw@127.0.0.1' }), ['url:invalid_url']);
      assert.deepEqual(problems({ url: 'ldaps://127.0.0.1', startTls: true }), ['startTls:starttls_with_ldaps']);
      assert.deepEqual(problems({ caPem: '-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----' }), ['caPem:invalid_ca']);
      assert.deepEqual(problems({ userFilter: '(objectClass=person' }), ['userFilter:invalid_filter']);
      assert.deepEqual(problems({ groupSource: 'search' }), ['groupBaseDn:group_base_required']);
      assert.deepEqual(problems({ userAttribute: 'uid)(x' }), ['userAttribute:invalid_attribute']);
      assert.deepEqual(problems({ bindPassword: '' }), ['bindPassword:bind_password_required']);
      assert.deepEqual(problems({ timeoutMs: 10 }), ['timeoutMs:invalid_timeout']);
      assert.deepEqual(problems({ caPem: slapd.caPem, startTls: true }), []);
      // Active Directory's service account may be given as its user principal name.
      assert.deepEqual(problems({ bindDn: 'svc-vclerk@corp.example.org' }), []);
      assert.deepEqual(problems({ bindDn: 'svc vclerk@corp' }), ['bindDn:invalid_dn']);
      assert.deepEqual(problems({ bindDn: 'nobody' }), ['bindDn:invalid_dn']);
      const shown = JSON.stringify(publicLdapSettings(s));
      assert.ok(!shown.includes(slapd.servicePassword) && shown.includes('"bindPasswordSet":true'));
    });

    it('renders objectGUID bytes as a canonical GUID and back; compares DNs by a key', () => {
      const bytes = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
      assert.equal(guidToString(bytes), '33221100-5544-7766-8899-aabbccddeeff');
      assert.deepEqual(guidToBytes('33221100-5544-7766-8899-AABBCCDDEEFF'), bytes);
      assert.equal(guidToBytes('not-a-guid'), null);
      assert.equal(dnKey('CN=Clerks, OU=Groups,DC=example,DC=org'), dnKey('cn=clerks,ou=groups,dc=example,dc=org'));
      assert.equal(dnKey('cn=Doe\\2C John,ou=people'), dnKey('CN=doe\\, john, ou=People'));
      assert.notEqual(dnKey('cn=a\\,b,ou=x'), dnKey('cn=a,b=,ou=x'));
    });
  });

  describe('sign-in', () => {
    it('signs in over plain LDAP with the groups from memberOf', async () => {
      const who = identity(await ldapAuthenticate(settings(), 'alice', password('alice')));
      assert.equal(who.kind, 'ldap');
      assert.match(who.subject, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'entryUUID');
      assert.equal(who.email, 'alice@example.org', 'lower-cased');
      assert.equal(who.name, 'Alice Archer');
      assert.deepEqual(sortedKeys(who.groups), sortedKeys([groupDn('vclerk-admins'), groupDn('vclerk-clerks')]));
    });

    it('signs in with StartTLS and LDAPS, the server verified against the given CA', async () => {
      const bob = identity(await ldapAuthenticate(startTls(), 'bob', password('bob')));
      assert.deepEqual(sortedKeys(bob.groups), sortedKeys([groupDn('vclerk-clerks')]));
      // jdoe's DN has an escaped comma; no displayName, so the name is the cn.
      const jdoe = identity(await ldapAuthenticate(settings({ url: slapd.ldapsUrl, caPem: slapd.caPem }), 'jdoe', password('jdoe')));
      assert.equal(jdoe.name, 'Doe, John');
      assert.deepEqual(sortedKeys(jdoe.groups), sortedKeys([groupDn('vclerk-compliance')]));
    });

    it('finds a name with @ by e-mail, case-insensitively; two people with that address are ambiguous', async () => {
      const who = identity(await ldapAuthenticate(startTls(), 'ALICE@example.org', password('alice')));
      assert.equal(who.email, 'alice@example.org');
      refused(await ldapAuthenticate(startTls(), 'twins@example.org', password('twin1')), 'ambiguous');
    });

    it('refuses a wrong password, another person\'s password and an unknown name', async () => {
      refused(await ldapAuthenticate(startTls(), 'alice', 'wrong'), 'invalid_credentials');
      refused(await ldapAuthenticate(startTls(), 'alice', password('bob')), 'invalid_credentials');
      refused(await ldapAuthenticate(startTls(), 'nobody', password('alice')), 'not_found');
    });

    it('refuses an empty password before connecting at all (no anonymous bind)', async () => {
      const hole = await blackHole();
      try {
        refused(await ldapAuthenticate(settings({ url: hole.url }), 'alice', ''), 'invalid_credentials');
        assert.equal(hole.connections(), 0);
      } finally {
        await hole.close();
      }
      refused(await ldapAuthenticate(settings(), 'alice', ''), 'invalid_credentials');
    });

    it('finds nobody for LDAP injection attempts in the name, even with a right password', async () => {
      const attempts = [
        '*',
        'a*',
        '*)(uid=*',
        'admin)(uid=*',
        'alice)(uid=*',
        '*)(|(objectClass=*)',
        'alice)(|(objectClass=*)',
        '(uid=alice)',
        'alice\0',
        'alice\0)(uid=*',
        'alice\\',
        '\\2a',
        'ali\\63e',
        '*@example.org',
        'alice@example.org)(uid=*',
        '*)(mail=*',
        'alice))(|(uid=*',
      ];
      for (const s of [settings(), settings({ userFilter: '(objectClass=inetOrgPerson)' })]) {
        for (const name of attempts) {
          const outcome = await ldapAuthenticate(s, name, password('alice'));
          refused(outcome, 'not_found');
        }
      }
    });

    it('reads groups by group search (member and uniqueMember)', async () => {
      const byMember = identity(await ldapAuthenticate(startTls({ groupSource: 'search', groupBaseDn: GROUPS_DN }), 'alice', password('alice')));
      assert.deepEqual(sortedKeys(byMember.groups), sortedKeys([groupDn('vclerk-admins'), groupDn('vclerk-clerks')]));
      const unique = startTls({ groupSource: 'search', groupBaseDn: GROUPS_DN, groupMemberAttribute: 'uniqueMember' });
      const jdoe = identity(await ldapAuthenticate(unique, 'jdoe', password('jdoe')));
      assert.deepEqual(sortedKeys(jdoe.groups), sortedKeys([groupDn(LEGACY_GROUP)]));
    });

    it('Active Directory style: sAMAccountName and a binary objectGUID as the subject, found again by it', async () => {
      const ad = startTls({ userAttribute: 'sAMAccountName', subjectAttribute: 'objectGUID' });
      const dana = identity(await ldapAuthenticate(ad, 'DDORN', password('dana')));
      assert.equal(dana.subject, '33221100-5544-7766-8899-aabbccddeeff');
      assert.equal(dana.name, 'Dana Dorn (AD)');
      const again = await ldapLookup(ad, dana.subject);
      assert.ok(again && again !== 'unavailable');
      assert.equal(again.email, 'dana@example.org');
      // A person without objectGUID is known by their DN.
      assert.equal(identity(await ldapAuthenticate(settings({ subjectAttribute: 'objectGUID' }), 'bob', password('bob'))).subject, personDn('bob'));
    });
  });

  describe('deprovisioning', () => {
    it('a person taken out of a group has lost it at the next sign-in and lookup (memberOf and group search)', async () => {
      await slapd.addUser({ uid: 'erin', cn: 'Erin Ernst', mail: 'erin@example.org', password: 'erin-Secret-8', groups: ['vclerk-admins', 'vclerk-clerks', LEGACY_GROUP] });
      const memberOf = startTls();
      const search = startTls({ groupSource: 'search', groupBaseDn: GROUPS_DN });
      const before = identity(await ldapAuthenticate(memberOf, 'erin', 'erin-Secret-8'));
      assert.deepEqual(sortedKeys(before.groups), sortedKeys([groupDn('vclerk-admins'), groupDn('vclerk-clerks')]));
      await slapd.removeFromGroup('vclerk-admins', 'erin');
      await slapd.removeFromGroup(LEGACY_GROUP, 'erin');
      for (const s of [memberOf, search]) {
        const after = identity(await ldapAuthenticate(s, 'erin', 'erin-Secret-8'));
        assert.deepEqual(sortedKeys(after.groups), sortedKeys([groupDn('vclerk-clerks')]));
        const looked = await ldapLookup(s, before.subject);
        assert.ok(looked && looked !== 'unavailable');
        assert.equal(looked.subject, before.subject);
        assert.deepEqual(sortedKeys(looked.groups), sortedKeys([groupDn('vclerk-clerks')]));
      }
    });

    it('a deleted person: lookup says null (by entryUUID and by DN), sign-in says not_found', async () => {
      await slapd.addUser({ uid: 'frank', cn: 'Frank Fink', mail: 'frank@example.org', password: 'frank-Secret-9', groups: ['vclerk-clerks'] });
      const s = startTls();
      const frank = identity(await ldapAuthenticate(s, 'frank', 'frank-Secret-9'));
      const byDn = settings({ subjectAttribute: 'carLicense' });
      const frankByDn = identity(await ldapAuthenticate(byDn, 'frank', 'frank-Secret-9'));
      assert.equal(frankByDn.subject, `uid=frank,ou=people,${BASE_DN}`);
      assert.ok((await ldapLookup(byDn, frankByDn.subject)) !== null);
      await slapd.deleteUser('frank');
      assert.equal(await ldapLookup(s, frank.subject), null);
      assert.equal(await ldapLookup(byDn, frankByDn.subject), null);
      refused(await ldapAuthenticate(s, 'frank', 'frank-Secret-9'), 'not_found');
    });

    it('lookup cannot tell (unavailable, nobody ended) with a wrong base DN, a subject of another kind or a DN outside the base', async () => {
      const alice = identity(await ldapAuthenticate(startTls(), 'alice', password('alice')));
      assert.equal(await ldapLookup(startTls({ baseDn: 'ou=gone,dc=example,dc=org' }), alice.subject), 'unavailable');
      assert.equal(await ldapLookup(startTls({ subjectAttribute: 'objectGUID' }), 'not-a-guid'), 'unavailable');
      assert.equal(await ldapLookup(startTls({ baseDn: `ou=people,${BASE_DN}` }), `cn=vclerk-admins,${GROUPS_DN}`), 'unavailable');
      assert.equal(await ldapLookup(startTls({ baseDn: 'ou=gone,dc=example,dc=org' }), personDn('alice')), 'unavailable');
    });
  });

  describe('failures', () => {
    it('a wrong CA, or none (system CAs), fails StartTLS and LDAPS with tls_failed', async () => {
      refused(await ldapAuthenticate(startTls({ caPem: slapd.otherCaPem }), 'alice', password('alice')), 'tls_failed');
      refused(await ldapAuthenticate(settings({ startTls: true }), 'alice', password('alice')), 'tls_failed');
      refused(await ldapAuthenticate(settings({ url: slapd.ldapsUrl, caPem: slapd.otherCaPem }), 'alice', password('alice')), 'tls_failed');
    });

    it('a wrong service account password is misconfigured (and never shown)', async () => {
      const outcome = await ldapAuthenticate(startTls({ bindPassword: 'wrong-service-pw' }), 'alice', password('alice'));
      refused(outcome, 'misconfigured');
      assert.ok(!JSON.stringify(outcome).includes('wrong-service-pw'));
    });

    it('a server that never answers gives directory_unavailable within the timeout', async () => {
      const hole = await blackHole();
      try {
        const started = Date.now();
        refused(await ldapAuthenticate(settings({ url: hole.url, timeoutMs: 800 }), 'alice', password('alice')), 'directory_unavailable');
        assert.ok(Date.now() - started < 2500, `took ${Date.now() - started} ms`);
        assert.equal(await ldapLookup(settings({ url: hole.url, timeoutMs: 800, startTls: true }), 'x'), 'unavailable');
        assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
      } finally {
        await hole.close();
      }
    });

    it('a server that accepts StartTLS and then stalls the handshake gives directory_unavailable within the timeout', async () => {
      const hole = await blackHole(true);
      try {
        const started = Date.now();
        const outcome = await ldapAuthenticate(settings({ url: hole.url, startTls: true, caPem: slapd.caPem, timeoutMs: 800 }), 'alice', password('alice'));
        refused(outcome, 'directory_unavailable');
        assert.match(outcome.ok ? '' : (outcome.detail ?? ''), /^starttls: .*TLS handshake/);
        assert.ok(Date.now() - started < 2500, `took ${Date.now() - started} ms`);
      } finally {
        await hole.close();
      }
    });

    it('a stopped server gives directory_unavailable at once; lookup says unavailable, not null', async () => {
      const other = await startSlapd();
      const s = settings({ url: other.url, bindPassword: other.servicePassword });
      const alice = identity(await ldapAuthenticate(s, 'alice', password('alice')));
      await other.stop();
      const started = Date.now();
      refused(await ldapAuthenticate(s, 'alice', password('alice')), 'directory_unavailable');
      assert.equal(await ldapLookup(s, alice.subject), 'unavailable');
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    });
  });

  describe('the admin\'s Test', () => {
    it('shows each step, the person\'s DN, e-mail, name and groups, and no secret', async () => {
      const result = await ldapTest(startTls(), 'alice');
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal(result.transport, 'starttls');
      assert.deepEqual(result.steps.map((s) => `${s.step}:${s.ok}`), ['connect:true', 'service_bind:true', 'base_dn:true', 'user_search:true', 'groups:true']);
      assert.equal(dnKey(result.user!.dn), dnKey(personDn('alice')));
      assert.equal(result.user!.email, 'alice@example.org');
      assert.equal(result.user!.name, 'Alice Archer');
      assert.deepEqual(sortedKeys(result.user!.groups), sortedKeys([groupDn('vclerk-admins'), groupDn('vclerk-clerks')]));
      assert.ok(!JSON.stringify(result).includes(slapd.servicePassword));
    });

    it('names the failing step: connect, service bind, base DN, user search', async () => {
      const stepsOf = async (s: LdapSettings, name?: string) => {
        const result = await ldapTest(s, name);
        assert.equal(result.ok, false);
        assert.ok(!JSON.stringify(result).includes(slapd.servicePassword));
        return result.steps.map((step) => `${step.step}:${step.ok ? 'ok' : step.reason}`);
      };
      assert.deepEqual(await stepsOf(startTls({ caPem: slapd.otherCaPem })), ['connect:tls_failed']);
      assert.deepEqual(await stepsOf(startTls({ bindPassword: `${slapd.servicePassword}x` })), ['connect:ok', 'service_bind:misconfigured']);
      assert.deepEqual(await stepsOf(startTls({ baseDn: 'ou=gone,dc=example,dc=org' })), ['connect:ok', 'service_bind:ok', 'base_dn:misconfigured']);
      assert.deepEqual(await stepsOf(startTls({ groupSource: 'search', groupBaseDn: 'ou=nogroups,dc=example,dc=org' })), [
        'connect:ok',
        'service_bind:ok',
        'base_dn:ok',
        'group_base_dn:misconfigured',
      ]);
      assert.deepEqual(await stepsOf(startTls(), 'nobody'), ['connect:ok', 'service_bind:ok', 'base_dn:ok', 'user_search:not_found']);
      assert.deepEqual(await stepsOf(startTls(), 'twins@example.org'), ['connect:ok', 'service_bind:ok', 'base_dn:ok', 'user_search:ambiguous']);
    });
  });
});
