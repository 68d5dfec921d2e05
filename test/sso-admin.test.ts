import assert from 'node:assert/strict';
import type { Express } from 'express';
import type { Response } from 'supertest';
import { ssoSealer } from '../app/sso/provider-settings';
import { forgetDiscovery } from '../app/sso/oidc-client';
import { csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp, TEST_SECRET } from './support/context';
import { useTestDatabase } from './support/database';
import { startTestProvider, type TestProvider } from './support/oidc-provider';
import { groupDn, PEOPLE_DN, personDn, SERVICE_DN, startSlapd, type Slapd } from './support/slapd';

/**
 * Issue 18, the admin pages of single sign-on (/admin/sso) through the real
 * app: settings of each kind (the secret sealed, write-only, never in a
 * page or the audit trail), the role mapping, field errors with nothing
 * changed, the admin role and the organisation as the only scope, the Test
 * against a real slapd and a real OpenID Connect provider, and password
 * sign-in that cannot be turned off without a break-glass administrator.
 */
describe('single sign-on: admin pages (/admin/sso)', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let app: Express;
  let org: SeededOrganisation;
  let other: SeededOrganisation;
  let adminUser: SeededUser;
  let admin: Browser;
  let clerk: Browser;
  let foreignAdmin: Browser;
  let slapd: Slapd;
  let op: TestProvider;

  const CLIENT_SECRET = 'oidc-client-secret-never-shown-42';

  async function post(as: Browser, path: string, fields: Record<string, unknown>): Promise<Response> {
    const page = await as.agent.get('/account').expect(200);
    return as.agent.post(path).type('form').send({ _csrf: csrfFrom(page.text), ...fields });
  }

  const ldapForm = (over: Record<string, unknown> = {}) => ({
    ldap_enabled: 'on',
    ldap_label: 'Example Directory',
    ldap_url: slapd.url,
    ldap_bind_dn: SERVICE_DN,
    ldap_bind_password: slapd.servicePassword,
    ldap_base_dn: PEOPLE_DN,
    ldap_user_attribute: 'uid',
    ldap_group_source: 'memberOf',
    ldap_member_of_attribute: 'memberOf',
    ldap_group_member_attribute: 'member',
    ldap_email_attribute: 'mail',
    ldap_name_attribute: 'displayName',
    ldap_subject_attribute: 'entryUUID',
    ldap_timeout_ms: '5000',
    ldap_check_minutes: '30',
    ldap_map_group_0: groupDn('vclerk-admins'),
    ldap_map_role_0: 'admin',
    ldap_map_group_1: groupDn('vclerk-clerks'),
    ldap_map_role_1: 'clerk',
    ...over,
  });

  const provider = (organisationId: string, kind: 'ldap' | 'oidc') => knex()('sso_providers').where({ organisation_id: organisationId, kind }).first();
  const auditText = async (organisationId: string) => JSON.stringify(await knex()('audit_events').where({ organisation_id: organisationId }));

  before(async function () {
    this.timeout(120_000);
    [slapd, op] = await Promise.all([startSlapd(), startTestProvider({ redirectUri: 'http://127.0.0.1:9/sso/x/oidc/callback' })]);
    app = buildApp(db.current);
    org = await seedOrganisation(knex(), 'Directory Bank');
    other = await seedOrganisation(knex(), 'Other Bank');
    adminUser = await seedUser(knex(), org, 'admin');
    admin = await signIn(app, adminUser);
    clerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
    foreignAdmin = await signIn(app, await seedUser(knex(), other, 'admin'));
  });

  after(async () => {
    forgetDiscovery();
    await Promise.all([slapd?.stop(), op?.close()]);
  });

  it('shows both methods as not configured, reached from the Users page, to an admin', async () => {
    const page = await admin.agent.get('/admin/sso').expect(200);
    // Part of the users' area: Users is the current menu entry, and the Users page links here.
    assert.match(page.text, /href="\/admin\/users" aria-current="page"/);
    assert.match((await admin.agent.get('/admin/users').expect(200)).text, /<a href="\/admin\/sso" id="sso-settings-link">/);
    assert.equal((page.text.match(/Not configured/g) ?? []).length, 2);
    // The URLs to register: the appliance's own, shown, not typed in.
    const origin = page.request.url.replace(/\/admin\/sso$/, '');
    assert.match(page.text, new RegExp(`id="oidc-callback-url">${origin}/sso/directory-bank/oidc/callback<`));
    assert.match(page.text, new RegExp(`id="oidc-backchannel-url">${origin}/sso/directory-bank/oidc/backchannel-logout<`));
    assert.doesNotMatch(page.text, /name="oidc_redirect_uri"/);
  });

  it('a clerk gets 403 for the page and every form', async () => {
    await clerk.agent.get('/admin/sso').expect(403);
    const res = await post(clerk, '/admin/sso/ldap', ldapForm());
    assert.equal(res.status, 403);
    assert.equal(await provider(org.id, 'ldap'), undefined);
    const menu = await clerk.agent.get('/dashboard').expect(200);
    assert.doesNotMatch(menu.text, /href="\/admin\/sso"/);
  });

  it('saves the LDAP settings: the password sealed, shown only as set, in no page and no audit event; the mapping saved', async () => {
    const res = await post(admin, '/admin/sso/ldap', ldapForm());
    assert.equal(res.status, 303, res.text);
    const row = (await provider(org.id, 'ldap'))!;
    assert.equal(row.enabled, true);
    assert.equal(row.label, 'Example Directory');
    assert.equal(row.check_minutes, 30);
    assert.equal(row.settings.url, slapd.url);
    assert.equal(row.settings.bindPassword, undefined);
    assert.doesNotMatch(JSON.stringify(row.settings), new RegExp(slapd.servicePassword));
    assert.match(row.secret_sealed!, /^v1\./);
    assert.doesNotMatch(row.secret_sealed!, new RegExp(slapd.servicePassword));
    assert.equal(ssoSealer(TEST_SECRET).open(row.secret_sealed!, row.id), slapd.servicePassword);
    const mappings = await knex()('sso_role_mappings').where({ provider_id: row.id }).orderBy('role');
    assert.deepEqual(mappings.map((m) => [m.role, m.directory_group]), [['admin', groupDn('vclerk-admins')], ['clerk', groupDn('vclerk-clerks')]]);

    const page = await admin.agent.get('/admin/sso').expect(200);
    assert.ok(!page.text.includes(slapd.servicePassword), 'the password is not in the page');
    assert.match(page.text, /id="ldap-secret-state">Secret: set</);
    assert.match(page.text, /value="Example Directory"/);
    const audit = await auditText(org.id);
    assert.ok(!audit.includes(slapd.servicePassword), 'the password is in no audit event');
    const [changed] = await knex()('audit_events').where({ organisation_id: org.id, action: 'sso.settings_changed' });
    assert.equal(changed!.details.secret, 'changed');
    assert.equal(changed!.target_id, row.id);
  });

  it('a blank password keeps the stored one', async () => {
    const before = (await provider(org.id, 'ldap'))!;
    const res = await post(admin, '/admin/sso/ldap', ldapForm({ ldap_bind_password: '', ldap_label: 'Renamed Directory' }));
    assert.equal(res.status, 303, res.text);
    const after = (await provider(org.id, 'ldap'))!;
    assert.equal(after.label, 'Renamed Directory');
    assert.equal(after.secret_sealed, before.secret_sealed);
    const last = await knex()('audit_events').where({ organisation_id: org.id, action: 'sso.settings_changed' }).orderBy('id', 'desc').first();
    assert.equal(last!.details.secret, 'kept');
  });

  it('refuses invalid settings with a message at each field, keeps the typed values, never the password, and changes nothing', async () => {
    const before = (await provider(org.id, 'ldap'))!;
    const mappingsBefore = await knex()('sso_role_mappings').where({ provider_id: before.id }).orderBy('id');
    const res = await post(admin, '/admin/sso/ldap', ldapForm({
      ldap_url: 'http://not-ldap.example', ldap_base_dn: 'no dn here', ldap_check_minutes: '99999', ldap_map_role_1: 'superuser', ldap_bind_password: 'Typed-Secret-xyz',
    }));
    assert.equal(res.status, 400);
    assert.match(res.text, /id="f-ldap_url"[^>]*aria-invalid="true"/);
    assert.match(res.text, /id="f-ldap_base_dn"[^>]*aria-invalid="true"/);
    assert.match(res.text, /id="f-ldap_check_minutes"[^>]*aria-invalid="true"/);
    assert.match(res.text, /id="f-ldap_map_role_1"[^>]*aria-invalid="true"/);
    assert.match(res.text, /Enter a DN such as/);
    assert.match(res.text, /Enter a whole number from 0 to 10080/);
    assert.match(res.text, /value="http:\/\/not-ldap.example"/, 'the typed value is kept');
    assert.match(res.text, /Not configured/, 'the page itself, with its lists');
    assert.ok(!res.text.includes('Typed-Secret-xyz'));
    const after = (await provider(org.id, 'ldap'))!;
    assert.deepEqual(after, before);
    assert.deepEqual(await knex()('sso_role_mappings').where({ provider_id: before.id }).orderBy('id'), mappingsBefore);
  });

  it('a new provider without a password is refused at the password field', async () => {
    const res = await post(foreignAdmin, '/admin/sso/ldap', ldapForm({ ldap_bind_password: '' }));
    assert.equal(res.status, 400);
    assert.match(res.text, /id="f-ldap_bind_password"[^>]*aria-invalid="true"/);
    assert.equal(await provider(other.id, 'ldap'), undefined);
  });

  it('saves the OpenID Connect settings: client secret sealed, algorithms and scopes converted, claim mapping saved', async () => {
    const res = await post(admin, '/admin/sso/oidc', {
      oidc_enabled: 'on',
      oidc_label: 'Company Login',
      oidc_issuer: op.issuer,
      oidc_client_id: op.clientId,
      oidc_client_secret: CLIENT_SECRET,
      oidc_redirect_uri: 'https://attacker.example/steal', // not a field: ignored
      oidc_scopes: 'openid email profile',
      oidc_groups_claim: 'groups',
      oidc_email_claim: 'email',
      oidc_name_claim: 'name',
      oidc_allowed_algs: ['RS256', 'ES256'],
      oidc_clock_skew_seconds: '30',
      oidc_map_group_0: 'vclerk-compliance',
      oidc_map_role_0: 'compliance',
    });
    assert.equal(res.status, 303, res.text);
    const row = (await provider(org.id, 'oidc'))!;
    assert.deepEqual([row.settings.issuer, row.settings.scopes, row.settings.allowedAlgs, row.settings.clockSkewSeconds], [op.issuer, ['openid', 'email', 'profile'], ['RS256', 'ES256'], 30]);
    assert.equal(row.settings.clientSecret, undefined);
    assert.match(String(row.settings.redirectUri), /^http:\/\/127\.0\.0\.1:\d+\/sso\/directory-bank\/oidc\/callback$/, 'the appliance\'s own callback is kept');
    assert.equal(ssoSealer(TEST_SECRET).open(row.secret_sealed!, row.id), CLIENT_SECRET);
    const mappings = await knex()('sso_role_mappings').where({ provider_id: row.id });
    assert.deepEqual(mappings.map((m) => [m.directory_group, m.role]), [['vclerk-compliance', 'compliance']]);
    const page = await admin.agent.get('/admin/sso').expect(200);
    assert.ok(!page.text.includes(CLIENT_SECRET));
    assert.match(page.text, /id="oidc-secret-state">Secret: set</);
    assert.ok(!(await auditText(org.id)).includes(CLIENT_SECRET));
  });

  it('another organisation neither sees nor changes them', async () => {
    const page = await foreignAdmin.agent.get('/admin/sso').expect(200);
    assert.ok(!page.text.includes('Renamed Directory') && !page.text.includes('Company Login'));
    assert.equal((page.text.match(/Not configured/g) ?? []).length, 2);
    const ours = (await provider(org.id, 'ldap'))!;
    const res = await post(foreignAdmin, '/admin/sso/ldap', ldapForm({ ldap_label: 'Foreign Directory' }));
    assert.equal(res.status, 303);
    assert.deepEqual(await provider(org.id, 'ldap'), ours);
    assert.equal((await provider(other.id, 'ldap'))!.label, 'Foreign Directory');
    const test = await post(foreignAdmin, '/admin/sso/oidc/test', {});
    assert.equal(test.status, 400, 'their own OIDC is not configured');
    assert.match(test.text, /Save the settings first/);
  });

  it('Test against a real slapd shows the steps, the DN, the groups and the mapped role, never the password; audited', async () => {
    const res = await post(admin, '/admin/sso/ldap/test', { ldap_test_user: 'alice' });
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, /The test passed/);
    assert.ok(res.text.includes(personDn('alice')), 'the DN');
    assert.match(res.text, /id="test-groups"/);
    assert.ok(res.text.includes(groupDn('vclerk-admins')) && res.text.includes(groupDn('vclerk-clerks')));
    assert.match(res.text, /id="test-role">Administrator/);
    assert.ok(!res.text.includes(slapd.servicePassword));
    const carol = await post(admin, '/admin/sso/ldap/test', { ldap_test_user: 'carol' });
    assert.match(carol.text, /id="test-role">None: this person would be refused/);
    const tested = await knex()('audit_events').where({ organisation_id: org.id, action: 'sso.tested' }).orderBy('id');
    assert.equal(tested.length, 2);
    assert.equal(tested[0]!.details.role, 'admin');
    assert.equal(tested[0]!.details.dn, personDn('alice'));
    assert.ok(!(await auditText(org.id)).includes(slapd.servicePassword));
  });

  it('Test of OpenID Connect shows what discovery found, the secret only as set, and the role for claim values typed', async () => {
    const res = await post(admin, '/admin/sso/oidc/test', { oidc_test_values: 'someone-else\nVCLERK-Compliance' });
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, /The test passed/);
    assert.ok(res.text.includes(op.issuer));
    assert.match(res.text, /RS256/);
    assert.match(res.text, /id="test-role">Compliance \(vclerk-compliance\)/, 'the role the mapping gives for the values typed');
    assert.ok(!res.text.includes(CLIENT_SECRET));
    const tested = await knex()('audit_events').where({ organisation_id: org.id, action: 'sso.tested' }).orderBy('id', 'desc').first();
    assert.deepEqual([tested!.details.provider, tested!.details.ok, tested!.details.role], ['oidc', true, 'compliance']);
  });

  it('the OIDC client secret can be removed (a public client), and only on purpose', async () => {
    const row = (await provider(org.id, 'oidc'))!;
    const form = {
      oidc_enabled: 'on', oidc_label: 'Company Login', oidc_issuer: op.issuer, oidc_client_id: op.clientId, oidc_redirect_uri: op.redirectUri,
      oidc_allowed_algs: 'RS256', oidc_map_group_0: 'vclerk-compliance', oidc_map_role_0: 'compliance',
    };
    assert.equal((await post(admin, '/admin/sso/oidc', form)).status, 303);
    assert.equal((await provider(org.id, 'oidc'))!.secret_sealed, row.secret_sealed, 'a blank field keeps it');
    assert.equal((await post(admin, '/admin/sso/oidc', { ...form, oidc_remove_secret: 'on' })).status, 303);
    assert.equal((await provider(org.id, 'oidc'))!.secret_sealed, null);
    const last = await knex()('audit_events').where({ organisation_id: org.id, action: 'sso.settings_changed' }).orderBy('id', 'desc').first();
    assert.equal(last!.details.secret, 'removed');
    const page = await admin.agent.get('/admin/sso').expect(200);
    assert.match(page.text, /id="oidc-secret-state">Secret: not set</);
  });

  it('password sign-in cannot be turned off without an active break-glass administrator; with one it can, audited', async () => {
    const refused = await post(admin, '/admin/sso/password', {});
    assert.equal(refused.status, 400);
    assert.match(refused.text, /Name at least one active administrator as break-glass/);
    assert.equal((await knex()('organisations').where({ id: org.id }).first())!.password_sign_in, true);

    const ok = await post(admin, '/admin/sso/password', { break_glass: adminUser.id });
    assert.equal(ok.status, 303, ok.text);
    assert.equal((await knex()('organisations').where({ id: org.id }).first())!.password_sign_in, false);
    assert.equal((await knex()('users').where({ id: adminUser.id }).first())!.break_glass, true);
    const actions = (await knex()('audit_events').where({ organisation_id: org.id }).whereIn('action', ['organisation.password_sign_in_changed', 'user.break_glass_changed'])).map((e) => e.action).sort();
    assert.deepEqual(actions, ['organisation.password_sign_in_changed', 'user.break_glass_changed']);

    // The last break-glass administrator cannot be taken away while passwords are off.
    const last = await post(admin, '/admin/sso/password', {});
    assert.equal(last.status, 400);
    assert.equal((await knex()('users').where({ id: adminUser.id }).first())!.break_glass, true);
    // Another organisation's user cannot be named.
    const foreign = await post(admin, '/admin/sso/password', { password_sign_in: 'on', break_glass: [adminUser.id, (await knex()('users').where({ organisation_id: other.id }).first())!.id] });
    assert.equal(foreign.status, 400);
    const back = await post(admin, '/admin/sso/password', { password_sign_in: 'on', break_glass: adminUser.id });
    assert.equal(back.status, 303);
    assert.equal((await knex()('organisations').where({ id: org.id }).first())!.password_sign_in, true);
  });
});
