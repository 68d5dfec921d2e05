import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { ConfigError, loadConfig, redactConfig } from '../config';
import { csrfFrom, seedOrganisation, seedUser, signIn, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { BASE_DN, PEOPLE, SERVICE_DN, groupDn, startSlapd, type Slapd } from './support/slapd';
import { seedSsoProvider } from './support/sso';

/**
 * Single sign-on secrets through the appliance's configuration
 * (VCLERK_SSO_SECRETS or its `_FILE` form, e.g. a Docker secret) instead of
 * the admin page: validated at start without echoing a value, used for
 * sign-in and the Test, never stored, and the page says where it comes from.
 */
describe('SSO: secrets from the configuration (VCLERK_SSO_SECRETS_FILE)', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let slapd: Slapd;
  let org: SeededOrganisation;
  let dir: string;
  let env: Record<string, string>;

  before(async function () {
    this.timeout(60_000);
    slapd = await startSlapd();
    org = await seedOrganisation(knex(), 'Configured Bank');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-sso-secrets-'));
    fs.writeFileSync(path.join(dir, 'sso_secrets'), `${JSON.stringify({ [org.slug]: { ldap: slapd.servicePassword } })}\n`, { mode: 0o600 });
    env = { VCLERK_SSO_SECRETS_FILE: path.join(dir, 'sso_secrets') };
  });

  after(async () => {
    await slapd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('parses the file, keeps the value out of the redacted config, and refuses a malformed one without echoing it', () => {
    const config = loadConfig(env);
    assert.deepEqual(config.ssoSecrets, { [org.slug]: { ldap: slapd.servicePassword } });
    assert.equal(redactConfig(config).ssoSecrets, '[redacted]');
    for (const bad of ['{"Not A Slug": {"ldap": "hunter2-secret"}}', '{"bank": {"ldap": ""}}', '{"bank": {"saml": "hunter2-secret"}}', 'hunter2-secret', '["hunter2-secret"]']) {
      let thrown: unknown;
      try {
        loadConfig({ VCLERK_SSO_SECRETS: bad });
      } catch (err) {
        thrown = err;
      }
      assert.ok(thrown instanceof ConfigError, bad);
      assert.match(thrown.message, /VCLERK_SSO_SECRETS/);
      assert.doesNotMatch(thrown.message, /hunter2/, 'no value echoed');
    }
  });

  it('signs in with the configured service account password; the admin page asks for none and stores none', async () => {
    const provider = await seedSsoProvider(knex(), org.id, 'ldap', {
      settings: { url: slapd.url, bindDn: SERVICE_DN, baseDn: BASE_DN, timeoutMs: 3000 },
      mappings: [{ directory_group: groupDn('vclerk-clerks'), role: 'clerk' }],
    });
    assert.equal(provider.secret_sealed, null);
    const app = buildApp(db.current, { env });
    const agent = request.agent(app);
    const page = await agent.get(`/sso/${org.slug}/ldap`).expect(200);
    const res = await agent.post(`/sso/${org.slug}/ldap`).type('form').send({ _csrf: csrfFrom(page.text), username: 'bob', password: PEOPLE.bob!.password });
    assert.equal(res.status, 303, res.text);

    // Without the configuration the same provider has no password: the directory refuses the service bind.
    const bare = request.agent(buildApp(db.current));
    const form = await bare.get(`/sso/${org.slug}/ldap`).expect(200);
    assert.equal((await bare.post(`/sso/${org.slug}/ldap`).type('form').send({ _csrf: csrfFrom(form.text), username: 'bob', password: PEOPLE.bob!.password })).status, 503);

    const admin = await signIn(app, await seedUser(knex(), org, 'admin'));
    const settings = await admin.agent.get('/admin/sso').expect(200);
    assert.match(settings.text, /id="ldap-secret-state">Secret: set by the appliance&#39;s configuration \(VCLERK_SSO_SECRETS\)</);
    assert.doesNotMatch(settings.text, /name="ldap_bind_password"/);
    assert.ok(!settings.text.includes(slapd.servicePassword));
    // The Test binds with it and finds the person.
    const test = await admin.agent.post('/admin/sso/ldap/test').type('form').send({ _csrf: csrfFrom(settings.text), ldap_test_user: 'bob' });
    assert.equal(test.status, 200, test.text);
    assert.match(test.text, /uid=bob/);
    assert.ok(!test.text.includes(slapd.servicePassword));
    // A password posted anyway is not stored: the configuration gives it.
    const saved = await admin.agent.post('/admin/sso/ldap').type('form').send({
      _csrf: csrfFrom(settings.text), ldap_enabled: 'on', ldap_label: 'Directory', ldap_url: slapd.url, ldap_bind_dn: SERVICE_DN, ldap_base_dn: BASE_DN,
      ldap_bind_password: 'typed-anyway', ldap_check_minutes: '30', ldap_map_group_0: groupDn('vclerk-clerks'), ldap_map_role_0: 'clerk',
    });
    assert.equal(saved.status, 303, saved.text);
    assert.equal((await knex()('sso_providers').where({ id: provider.id }).first())?.secret_sealed, null);
    const event = await knex()('audit_events').where({ organisation_id: org.id, action: 'sso.settings_changed' }).orderBy('id', 'desc').first();
    assert.equal(event?.details.secret, 'config');
  });
});
