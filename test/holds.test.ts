import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import { LegalHolds } from '../app/holds/service';
import { runRetention } from '../app/retention/run';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { remaining, seedCall, type SeededCall } from './retention-seed';

describe('legal holds', () => {
  const db = useTestDatabase();
  let app: Express;
  let dataDir: string;
  let org: SeededOrganisation;
  let other: SeededOrganisation;
  let compliance: Browser;
  let complianceUser: SeededUser;
  let admin: Browser;
  const knex = () => db.current.knex;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-holds-'));
    app = buildApp(db.current, { env: { VCLERK_DATA_DIR: dataDir } });
    org = await seedOrganisation(knex(), 'Hold Bank');
    other = await seedOrganisation(knex(), 'Other Hold Bank');
    complianceUser = await seedUser(knex(), org, 'compliance');
    compliance = await signIn(app, complianceUser);
    admin = await signIn(app, await seedUser(knex(), org, 'admin'));
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  const place = (browser: Browser, body: Record<string, string>, status = 303) =>
    browser.agent.post('/compliance/holds').type('form').send({ _csrf: browser.csrf, ...body }).expect(status);
  const lift = (browser: Browser, id: string, body: Record<string, string>, status = 303) =>
    browser.agent.post(`/compliance/holds/${id}/lift`).type('form').send({ _csrf: browser.csrf, ...body }).expect(status);
  const holdOf = (where: Record<string, string>) => knex()('legal_holds').where({ organisation_id: org.id, ...where }).whereNull('lifted_at').first();
  const old = (extra: Partial<Parameters<typeof seedCall>[2]> = {}) => seedCall(knex(), org.id, { endedDaysAgo: 2000, recording: 'ready', dataDir, ...extra });
  const everything = { call: 1, items: 1, messages: 2, notes: 1, recordings: 1, consents: 1 };
  const nothing = { call: 0, items: 0, messages: 0, notes: 0, recordings: 0, consents: 0 };
  const run = () => runRetention(knex(), { dataDir, organisationId: org.id });

  it('a hold on a call keeps everything of the call; lifted, the next run deletes it', async () => {
    const held = await old();
    const free = await old();
    await place(compliance, { scope: 'call', target: held.callId, reason: 'Case 4711: court order' });
    const hold = await holdOf({ call_id: held.callId });
    assert.equal(hold!.scope, 'call');
    assert.equal(hold!.created_by, complianceUser.id);

    const receipts = await run();
    assert.deepEqual(await remaining(knex(), held.callId), everything);
    assert.ok(fs.existsSync(path.join(held.recordingDir!, 'recording.mp4')));
    assert.deepEqual(await remaining(knex(), free.callId), nothing);
    assert.equal(fs.existsSync(free.recordingDir!), false);
    const chat = receipts.find((r) => r.kind === 'chat')!;
    assert.deepEqual([chat.rows, chat.heldSkipped], [2, 2]);
    const [receipt] = await knex()('audit_events').where({ action: 'retention.deleted' }).whereRaw(`details->>'kind' = 'chat'`);
    assert.equal(receipt!.details.held_skipped, 2);

    await lift(compliance, hold!.id, { lift_reason: 'Case closed' });
    await run();
    assert.deepEqual(await remaining(knex(), held.callId), nothing);
    assert.equal(fs.existsSync(held.recordingDir!), false);
  });

  it('a hold on a recording keeps the recording, its call and its consent records; the chat goes', async () => {
    const held = await old();
    await place(admin, { scope: 'recording', target: held.recordingId!, reason: 'Complaint 12' });
    const hold = await holdOf({ recording_id: held.recordingId! });
    assert.equal(hold!.call_id, held.callId, 'the recording resolves to its call');

    await run();
    assert.deepEqual(await remaining(knex(), held.callId), { call: 1, items: 0, messages: 0, notes: 0, recordings: 1, consents: 1 });
    assert.ok(fs.existsSync(path.join(held.recordingDir!, 'recording.mp4')));
    const call = await knex()('calls').where({ id: held.callId }).first();
    assert.equal(call!.reference, 'CASE-1', 'a held call is not anonymised');

    await lift(admin, hold!.id, { lift_reason: 'Complaint withdrawn' });
    await run();
    assert.deepEqual(await remaining(knex(), held.callId), nothing);
  });

  it('a hold on the organisation keeps everything, API request log included; lifted, all due data goes', async () => {
    const call = await old();
    await knex()('api_request_log').insert({ organisation_id: org.id, key_prefix: 'vck_12345678', method: 'GET', path: '/api/v1/calls', status: 200, ip: '198.51.100.1', occurred_at: new Date(Date.now() - 1000 * 24 * 3600 * 1000) });
    await place(compliance, { scope: 'organisation', target: '', reason: 'Regulator inquiry' });
    const page = await compliance.agent.get('/compliance/retention').expect(200);
    assert.match(page.text, /id="organisation-held"/);

    const receipts = await run();
    assert.deepEqual(await remaining(knex(), call.callId), everything);
    assert.equal((await knex()('api_request_log').where({ organisation_id: org.id })).length, 1);
    assert.ok(receipts.every((r) => r.rows === 0));
    assert.equal(receipts.find((r) => r.kind === 'api_requests')!.heldSkipped, 1);

    const hold = await holdOf({ scope: 'organisation' });
    await lift(compliance, hold!.id, { lift_reason: 'Inquiry finished' });
    await run();
    assert.deepEqual(await remaining(knex(), call.callId), nothing);
    assert.equal((await knex()('api_request_log').where({ organisation_id: org.id })).length, 0);
  });

  it('placing and lifting are audited with the reason; both are listed', async () => {
    const call = await seedCall(knex(), org.id, { endedDaysAgo: 1 });
    await place(compliance, { scope: 'call', target: call.callId, reason: 'Audit reason A' });
    const hold = await holdOf({ call_id: call.callId });
    await lift(compliance, hold!.id, { lift_reason: 'Lift reason B' });
    const [placed] = await knex()('audit_events').where({ action: 'legal_hold.placed', target_id: hold!.id });
    assert.equal(placed!.actor_id, complianceUser.id);
    assert.deepEqual(placed!.details, { scope: 'call', call_id: call.callId, recording_id: null, reason: 'Audit reason A' });
    const [lifted] = await knex()('audit_events').where({ action: 'legal_hold.lifted', target_id: hold!.id });
    assert.equal(lifted!.details.reason, 'Lift reason B');

    const page = await compliance.agent.get('/compliance/holds').expect(200);
    assert.match(page.text, /Audit reason A/);
    assert.match(page.text, /Lift reason B/);
    const de = await compliance.agent.get('/compliance/holds').set('Accept-Language', 'de').expect(200);
    assert.match(de.text, /Rechtliche Sperren/);
  });

  it('refuses a hold without a reason, with an unknown or foreign target, or twice; nothing is placed', async () => {
    const call = await seedCall(knex(), org.id, { endedDaysAgo: 1 });
    const foreign = await seedCall(knex(), other.id, { endedDaysAgo: 1 });
    const before = await knex()('legal_holds').count({ n: '*' });
    const events = await knex()('audit_events').where({ action: 'legal_hold.placed' }).count({ n: '*' });
    const missingReason = await place(compliance, { scope: 'call', target: call.callId, reason: '  ' }, 400);
    assert.match(missingReason.text, /Please give a reason/);
    assert.match((await place(compliance, { scope: 'call', target: '', reason: 'x' }, 400)).text, /Please give the ID/);
    assert.match((await place(compliance, { scope: 'call', target: 'not-an-id', reason: 'x' }, 400)).text, /no call or recording with this ID/);
    assert.match((await place(compliance, { scope: 'call', target: foreign.callId, reason: 'x' }, 400)).text, /no call or recording with this ID/);
    await place(compliance, { scope: 'recording', target: call.callId, reason: 'a call id is not a recording' }, 400);
    await place(compliance, { scope: 'everything', target: '', reason: 'x' }, 400);
    assert.deepEqual(await knex()('legal_holds').count({ n: '*' }), before);
    assert.deepEqual(await knex()('audit_events').where({ action: 'legal_hold.placed' }).count({ n: '*' }), events);

    await place(compliance, { scope: 'call', target: call.callId, reason: 'first' });
    assert.match((await place(compliance, { scope: 'call', target: call.callId, reason: 'second' }, 400)).text, /already on hold/);
  });

  it('lifting needs a reason, happens once, and only in the own organisation (a foreign hold is 404, audited)', async () => {
    const call = await seedCall(knex(), org.id, { endedDaysAgo: 1 });
    await place(compliance, { scope: 'call', target: call.callId, reason: 'keep' });
    const hold = await holdOf({ call_id: call.callId });
    const res = await lift(compliance, hold!.id, { lift_reason: '' }, 400);
    assert.match(res.text, /Please give a reason/);
    assert.equal((await knex()('legal_holds').where({ id: hold!.id }).first())!.lifted_at, null);

    const foreignAdmin = await signIn(app, await seedUser(knex(), other, 'admin'));
    const foreign = await foreignAdmin.agent.post(`/compliance/holds/${hold!.id}/lift`).set('X-CSRF-Token', foreignAdmin.csrf).set('Accept', 'application/json').send({ lift_reason: 'mine now' }).expect(404);
    assert.equal(foreign.body.error.code, 'not_found');
    assert.ok(await knex()('audit_events').where({ action: 'security.cross_organisation_denied', target_id: hold!.id }).first());
    assert.equal((await knex()('legal_holds').where({ id: hold!.id }).first())!.lifted_at, null);

    await lift(compliance, hold!.id, { lift_reason: 'done' });
    const again = await compliance.agent.post(`/compliance/holds/${hold!.id}/lift`).set('X-CSRF-Token', compliance.csrf).set('Accept', 'application/json').send({ lift_reason: 'again' }).expect(409);
    assert.equal(again.body.error.code, 'hold_already_lifted');
    await compliance.agent.post('/compliance/holds/not-a-uuid/lift').set('X-CSRF-Token', compliance.csrf).set('Accept', 'application/json').send({ lift_reason: 'x' }).expect(404);
  });

  it('clerks cannot reach the holds', async () => {
    const clerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
    await clerk.agent.get('/compliance/holds').expect(403);
    await clerk.agent.post('/compliance/holds').type('form').send({ _csrf: clerk.csrf, scope: 'organisation', reason: 'x' }).expect(403);
  });

  describe('the check others call: LegalHolds', () => {
    let holdOrg: SeededOrganisation;
    let callHeld: SeededCall;
    let recordingHeld: SeededCall;
    let free: SeededCall;
    let holds: LegalHolds;

    before(async () => {
      holdOrg = await seedOrganisation(knex(), 'Check Bank');
      callHeld = await seedCall(knex(), holdOrg.id, { endedDaysAgo: 1, recording: 'ready', dataDir });
      recordingHeld = await seedCall(knex(), holdOrg.id, { endedDaysAgo: 1, recording: 'ready', dataDir });
      free = await seedCall(knex(), holdOrg.id, { endedDaysAgo: 1, recording: 'ready', dataDir });
      await knex()('legal_holds').insert([
        { organisation_id: holdOrg.id, scope: 'call', call_id: callHeld.callId, reason: 'r' },
        { organisation_id: holdOrg.id, scope: 'recording', call_id: recordingHeld.callId, recording_id: recordingHeld.recordingId, reason: 'r' },
        { organisation_id: holdOrg.id, scope: 'call', call_id: free.callId, reason: 'lifted', lifted_at: new Date(), lift_reason: 'done' },
      ]);
      holds = new LegalHolds(knex());
    });

    it('protects: a held call, a held recording, the recording of a held call, the call of a held recording', async () => {
      assert.equal(await holds.protects(holdOrg.id, { callId: callHeld.callId }), true);
      assert.equal(await holds.protects(holdOrg.id, { recordingId: callHeld.recordingId }), true);
      assert.equal(await holds.protects(holdOrg.id, { recordingId: recordingHeld.recordingId }), true);
      assert.equal(await holds.protects(holdOrg.id, { callId: recordingHeld.callId }), true);
      assert.equal(await holds.protects(holdOrg.id, { callId: free.callId }), false, 'a lifted hold protects nothing');
      assert.equal(await holds.protects(holdOrg.id, { recordingId: free.recordingId }), false);
      assert.equal(await holds.protects(holdOrg.id, {}), false);
      assert.equal(await holds.protects(org.id, { callId: callHeld.callId }), false, 'holds are per organisation');
    });

    it('heldCallIds: the held calls and the calls of held recordings; "all" under an organisation hold', async () => {
      assert.deepEqual(await holds.heldCallIds(holdOrg.id), new Set([callHeld.callId, recordingHeld.callId]));
      await knex()('legal_holds').insert({ organisation_id: holdOrg.id, scope: 'organisation', reason: 'all' });
      assert.equal(await holds.heldCallIds(holdOrg.id), 'all');
      assert.equal(await holds.protects(holdOrg.id, { callId: free.callId }), true);
    });
  });
});
