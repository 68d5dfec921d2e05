import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import type { Express } from 'express';
import { ApiKeyService } from '../app/api-keys/service';
import type { Caller } from '../app/access/caller';
import { runRetention } from '../app/retention/run';
import { RETENTION_QUEUE, startRetention } from '../app/retention/scheduler';
import { DEFAULT_RETENTION } from '../app/retention/settings';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp, silentLogger } from './support/context';
import { useTestDatabase } from './support/database';
import { startTestJobs } from './support/jobs';
import { daysAgo, remaining, seedCall, setRetention } from './retention-seed';

const ALL_ONE_DAY = { recordings: 1, chat: 1, notes: 1, selections: 1, consents: 1, calls: 1, api_requests: 1 };

async function receiptsOf(knex: import('knex').Knex, organisationId: string) {
  return knex('audit_events').where({ organisation_id: organisationId, action: 'retention.deleted' }).orderBy('seq');
}

describe('retention: the job', () => {
  const db = useTestDatabase();
  let dataDir: string;
  const knex = () => db.current.knex;

  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-retention-'));
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('with the defaults, deletes what is due (rows and files) and keeps the rest; one receipt per kind with counts', async () => {
    const org = await seedOrganisation(knex(), 'Defaults Bank');
    const old = await seedCall(knex(), org.id, { endedDaysAgo: 100, recording: 'ready', dataDir });
    const recent = await seedCall(knex(), org.id, { endedDaysAgo: 10, recording: 'ready', dataDir });

    const receipts = await runRetention(knex(), { dataDir, organisationId: org.id });

    // 100 days: recordings (90) and chat (90) are due; notes and selections (180), consents and the call are not.
    assert.deepEqual(await remaining(knex(), old.callId), { call: 1, items: 1, messages: 0, notes: 1, recordings: 0, consents: 1 });
    assert.equal(fs.existsSync(old.recordingDir!), false, 'the recording directory is gone');
    assert.equal(await knex()('recording_tracks').where({ recording_id: old.recordingId }).first(), undefined);
    const consent = await knex()('recording_consents').where({ call_id: old.callId }).first();
    assert.equal(consent!.recording_id, null, 'the consent record outlives its recording');
    assert.deepEqual(await remaining(knex(), recent.callId), { call: 1, items: 1, messages: 2, notes: 1, recordings: 1, consents: 1 });
    assert.ok(fs.existsSync(path.join(recent.recordingDir!, 'recording.mp4')));

    const byKind = Object.fromEntries(receipts.map((r) => [r.kind, r]));
    assert.equal(byKind.recordings!.rows, 1);
    assert.equal(byKind.recordings!.files, 2);
    assert.equal(byKind.recordings!.bytes, 16);
    assert.equal(byKind.chat!.rows, 2);
    assert.equal(byKind.selections!.rows, 0);

    const events = await receiptsOf(knex(), org.id);
    assert.deepEqual(events.map((e) => e.details.kind), ['recordings', 'chat'], 'a receipt for each kind that deleted anything');
    const [rec, chat] = events;
    assert.equal(rec!.actor_type, 'system');
    assert.deepEqual(Object.keys(rec!.details).sort(), ['bytes', 'cutoff', 'days', 'files', 'held_skipped', 'kind', 'rows']);
    assert.deepEqual([rec!.details.rows, rec!.details.files, rec!.details.bytes, rec!.details.days, rec!.details.held_skipped], [1, 2, 16, DEFAULT_RETENTION.recordings, 0]);
    assert.deepEqual([chat!.details.rows, chat!.details.days], [2, DEFAULT_RETENTION.chat]);
    assert.ok(Date.parse(chat!.details.cutoff as string) < daysAgo(89).getTime());
    assert.ok(!JSON.stringify(events).includes('Hello'), 'no content in a receipt');
    assert.ok(!JSON.stringify(events).includes(old.recordingId!), 'no ids in a receipt');

    await runRetention(knex(), { dataDir, organisationId: org.id });
    assert.equal((await receiptsOf(knex(), org.id)).length, 2, 'a run with nothing due writes no receipt');
  });

  it('never touches an open call nor a recording still being made, however short the retention', async () => {
    const org = await seedOrganisation(knex(), 'Live Bank');
    await setRetention(knex(), org.id, ALL_ONE_DAY);
    const waiting = await seedCall(knex(), org.id, { status: 'waiting', endedDaysAgo: 400 });
    const active = await seedCall(knex(), org.id, { status: 'active', endedDaysAgo: 400, recording: 'recording', dataDir });
    const finishing = await seedCall(knex(), org.id, { endedDaysAgo: 400, recording: 'processing', dataDir });

    await runRetention(knex(), { dataDir, organisationId: org.id, now: new Date(Date.now() + 30 * 24 * 3600 * 1000) });

    assert.deepEqual(await remaining(knex(), waiting.callId), { call: 1, items: 1, messages: 2, notes: 1, recordings: 0, consents: 0 });
    assert.deepEqual(await remaining(knex(), active.callId), { call: 1, items: 1, messages: 2, notes: 1, recordings: 1, consents: 1 });
    assert.ok(fs.existsSync(path.join(active.recordingDir!, 'recording.mp4')));
    const call = await knex()('calls').where({ id: active.callId }).first();
    assert.equal(call!.reference, 'CASE-1', 'an open call is not anonymised either');
    assert.ok(call!.guest_token_hash);
    // The ended call's chat goes, but its recording is still being finished: the recording, its consent and the call stay.
    assert.deepEqual(await remaining(knex(), finishing.callId), { call: 1, items: 0, messages: 0, notes: 0, recordings: 1, consents: 1 });
    assert.ok(fs.existsSync(finishing.recordingDir!));
  });

  it('keeps consent records while their recording exists and for their own period after; anonymises, then deletes the call', async () => {
    const org = await seedOrganisation(knex(), 'Consent Bank');
    const clerk = await seedUser(knex(), org, 'clerk');
    await setRetention(knex(), org.id, { ...DEFAULT_RETENTION, recordings: 30, chat: 30, notes: 30, selections: 30, calls: 60, consents: 400 });
    const call = await seedCall(knex(), org.id, { endedDaysAgo: 100, recording: 'ready', dataDir, clerkId: clerk.id });

    const receipts = await runRetention(knex(), { dataDir, organisationId: org.id });
    assert.deepEqual(await remaining(knex(), call.callId), { call: 1, items: 0, messages: 0, notes: 0, recordings: 0, consents: 1 });
    const row = await knex()('calls').where({ id: call.callId }).first();
    assert.deepEqual([row!.reference, row!.guest_token_hash, row!.clerk_id, row!.status], [null, null, null, 'ended'], 'the call is anonymised: it only anchors the consent record');
    assert.equal(receipts.find((r) => r.kind === 'calls')!.anonymised, 1);
    const callReceipt = (await receiptsOf(knex(), org.id)).find((e) => e.details.kind === 'calls')!;
    assert.deepEqual([callReceipt.details.rows, callReceipt.details.anonymised], [0, 1]);

    // 400 days after the call's end, the consent record and then the call go.
    await runRetention(knex(), { dataDir, organisationId: org.id, now: new Date(Date.now() + 301 * 24 * 3600 * 1000) });
    assert.deepEqual(await remaining(knex(), call.callId), { call: 0, items: 0, messages: 0, notes: 0, recordings: 0, consents: 0 });
    const kinds = (await receiptsOf(knex(), org.id)).map((e) => `${e.details.kind}:${e.details.rows}`);
    assert.deepEqual(kinds.slice(-2), ['consents:1', 'calls:1']);
  });

  it('deletes in batches: many rows of many calls', async () => {
    const org = await seedOrganisation(knex(), 'Batch Bank');
    const [call] = await knex()('calls').insert({ organisation_id: org.id, status: 'ended', ended_at: daysAgo(200) }).returning('id');
    await knex()('call_messages').insert(Array.from({ length: 1234 }, (_, i) => ({ organisation_id: org.id, call_id: call!.id, sender: 'clerk', body: `m${i}` })));
    const receipts = await runRetention(knex(), { dataDir, organisationId: org.id });
    assert.equal(receipts.find((r) => r.kind === 'chat')!.rows, 1234);
    assert.equal((await receiptsOf(knex(), org.id)).filter((e) => e.details.kind === 'chat').length, 1, 'one receipt for all batches');
  });

  it('runs over every organisation, each by its own settings', async () => {
    const short = await seedOrganisation(knex(), 'Short Org');
    const long = await seedOrganisation(knex(), 'Long Org');
    await setRetention(knex(), short.id, { ...DEFAULT_RETENTION, chat: 5 });
    const a = await seedCall(knex(), short.id, { endedDaysAgo: 10 });
    const b = await seedCall(knex(), long.id, { endedDaysAgo: 10 });
    await runRetention(knex(), { dataDir });
    assert.equal((await remaining(knex(), a.callId)).messages, 0);
    assert.equal((await remaining(knex(), b.callId)).messages, 2);
  });

  it('the scheduler keeps an hourly schedule in the database and runs the job', async function () {
    this.timeout(60_000);
    const org = await seedOrganisation(knex(), 'Scheduled Org');
    const call = await seedCall(knex(), org.id, { endedDaysAgo: 200 });
    const jobs = await startTestJobs(knex());
    const scheduler = await startRetention({ jobs, knex: knex(), logger: silentLogger, dataDir });
    try {
      const [schedule] = (await knex().raw('SELECT name, cron FROM pgboss.schedule WHERE name = ?', [RETENTION_QUEUE])).rows;
      assert.deepEqual(schedule, { name: RETENTION_QUEUE, cron: '17 * * * *' });
      await scheduler.runSoon();
      const deadline = Date.now() + 30_000;
      while ((await remaining(knex(), call.callId)).messages > 0) {
        assert.ok(Date.now() < deadline, 'the queued run deleted the due chat');
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await jobs.stop();
    }
  });
});

describe('retention: the compliance pages', () => {
  const db = useTestDatabase();
  let app: Express;
  let dataDir: string;
  let org: SeededOrganisation;
  let compliance: Browser;
  let admin: Browser;
  let adminUser: SeededUser;
  const knex = () => db.current.knex;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-retention-'));
    app = buildApp(db.current, { env: { VCLERK_DATA_DIR: dataDir } });
    org = await seedOrganisation(knex(), 'Retention Pages Bank');
    adminUser = await seedUser(knex(), org, 'admin');
    compliance = await signIn(app, await seedUser(knex(), org, 'compliance'));
    admin = await signIn(app, adminUser);
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  const form = (values: Record<string, string | number>) => ({ ...Object.fromEntries(Object.entries(DEFAULT_RETENTION).map(([k, v]) => [k, String(v)])), ...values });

  it('shows the settings with their defaults', async () => {
    const res = await compliance.agent.get('/compliance/retention').expect(200);
    assert.match(res.text, /name="recordings" type="number" value="90"/);
    assert.match(res.text, /name="consents" type="number" value="1185"/);
    assert.match(res.text, /name="api_requests" type="number" value="90"/);
    assert.match(res.text, /id="no-receipts"/);
    const de = await compliance.agent.get('/compliance/retention').set('Accept-Language', 'de');
    assert.match(de.text, /Aufbewahrung/);
  });

  it('refuses bad values with 400 and changes nothing', async () => {
    const before = await knex()('organisations').where({ id: org.id }).first('settings');
    const events = await knex()('audit_events').where({ action: 'retention.settings_changed' }).count({ n: '*' });
    const bad: Record<string, string>[] = [{ chat: '0' }, { chat: '' }, { chat: '-5' }, { chat: '3651' }, { chat: '1.5' }, { chat: 'ten' }, { calls: '30' }, { consents: '10' }];
    for (const values of bad) {
      const res = await compliance.agent.post('/compliance/retention').type('form').send({ _csrf: compliance.csrf, ...form(values) }).expect(400);
      assert.match(res.text, /aria-invalid="true"/);
    }
    const json = await compliance.agent.post('/compliance/retention').set('X-CSRF-Token', compliance.csrf).set('Accept', 'application/json').send({ ...form({}), recordings: 0 }).expect(400);
    assert.equal(json.text.includes('recordings'), true);
    assert.deepEqual(await knex()('organisations').where({ id: org.id }).first('settings'), before);
    assert.deepEqual(await knex()('audit_events').where({ action: 'retention.settings_changed' }).count({ n: '*' }), events);
  });

  it('saves valid values, audited with before and after', async () => {
    await admin.agent.post('/compliance/retention').type('form').send({ _csrf: admin.csrf, ...form({ chat: '30', api_requests: '14' }) }).expect(303).expect('Location', '/compliance/retention');
    const page = await admin.agent.get('/compliance/retention').expect(200);
    assert.match(page.text, /name="chat" type="number" value="30"/);
    const [event] = await knex()('audit_events').where({ action: 'retention.settings_changed' });
    assert.equal(event!.actor_id, adminUser.id);
    assert.equal((event!.details.before as Record<string, unknown>).chat, 90);
    assert.equal((event!.details.after as Record<string, unknown>).chat, 30);
    assert.equal((event!.details.after as Record<string, unknown>).api_requests, 14);
    await admin.agent.post('/compliance/retention').type('form').send({ _csrf: admin.csrf, ...form({ chat: '30', api_requests: '14' }) }).expect(303);
    assert.equal((await knex()('audit_events').where({ action: 'retention.settings_changed' })).length, 1, 'saving the same values audits nothing');
  });

  it('"Run now" runs retention for the organisation, audited, and lists the receipts', async () => {
    const call = await seedCall(knex(), org.id, { endedDaysAgo: 40, recording: 'ready', dataDir });
    const other = await seedOrganisation(knex(), 'Untouched Org');
    const foreign = await seedCall(knex(), other.id, { endedDaysAgo: 400 });
    await compliance.agent.post('/compliance/retention/run').type('form').send({ _csrf: compliance.csrf }).expect(303).expect('Location', '/compliance/retention');
    assert.equal((await remaining(knex(), call.callId)).messages, 0, 'chat (30 days) deleted');
    assert.equal((await remaining(knex(), call.callId)).recordings, 1, 'recordings (90 days) kept');
    assert.equal((await remaining(knex(), foreign.callId)).messages, 2, 'another organisation is not run');
    const [requested] = await knex()('audit_events').where({ action: 'retention.run_requested', organisation_id: org.id });
    assert.equal(requested!.actor_type, 'user');
    const page = await compliance.agent.get('/compliance/retention').expect(200);
    assert.match(page.text, /Retention finished: 2 records and 0 files deleted/);
    assert.match(page.text, /Chat messages/);
  });

  it('clerks cannot reach the pages', async () => {
    const clerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
    await clerk.agent.get('/compliance/retention').expect(403);
    await clerk.agent.post('/compliance/retention/run').type('form').send({ _csrf: clerk.csrf }).expect(403);
    await clerk.agent.get('/compliance/api-requests').expect(403);
  });
});

describe('retention: the API request log', () => {
  const db = useTestDatabase();
  let app: Express;
  let org: SeededOrganisation;
  let key: string;
  const knex = () => db.current.knex;

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(knex(), 'API Log Bank');
    const adminUser = await seedUser(knex(), org, 'admin');
    const caller: Caller = { user: { id: adminUser.id, organisationId: org.id, organisationSlug: org.slug, organisationName: org.name, organisationBrandVersion: 0, name: adminUser.name, email: adminUser.email, role: 'admin', language: null }, ip: '127.0.0.1', userAgent: 'test', sessionId: 'test' };
    key = (await new ApiKeyService(knex(), caller).create({ name: 'CRM', scopes: ['calls:read'], own_key: undefined })).key;
  });

  async function logged() {
    for (let i = 0; i < 50; i++) {
      const rows = await knex()('api_request_log').where({ organisation_id: org.id }).orderBy('id');
      if (rows.length) return rows;
      await new Promise((r) => setTimeout(r, 50));
    }
    return [];
  }

  it('records each accepted request with key, status, IP and user agent; not in the audit trail', async () => {
    await request(app).get('/api/v1/calls').set('Authorization', `Bearer ${key}`).set('User-Agent', 'crm/1.0').expect(200);
    const [row] = await logged();
    assert.equal(row!.method, 'GET');
    assert.equal(row!.path, '/api/v1/calls');
    assert.equal(row!.status, 200);
    assert.equal(row!.key_prefix, key.slice(0, 12));
    assert.equal(row!.user_agent, 'crm/1.0');
    assert.match(String(row!.ip), /127\.0\.0\.1/);
    assert.equal(await knex()('audit_events').where({ action: 'api.request' }).first(), undefined);
    await request(app).get('/api/v1/calls').set('Authorization', 'Bearer nope').expect(401);
    assert.ok(await knex()('audit_events').where({ action: 'api.refused' }).first(), 'refusals stay in the audit trail');
  });

  it('is shown to compliance with the IP, and pruned by its retention', async () => {
    const compliance = await signIn(app, await seedUser(knex(), org, 'compliance'));
    const page = await compliance.agent.get('/compliance/api-requests').expect(200);
    assert.match(page.text, /127\.0\.0\.1/);
    assert.match(page.text, /GET \/api\/v1\/calls/);

    await knex()('api_request_log').where({ organisation_id: org.id }).update({ occurred_at: daysAgo(91) });
    await request(app).get('/api/v1/calls').set('Authorization', `Bearer ${key}`).expect(200);
    await new Promise((r) => setTimeout(r, 200));
    const receipts = await runRetention(knex(), { dataDir: os.tmpdir(), organisationId: org.id });
    assert.equal(receipts.find((r) => r.kind === 'api_requests')!.rows, 1);
    assert.equal((await knex()('api_request_log').where({ organisation_id: org.id })).length, 1, 'the recent request stays');
    const [receipt] = await knex()('audit_events').where({ action: 'retention.deleted' });
    assert.equal(receipt!.details.kind, 'api_requests');
  });
});
