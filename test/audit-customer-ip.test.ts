import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Express } from 'express';
import type { Knex } from 'knex';
import { io, type Socket } from 'socket.io-client';
import { verifyExport } from '../app/compliance/audit-offline-verify';
import { AuditService } from '../app/audit/service';
import { CallService } from '../app/calls/service';
import { runRetention } from '../app/retention/run';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { connect, join, ok, sessionCookie } from './support/signal-client';
import { setRetention } from './retention-seed';
import { unzip } from './support/zip';

const CUSTOMER_UA = 'CustomerBrowser/7.1 (crypto-shredding test)';
const DAY_MS = 86_400_000;

function binary(req: import('supertest').Test) {
  return req.buffer(true).parse((r, done) => {
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => chunks.push(c));
    r.on('end', () => done(null, Buffer.concat(chunks)));
  });
}

describe("audit trail: customers' IP addresses and browsers (crypto-shredding)", function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  const knex = (): Knex => db.current.knex;
  let server: CallServer;
  let app: Express;

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 300 });
    app = buildApp(db.current, { env: { VCLERK_DATA_DIR: server.dataDir } });
  });
  after(async () => server.close());

  interface Org {
    org: SeededOrganisation;
    clerk: SeededUser;
    clerkCookie: string;
    compliance: Browser;
  }

  async function organisation(name: string): Promise<Org> {
    const org = await seedOrganisation(knex(), name);
    const clerk = await seedUser(knex(), org, 'clerk');
    return { org, clerk, clerkCookie: await sessionCookie(server.url, clerk), compliance: await signIn(app, await seedUser(knex(), org, 'compliance')) };
  }

  /** A real call over signalling: clerk and customer (with a browser's user agent) join the media and leave; the call ends. */
  async function callWithCustomer(o: Org): Promise<{ callId: string; token: string }> {
    const caller = { user: { id: o.clerk.id, organisationId: o.org.id } as never, ip: '127.0.0.1', userAgent: 'staff-browser', sessionId: 'x' };
    const { call, token } = await new CallService(knex()).start(caller, 1);
    const clerk = await connect(server.url, { callId: call.id }, o.clerkCookie);
    const customer: Socket = io(server.url, { path: '/signal', auth: { token }, transports: ['websocket'], reconnection: false, extraHeaders: { 'User-Agent': CUSTOMER_UA } });
    await new Promise<void>((resolve, reject) => {
      customer.once('connect', resolve);
      customer.once('connect_error', reject);
    });
    try {
      await join(clerk);
      await join(customer);
      await ok(customer, 'leave');
      await ok(clerk, 'leave');
    } finally {
      customer.close();
      clerk.close();
    }
    await new CallService(knex()).end(call.id, 'ended_by_clerk', { type: 'system' });
    return { callId: call.id, token };
  }

  async function customerEvents(o: Org, callId: string) {
    return knex()('audit_events').where({ organisation_id: o.org.id, target_id: callId, actor_type: 'guest' }).whereIn('action', ['call.joined', 'call.left']).orderBy('seq');
  }

  async function auditPage(o: Org): Promise<string> {
    return (await o.compliance.agent.get('/compliance/audit?action=call').expect(200)).text;
  }

  async function exportVerifies(o: Org, name: string): Promise<{ ok: boolean; rows: string[] }> {
    const res = await o.compliance.agent.post('/compliance/audit/export').type('form').send({ _csrf: o.compliance.csrf, format: 'ndjson' }).expect(303);
    const id = /created=([0-9a-f-]{36})/.exec(res.headers.location ?? '')?.[1];
    assert.ok(id, res.headers.location);
    const file = path.join(server.dataDir, `${name}.ndjson`);
    const manifest = path.join(server.dataDir, `${name}.manifest.json`);
    fs.writeFileSync(file, (await binary(o.compliance.agent.get(`/compliance/audit/exports/${id}/file`)).expect(200)).body as Buffer);
    fs.writeFileSync(manifest, (await binary(o.compliance.agent.get(`/compliance/audit/exports/${id}/manifest.json`)).expect(200)).body as Buffer);
    const result = await verifyExport(file, manifest);
    return { ok: result.ok, rows: fs.readFileSync(file, 'utf8').trim().split('\n') };
  }

  async function register(o: Org, kind: 'erasure' | 'access', token: string): Promise<string> {
    const res = await o.compliance.agent.post('/compliance/requests').type('form').send({ _csrf: o.compliance.csrf, kind, identified_by: 'call_link', call_link: token, note: 'By letter' }).expect(303);
    const id = /^\/compliance\/requests\/([0-9a-f-]{36})$/.exec(String(res.headers.location))?.[1];
    assert.ok(id, res.headers.location);
    await o.compliance.agent.post(`/compliance/requests/${id}/execute`).type('form').send({ _csrf: o.compliance.csrf }).expect(303);
    return id;
  }

  async function zipEvents(o: Org, requestId: string, callId: string): Promise<{ action: string; ip: string | null; user_agent: string | null }[]> {
    const res = await binary(o.compliance.agent.get(`/compliance/requests/${requestId}/download`)).expect(200);
    const entries = await unzip(res.body as Buffer);
    return JSON.parse(entries.get(`calls/${callId}/events.json`)!.toString());
  }

  it('stores a customer\'s IP and browser only encrypted (the staff\'s stay plain), and the audit page shows them while the key exists', async () => {
    const o = await organisation('Shred Bank');
    const { callId } = await callWithCustomer(o);

    const customer = await customerEvents(o, callId);
    assert.deepEqual(customer.map((e) => e.action), ['call.joined', 'call.left']);
    const raw = JSON.stringify(customer);
    assert.doesNotMatch(raw, /127\.0\.0\.1/, 'no customer IP in plain text');
    assert.ok(!raw.includes('CustomerBrowser'), 'no customer user agent in plain text');
    assert.ok(customer.every((e) => String(e.ip).startsWith('enc1:') && String(e.user_agent).startsWith('enc1:')));
    const keys = await knex()('audit_personal_keys').where({ organisation_id: o.org.id });
    assert.equal(keys.length, 1, 'one key for the call');
    assert.equal(keys[0]!.call_id, callId);

    const clerkJoin = await knex()('audit_events').where({ organisation_id: o.org.id, target_id: callId, actor_type: 'user', action: 'call.joined' }).first();
    assert.match(clerkJoin!.ip!, /127\.0\.0\.1/, "the clerk's IP is the staff's security log: plain");

    const { events } = await new AuditService(knex()).list(o.org.id, { action: 'call.joined' }, { limit: 10, offset: 0 });
    const shown = events.find((e) => e.actorType === 'guest')!;
    assert.match(String(shown.ip), /127\.0\.0\.1/);
    assert.equal(shown.userAgent, CUSTOMER_UA);
    assert.equal(shown.personalErased, false);
    const page = await auditPage(o);
    assert.ok(!page.includes('enc1:'), 'the page shows no ciphertext');
    assert.doesNotMatch(page, /class="ip-erased"/);
    assert.equal((await new AuditService(knex()).verify(o.org.id)).ok, true);
  });

  it('an erasure request destroys the call\'s key: the page shows "erased", the chain and an export still verify', async () => {
    const o = await organisation('Erasure Shred Bank');
    const { callId, token } = await callWithCustomer(o);
    const other = await callWithCustomer(o);
    const before = await customerEvents(o, callId);

    const requestId = await register(o, 'erasure', token);
    const key = await knex()('audit_personal_keys').where({ call_id: callId }).first();
    assert.equal(key!.key, null, 'the key is gone');
    assert.equal(key!.destroyed_by, 'erasure');
    assert.ok((await knex()('audit_personal_keys').where({ call_id: other.callId }).first())!.key, "another call's key stays");
    const result = (await knex()('subject_requests').where({ id: requestId }).first())!.result;
    assert.deepEqual(result!.audit_ips_erased, { keys: 1, events: 2 });
    assert.deepEqual(await customerEvents(o, callId), before, 'the audit rows themselves are unchanged');

    const { events } = await new AuditService(knex()).list(o.org.id, { action: 'call.joined' }, { limit: 10, offset: 0 });
    const erased = events.find((e) => e.targetId === callId && e.actorType === 'guest')!;
    assert.equal(erased.ip, null);
    assert.equal(erased.userAgent, null);
    assert.equal(erased.personalErased, true);
    const kept = events.find((e) => e.targetId === other.callId && e.actorType === 'guest')!;
    assert.match(String(kept.ip), /127\.0\.0\.1/);
    assert.match(await auditPage(o), /class="ip-erased">erased \(key destroyed\)</);
    assert.match((await o.compliance.agent.get(`/compliance/requests/${requestId}`).expect(200)).text, /id="audit-ips-erased">2</);

    const verified = await new AuditService(knex()).verify(o.org.id);
    assert.equal(verified.ok, true, 'the chain is intact');
    const exported = await exportVerifies(o, 'erasure');
    assert.equal(exported.ok, true, 'the export verifies offline');
    const joinedRow = exported.rows.map((l) => JSON.parse(l)).find((r) => r.action === 'call.joined' && r.target_id === callId && r.actor_type === 'guest');
    assert.equal(joinedRow.ip, before[0]!.ip, 'the export carries the stored (encrypted) value');
  });

  it('retention destroys keys older than the setting (receipt written): page, access ZIP and export follow, the chain stays intact', async () => {
    const o = await organisation('Retention Shred Bank');
    const { callId, token } = await callWithCustomer(o);
    // A customer event without a call is kept under the organisation's key of the month.
    await new AuditService(knex()).record({ organisationId: o.org.id, actor: { type: 'guest', label: 'Customer' }, action: 'recording.consent', ip: '198.51.100.23', userAgent: CUSTOMER_UA, customer: { callId: null } });
    const monthKey = await knex()('audit_personal_keys').where({ organisation_id: o.org.id }).whereNotNull('period').first();
    assert.equal(monthKey!.period, new Date().toISOString().slice(0, 7));
    const consentRow = await knex()('audit_events').where({ organisation_id: o.org.id, action: 'recording.consent' }).first();
    assert.ok(!JSON.stringify(consentRow).includes('198.51.100.23'));

    const access = await register(o, 'access', token);
    const readable = await zipEvents(o, access, callId);
    assert.deepEqual(readable.map((e) => e.action), ['call.joined', 'call.left']);
    assert.ok(readable.every((e) => /127\.0\.0\.1/.test(String(e.ip)) && e.user_agent === CUSTOMER_UA), 'the access ZIP has them readable');

    await setRetention(knex(), o.org.id, { audit_customer_ips: 1 });
    await runRetention(knex(), { dataDir: server.dataDir, organisationId: o.org.id, now: new Date(Date.now() - DAY_MS / 2) });
    assert.equal((await knex()('audit_personal_keys').where({ organisation_id: o.org.id }).whereNull('key')).length, 0, 'nothing is due within the setting');

    const receipts = await runRetention(knex(), { dataDir: server.dataDir, organisationId: o.org.id, now: new Date(Date.now() + 2 * DAY_MS) });
    assert.equal(receipts.find((r) => r.kind === 'audit_customer_ips')!.rows, 2, 'the call key and the month key');
    const keys = await knex()('audit_personal_keys').where({ organisation_id: o.org.id });
    assert.ok(keys.every((k) => k.key === null && k.destroyed_by === 'retention'));
    const [receipt] = await knex()('audit_events').where({ organisation_id: o.org.id, action: 'retention.deleted' }).whereRaw(`details->>'kind' = 'audit_customer_ips'`);
    assert.equal(receipt!.details.keys_destroyed, 2);
    assert.equal(receipt!.details.days, 1);

    const erased = await zipEvents(o, access, callId);
    assert.ok(erased.every((e) => e.ip === 'erased' && e.user_agent === 'erased'), 'the access ZIP says erased');
    assert.match(await auditPage(o), /class="ip-erased"/);
    assert.equal((await new AuditService(knex()).verify(o.org.id)).ok, true, 'the chain is intact');
    assert.equal((await exportVerifies(o, 'retention')).ok, true, 'the export verifies offline');
    assert.match((await o.compliance.agent.get('/compliance/retention').expect(200)).text, /name="audit_customer_ips" type="number" value="1"/);
  });
});
