import assert from 'node:assert/strict';
import { aggregateInsights } from '../app/insights/aggregate';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { sha256 } from '../app/security/tokens';
import { purgeClosedOrganisations } from '../app/closure/purge';
import { CallService } from '../app/calls/service';
import { recordingDir } from '../app/recordings/storage';
import { anonymous, PASSWORD, seedOrganisation, seedUser, signIn, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

const DAY = 86_400_000;

describe('account closure and the purge 60 days later', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let dataDir: string;
  let app: Express;

  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-close-'));
    app = buildApp(db.current, { env: { VCLERK_DATA_DIR: dataDir } });
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  /** An organisation with an admin, a clerk, an open call (with link), an ended call with a recording file, an API key. */
  async function populated(name: string) {
    const knex = db.current.knex;
    const org = await seedOrganisation(knex, name);
    const admin = await seedUser(knex, org, 'admin');
    const clerk = await seedUser(knex, org, 'clerk');
    const token = crypto.randomBytes(32).toString('base64url');
    const [open] = await knex('calls').insert({ organisation_id: org.id, clerk_id: clerk.id, guest_token_hash: sha256(token), guest_token_expires_at: new Date(Date.now() + 3600_000) }).returning('id');
    const [ended] = await knex('calls').insert({ organisation_id: org.id, clerk_id: clerk.id, status: 'ended', ended_at: new Date(), guest_token_hash: crypto.randomBytes(32).toString('hex') }).returning('id');
    await knex('call_messages').insert({ organisation_id: org.id, call_id: ended!.id, sender: 'customer', body: 'hello' });
    const [recording] = await knex('recordings').insert({ organisation_id: org.id, call_id: ended!.id, status: 'ready', file_name: 'recording.mp4', size: 3 }).returning('id');
    const dir = recordingDir(dataDir, org.id, recording!.id);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'recording.mp4'), 'abc');
    await knex('api_keys').insert({ organisation_id: org.id, name: 'shop', prefix: `vck_${crypto.randomBytes(4).toString('hex')}`, key_hash: sha256(crypto.randomUUID()), scopes: ['calls:read'], origin: 'generated' });
    return { org, admin, clerk, token, openCallId: open!.id as string, endedCallId: ended!.id as string, recordingId: recording!.id as string, dir };
  }

  async function close(org: SeededOrganisation, admin: SeededUser) {
    const browser = await signIn(app, admin);
    const page = await browser.agent.get('/admin/organisation/close').expect(200);
    assert.match(page.text, new RegExp(org.name));
    await browser.agent.post('/admin/organisation/close').type('form').send({ _csrf: browser.csrf, confirm_name: 'Wrong name' }).expect(400);
    assert.equal((await db.current.knex('organisations').where({ id: org.id }).first())!.closed_at, null);
    const closed = await browser.agent.post('/admin/organisation/close').type('form').send({ _csrf: browser.csrf, confirm_name: org.name }).expect(200);
    assert.match(closed.text, /<h1>/);
    return browser;
  }

  it('closing (by typing the name) ends sessions, sign-ins, calls, links, the queue and the widget; audited', async () => {
    const knex = db.current.knex;
    const o = await populated('Closing Shop');
    const clerkBrowser = await signIn(app, o.clerk);
    const admin = await close(o.org, o.admin);
    assert.ok((await knex('organisations').where({ id: o.org.id }).first())!.closed_at);
    await admin.agent.get('/dashboard').set('Accept', 'text/html').expect(303).expect('Location', /^\/login/);
    await clerkBrowser.agent.get('/dashboard').set('Accept', 'text/html').expect(303).expect('Location', /^\/login/);
    const { agent, csrf } = await anonymous(app);
    const login = await agent.post('/login').type('form').send({ _csrf: csrf, email: o.clerk.email, password: PASSWORD });
    assert.notEqual(login.headers.location, '/dashboard', 'no sign-in');
    const call = await knex('calls').where({ id: o.openCallId }).first();
    assert.equal(call!.status, 'ended');
    assert.equal(call!.end_reason, 'organisation_closed');
    assert.deepEqual(await new CallService(knex).byGuestToken(o.token), { error: 'call_ended' });
    const join = await request(app).get(`/join/${o.token}`);
    assert.ok([404, 410].includes(join.status), `the customer link answers ${join.status}`);
    await request(app).get(`/q/${o.org.slug}`).expect(404);
    await request(app).get(`/q/${o.org.slug}/widget.json`).expect(404);
    const event = await knex('audit_events').where({ organisation_id: o.org.id, action: 'organisation.closed' }).first();
    assert.ok(event);
    assert.equal(event.details.calls_ended, 1);
  });

  it('purges 60 days later: users anonymised, content and files deleted, the shell and its audit trail kept', async () => {
    const knex = db.current.knex;
    const o = await populated('Purged Shop');
    await close(o.org, o.admin);
    const closedAt = (await knex('organisations').where({ id: o.org.id }).first())!.closed_at as Date;

    assert.deepEqual(await purgeClosedOrganisations(knex, { dataDir, now: new Date(closedAt.getTime() + 59 * DAY) }), [], 'not before 60 days');
    assert.ok(await knex('calls').where({ id: o.endedCallId }).first());
    // Insights' figures (per clerk) and a clerk's available time not yet counted go too (issue 20).
    await aggregateInsights(knex, { organisationId: o.org.id });
    assert.ok((await knex('insight_days').where({ organisation_id: o.org.id })).length > 0);
    await knex('availability_spans').insert({ organisation_id: o.org.id, user_id: o.clerk.id, started_at: new Date(Date.now() - 3600_000), ended_at: new Date() });

    const [receipt] = await purgeClosedOrganisations(knex, { dataDir, now: new Date(closedAt.getTime() + 61 * DAY) });
    assert.equal(receipt!.completed, true);
    assert.equal((await knex('calls').where({ organisation_id: o.org.id })).length, 0);
    assert.equal((await knex('call_messages').where({ organisation_id: o.org.id })).length, 0);
    assert.equal((await knex('recordings').where({ organisation_id: o.org.id })).length, 0);
    assert.equal(fs.existsSync(o.dir), false);
    assert.equal(receipt!.apiKeys, 1);
    assert.equal((await knex('insight_days').where({ organisation_id: o.org.id })).length, 0);
    assert.equal((await knex('availability_spans').where({ organisation_id: o.org.id })).length, 0);
    assert.equal((await knex('api_keys').where({ organisation_id: o.org.id })).length, 0);
    const users = await knex('users').where({ organisation_id: o.org.id });
    assert.equal(users.length, 2);
    for (const user of users) {
      assert.equal(user.password_hash, null);
      assert.match(user.email, /^deleted-.*@invalid$/);
      assert.ok(![o.admin.name, o.clerk.name].includes(user.name));
    }
    const shell = await knex('organisations').where({ id: o.org.id }).first();
    assert.equal(shell!.name, 'Purged Shop');
    assert.ok(shell!.purged_at);
    const receiptEvent = await knex('audit_events').where({ organisation_id: o.org.id, action: 'organisation.purged' }).first();
    assert.equal(receiptEvent!.details.calls_deleted, 2);
    assert.ok((await knex('audit_events').where({ organisation_id: o.org.id, action: 'organisation.closed' })).length === 1, 'the audit trail stays');
    assert.deepEqual(await purgeClosedOrganisations(knex, { dataDir, now: new Date(closedAt.getTime() + 90 * DAY) }), [], 'once');
  });

  it('an organisation-wide legal hold stops the purge until it is lifted', async () => {
    const knex = db.current.knex;
    const o = await populated('Held Shop');
    await close(o.org, o.admin);
    const [hold] = await knex('legal_holds').insert({ organisation_id: o.org.id, scope: 'organisation', reason: 'Litigation' }).returning('id');
    const later = new Date(Date.now() + 61 * DAY);
    const [receipt] = await purgeClosedOrganisations(knex, { dataDir, now: later });
    assert.equal(receipt!.held, true);
    assert.ok(await knex('calls').where({ id: o.endedCallId }).first());
    assert.ok(fs.existsSync(o.dir));
    assert.ok((await knex('users').where({ id: o.clerk.id }).first())!.password_hash);
    await knex('legal_holds').where({ id: hold!.id }).update({ lifted_at: new Date(), lift_reason: 'Settled' });
    const [after] = await purgeClosedOrganisations(knex, { dataDir, now: later });
    assert.equal(after!.completed, true);
    assert.equal(await knex('calls').where({ id: o.endedCallId }).first(), undefined);
  });

  it('a held call survives the purge with its recording; the rest goes', async () => {
    const knex = db.current.knex;
    const o = await populated('Partly Held Shop');
    await close(o.org, o.admin);
    await knex('legal_holds').insert({ organisation_id: o.org.id, scope: 'call', call_id: o.endedCallId, reason: 'Complaint' });
    const [receipt] = await purgeClosedOrganisations(knex, { dataDir, now: new Date(Date.now() + 61 * DAY) });
    assert.equal(receipt!.completed, false);
    assert.ok(await knex('calls').where({ id: o.endedCallId }).first());
    assert.ok(fs.existsSync(o.dir));
    assert.equal(await knex('calls').where({ id: o.openCallId }).first(), undefined);
    assert.equal((await knex('organisations').where({ id: o.org.id }).first())!.purged_at, null);
  });
});
