import assert from 'node:assert/strict';
import type { SsoProviderRow } from '../app/db/tables';
import type { DirectoryIdentity } from '../app/sso/identity';
import { roleFor, SsoProvisioning } from '../app/sso/provisioning';
import { replaceRoleMappings, saveProvider } from '../app/sso/store';
import { seedOrganisation, seedUser, type SeededOrganisation } from './support/accounts';
import { useTestDatabase } from './support/database';

/**
 * From a directory's identity to a staff user, on a real database (the
 * protocol clients are tested against real servers in sso-ldap and
 * sso-oidc): first sign-in creates or links the user, the mapping gives the
 * role (most privileged match wins), a person out of every mapped group is
 * refused and their sessions end, the periodic check ends sessions of
 * people the directory no longer has, and each step is audited.
 */
describe('single sign-on: provisioning from the directory', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  const meta = { ip: '127.0.0.9', userAgent: 'test' };
  let org: SeededOrganisation;
  let provider: SsoProviderRow;
  let sso: SsoProvisioning;
  const ADMINS = 'cn=VClerk Admins,ou=groups,dc=bank,dc=example';
  const CLERKS = 'cn=Clerks,ou=groups,dc=bank,dc=example';
  const person = (over: Partial<DirectoryIdentity> = {}): DirectoryIdentity => ({ kind: 'ldap', subject: 'uuid-anna', email: 'anna@bank.example', name: 'Anna Berg', groups: [CLERKS], ...over });

  before(async () => {
    org = await seedOrganisation(knex(), 'Directory Bank');
    provider = await knex().transaction((trx) => saveProvider(trx, org.id, 'ldap', { enabled: true, label: 'Bank AD', check_minutes: 60, settings: {} }));
    await knex().transaction((trx) => replaceRoleMappings(trx, provider.id, [
      { directory_group: ADMINS, role: 'admin' },
      { directory_group: CLERKS, role: 'clerk' },
      { directory_group: 'Compliance', role: 'compliance' },
    ]));
    sso = new SsoProvisioning(knex());
  });

  const events = (action: string) => knex()('audit_events').where({ organisation_id: org.id, action }).orderBy('id');

  it('maps groups to the most privileged role, case-insensitively; no match is null', () => {
    const mappings = [{ directory_group: ADMINS, role: 'admin' as const }, { directory_group: CLERKS, role: 'clerk' as const }, { directory_group: 'Compliance', role: 'compliance' as const }];
    assert.deepEqual(roleFor([CLERKS.toUpperCase()], mappings), { role: 'clerk', matched: [CLERKS] });
    assert.equal(roleFor([CLERKS, 'compliance', ADMINS], mappings)!.role, 'admin');
    assert.equal(roleFor(['compliance', CLERKS], mappings)!.role, 'compliance');
    assert.equal(roleFor(['cn=Other'], mappings), null);
    assert.equal(roleFor(['CN=VClerk Admins, OU=Groups,DC=bank,DC=example'], mappings)!.role, 'admin', 'DNs compared as DNs');
    assert.equal(roleFor([], mappings), null);
  });

  it('creates the user at the first sign-in (no password, the mapped role), audited with the groups and address', async () => {
    const result = await sso.signIn(provider, person(), meta);
    assert.ok(result.ok && result.created && result.role === 'clerk');
    const user = await knex()('users').where({ id: result.userId }).first();
    assert.equal(user!.password_hash, null);
    assert.equal(user!.status, 'active');
    assert.deepEqual([user!.sso_provider_id, user!.sso_subject, user!.email, user!.name], [provider.id, 'uuid-anna', 'anna@bank.example', 'Anna Berg']);
    const [created] = await events('sso.user_provisioned');
    assert.deepEqual(created!.details, { provider: 'ldap', role: 'clerk', groups: [CLERKS], linked: false });
    assert.equal(created!.ip, '127.0.0.9');
  });

  it('applies the directory role at each sign-in and audits the decision', async () => {
    const result = await sso.signIn(provider, person({ groups: [CLERKS, ADMINS], name: 'Anna Berg-Lund' }), meta);
    assert.ok(result.ok && !result.created && result.role === 'admin');
    const user = await knex()('users').where({ id: result.userId }).first();
    assert.deepEqual([user!.role, user!.name], ['admin', 'Anna Berg-Lund']);
    const mapped = (await events('sso.role_mapped')).at(-1);
    assert.deepEqual(mapped!.details, { provider: 'ldap', role: 'admin', previous_role: 'clerk', groups: [ADMINS] });
  });

  it('refuses a person out of every mapped group and ends their sessions', async () => {
    const before = (await knex()('users').where({ sso_subject: 'uuid-anna' }).first())!;
    await new Promise((r) => setTimeout(r, 20));
    const result = await sso.signIn(provider, person({ groups: ['cn=Former staff'] }), meta);
    assert.deepEqual(result, { ok: false, reason: 'no_mapped_group' });
    const after = (await knex()('users').where({ id: before.id }).first())!;
    assert.ok(after.sessions_valid_after.getTime() > before.sessions_valid_after.getTime(), 'sessions ended');
    assert.equal((await events('sso.deprovisioned')).at(-1)!.target_id, before.id);
    const refused = (await events('sso.login_refused')).at(-1)!;
    assert.equal((refused.details as { reason: string }).reason, 'no_mapped_group');
    // Back in a mapped group, the person signs in again.
    assert.ok((await sso.signIn(provider, person(), meta)).ok);
  });

  it('links the organisation\'s own user of the same address; another organisation\'s address is taken', async () => {
    const local = await seedUser(knex(), org, 'clerk');
    const linked = await sso.signIn(provider, person({ subject: 'uuid-local', email: local.email.toUpperCase().toLowerCase(), groups: ['COMPLIANCE'] }), meta);
    assert.ok(linked.ok && !linked.created && linked.userId === local.id && linked.role === 'compliance');
    assert.equal((await knex()('users').where({ id: local.id }).first())!.sso_subject, 'uuid-local');
    const other = await seedOrganisation(knex(), 'Other Bank');
    const foreign = await seedUser(knex(), other, 'clerk');
    assert.deepEqual(await sso.signIn(provider, person({ subject: 'uuid-foreign', email: foreign.email }), meta), { ok: false, reason: 'email_taken' });
    assert.deepEqual(await sso.signIn(provider, person({ subject: 'uuid-noemail', email: null }), meta), { ok: false, reason: 'no_email' });
  });

  it('an administrator\'s deactivation wins, and a disabled provider signs no one in', async () => {
    await sso.signIn(provider, person({ subject: 'uuid-bo', email: 'bo@bank.example' }), meta);
    await knex()('users').where({ sso_subject: 'uuid-bo' }).update({ status: 'deactivated' });
    assert.deepEqual(await sso.signIn(provider, person({ subject: 'uuid-bo', email: 'bo@bank.example' }), meta), { ok: false, reason: 'deactivated' });
    assert.deepEqual(await sso.signIn({ ...provider, enabled: false }, person(), meta), { ok: false, reason: 'provider_disabled' });
  });

  it('the periodic check ends the sessions of people the directory no longer has or maps; an unreachable directory changes nothing', async () => {
    await sso.signIn(provider, person({ subject: 'uuid-cy', email: 'cy@bank.example' }), meta);
    await sso.signIn(provider, person({ subject: 'uuid-di', email: 'di@bank.example' }), meta);
    const stamp = async (subject: string) => (await knex()('users').where({ sso_subject: subject }).first())!.sessions_valid_after.getTime();
    const [cy, di, anna] = [await stamp('uuid-cy'), await stamp('uuid-di'), await stamp('uuid-anna')];
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await sso.check(provider, async () => 'unavailable'), { checked: 0, deprovisioned: 0, unavailable: true });
    assert.equal(await stamp('uuid-cy'), cy);
    const result = await sso.check(provider, async (subject) => (subject === 'uuid-cy' ? null : subject === 'uuid-di' ? person({ subject, groups: ['cn=Gone'] }) : person({ subject })));
    assert.equal(result.deprovisioned, 2);
    assert.ok((await stamp('uuid-cy')) > cy && (await stamp('uuid-di')) > di);
    assert.equal(await stamp('uuid-anna'), anna, 'a person still mapped keeps the sessions');
    const periodic = (await events('sso.deprovisioned')).filter((e) => (e.details as { periodic?: boolean }).periodic);
    assert.deepEqual(periodic.map((e) => (e.details as { reason: string }).reason).sort(), ['no_mapped_group', 'not_in_directory']);
  });
});
