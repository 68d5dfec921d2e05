import assert from 'node:assert/strict';
import request from 'supertest';
import { SetupService } from '../app/setup/service';
import { anonymous, csrfFrom, PASSWORD, seedOrganisation, seedUser, signIn, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

function linkIn(html: string): string {
  const link = /id="issued-link" type="text" value="([^"]+)"/.exec(html)?.[1];
  if (!link) throw new Error('no link on the page');
  return new URL(link).pathname;
}

describe('first run: setup link to first admin to invited clerk', () => {
  const db = useTestDatabase();

  it('walks a new appliance from the setup link to a clerk signing in', async () => {
    const app = buildApp(db.current);
    const issued = await new SetupService(db.current.knex).issueLink(24);
    assert.ok(issued);

    const form = await request.agent(app).get(`/setup/${issued.token}`).expect(200);
    assert.match(form.text, /Set up VClerk/);

    const agent = request.agent(app);
    const page = await agent.get(`/setup/${issued.token}`).expect(200);
    const fields = { organisation_name: 'Sparkasse Musterstadt', vat_number: 'DE123456789', name: 'Ada Admin', email: 'ada@sparkasse.example', password_confirm: '' };
    const weak = await agent.post(`/setup/${issued.token}`).type('form').send({ ...fields, _csrf: csrfFrom(page.text), password: 'password1234', password_confirm: 'password1234' }).expect(400);
    assert.match(weak.text, /too common/);
    assert.match(weak.text, /value="Sparkasse Musterstadt"/, 'the form keeps what was typed');
    assert.equal(await db.current.knex('organisations').count({ n: '*' }).then((r) => Number(r[0]!.n)), 0, 'nothing was created');

    const created = await agent.post(`/setup/${issued.token}`).type('form')
      .send({ ...fields, _csrf: csrfFrom(weak.text), password: 'a long and happy passphrase', password_confirm: 'a long and happy passphrase' })
      .expect(303).expect('Location', '/dashboard');
    assert.ok(created);
    const dashboard = await agent.get('/dashboard').expect(200);
    assert.match(dashboard.text, /Hello, Ada Admin/);
    assert.match(dashboard.text, /Your organisation is set up/);

    const organisation = await db.current.knex('organisations').first();
    assert.equal(organisation!.slug, 'sparkasse-musterstadt');
    assert.equal(organisation!.vat_number, 'DE123456789');
    assert.equal((await db.current.knex('audit_events').where({ action: 'setup.completed', organisation_id: organisation!.id })).length, 1);

    await request(app).get(`/setup/${issued.token}`).expect(404);
    assert.equal(await new SetupService(db.current.knex).issueLink(24), undefined, 'no new setup link once set up');

    const users = await agent.get('/admin/users').expect(200);
    const invited = await agent.post('/admin/users').type('form')
      .send({ _csrf: csrfFrom(users.text), name: 'Carl Clerk', email: 'Carl@Sparkasse.example', role: 'clerk' }).expect(201);
    const invitePath = linkIn(invited.text);
    assert.match(invitePath, /^\/invite\/[A-Za-z0-9_-]{43}$/);
    const [row] = await db.current.knex('one_time_tokens').where({ purpose: 'invite' });
    assert.notEqual(row!.token_hash, invitePath.split('/')[2], 'only the hash is stored');

    const carl = request.agent(app);
    const choose = await carl.get(invitePath).expect(200);
    assert.match(choose.text, /Hello Carl Clerk/);
    await carl.post(invitePath).type('form').send({ _csrf: csrfFrom(choose.text), password: 'carl chooses a passphrase', password_confirm: 'carl chooses a passphrase' })
      .expect(303).expect('Location', '/login');
    await request(app).get(invitePath).expect(404);

    const { agent: signedIn } = await signIn(app, { email: 'carl@sparkasse.example' }, 'carl chooses a passphrase');
    const carlDashboard = await signedIn.get('/dashboard').expect(200);
    assert.match(carlDashboard.text, /You serve customers/);
    const actions = (await db.current.knex('audit_events').where({ organisation_id: organisation!.id }).orderBy('seq')).map((e) => e.action);
    assert.deepEqual(actions, ['organisation.created', 'setup.completed', 'user.invited', 'user.activated', 'auth.login_succeeded']);
  });

  it('shows a clear page for a wrong or used link', async () => {
    const app = buildApp(db.current);
    for (const path of ['/setup/nonsense', `/invite/${'A'.repeat(43)}`, '/password-reset/%3Cscript%3E']) {
      const res = await request(app).get(path).expect(404);
      assert.match(res.text, /This link is not valid/);
    }
  });
});

