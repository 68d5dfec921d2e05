import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import request from 'supertest';
import { AuditService } from '../app/audit/service';
import { CallService } from '../app/calls/service';
import { organisationRecordingNotice, recordingNotice } from '../app/recordings/policy';
import { csrfFrom, PASSWORD, seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { connect, ok, refusedCode } from './support/signal-client';

/** Signs in on the running server; the agent and its CSRF token. */
async function signInAt(url: string, user: SeededUser) {
  const agent = request.agent(url);
  const login = await agent.get('/login');
  const res = await agent.post('/login').type('form').send({ _csrf: csrfFrom(login.text), email: user.email, password: PASSWORD }).expect(303);
  const page = await agent.get('/account').expect(200);
  return { agent, csrf: csrfFrom(page.text), cookie: String(res.headers['set-cookie']).split(';')[0]! };
}

describe('privacy texts: versioned notices, shown to customers, named in the consent ledger', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let server: CallServer;
  let org: SeededOrganisation;
  let clerk: SeededUser;
  let compliance: Awaited<ReturnType<typeof signInAt>>;
  const sockets: Socket[] = [];

  before(async () => {
    server = await startCallServer(db.current, { recordings: true });
    org = await seedOrganisation(db.current.knex, 'Notice Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    compliance = await signInAt(server.url, await seedUser(db.current.knex, org, 'compliance'));
    await db.current.knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand' } } });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await server?.close();
  });

  const save = (kind: string, language: string, text: string, status = 303) =>
    compliance.agent.post('/compliance/privacy').type('form').send({ _csrf: compliance.csrf, kind, language, text }).expect(status);

  it('each save is a new version; versions are never changed; the builtin notice is the fallback', async () => {
    const knex = db.current.knex;
    assert.deepEqual(await organisationRecordingNotice(knex, org.id, 'en'), recordingNotice('en'));
    await save('recording_notice', 'en', 'We record this call for training. v1');
    await save('recording_notice', 'en', 'We record this call for quality and training.');
    await save('recording_notice', 'en', 'We record this call for quality and training.');
    await save('recording_notice', 'de', '', 400);
    const rows = await knex('privacy_texts').where({ organisation_id: org.id, kind: 'recording_notice', language: 'en' }).orderBy('version');
    assert.deepEqual(rows.map((r) => r.version), [1, 2], 'an unchanged text is not a new version');
    await assert.rejects(knex('privacy_texts').where({ id: rows[0]!.id }).update({ text: 'changed' }), /cannot be changed/);
    const notice = await organisationRecordingNotice(knex, org.id, 'en');
    assert.deepEqual(notice, { text: 'We record this call for quality and training.', version: 'org-v2', language: 'en' });
    assert.deepEqual(await organisationRecordingNotice(knex, org.id, 'de'), recordingNotice('de'), 'no German text: the builtin one');
    const events = await knex('audit_events').where({ organisation_id: org.id, action: 'organisation.privacy_text_saved' });
    assert.equal(events.length, 2);
    const page = await compliance.agent.get('/compliance/privacy').expect(200);
    assert.match(page.text, /org-v2/);
  });

  it('the customer page shows the privacy notice and the organisation\'s recording notice; the ledger stores its version', async () => {
    const knex = db.current.knex;
    await save('privacy_notice', 'en', 'Notice Bank processes your video only for advice.\nContact: privacy@notice.example');
    const caller = { user: { id: clerk.id, organisationId: org.id } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' };
    const { call, token } = await new CallService(knex).start(caller, 1);
    const page = await request(server.url).get(`/join/${token}`).set('Accept-Language', 'en').expect(200);
    assert.match(page.text, /Notice Bank processes your video only for advice\.<br>Contact: privacy@notice\.example/);
    assert.match(page.text, /data-notice-version="org-v2"/);
    assert.match(page.text, /We record this call for quality and training\./);

    const clerkSession = await signInAt(server.url, clerk);
    const clerkSocket = await connect(server.url, { callId: call.id }, clerkSession.cookie);
    const customerSocket = await connect(server.url, { token });
    sockets.push(clerkSocket, customerSocket);
    await ok(clerkSocket, 'recording.start');
    assert.equal(await refusedCode(customerSocket, 'recording.consent', { answer: 'declined', noticeVersion: recordingNotice('en').version, language: 'en' }), 'invalid_message', 'an outdated notice is refused');
    await ok(customerSocket, 'recording.consent', { answer: 'declined', noticeVersion: 'org-v2', language: 'en' });
    const [entry] = await knex('recording_consents').where({ call_id: call.id });
    assert.equal(entry!.notice_version, 'org-v2');
    assert.equal(entry!.notice_text, 'We record this call for quality and training.');
  });

  it('shows the automated-routing opt-in with its audit history', async () => {
    const knex = db.current.knex;
    await knex('organisations').where({ id: org.id }).update({ settings: knex.raw(`settings || '{"autoRouting": true}'::jsonb`) });
    await new AuditService(knex).record({ organisationId: org.id, actor: { type: 'user', id: clerk.id, label: 'admin@notice.example', organisationId: org.id }, action: 'organisation.auto_routing_changed', target: { type: 'organisation', id: org.id }, details: { automated_decision: true, enabled: true } });
    const page = await compliance.agent.get('/compliance/privacy').expect(200);
    assert.match(page.text, /id="auto-routing-state">[^<]*switched on/);
    assert.match(page.text, /id="routing-history"[\s\S]*admin@notice\.example/);
  });
});
