import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { ApiKeyService } from '../app/api-keys/service';
import { AuditService } from '../app/audit/service';
import { CallService } from '../app/calls/service';
import { SecuritySignals } from '../app/compliance/security';
import { callerFor, csrfFrom, PASSWORD, seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { connect, openCall, refusedCode, sessionCookie } from './support/signal-client';


interface EventRow {
  actor_type: string;
  actor_id: string | null;
  actor_label: string | null;
  target_type: string;
  target_id: string;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

/**
 * A staff user or API key of one organisation asking for ids of another:
 * 404 (or "unknown") as before, and the attempt is audited in the prober's
 * organisation AND in the target's, whose compliance staff see it among
 * their security signals.
 */
describe('ids of another organisation', () => {
  const db = useTestDatabase();
  let server: CallServer;
  let a: SeededOrganisation;
  let b: SeededOrganisation;
  const users = {} as Record<'adminA' | 'clerkA' | 'complianceA' | 'clerkB' | 'complianceB', SeededUser>;
  let productB: string;
  let callB: string;
  let recordingB: string;
  let keyA: { id: string; key: string };

  async function browser(user: SeededUser): Promise<{ agent: TestAgent; csrf: string }> {
    const agent = request.agent(server.url);
    const login = await agent.get('/login');
    await agent.post('/login').type('form').send({ _csrf: csrfFrom(login.text), email: user.email, password: PASSWORD }).expect(303);
    const page = await agent.get('/account');
    return { agent, csrf: csrfFrom(page.text) };
  }

  const probes = (organisationId: string) => db.current.knex('audit_events').where({ organisation_id: organisationId, action: 'security.cross_organisation_denied' }).orderBy('seq').select<EventRow[]>('actor_type', 'actor_id', 'actor_label', 'target_type', 'target_id', 'ip', 'user_agent', 'details');

  before(async () => {
    server = await startCallServer(db.current);
    const knex = db.current.knex;
    a = await seedOrganisation(knex, 'Prober Bank');
    b = await seedOrganisation(knex, 'Target Bank');
    users.adminA = await seedUser(knex, a, 'admin');
    users.clerkA = await seedUser(knex, a, 'clerk');
    users.complianceA = await seedUser(knex, a, 'compliance');
    users.clerkB = await seedUser(knex, b, 'clerk');
    users.complianceB = await seedUser(knex, b, 'compliance');
    productB = (await knex('products').insert({ organisation_id: b.id, sku: 'B-1', name: 'Target product', price_cents: 100, currency: 'EUR' }).returning('id'))[0]!.id;
    callB = (await new CallService(knex).start(callerFor(users.clerkB, b), 1)).call.id;
    recordingB = (await knex('recordings').insert({ organisation_id: b.id, call_id: callB, status: 'ready' }).returning('id'))[0]!.id;
    const created = await new ApiKeyService(knex, callerFor(users.adminA, a)).create({ name: 'CRM', scopes: ['calls:read', 'calls:write'], own_key: undefined });
    keyA = { id: created.apiKey.id, key: created.key };
  });

  after(async () => {
    await server?.close();
  });

  it('answers 404 or "unknown", audits the attempt in both organisations, and the target\'s compliance staff see it', async () => {
    const admin = await browser(users.adminA);
    const clerk = await browser(users.clerkA);
    const compliance = await browser(users.complianceA);

    // Web pages: a product, a call, a recording, and a legal hold naming a call.
    await admin.agent.get(`/admin/catalog/${productB}`).set('Accept', 'application/json').expect(404);
    await clerk.agent.get(`/calls/${callB}`).set('Accept', 'application/json').expect(404);
    await compliance.agent.get(`/recordings/${recordingB}`).set('Accept', 'application/json').expect(404);
    const hold = await compliance.agent.post('/compliance/holds').type('form').send({ _csrf: compliance.csrf, scope: 'call', target: callB, reason: 'probe' });
    assert.notEqual(hold.status, 303, 'no hold on another organisation\'s call');
    assert.equal(await db.current.knex('legal_holds').count({ n: '*' }).first().then((r) => Number(r!.n)), 0);

    // The REST API with the organisation's key: a call, and a call link for another organisation's clerk.
    await request(server.url).get(`/api/v1/calls/${callB}`).set('Authorization', `Bearer ${keyA.key}`).expect(404);
    await request(server.url).post('/api/v1/call-links').set('Authorization', `Bearer ${keyA.key}`).send({ clerkId: users.clerkB.id }).expect(400);

    // Signalling: a clerk connecting to another organisation's call, and showing another organisation's product in their own call.
    const cookie = await sessionCookie(server.url, users.clerkA);
    await assert.rejects(connect(server.url, { callId: callB }, cookie), /call_not_found/);
    const own = await openCall(db.current.knex, server.url, users.clerkA, cookie);
    try {
      assert.equal(await refusedCode(own.clerkSocket, 'curation.show', { productId: productB }), 'not_found');
    } finally {
      own.clerkSocket.close();
      own.customerSocket.close();
    }

    // Unknown ids and the organisation's own are not "another organisation's".
    await admin.agent.get(`/admin/catalog/${crypto.randomUUID()}`).set('Accept', 'application/json').expect(404);
    await request(server.url).get(`/api/v1/calls/${own.callId}`).set('Authorization', `Bearer ${keyA.key}`).expect(200);

    const expected = [
      ['product', productB, users.adminA.id, 'user'],
      ['call', callB, users.clerkA.id, 'user'],
      ['recording', recordingB, users.complianceA.id, 'user'],
      ['call', callB, users.complianceA.id, 'user'],
      ['call', callB, keyA.id, 'api_key'],
      ['user', users.clerkB.id, keyA.id, 'api_key'],
      ['call', callB, users.clerkA.id, 'user'],
      ['product', productB, users.clerkA.id, 'user'],
    ];
    const inTarget = await probes(b.id);
    assert.deepEqual(inTarget.map((e) => [e.target_type, e.target_id, e.actor_id, e.actor_type]), expected, 'the target organisation\'s trail names each attempt');
    for (const e of inTarget) {
      assert.deepEqual(e.details, { from_organisation_id: a.id });
      assert.equal(e.actor_label, null, 'no name or e-mail of the other organisation\'s staff');
      assert.equal(e.user_agent, null);
      assert.ok(e.ip, 'the client IP');
    }
    const inProber = await probes(a.id);
    assert.deepEqual(inProber.map((e) => [e.target_type, e.target_id, e.actor_id, e.actor_type]), expected, 'the prober\'s organisation still has each');
    assert.ok(inProber.every((e) => e.actor_label && !('from_organisation_id' in e.details)));

    // Both chains stay intact; the target's security signals count the attempts and list them.
    const audit = new AuditService(db.current.knex);
    assert.equal((await audit.verify(a.id)).ok, true);
    assert.equal((await audit.verify(b.id)).ok, true);
    const counts = await new SecuritySignals(db.current.knex).counts(b.id);
    assert.equal(counts.find((c) => c.kind === 'security.cross_organisation_denied')!.day, expected.length);
    const targetCompliance = await browser(users.complianceB);
    const page = await targetCompliance.agent.get('/compliance/security?kind=security.cross_organisation_denied').expect(200);
    assert.match(page.text, new RegExp(`data-kind="security.cross_organisation_denied">[\\s\\S]*?data-window="day">${expected.length}<`));
    assert.ok(page.text.includes(a.id), 'the prober\'s organisation id is shown');
    assert.ok(!page.text.includes(users.adminA.email) && !page.text.includes(users.clerkA.email), 'not their e-mail');
  });
});