describe('managing staff', () => {
  const db = useTestDatabase();
  let org: SeededOrganisation;
  let app: ReturnType<typeof buildApp>;
  before(async () => {
    org = await seedOrganisation(db.current.knex, 'Staff Bank');
    app = buildApp(db.current);
  });

  it('refuses an invitation with a bad or taken e-mail, showing why', async () => {
    const admin = await seedUser(db.current.knex, org, 'admin');
    const { agent, csrf } = await signIn(app, admin);
    const bad = await agent.post('/admin/users').type('form').send({ _csrf: csrf, name: '', email: 'not-an-email', role: 'clerk' }).expect(400);
    assert.match(bad.text, /Please fill in this field/);
    assert.match(bad.text, /valid e-mail address/);
    const taken = await agent.post('/admin/users').type('form').send({ _csrf: csrf, name: 'Dup', email: admin.email.toUpperCase(), role: 'clerk' }).expect(400);
    assert.match(taken.text, /already exists/);
    const json = await agent.post('/admin/users').set('Accept', 'application/json').type('form').send({ _csrf: csrf, name: 'X', email: 'x@example.org', role: 'root' });
    assert.equal(json.status, 400);
  });

  it('changes a role and keeps at least one admin', async () => {
    const admin = await seedUser(db.current.knex, org, 'admin');
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const { agent, csrf } = await signIn(app, admin);
    await agent.post(`/admin/users/${clerk.id}/role`).type('form').send({ _csrf: csrf, role: 'compliance' }).expect(303);
    assert.equal((await db.current.knex('users').where({ id: clerk.id }).first())!.role, 'compliance');
    const [event] = await db.current.knex('audit_events').where({ action: 'user.role_changed', target_id: clerk.id });
    assert.deepEqual(event!.details, { from: 'clerk', to: 'compliance' });

    const lonely = await seedOrganisation(db.current.knex, 'Lonely Org');
    const onlyAdmin = await seedUser(db.current.knex, lonely, 'admin');
    const solo = await signIn(app, onlyAdmin);
    const res = await solo.agent.post(`/admin/users/${onlyAdmin.id}/role`).set('Accept', 'application/json').type('form').send({ _csrf: solo.csrf, role: 'clerk' }).expect(409);
    assert.equal(res.body.error.code, 'last_admin');
    assert.equal((await db.current.knex('users').where({ id: onlyAdmin.id }).first())!.role, 'admin');
  });

  it('deactivating a user ends all their sessions at once; reactivation lets them back in', async () => {
    const admin = await seedUser(db.current.knex, org, 'admin');
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const one = await signIn(app, clerk);
    const two = await signIn(app, clerk);
    const { agent, csrf } = await signIn(app, admin);
    await agent.post(`/admin/users/${clerk.id}/deactivate`).type('form').send({ _csrf: csrf }).expect(303);
    await one.agent.get('/dashboard').expect(303).expect('Location', /\/login/);
    await two.agent.get('/dashboard').expect(303).expect('Location', /\/login/);
    assert.equal((await db.current.knex('sessions').where({ user_id: clerk.id })).length, 0);
    const again = await anonymous(app);
    await again.agent.post('/login').type('form').send({ _csrf: again.csrf, email: clerk.email, password: PASSWORD }).expect(401);
    await agent.post(`/admin/users/${clerk.id}/reactivate`).type('form').send({ _csrf: csrf }).expect(303);
    await signIn(app, clerk);
    const res = await agent.post(`/admin/users/${admin.id}/deactivate`).set('Accept', 'application/json').type('form').send({ _csrf: csrf }).expect(409);
    assert.equal(res.body.error.code, 'cannot_deactivate_self');
  });

  it('changing the own password ends the other sessions and keeps this one', async () => {
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const elsewhere = await signIn(app, clerk);
    const here = await signIn(app, clerk);
    const weak = await here.agent.post('/account/password').type('form')
      .send({ _csrf: here.csrf, current_password: PASSWORD, password: 'short', password_confirm: 'short' }).expect(400);
    assert.match(weak.text, /at least 12 characters/);
    const wrong = await here.agent.post('/account/password').type('form')
      .send({ _csrf: here.csrf, current_password: 'not my password', password: 'a brand new passphrase', password_confirm: 'a brand new passphrase' }).expect(400);
    assert.match(wrong.text, /current password is not correct/);
    await here.agent.post('/account/password').type('form')
      .send({ _csrf: here.csrf, current_password: PASSWORD, password: 'a brand new passphrase', password_confirm: 'a brand new passphrase' })
      .expect(303);
    const page = await here.agent.get('/account').expect(200);
    assert.match(page.text, /Your password is changed/);
    await elsewhere.agent.get('/dashboard').expect(303).expect('Location', /\/login/);
    const old = await anonymous(app);
    await old.agent.post('/login').type('form').send({ _csrf: old.csrf, email: clerk.email, password: PASSWORD }).expect(401);
    await signIn(app, clerk, 'a brand new passphrase');
    assert.equal((await db.current.knex('audit_events').where({ action: 'password.changed', target_id: clerk.id })).length, 1);
  });

  it('a password-reset link issued by an admin sets a new password and ends old sessions', async () => {
    const admin = await seedUser(db.current.knex, org, 'admin');
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const old = await signIn(app, clerk);
    const { agent, csrf } = await signIn(app, admin);
    const issued = await agent.post(`/admin/users/${clerk.id}/reset-password`).type('form').send({ _csrf: csrf }).expect(201);
    const path = linkIn(issued.text);
    assert.match(path, /^\/password-reset\//);
    const browser = request.agent(app);
    const form = await browser.get(path).expect(200);
    await browser.post(path).type('form').send({ _csrf: csrfFrom(form.text), password: 'reset to this passphrase', password_confirm: 'reset to this passphrase' }).expect(303);
    await old.agent.get('/dashboard').expect(303);
    await signIn(app, clerk, 'reset to this passphrase');
    const actions = (await db.current.knex('audit_events').where({ target_id: clerk.id }).orderBy('seq')).map((e) => e.action);
    assert.ok(actions.includes('password.reset_issued') && actions.includes('password.reset_completed'));
  });

  it('a user\'s saved language wins over the browser\'s', async () => {
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    const { agent, csrf } = await signIn(app, clerk);
    await agent.post('/account/language').type('form').send({ _csrf: csrf, language: 'de' }).expect(303);
    const page = await agent.get('/dashboard').set('Accept-Language', 'en').expect(200);
    assert.match(page.text, /<html lang="de">/);
    assert.match(page.text, /Hallo,/);
  });

  it('escapes what users type', async () => {
    const admin = await seedUser(db.current.knex, org, 'admin');
    await seedUser(db.current.knex, org, 'clerk', { name: '<script>alert(1)</script>' });
    const { agent } = await signIn(app, admin);
    const page = await agent.get('/admin/users').expect(200);
    assert.doesNotMatch(page.text, /<script>alert/);
    assert.match(page.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  });
});
