import assert from 'node:assert/strict';
import { anonymous, PASSWORD, seedOrganisation, seedUser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/**
 * An organisation that signs in through its directory turns password
 * sign-in off: a right password is then refused (403, said so), a wrong
 * one as ever (401, nothing revealed), and only its break-glass
 * administrators still sign in with a password, audited as such.
 */
describe('single sign-on: password sign-in turned off', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let org: SeededOrganisation;
  before(async () => {
    org = await seedOrganisation(knex(), 'Directory Bank');
    await knex()('organisations').where({ id: org.id }).update({ password_sign_in: false });
  });

  async function signInWith(email: string, password: string, status: number) {
    const { agent, csrf } = await anonymous(buildApp(db.current));
    return agent.post('/login').type('form').send({ _csrf: csrf, email, password }).expect(status);
  }

  it('refuses a right password with a pointer to single sign-on, and audits the refusal', async () => {
    const clerk = await seedUser(knex(), org, 'clerk');
    const res = await signInWith(clerk.email, PASSWORD, 403);
    assert.match(res.text, /signs in with single sign-on/);
    assert.doesNotMatch(String(res.headers['set-cookie'] ?? ''), /vclerk_sid=/, 'no session');
    const refusal = await knex()('audit_events').where({ action: 'auth.login_failed', target_id: clerk.id }).orderBy('id', 'desc').first();
    assert.equal((refusal!.details as { reason: string }).reason, 'password_sign_in_off');
    assert.equal(await knex()('audit_events').where({ action: 'auth.login_succeeded', actor_id: clerk.id }).first(), undefined);
  });

  it('answers a wrong password as before (nothing about the organisation revealed)', async () => {
    const clerk = await seedUser(knex(), org, 'clerk');
    const res = await signInWith(clerk.email, 'not the password at all', 401);
    assert.doesNotMatch(res.text, /single sign-on/);
  });

  it('lets a break-glass administrator in with the password, audited as break-glass use', async () => {
    const admin = await seedUser(knex(), org, 'admin');
    await knex()('users').where({ id: admin.id }).update({ break_glass: true });
    assert.equal((await signInWith(admin.email, PASSWORD, 303)).headers.location, '/dashboard');
    const used = await knex()('audit_events').where({ action: 'auth.break_glass_used', actor_id: admin.id }).first();
    assert.ok(used, 'break-glass use audited');
    assert.match(used!.ip!, /127\.0\.0\.1/);
    const login = await knex()('audit_events').where({ action: 'auth.login_succeeded', actor_id: admin.id }).first();
    assert.deepEqual(login!.details, { method: 'password' });
  });

  it('with password sign-in on, every user signs in with a password and no break-glass event is written', async () => {
    const other = await seedOrganisation(knex(), 'Password Bank');
    const clerk = await seedUser(knex(), other, 'clerk');
    await knex()('users').where({ id: clerk.id }).update({ break_glass: true });
    await signInWith(clerk.email, PASSWORD, 303);
    assert.equal(await knex()('audit_events').where({ action: 'auth.break_glass_used', actor_id: clerk.id }).first(), undefined);
  });

  it('a break-glass user who is no longer an administrator (the directory demoted them) is refused like everyone', async () => {
    const demoted = await seedUser(knex(), org, 'clerk');
    await knex()('users').where({ id: demoted.id }).update({ break_glass: true });
    const res = await signInWith(demoted.email, PASSWORD, 403);
    assert.match(res.text, /signs in with single sign-on/);
    assert.equal(await knex()('audit_events').where({ action: 'auth.break_glass_used', actor_id: demoted.id }).first(), undefined);
  });

  it('with password sign-in on, an account linked to the directory is refused a password (its access is the directory\'s), audited', async () => {
    const other = await seedOrganisation(knex(), 'Linked Bank');
    const [provider] = await knex()('sso_providers').insert({ organisation_id: other.id, kind: 'ldap', label: 'Directory', enabled: true, settings: '{}' }).returning('id');
    const linked = await seedUser(knex(), other, 'clerk');
    await knex()('users').where({ id: linked.id }).update({ sso_provider_id: provider!.id, sso_subject: 'subject-1' });
    const res = await signInWith(linked.email, PASSWORD, 403);
    assert.match(res.text, /signs in through your organisation&#39;s directory|signs in through your organisation's directory/);
    const refusal = await knex()('audit_events').where({ action: 'auth.login_failed', target_id: linked.id }).orderBy('id', 'desc').first();
    assert.equal((refusal!.details as { reason: string }).reason, 'directory_account');
    // A wrong password says nothing about the link.
    assert.doesNotMatch((await signInWith(linked.email, 'not the password at all', 401)).text, /This account signs in/);
    // A break-glass administrator linked to the directory keeps the password as the way in when the directory fails.
    const admin = await seedUser(knex(), other, 'admin');
    await knex()('users').where({ id: admin.id }).update({ sso_provider_id: provider!.id, sso_subject: 'subject-2', break_glass: true });
    await signInWith(admin.email, PASSWORD, 303);
  });
});
