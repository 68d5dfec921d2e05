import assert from 'node:assert/strict';
import request from 'supertest';
import { ApiKeyService } from '../app/api-keys/service';
import { openApiDocument } from '../app/api/openapi';
import { routes, type RouteDeps } from '../app/routes';
import { callerFor, seedOrganisation, seedUser, signIn, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';


describe('REST API v1', () => {
  const db = useTestDatabase();
  let app: ReturnType<typeof buildApp>;
  let org: SeededOrganisation;
  let clerk: SeededUser;
  let writeKey: string;
  let readKey: string;
  let foreignKey: string;
  /** A key of its own for the rate-limit test, so that the other tests never meet an empty bucket. */
  let burstKey: string;

  before(async () => {
    app = buildApp(db.current, { env: { VCLERK_PUBLIC_URL: 'https://vclerk.example.org' } });
    org = await seedOrganisation(db.current.knex, 'API Bank');
    const admin = await seedUser(db.current.knex, org, 'admin');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    const keys = new ApiKeyService(db.current.knex, callerFor(admin, org));
    writeKey = (await keys.create({ name: 'CRM', scopes: ['calls:read', 'calls:write'], own_key: undefined })).key;
    readKey = (await keys.create({ name: 'Reports', scopes: ['calls:read'], own_key: undefined })).key;
    burstKey = (await keys.create({ name: 'Burst', scopes: ['calls:read'], own_key: undefined })).key;
    const other = await seedOrganisation(db.current.knex, 'API Insurer');
    const otherAdmin = await seedUser(db.current.knex, other, 'admin');
    foreignKey = (await new ApiKeyService(db.current.knex, callerFor(otherAdmin, other)).create({ name: 'Other', scopes: ['calls:read', 'calls:write'], own_key: undefined })).key;
  });

  const api = (key: string) => ({
    get: (path: string) => request(app).get(path).set('Authorization', `Bearer ${key}`),
    post: (path: string, body: object) => request(app).post(path).set('Authorization', `Bearer ${key}`).send(body),
  });

  it('creates a call link for a clerk: the link once, the call waiting, audited with the key and IP', async () => {
    const res = await api(writeKey).post('/api/v1/call-links', { clerkId: clerk.id, reference: 'ORDER-77', validHours: 2 }).expect(201);
    assert.match(res.body.url, /^https:\/\/vclerk\.example\.org\/join\/[A-Za-z0-9_-]{43}$/);
    assert.equal(res.body.call.status, 'waiting');
    assert.equal(res.body.call.reference, 'ORDER-77');
    assert.equal(res.headers['cache-control'], 'no-store');
    const token = res.body.url.split('/').pop();
    await request(app).get(`/join/${token}`).expect(200);
    const [started] = await db.current.knex('audit_events').where({ action: 'call.started', target_id: res.body.call.id });
    assert.equal(started!.actor_type, 'api_key');
    assert.match(started!.ip!, /127\.0\.0\.1/);
    const [logged] = await db.current.knex('api_request_log').where({ path: '/api/v1/call-links', method: 'POST' });
    assert.equal(logged!.status, 201);
    assert.match(logged!.ip!, /127\.0\.0\.1/);
    assert.equal(await db.current.knex('audit_events').where({ action: 'api.request' }).first(), undefined, 'accepted requests are not in the audit trail');
  });

  it('refuses bad input with 400 and field codes, and creates nothing', async () => {
    const before = await db.current.knex('calls').count({ n: '*' });
    for (const body of [{}, { clerkId: 'x' }, { clerkId: clerk.id, reference: 'a@b.example' }, { clerkId: clerk.id, validHours: 0 }, { clerkId: clerk.id, extra: 1 }, { clerkId: clerk.id, scheduledAt: 'soon' }]) {
      const res = await api(writeKey).post('/api/v1/call-links', body).expect(400);
      assert.equal(res.body.error.code, 'validation_failed');
    }
    const notAClerk = await api(writeKey).post('/api/v1/call-links', { clerkId: (await seedUser(db.current.knex, org, 'compliance')).id }).expect(400);
    assert.deepEqual(notAClerk.body.error.details.fields, [{ field: 'clerk_id', code: 'unknown_clerk' }]);
    const bad = await request(app).post('/api/v1/call-links').set('Authorization', `Bearer ${writeKey}`).set('Content-Type', 'application/json').send('{"clerkId":').expect(400);
    assert.equal(bad.body.error.code, 'invalid_body');
    assert.deepEqual(await db.current.knex('calls').count({ n: '*' }), before);
  });

  it('lists and gets calls with paging, only of the key\'s organisation', async () => {
    for (let i = 0; i < 3; i++) await api(writeKey).post('/api/v1/call-links', { clerkId: clerk.id, reference: `PAGE-${i}` }).expect(201);
    const first = await api(readKey).get('/api/v1/calls?limit=2').expect(200);
    assert.equal(first.body.data.length, 2);
    assert.ok(first.body.nextCursor);
    const second = await api(readKey).get(`/api/v1/calls?limit=2&cursor=${first.body.nextCursor}`).expect(200);
    const ids = [...first.body.data, ...second.body.data].map((c: { id: string }) => c.id);
    assert.equal(new Set(ids).size, ids.length, 'pages do not overlap');
    const one = await api(readKey).get(`/api/v1/calls/${ids[0]}`).expect(200);
    assert.equal(one.body.call.id, ids[0]);
    const foreign = await api(foreignKey).get(`/api/v1/calls/${ids[0]}`).expect(404);
    assert.equal(foreign.body.error.code, 'call_not_found');
    assert.deepEqual((await api(foreignKey).get('/api/v1/calls').expect(200)).body.data, []);
    await api(readKey).get('/api/v1/calls?limit=1000').expect(400);
    await api(readKey).get('/api/v1/calls?cursor=garbage').expect(400);
    await api(readKey).get('/api/v1/calls?status=flying').expect(400);
  });

  it('revokes a link; a read-only key may not, nor may another organisation', async () => {
    const created = await api(writeKey).post('/api/v1/call-links', { clerkId: clerk.id }).expect(201);
    const id = created.body.call.id;
    const scope = await api(readKey).post(`/api/v1/calls/${id}/revoke-link`, {}).expect(403);
    assert.equal(scope.body.error.code, 'api_scope_missing');
    await api(foreignKey).post(`/api/v1/calls/${id}/revoke-link`, {}).expect(404);
    const revoked = await api(writeKey).post(`/api/v1/calls/${id}/revoke-link`, {}).expect(200);
    assert.equal(revoked.body.call.link.revoked, true);
    await request(app).get(`/join/${created.body.url.split('/').pop()}`).expect(404);
  });

  it('needs a valid key, answering JSON codes (no CSRF token needed, none accepted instead of a key)', async () => {
    const none = await request(app).post('/api/v1/call-links').send({ clerkId: clerk.id }).expect(401);
    assert.equal(none.body.error.code, 'api_key_missing');
    const wrong = await request(app).post('/api/v1/call-links').set('Authorization', 'Bearer vck_notakey').send({ clerkId: clerk.id }).expect(401);
    assert.equal(wrong.body.error.code, 'api_key_invalid');
    // With a session cookie, the CSRF protection applies to /api/ too.
    const withCookie = await request(app).post('/api/v1/call-links').set('Cookie', 'vclerk_sid=s%3Aforged').set('Authorization', `Bearer ${writeKey}`).send({ clerkId: clerk.id }).expect(403);
    assert.equal(withCookie.body.error.code, 'csrf_invalid');
  });

  it('reads the queue state', async () => {
    const res = await api(readKey).get('/api/v1/queue').expect(200);
    assert.deepEqual(res.body, { waiting: 0, availableClerks: 0 });
  });

  it('lists the organisation\'s active clerks with the ids clerkId takes: no other organisation, role or status, no e-mail (issue 13)', async () => {
    const anna = await seedUser(db.current.knex, org, 'clerk', { name: 'Anna Aktiv' });
    await seedUser(db.current.knex, org, 'clerk', { name: 'Dora Deaktiviert', status: 'deactivated' });
    await seedUser(db.current.knex, org, 'clerk', { name: 'Ivo Eingeladen', status: 'invited' });
    await seedUser(db.current.knex, org, 'compliance', { name: 'Carla Compliance' });
    const other = await db.current.knex('organisations').where({ slug: 'api-insurer' }).first('id');
    const foreignClerk = await seedUser(db.current.knex, other!, 'clerk', { name: 'Fremd Clerk' });

    const res = await api(readKey).get('/api/v1/clerks').expect(200);
    assert.equal(res.headers['cache-control'], 'no-store');
    const expected = await db.current.knex('users').where({ organisation_id: org.id, role: 'clerk', status: 'active' }).orderByRaw('lower(name), id').select('id', 'name');
    assert.deepEqual(res.body.data, expected);
    const names = res.body.data.map((c: { name: string }) => c.name);
    assert.ok(names.includes('Anna Aktiv') && names.includes(clerk.name));
    for (const absent of ['Dora Deaktiviert', 'Ivo Eingeladen', 'Carla Compliance', 'Fremd Clerk']) assert.ok(!names.includes(absent), absent);
    assert.doesNotMatch(res.text, /@/, 'no e-mail address');
    const schema = openApiDocument().components.schemas.Clerk;
    for (const listed of res.body.data) assert.deepEqual(Object.keys(listed).sort(), Object.keys(schema.properties).sort());

    // Another organisation's key sees only its own clerks.
    const foreign = await api(foreignKey).get('/api/v1/clerks').expect(200);
    assert.deepEqual(foreign.body.data, [{ id: foreignClerk.id, name: 'Fremd Clerk' }]);
    // A listed id creates a call link; a deactivated clerk, once listed, drops out.
    await api(writeKey).post('/api/v1/call-links', { clerkId: anna.id }).expect(201);
    await db.current.knex('users').where({ id: anna.id }).update({ status: 'deactivated' });
    const after = await api(readKey).get('/api/v1/clerks').expect(200);
    assert.ok(!after.body.data.some((c: { id: string }) => c.id === anna.id));
    // Unknown parameters are refused; no key, no list.
    assert.equal((await api(readKey).get('/api/v1/clerks?role=admin').expect(400)).body.error.code, 'validation_failed');
    await request(app).get('/api/v1/clerks').expect(401);
  });

  it('shows a clerk\'s id to admins (Users list and detail) and to the clerk (account page) (issue 13)', async () => {
    const admin = await signIn(app, await seedUser(db.current.knex, org, 'admin'));
    const list = await admin.agent.get('/admin/users').expect(200);
    assert.ok(list.text.includes(`data-user-id="${clerk.id}"`), 'the users list shows the id');
    const detail = await admin.agent.get(`/admin/users/${clerk.id}`).expect(200);
    assert.match(detail.text, new RegExp(`<code class="copy-id" data-user-id="${clerk.id}">${clerk.id}</code>`));
    assert.match(detail.text, /clerkId/);
    const own = await signIn(app, clerk);
    const account = await own.agent.get('/account').expect(200);
    assert.match(account.text, new RegExp(`data-user-id="${clerk.id}">${clerk.id}<`));
    assert.match(account.text, /clerkId/);
  });

  it('rate-limits each key', async () => {
    const results = await Promise.all(Array.from({ length: 80 }, () => api(burstKey).get('/api/v1/whoami')));
    assert.ok(results.some((r) => r.status === 429 && r.body.error.code === 'rate_limited' && r.headers['retry-after']));
    assert.ok(results.filter((r) => r.status === 200).length >= 40);
  });

  describe('OpenAPI document', () => {
    it('is served by the appliance', async () => {
      const res = await request(app).get('/api/v1/openapi.json').expect(200);
      assert.equal(res.body.openapi, '3.1.0');
    });

    it('describes exactly the /api/v1 routes of the route table', () => {
      const table = routes({} as RouteDeps)
        .filter((r) => r.path.startsWith('/api/v1/'))
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`)
        .sort();
      const documented = Object.entries(openApiDocument().paths)
        .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m} ${path}`))
        .sort();
      assert.deepEqual(documented, table);
    });

    it('its Call schema lists exactly the fields the API returns', async () => {
      const res = await api(readKey).get('/api/v1/calls?limit=1').expect(200);
      const call = res.body.data[0];
      const schema = openApiDocument().components.schemas.Call;
      assert.deepEqual(Object.keys(call).sort(), Object.keys(schema.properties).sort());
      assert.deepEqual([...schema.required].sort(), Object.keys(schema.properties).sort());
      assert.deepEqual(Object.keys(call.link).sort(), Object.keys(schema.properties.link.properties).sort());
      assert.ok(schema.properties.status.enum.includes(call.status));
    });
  });
});
