import assert from 'node:assert/strict';
import request from 'supertest';
import { csrfFrom, seedOrganisation, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { BASE_DN, PEOPLE, SERVICE_DN, groupDn, startSlapd, type Slapd } from './support/slapd';
import { seedSsoProvider } from './support/sso';

/**
 * LDAP single sign-on through the routes (GET and POST /sso/:slug/ldap)
 * against a real OpenLDAP (test/support/slapd.ts), plain and StartTLS: the
 * first sign-in creates the staff user with the mapped role and starts a
 * session; a wrong password is refused and audited; a person removed from
 * the mapped group is refused at the next sign-in and their session ends.
 */
describe('SSO: LDAP sign-in through the routes', function () {
  this.timeout(60000);
  const db = useTestDatabase();
  let slapd: Slapd;
  let org: SeededOrganisation;

  before(async function () {
    this.timeout(60000);
    slapd = await startSlapd();
    org = await seedOrganisation(db.current.knex, 'Directory Bank');
    await seedSsoProvider(db.current.knex, org.id, 'ldap', {
      settings: { url: slapd.url, bindDn: SERVICE_DN, baseDn: BASE_DN, timeoutMs: 3000 },
      secret: slapd.servicePassword,
      mappings: [
        { directory_group: groupDn('vclerk-admins'), role: 'admin' },
        { directory_group: groupDn('vclerk-clerks'), role: 'clerk' },
        { directory_group: groupDn('vclerk-compliance'), role: 'compliance' },
      ],
    });
  });

  after(async () => {
    await slapd?.stop();
  });

  const knex = () => db.current.knex;
  const audit = (action: string) => knex()('audit_events').where({ action, organisation_id: org.id }).orderBy('id');

  async function ldapSignIn(app: ReturnType<typeof buildApp>, username: string, password: string) {
    const agent = request.agent(app);
    const chooser = await agent.get(`/sso/${org.slug}`).expect(200);
    assert.match(chooser.text, new RegExp(`href="/sso/${org.slug}/ldap"`));
    const page = await agent.get(`/sso/${org.slug}/ldap`).expect(200);
    const res = await agent.post(`/sso/${org.slug}/ldap`).type('form').send({ _csrf: csrfFrom(page.text), username, password });
    return { agent, res };
  }

  it('creates the user with the mapped role at the first sign-in and starts a session', async () => {
    const app = buildApp(db.current);
    const { agent, res } = await ldapSignIn(app, 'bob', PEOPLE.bob!.password);
    assert.equal(res.status, 303, res.text);
    assert.equal(res.headers.location, '/dashboard');
    const user = await knex()('users').where({ email: 'bob@example.org' }).first();
    assert.ok(user, 'the user was created');
    assert.equal(user.role, 'clerk');
    assert.equal(user.organisation_id, org.id);
    assert.equal(user.password_hash, null, 'no password is kept');
    await agent.get('/dashboard').expect(200);
    const [event] = await audit('auth.login_succeeded').where({ actor_id: user.id });
    assert.equal(event?.details?.method, 'ldap');
    assert.match(String(event?.ip), /127\.0\.0\.1/);
    assert.equal((await audit('sso.user_provisioned').where({ target_id: user.id })).length, 1);
    // The most privileged mapped group wins: alice is in the admins and the clerks.
    const alice = await ldapSignIn(app, 'alice', PEOPLE.alice!.password);
    assert.equal(alice.res.status, 303);
    assert.equal((await knex()('users').where({ email: 'alice@example.org' }).first())?.role, 'admin');
  });

  it('signs in over StartTLS with the organisation\'s CA', async () => {
    const other = await seedOrganisation(knex(), 'Tls Bank');
    await seedSsoProvider(knex(), other.id, 'ldap', {
      settings: { url: slapd.url, startTls: true, caPem: slapd.caPem, bindDn: SERVICE_DN, baseDn: BASE_DN, timeoutMs: 3000 },
      secret: slapd.servicePassword,
      mappings: [{ directory_group: groupDn('vclerk-compliance'), role: 'compliance' }],
    });
    const agent = request.agent(buildApp(db.current));
    const page = await agent.get(`/sso/${other.slug}/ldap`).expect(200);
    await agent.post(`/sso/${other.slug}/ldap`).type('form').send({ _csrf: csrfFrom(page.text), username: 'jdoe', password: PEOPLE.jdoe!.password }).expect(303);
    assert.equal((await knex()('users').where({ email: 'jdoe@example.org' }).first())?.role, 'compliance');
  });

  it('refuses a wrong password with a clear message, audited, and starts no session', async () => {
    const app = buildApp(db.current);
    const { agent, res } = await ldapSignIn(app, 'bob', 'not-the-password');
    assert.equal(res.status, 401);
    assert.match(res.text, /The user name or password is not correct/);
    assert.match(res.text, /value="bob"/, 'the name typed is kept');
    assert.doesNotMatch(res.text, /not-the-password/);
    const refusals = await audit('sso.login_refused');
    assert.ok(refusals.some((e) => e.details?.reason === 'invalid_credentials' && e.details?.provider === 'ldap' && /127\.0\.0\.1/.test(String(e.ip))), JSON.stringify(refusals));
    await agent.get('/dashboard').expect((r) => assert.notEqual(r.status, 200));
    // An injection attempt in the name finds nobody.
    const injected = await ldapSignIn(app, '*)(uid=*', 'x');
    assert.equal(injected.res.status, 401);
    // In German as well.
    const german = request.agent(app);
    const page = await german.get(`/sso/${org.slug}/ldap`).set('Accept-Language', 'de').expect(200);
    const de = await german.post(`/sso/${org.slug}/ldap`).set('Accept-Language', 'de').type('form').send({ _csrf: csrfFrom(page.text), username: 'bob', password: 'wrong' });
    assert.match(de.text, /Benutzername oder Passwort ist nicht korrekt/);
  });

  it('refuses a person removed from the mapped group at the next sign-in and ends their session', async () => {
    const app = buildApp(db.current);
    const first = await ldapSignIn(app, 'bob', PEOPLE.bob!.password);
    assert.equal(first.res.status, 303);
    await first.agent.get('/dashboard').expect(200);
    await slapd.removeFromGroup('vclerk-clerks', 'bob');
    try {
      const second = await ldapSignIn(app, 'bob', PEOPLE.bob!.password);
      assert.equal(second.res.status, 403);
      assert.match(second.res.text, /in no group that may use VClerk/);
      const user = (await knex()('users').where({ email: 'bob@example.org' }).first())!;
      assert.ok((await audit('sso.deprovisioned').where({ target_id: user.id })).length >= 1);
      assert.ok((await audit('sso.login_refused').where({ target_id: user.id })).some((e) => e.details?.reason === 'no_mapped_group'));
      const after = await first.agent.get('/dashboard');
      assert.notEqual(after.status, 200, 'the earlier session ended');
      assert.equal(Number((await knex()('sessions').where({ user_id: user.id }).count({ n: '*' }))[0]!.n), 0);
    } finally {
      await slapd.addToGroup('vclerk-clerks', 'bob');
    }
  });

  it('locks the name after repeated wrong passwords like /login: 429, audited, the right password refused while locked', async () => {
    const app = buildApp(db.current);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await ldapSignIn(app, 'carol', `wrong-${i}`)).res.status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 429]);
    const locked = await ldapSignIn(app, 'carol', PEOPLE.carol!.password);
    assert.equal(locked.res.status, 429);
    assert.match(locked.res.text, /Too many failed attempts/);
    assert.ok((await audit('auth.lockout')).some((e) => e.details?.scope === 'account' && e.details?.provider === 'ldap'));
    assert.ok((await audit('sso.login_refused')).some((e) => e.details?.reason === 'locked'));
  });

  it('answers 404 for an organisation without LDAP or an unknown one; the sign-in page leads to the organisation\'s page', async () => {
    const other = await seedOrganisation(knex(), 'Plain Bank');
    const app = buildApp(db.current);
    await request(app).get(`/sso/${other.slug}/ldap`).expect(404);
    await request(app).get('/sso/no-such-organisation').expect(404);
    const page = await request(app).get(`/sso/${other.slug}`).expect(200);
    assert.match(page.text, /has not set up single sign-on/);
    // The sign-in page links to the organisation finder, which leads to the organisation's page.
    assert.match((await request(app).get('/login').expect(200)).text, /href="\/sso"/);
    assert.match((await request(app).get('/sso').expect(200)).text, /name="organisation"/);
    await request(app).get(`/sso?organisation=${org.slug.toUpperCase()}`).expect(303).expect('Location', `/sso/${org.slug}`);
    await request(app).get('/sso?organisation=a%2Fb').expect(400);
  });
});
