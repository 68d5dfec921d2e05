import assert from 'node:assert/strict';
import type { Express } from 'express';
import request from 'supertest';
import { csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/**
 * A refused form shows the same page as its GET, with the error beside the
 * field (issue 15: one form helper).
 */
describe('forms', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let app: Express;
  let org: SeededOrganisation;

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(knex(), 'Form Bank');
  });

  describe('every form on /admin/organisation shows its field errors beside the fields', () => {
    let admin: Browser;
    before(async () => {
      admin = await signIn(app, await seedUser(knex(), org, 'admin'));
    });

    const cases: [string, string, Record<string, string>, string, RegExp][] = [
      ['widget origins', '/admin/organisation/widget', { widget_origins: 'not an origin' }, 'widget_origins', /Each line must be an origin/],
      ['queue settings', '/admin/organisation/queue', { timezone: 'Mars/Olympus' }, 'timezone', /Please choose a valid time zone/],
      ['opening hours', '/admin/organisation/queue', { timezone: 'Europe/Berlin', mon_from: '09:00', mon_to: '08:00' }, 'mon_from', /Give both times as HH:MM, the start before the end/],
      ['privacy contact', '/admin/organisation/privacy', { privacy_contact: 'x'.repeat(301) }, 'privacy_contact', /This is too long\./],
      ['recording policy', '/admin/organisation/recording', { mode: 'sometimes' }, 'mode', /This value is not valid\./],
    ];
    for (const [name, path, body, field, message] of cases) {
      it(`${name}: 400, the organisation page with the message at the field`, async () => {
        const before = await knex()('organisations').where({ id: org.id }).first('settings');
        const res = await admin.agent.post(path).type('form').send({ _csrf: admin.csrf, ...body }).expect(400);
        assert.match(res.text, /id="profile-heading"/, 'the organisation page, not the error page');
        assert.match(res.text, message);
        assert.match(res.text, new RegExp(`id="f-${field}(-[a-z_]+)?-error"`), 'the message sits beside its field');
        assert.doesNotMatch(res.text, /class="error-page"/);
        assert.deepEqual(await knex()('organisations').where({ id: org.id }).first('settings'), before, 'nothing changed');
      });
    }

    it('keeps what was typed in the failed form', async () => {
      const res = await admin.agent.post('/admin/organisation/widget').type('form').send({ _csrf: admin.csrf, widget_origins: 'https://ok.example.org\nnot an origin' }).expect(400);
      assert.match(res.text, /https:\/\/ok.example.org\nnot an origin<\/textarea>/);
    });
  });

  describe('a failed "start a call" form shows the real dashboard', () => {
    it('the queue and the past calls are the ones GET /dashboard shows', async () => {
      const clerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
      // A past call of the clerk's.
      const started = await clerk.agent.post('/calls').type('form').send({ _csrf: clerk.csrf, reference: 'PAST-0042' }).expect(303);
      const callId = /^\/calls\/([0-9a-f-]{36})#/.exec(started.headers.location ?? '')![1]!;
      await clerk.agent.post(`/calls/${callId}/end`).type('form').send({ _csrf: clerk.csrf }).expect(303);
      // A customer waiting in the queue.
      await clerk.agent.post('/availability').type('form').send({ _csrf: clerk.csrf, availability: 'available' }).expect(303);
      const customer = request.agent(app);
      const landing = await customer.get(`/q/${org.slug}`).expect(200);
      await customer.post(`/q/${org.slug}`).type('form').send({ _csrf: csrfFrom(landing.text) }).expect(303);
      const live = await clerk.agent.get('/queue.json').expect(200);
      const label = live.body.entries[0].label as string;
      assert.match(label, /^Customer /);

      const res = await clerk.agent.post('/calls').type('form').send({ _csrf: clerk.csrf, reference: 'anna@example.org' }).expect(400);
      assert.match(res.text, /id="f-reference"[^>]*aria-invalid="true"/);
      assert.match(res.text, /Use letters, digits and/);
      assert.match(res.text, /value="anna@example.org"/);
      assert.ok(res.text.includes(label), 'the waiting customer is listed');
      assert.match(res.text, /1 customer waiting/);
      assert.match(res.text, /PAST-0042/, 'the past call is listed');
      assert.match(res.text, /<option value="available" selected>/, 'the clerk\'s own availability');
    });
  });

  describe('pages with repeated forms show the error at the form that was sent', () => {
    let compliance: Browser;
    before(async () => {
      compliance = await signIn(app, await seedUser(knex(), org, 'compliance'));
    });

    it('lifting a hold without a reason: the message at that hold\'s lift form, the others untouched', async () => {
      const place = (reason: string) => compliance.agent.post('/compliance/holds').type('form').send({ _csrf: compliance.csrf, scope: 'organisation', reason }).expect(303);
      await place('Litigation A');
      const hold = await knex()('legal_holds').where({ organisation_id: org.id }).whereNull('lifted_at').first('id');
      const res = await compliance.agent.post(`/compliance/holds/${hold!.id}/lift`).type('form').send({ _csrf: compliance.csrf, lift_reason: '' }).expect(400);
      assert.match(res.text, new RegExp(`id="f-lift-${hold!.id}"[^>]*aria-invalid="true"`));
      assert.match(res.text, new RegExp(`id="f-lift-${hold!.id}-error" class="field-error">Please give a reason\\.`));
      assert.doesNotMatch(res.text, /id="f-reason"[^>]*aria-invalid/, 'the place form shows no error');
      assert.match(res.text, /Litigation A/, 'the active holds are listed');
      const placed = await compliance.agent.post('/compliance/holds').type('form').send({ _csrf: compliance.csrf, scope: 'call', target: 'not-an-id', reason: 'Case B' }).expect(400);
      assert.match(placed.text, /id="f-target"[^>]*aria-invalid="true"/);
      assert.match(placed.text, /value="not-an-id"/);
      assert.doesNotMatch(placed.text, /id="f-lift-[^"]*"[^>]*aria-invalid/, 'no lift form shows an error');
      // A code with its own words for one field (forms.errors.by_field).
      const scope = await compliance.agent.post('/compliance/holds').type('form').send({ _csrf: compliance.csrf, scope: 'everything', reason: 'Case C' }).expect(400);
      assert.match(scope.text, /id="f-scope-error" class="field-error">Please choose what to hold\./);
      await compliance.agent.post(`/compliance/holds/${hold!.id}/lift`).type('form').send({ _csrf: compliance.csrf, lift_reason: 'Settled' }).expect(303);
    });

    it('a privacy text too long: the message at that text and language only, as typed', async () => {
      const text = 'y'.repeat(10_001);
      const res = await compliance.agent.post('/compliance/privacy').type('form').send({ _csrf: compliance.csrf, kind: 'privacy_notice', language: 'de', text }).expect(400);
      assert.match(res.text, /id="f-privacy_notice-de-error" class="field-error">This is too long\./);
      assert.equal(res.text.match(/class="field-error"/g)?.length, 1);
      assert.ok(res.text.includes(`>${text}</textarea>`));
      // A tampered hidden field has no place for a message: the plain 400 page.
      const tampered = await compliance.agent.post('/compliance/privacy').type('form').send({ _csrf: compliance.csrf, kind: 'poem', language: 'de', text: 'x' }).expect(400);
      assert.match(tampered.text, /class="error-page"/);
    });

    it('a request\'s status note too long: the request page again, with the message at the note', async () => {
      const clerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
      await clerk.agent.post('/calls').type('form').send({ _csrf: clerk.csrf, reference: 'REQ-0007' }).expect(303);
      const registered = await compliance.agent.post('/compliance/requests').type('form').send({ _csrf: compliance.csrf, kind: 'access', identified_by: 'reference', reference: 'REQ-0007' }).expect(303);
      const path = registered.headers.location!;
      const res = await compliance.agent.post(`${path}/status`).type('form').send({ _csrf: compliance.csrf, status: 'in_progress', note: 'n'.repeat(2001) }).expect(400);
      assert.match(res.text, /id="f-note"[^>]*aria-invalid="true"/);
      assert.match(res.text, /This is too long\./);
      assert.match(res.text, /REQ-0007/, 'the request\'s own page');
      assert.equal((await knex()('subject_requests').where({ id: path.split('/').pop() }).first('status'))!.status, 'open');
    });
  });

  describe('passwords are never echoed', () => {
    it('a refused password change does not show the submitted passwords', async () => {
      const user = await seedUser(knex(), org, 'clerk');
      const browser = await signIn(app, user);
      const typed = 'Secret-Typed-Passphrase-1';
      const res = await browser.agent.post('/account/password').type('form')
        .send({ _csrf: browser.csrf, current_password: typed, password: `${typed}x`, password_confirm: `${typed}y` }).expect(400);
      assert.match(res.text, /aria-invalid="true"/);
      assert.ok(!res.text.includes(typed), 'no submitted password in the page');
    });

    it('a refused invitation password does not show the submitted password', async () => {
      const admin = await signIn(app, await seedUser(knex(), org, 'admin'));
      const invited = await admin.agent.post('/admin/users').type('form').send({ _csrf: admin.csrf, name: 'New Clerk', email: 'new-clerk@example.org', role: 'clerk' }).expect(201);
      const link = /\/invite\/([A-Za-z0-9_-]+)/.exec(invited.text)![0];
      const visitor = request.agent(app);
      const page = await visitor.get(link).expect(200);
      const typed = 'Typed-But-Differs-12345';
      const res = await visitor.post(link).type('form').send({ _csrf: csrfFrom(page.text), password: typed, password_confirm: `${typed}!` }).expect(400);
      assert.match(res.text, /The two passwords differ/);
      assert.ok(!res.text.includes(typed), 'no submitted password in the page');
    });
  });
});
