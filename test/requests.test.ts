import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import { sha256 } from '../app/security/tokens';
import { RecordingStore } from '../app/recordings/service';
import { finaliseFile, recordingDir } from '../app/recordings/storage';
import { tokenFromLink } from '../app/requests/service';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { unzip } from './support/zip';

const KEY = crypto.randomBytes(32);

describe('data-subject requests: erasure and access', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let dataDir: string;
  let app: Express;
  let org: SeededOrganisation;
  let clerk: SeededUser;
  let compliance: Browser;

  /** An ended call of the clerk with everything a call can leave behind: cards, chat, notes, a consent with IP, an encrypted recording. */
  async function fullCall(token: string, reference: string | null = null): Promise<{ callId: string; recordingId: string; sha256: string; bytes: Buffer }> {
    const knex = db.current.knex;
    const [call] = await knex('calls').insert({ organisation_id: org.id, clerk_id: clerk.id, status: 'ended', ended_at: new Date(), guest_token_hash: sha256(token), reference, guest_token_expires_at: new Date(Date.now() + 3600_000) }).returning('id');
    const [item] = await knex('call_items').insert({ organisation_id: org.id, call_id: call!.id, sku: 'SKU-1', name: 'Blue sofa', price_cents: 99900, currency: 'EUR', position: 1, favourite: true }).returning('id');
    await knex('call_messages').insert([
      { organisation_id: org.id, call_id: call!.id, sender: 'customer', body: 'Is it available in green?' },
      { organisation_id: org.id, call_id: call!.id, sender: 'customer', kind: 'question', item_id: item!.id, body: '' },
    ]);
    await knex('call_notes').insert({ call_id: call!.id, organisation_id: org.id, body: 'Customer prefers delivery on Fridays.', updated_by: clerk.id });
    const store = new RecordingStore(knex);
    const recording = await store.create({ id: call!.id, organisationId: org.id }, { type: 'system' }, clerk.id, { ip: null, userAgent: null });
    await store.consent({ id: call!.id, organisationId: org.id }, { recordingId: recording.id, role: 'customer', userId: null, answer: 'granted', notice: { text: 'We record.', version: 'builtin-x', language: 'en' } }, { type: 'guest', label: 'Customer' }, { ip: '203.0.113.7', userAgent: 'test' });
    await store.stopped(recording.id, 'stopped', false);
    const dir = recordingDir(dataDir, org.id, recording.id);
    fs.mkdirSync(dir, { recursive: true });
    const bytes = crypto.randomBytes(300 * 1024 + 17);
    fs.writeFileSync(path.join(dir, 'composed.mp4'), bytes);
    const file = await finaliseFile(path.join(dir, 'composed.mp4'), dir, KEY);
    await store.finalised(recording.id, { fileName: path.basename(file.path), size: file.size, sha256: file.sha256, encrypted: file.encrypted, durationMs: 2000 });
    return { callId: call!.id, recordingId: recording.id, sha256: file.sha256, bytes };
  }

  async function register(fields: Record<string, string>): Promise<string> {
    const res = await compliance.agent.post('/compliance/requests').type('form').send({ _csrf: compliance.csrf, note: 'By e-mail', ...fields }).expect(303);
    const id = /^\/compliance\/requests\/([0-9a-f-]{36})$/.exec(String(res.headers.location))?.[1];
    assert.ok(id, res.headers.location);
    return id;
  }

  async function execute(id: string, status = 303) {
    return compliance.agent.post(`/compliance/requests/${id}/execute`).type('form').send({ _csrf: compliance.csrf }).expect(status);
  }

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-dsr-'));
    app = buildApp(db.current, { env: { VCLERK_DATA_DIR: dataDir, VCLERK_RECORDING_KEY: KEY.toString('base64') } });
    org = await seedOrganisation(db.current.knex, 'Request Bank');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    compliance = await signIn(app, await seedUser(db.current.knex, org, 'compliance'));
  });

  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('reads the token from a pasted link, with or without fragment, or alone', () => {
    const token = 'a'.repeat(43);
    assert.equal(tokenFromLink(`https://vclerk.example/join/${token}`), token);
    assert.equal(tokenFromLink(`https://vclerk.example/calls/x#customer=${token}`), token);
    assert.equal(tokenFromLink(` ${token} `), token);
    assert.equal(tokenFromLink('https://vclerk.example/join/short'), undefined);
  });

  it('an erasure registered by call link removes recordings (rows and files), chat, selections, notes and consent IPs', async () => {
    const knex = db.current.knex;
    const token = crypto.randomBytes(32).toString('base64url');
    const call = await fullCall(token);
    const id = await register({ kind: 'erasure', identified_by: 'call_link', call_link: `https://vclerk.example/join/${token}` });
    const request = await knex('subject_requests').where({ id }).first();
    assert.deepEqual(request!.call_ids, [call.callId]);
    assert.equal(request!.status, 'open');
    assert.ok(Math.abs(new Date(request!.due_at).getTime() - (Date.now() + 30 * 86_400_000)) < 60_000, 'due in 30 days');
    assert.doesNotMatch(JSON.stringify(request), new RegExp(token), 'the token is not stored');

    await execute(id);
    assert.equal(await knex('recordings').where({ call_id: call.callId }).first(), undefined);
    assert.equal(fs.existsSync(recordingDir(dataDir, org.id, call.recordingId)), false, 'the files are gone');
    assert.equal((await knex('call_messages').where({ call_id: call.callId })).length, 0);
    assert.equal((await knex('call_items').where({ call_id: call.callId })).length, 0);
    assert.equal((await knex('call_notes').where({ call_id: call.callId })).length, 0);
    const consents = await knex('recording_consents').where({ call_id: call.callId });
    assert.ok(consents.length > 0, 'the proof of consent stays');
    assert.ok(consents.every((c) => c.ip === null), 'without IP');
    assert.ok((await knex('calls').where({ id: call.callId }).first())!.link_revoked_at, 'the link opens nothing any more');

    const done = await knex('subject_requests').where({ id }).first();
    assert.equal(done!.status, 'in_progress');
    assert.equal((done!.result!.erased as Record<string, unknown>).recordings, 1);
    assert.equal((done!.result!.held as unknown[]).length, 0);
    const page = await compliance.agent.get(`/compliance/requests/${id}`).expect(200);
    assert.match(page.text, /erasure-result/);
    await execute(id, 409);

    await compliance.agent.post(`/compliance/requests/${id}/status`).type('form').send({ _csrf: compliance.csrf, status: 'completed', note: 'Answered the customer' }).expect(303);
    assert.equal((await knex('subject_requests').where({ id }).first())!.status, 'completed');
    const actions = (await knex('audit_events').where({ target_type: 'subject_request', target_id: id }).orderBy('seq')).map((e) => e.action);
    assert.deepEqual(actions, ['subject_request.registered', 'subject_request.executed', 'subject_request.status_changed']);
  });

  it('an erasure respects a legal hold: the held call keeps everything and the request records it', async () => {
    const knex = db.current.knex;
    const held = await fullCall(crypto.randomBytes(32).toString('base64url'), 'CASE-77');
    const free = await fullCall(crypto.randomBytes(32).toString('base64url'), 'CASE-77');
    await knex('legal_holds').insert({ organisation_id: org.id, scope: 'call', call_id: held.callId, reason: 'Court order 12/2026' });
    const id = await register({ kind: 'erasure', identified_by: 'reference', reference: 'CASE-77' });
    await execute(id);
    assert.ok(await knex('recordings').where({ id: held.recordingId }).first(), 'the held recording stays');
    assert.ok(fs.existsSync(recordingDir(dataDir, org.id, held.recordingId)));
    assert.equal((await knex('call_messages').where({ call_id: held.callId })).length, 2);
    assert.ok((await knex('recording_consents').where({ call_id: held.callId })).every((c) => c.ip === '203.0.113.7'));
    assert.equal(await knex('recordings').where({ id: free.recordingId }).first(), undefined, 'the other call is erased');
    const result = (await knex('subject_requests').where({ id }).first())!.result;
    assert.deepEqual(result!.held, [{ call_id: held.callId, reason: 'legal_hold', recordings_kept: 1 }]);
    const page = await compliance.agent.get(`/compliance/requests/${id}`).expect(200);
    assert.match(page.text, new RegExp(`id="held-back"[\\s\\S]*${held.callId}`));
  });

  it('an access request gives a ZIP with the call, chat, selections, the clerk\'s notes, consents and the decrypted recording', async () => {
    const knex = db.current.knex;
    const token = crypto.randomBytes(32).toString('base64url');
    const call = await fullCall(token, 'ACCESS-1');
    const id = await register({ kind: 'access', identified_by: 'call_link', call_link: token });
    await compliance.agent.get(`/compliance/requests/${id}/download`).set('Accept', 'application/json').expect(409);
    await execute(id);
    const res = await compliance.agent
      .get(`/compliance/requests/${id}/download`)
      .buffer(true)
      .parse((response, done) => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => done(null, Buffer.concat(chunks)));
      })
      .expect(200)
      .expect('Content-Type', 'application/zip');
    const entries = await unzip(res.body as Buffer);
    const dir = `calls/${call.callId}`;
    assert.ok(entries.has('README.txt'));
    assert.equal(JSON.parse(entries.get(`${dir}/call.json`)!.toString()).reference, 'ACCESS-1');
    assert.equal(JSON.parse(entries.get(`${dir}/chat.json`)!.toString())[0].body, 'Is it available in green?');
    assert.equal(JSON.parse(entries.get(`${dir}/selections.json`)!.toString())[0].name, 'Blue sofa');
    assert.equal(JSON.parse(entries.get(`${dir}/consents.json`)!.toString())[0].ip, '203.0.113.7');
    // The clerk's notes are in the copy, as the notes field tells the clerk, and the README names them.
    assert.equal(JSON.parse(entries.get(`${dir}/notes.json`)!.toString())[0].body, 'Customer prefers delivery on Fridays.');
    assert.match(entries.get('README.txt')!.toString(), /notes\.json: the clerk's notes/);
    const media = entries.get(`${dir}/recordings/${call.recordingId}.mp4`)!;
    assert.equal(crypto.createHash('sha256').update(media).digest('hex'), call.sha256);
    assert.ok(media.equals(call.bytes));
    assert.ok(await knex('audit_events').where({ action: 'subject_request.downloaded', target_id: id }).first());
  });

  it('flags overdue requests on the list and on the dashboard of compliance and admin users', async () => {
    const knex = db.current.knex;
    await fullCall(crypto.randomBytes(32).toString('base64url'), 'LATE-1');
    const id = await register({ kind: 'access', identified_by: 'reference', reference: 'LATE-1' });
    let list = await compliance.agent.get('/compliance/requests').expect(200);
    assert.doesNotMatch(list.text, /data-overdue/);
    await knex('subject_requests').where({ id }).update({ due_at: new Date(Date.now() - 86_400_000) });
    list = await compliance.agent.get('/compliance/requests').expect(200);
    assert.match(list.text, /id="overdue-flag"/);
    assert.equal((list.text.match(/data-overdue="true"/g) ?? []).length, 1);
    const dashboard = await compliance.agent.get('/dashboard').expect(200);
    assert.match(dashboard.text, /id="overdue-requests"[^>]*>[^<]*1/);
    const admin = await signIn(app, await seedUser(knex, org, 'admin'));
    assert.match((await admin.agent.get('/dashboard').expect(200)).text, /id="overdue-requests"/);
    const clerkBrowser = await signIn(app, clerk);
    assert.doesNotMatch((await clerkBrowser.agent.get('/dashboard').expect(200)).text, /overdue-requests/);
    // Rejected is answered: no longer overdue.
    await compliance.agent.post(`/compliance/requests/${id}/status`).type('form').send({ _csrf: compliance.csrf, status: 'rejected', note: 'Identity not confirmed' }).expect(303);
    assert.doesNotMatch((await compliance.agent.get('/dashboard').expect(200)).text, /id="overdue-requests"/);
  });

  it('registering checks its input: a link of no call, a window without dates', async () => {
    const page = await compliance.agent.post('/compliance/requests').type('form').send({ _csrf: compliance.csrf, kind: 'erasure', identified_by: 'call_link', call_link: `https://x/join/${'b'.repeat(43)}` }).expect(400);
    assert.match(page.text, /aria-invalid="true"/);
    await compliance.agent.post('/compliance/requests').type('form').send({ _csrf: compliance.csrf, kind: 'erasure', identified_by: 'window' }).expect(400);
    assert.doesNotMatch(page.text, /bbbbbbbbbb/, 'the pasted link is not shown again');
  });

  it('a time window with a clerk finds that clerk\'s calls; another organisation\'s staff cannot open the request', async () => {
    const knex = db.current.knex;
    const call = await fullCall(crypto.randomBytes(32).toString('base64url'));
    const from = new Date(Date.now() - 3600_000).toISOString().slice(0, 16);
    const to = new Date(Date.now() + 3600_000).toISOString().slice(0, 16);
    const id = await register({ kind: 'access', identified_by: 'window', window_from: from, window_to: to, clerk_id: clerk.id });
    assert.ok((await knex('subject_requests').where({ id }).first())!.call_ids.includes(call.callId));
    const other = await seedOrganisation(knex, 'Other Request Org');
    const foreign = await signIn(app, await seedUser(knex, other, 'compliance'));
    await foreign.agent.get(`/compliance/requests/${id}`).set('Accept', 'application/json').expect(404);
    assert.ok(await knex('audit_events').where({ action: 'security.cross_organisation_denied', target_id: id }).first());
  });
});
