import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import type { Express } from 'express';
import type { Knex } from 'knex';
import pino from 'pino';
import request, { type Response } from 'supertest';
import { commonPasswords } from '../app/security/common-passwords';
import { apiKeyAuth } from '../app/api-keys/middleware';
import { checkProvidedKey, generateKey } from '../app/api-keys/service';
import { REFUSAL_COUNT_SQL, refusalsFor } from '../app/audit/refusals';
import { sha256 } from '../app/security/tokens';
import { routes, type Route } from '../app/routes';
import { csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { eventually } from './support/wait';

/** A dummy route that needs a scope no test key has (the real ones are in the route table). */
function extra(knex: Knex): Route[] {
  return [
    { method: 'get', path: '/api/v1/test/recordings', access: 'public', handlers: [apiKeyAuth(knex, 'recordings:read'), (_req, res) => { res.json({ ok: true }); }] },
  ];
}

/** A strong key of the organisation's own: 64 random base64 characters. */
function strongKey(): string {
  return crypto.randomBytes(48).toString('base64');
}

function keyIn(html: string): string {
  const key = /id="issued-key" type="text" value="([^"]+)"/.exec(html)?.[1];
  if (!key) throw new Error('no key on the page');
  return key;
}


describe('API keys', () => {
  const db = useTestDatabase();
  const logLines: string[] = [];
  let app: Express;
  let org: SeededOrganisation;
  let admin: Browser;
  let clerk: Browser;
  let compliance: Browser;
  let foreignAdmin: Browser;

  const knex = () => db.current.knex;

  async function create(fields: Record<string, unknown>, status: number, as: Browser = admin): Promise<Response> {
    const page = await as.agent.get('/admin/api-keys').expect(200);
    return as.agent.post('/admin/api-keys').type('form').send({ _csrf: csrfFrom(page.text), ...fields }).expect(status);
  }

  async function createKey(fields: Record<string, unknown> = {}): Promise<{ key: string; id: string; html: string }> {
    const res = await create({ name: `Key ${crypto.randomUUID().slice(0, 6)}`, scopes: ['calls:read'], ...fields }, 201);
    const key = keyIn(res.text);
    const row = await knex()('api_keys').where({ key_hash: sha256(key) }).first('id');
    return { key, id: row!.id, html: res.text };
  }

  async function revoke(id: string, status: number, as: Browser = admin): Promise<Response> {
    const page = await as.agent.get('/account').expect(200);
    return as.agent.post(`/admin/api-keys/${id}/revoke`).type('form').send({ _csrf: csrfFrom(page.text) }).set('Accept', 'application/json').expect(status);
  }

  async function countKeys(): Promise<number> {
    return Number((await knex()('api_keys').count({ n: '*' }))[0]!.n);
  }

  before(async () => {
    const sink = new Writable({ write(chunk, _encoding, done) { logLines.push(String(chunk)); done(); } });
    app = buildApp(db.current, { routes: (deps) => [...routes(deps), ...extra(deps.db)], env: { VCLERK_LOG_REQUESTS: 'true' }, logger: pino({ level: 'info' }, sink) });
    org = await seedOrganisation(knex(), 'Key Bank');
    const other = await seedOrganisation(knex(), 'Other Bank');
    admin = await signIn(app, await seedUser(knex(), org, 'admin'));
    clerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
    compliance = await signIn(app, await seedUser(knex(), org, 'compliance'));
    foreignAdmin = await signIn(app, await seedUser(knex(), other, 'admin'));
  });

  describe('strength of an organisation\'s own key', () => {
    it('accepts long random keys and the appliance\'s own', () => {
      assert.equal(checkProvidedKey(strongKey()), null);
      assert.equal(checkProvidedKey(crypto.randomBytes(32).toString('hex')), null);
      assert.equal(checkProvidedKey(generateKey()), null);
      assert.match(generateKey(), /^vck_[A-Za-z0-9_-]{43}$/);
    });

    it('refuses short, long, spaced, repeated, sequential and common keys', () => {
      assert.equal(checkProvidedKey('Zq8!xW2#'), 'key_too_short');
      assert.equal(checkProvidedKey(strongKey().repeat(5)), 'key_too_long');
      assert.equal(checkProvidedKey(`${strongKey().slice(0, 20)} ${strongKey().slice(0, 20)}`), 'key_invalid_characters');
      assert.equal(checkProvidedKey('a'.repeat(40)), 'key_too_weak');
      assert.equal(checkProvidedKey('Xy7#Qp2!Lm9'.repeat(4)), 'key_too_weak');
      assert.equal(checkProvidedKey('abcdefghijklmnopqrstuvwxyz0123456789ABCDEF'), 'key_too_weak');
      assert.equal(checkProvidedKey([...commonPasswords].slice(0, 4).join('')), 'key_too_weak');
      assert.equal(checkProvidedKey(crypto.randomBytes(16).toString('hex')), 'key_too_weak', '128 bits in all, but 48 of them are shown as the prefix');
    });

    it('refuses keys of long repeats, also behind a random prefix or before a random tail (issue 13)', () => {
      const prefix = () => crypto.randomBytes(9).toString('base64url');
      for (const weak of ['ac'.repeat(122), 'a'.repeat(64), '0123456789'.repeat(10)]) {
        assert.equal(checkProvidedKey(weak), 'key_too_weak', weak);
        const shown = `${prefix()}${weak}`.slice(0, 256);
        assert.equal(checkProvidedKey(shown), 'key_too_weak', shown);
        assert.equal(checkProvidedKey(`${weak.slice(0, 200)}${prefix()}`), 'key_too_weak', 'a random tail adds too little');
      }
      assert.equal(checkProvidedKey(`${prefix()}${'aZ9!'.repeat(50)}`), 'key_too_weak', 'four classes, but one unit repeated');
      for (let i = 0; i < 50; i++) assert.equal(checkProvidedKey(crypto.randomBytes(48).toString('base64url')), null, 'a real random key passes');
    });
  });

  it('an admin creates a generated key: shown once, stored only as its hash and prefix, audited', async () => {
    const res = await create({ name: 'Booking system', scopes: ['calls:read', 'calls:write'] }, 201);
    assert.match(res.headers['cache-control'] ?? '', /no-store/);
    const key = keyIn(res.text);
    assert.match(key, /^vck_[A-Za-z0-9_-]{43}$/);

    const row = await knex()('api_keys').where({ organisation_id: org.id, name: 'Booking system' }).first();
    assert.equal(row!.key_hash, sha256(key));
    assert.equal(row!.prefix, key.slice(0, 12));
    assert.deepEqual(row!.scopes, ['calls:read', 'calls:write']);
    assert.equal(row!.origin, 'generated');
    assert.ok(!JSON.stringify(row).includes(key), 'the key itself is not stored');

    const list = await admin.agent.get('/admin/api-keys').expect(200);
    assert.match(list.text, /Booking system/);
    assert.ok(list.text.includes(row!.prefix), 'the list shows the prefix');
    assert.ok(!list.text.includes(key), 'the list never shows the key again');

    const [event] = await knex()('audit_events').where({ action: 'api_key.created', target_id: row!.id });
    assert.equal(event!.organisation_id, org.id);
    assert.deepEqual(event!.details.scopes, ['calls:read', 'calls:write']);
    assert.ok(event!.ip);
  });

  it('an organisation\'s own strong key is accepted and works', async () => {
    const own = strongKey();
    const res = await create({ name: 'Own key', scopes: 'calls:read', own_key: own }, 201);
    assert.equal(keyIn(res.text), own);
    const row = await knex()('api_keys').where({ key_hash: sha256(own) }).first();
    assert.equal(row!.origin, 'provided');
    assert.equal(row!.prefix, own.slice(0, 12));
    const who = await request(app).get('/api/v1/whoami').set('X-API-Key', own).expect(200);
    assert.deepEqual(who.body, { organisation: { slug: org.slug }, key: { prefix: own.slice(0, 12), scopes: ['calls:read'] } });
  });

  it('weak, short and common own keys are refused with 400 and nothing is stored', async () => {
    const before = await countKeys();
    const weak: [string, RegExp][] = [
      ['short-key-123', /at least 32 characters/],
      ['a'.repeat(48), /too easy to guess/],
      ['abcdefghijklmnopqrstuvwxyz0123456789ABCDEF', /too easy to guess/],
      [[...commonPasswords].slice(0, 4).join(''), /too easy to guess/],
      [`${strongKey().slice(0, 20)} ${strongKey().slice(0, 20)}`, /without spaces/],
    ];
    for (const [ownKey, message] of weak) {
      const res = await create({ name: 'Weak one', scopes: ['calls:read'], own_key: ownKey }, 400);
      assert.match(res.text, message);
      assert.match(res.text, /value="Weak one"/, 'the form keeps the name');
      assert.ok(!res.text.includes(`value="${ownKey}"`), 'the own key is not shown back');
    }
    const noScope = await create({ name: 'No scope' }, 400);
    assert.match(noScope.text, /at least one scope/);
    const badScope = await create({ name: 'Bad scope', scopes: ['admin:all'] }, 400);
    assert.match(badScope.text, /scopes from the list/);
    await create({ name: '', scopes: ['calls:read'] }, 400);
    assert.equal(await countKeys(), before);
  });

  it('a key already in use cannot be provided again', async () => {
    const { key } = await createKey();
    const res = await create({ name: 'Copy', scopes: ['calls:read'], own_key: key }, 400);
    assert.match(res.text, /cannot be used/);
  });

  it('GET /api/v1/whoami with a key answers, notes last use, and is logged with key id and IP (in the API request log)', async () => {
    const { key, id } = await createKey({ scopes: ['calls:read', 'recordings:read'] });
    const res = await request(app).get('/api/v1/whoami').set('Authorization', `Bearer ${key}`).expect(200);
    assert.deepEqual(res.body, { organisation: { slug: org.slug }, key: { prefix: key.slice(0, 12), scopes: ['calls:read', 'recordings:read'] } });

    const row = await knex()('api_keys').where({ id }).first();
    assert.ok(row!.last_used_at instanceof Date);
    assert.match(row!.last_used_ip!, /127\.0\.0\.1/);

    const logged = await eventually(() => knex()('api_request_log').where({ api_key_id: id }).first());
    assert.equal(logged.organisation_id, org.id);
    assert.equal(logged.key_prefix, key.slice(0, 12));
    assert.match(logged.ip!, /127\.0\.0\.1/);
    assert.deepEqual([logged.method, logged.path, logged.status, logged.aborted], ['GET', '/api/v1/whoami', 200, false]);

    const list = await admin.agent.get('/admin/api-keys').expect(200);
    assert.match(list.text, /from (::ffff:)?127\.0\.0\.1/, 'the list shows when and from where the key was last used');
  });

  describe('refusals', () => {
    async function refusal(reason: string, since: number) {
      return knex()('audit_events').where({ action: 'api.refused' }).where('id', '>', since).whereRaw(`details->>'reason' = ?`, [reason]).first();
    }
    async function lastEventId(): Promise<number> {
      return Number((await knex()('audit_events').max({ id: 'id' }))[0]!.id ?? 0);
    }

    it('no key: 401 api_key_missing, audited appliance-wide with the IP', async () => {
      const since = await lastEventId();
      const res = await request(app).get('/api/v1/whoami').set('Accept', 'application/json').expect(401);
      assert.equal(res.body.error.code, 'api_key_missing');
      assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/);
      const event = await refusal('missing', since);
      assert.equal(event!.organisation_id, null);
      assert.equal(event!.chain, 'system');
      assert.match(event!.ip!, /127\.0\.0\.1/);
      assert.equal(event!.details.path, '/api/v1/whoami');
    });

    it('a malformed or unknown key: 401 api_key_invalid, audited appliance-wide', async () => {
      const since = await lastEventId();
      for (const header of [['Authorization', 'Basic dXNlcjpwYXNz'], ['X-API-Key', 'short'], ['Authorization', 'Bearer ']]) {
        const res = await request(app).get('/api/v1/whoami').set(header[0]!, header[1]!).set('Accept', 'application/json').expect(401);
        assert.equal(res.body.error.code, 'api_key_invalid');
      }
      const unknown = generateKey();
      const res = await request(app).get('/api/v1/whoami').set('Authorization', `Bearer ${unknown}`).expect(401);
      assert.equal(res.body.error.code, 'api_key_invalid');
      // The first refusal of a source and reason is written at once, the others are counted and written in aggregate (issue 13).
      const [first] = await knex()('audit_events').where({ action: 'api.refused' }).where('id', '>', since).whereRaw(`details->>'reason' = 'malformed'`);
      assert.equal(first!.details.path, '/api/v1/whoami');
      await refusalsFor(knex()).flush();
      const malformed = await knex()('audit_events').where({ action: 'api.refused' }).where('id', '>', since).whereRaw(`details->>'reason' = 'malformed'`).sum({ n: knex().raw(REFUSAL_COUNT_SQL) });
      assert.equal(Number(malformed[0]?.n), 3);
      const event = await refusal('unknown', since);
      assert.equal(event!.organisation_id, null);
      assert.match(event!.ip!, /127\.0\.0\.1/);
      assert.ok(!JSON.stringify(event).includes(unknown), 'the presented key is not in the trail');
    });

    it('a key without the needed scope: 403 api_scope_missing, audited in the organisation', async () => {
      const { key, id } = await createKey({ scopes: ['calls:read'] });
      const since = await lastEventId();
      const res = await request(app).get('/api/v1/test/recordings').set('Authorization', `Bearer ${key}`).expect(403);
      assert.equal(res.body.error.code, 'api_scope_missing');
      const event = await refusal('scope', since);
      assert.equal(event!.organisation_id, org.id);
      assert.equal(event!.actor_id, id);
      assert.equal(event!.details.scope, 'recordings:read');

      const scoped = await createKey({ scopes: ['recordings:read'] });
      await request(app).get('/api/v1/test/recordings').set('X-API-Key', scoped.key).expect(200, { ok: true });
    });
  });

  it('an admin revokes a key: audited, listed as revoked, and the key stops working', async () => {
    const { key, id } = await createKey({ name: 'Old integration' });
    await request(app).get('/api/v1/whoami').set('Authorization', `Bearer ${key}`).expect(200);
    const revoked = await revoke(id, 303);
    assert.equal(revoked.headers.location, '/admin/api-keys');

    const row = await knex()('api_keys').where({ id }).first();
    assert.ok(row!.revoked_at instanceof Date);
    const revokedEvents = await knex()('audit_events').where({ action: 'api_key.revoked', target_id: id });
    assert.equal(revokedEvents.length, 1);
    const list = await admin.agent.get('/admin/api-keys').expect(200);
    assert.match(list.text, /The API key is revoked/);
    assert.match(list.text, /Revoked /);

    const res = await request(app).get('/api/v1/whoami').set('Authorization', `Bearer ${key}`).expect(401);
    assert.equal(res.body.error.code, 'api_key_invalid');
    const refused = await knex()('audit_events').where({ action: 'api.refused', actor_id: id }).first();
    assert.equal(refused!.details.reason, 'revoked');
    assert.equal(refused!.organisation_id, org.id);

    await revoke(id, 303);
    assert.equal((await knex()('audit_events').where({ action: 'api_key.revoked', target_id: id })).length, 1, 'revoking twice changes nothing');
  });

  it('clerks and compliance staff cannot see, create or revoke keys', async () => {
    const { id } = await createKey();
    const before = await countKeys();
    for (const browser of [clerk, compliance]) {
      await browser.agent.get('/admin/api-keys').set('Accept', 'application/json').expect(403);
      await browser.agent.post('/admin/api-keys').set('X-CSRF-Token', browser.csrf).set('Accept', 'application/json').send({ name: 'x', scopes: ['calls:read'] }).expect(403);
      await revoke(id, 403, browser);
    }
    assert.equal(await countKeys(), before);
    assert.equal((await knex()('api_keys').where({ id }).first())!.revoked_at, null);
  });

  it('another organisation\'s admin cannot see or revoke this organisation\'s key (404, unchanged, audited)', async () => {
    const { id } = await createKey({ name: 'Private integration' });
    const list = await foreignAdmin.agent.get('/admin/api-keys').expect(200);
    assert.doesNotMatch(list.text, /Private integration/);
    const res = await revoke(id, 404, foreignAdmin);
    assert.equal(res.body.error.code, 'not_found');
    assert.equal((await knex()('api_keys').where({ id }).first())!.revoked_at, null);
    const denied = await knex()('audit_events').where({ action: 'security.cross_organisation_denied', target_id: id });
    assert.equal(denied.length, 2, 'in the prober\'s organisation and in this one');
    assert.ok(denied.every((e) => e.target_type === 'api_key'));
    await revoke('not-a-uuid', 404, foreignAdmin);
  });

  it('a key never appears in the audit trail, the request log or the sessions', async () => {
    const { key, id } = await createKey({ scopes: ['calls:read'] });
    await request(app).get('/api/v1/whoami').set('Authorization', `Bearer ${key}`).expect(200);
    await request(app).get('/api/v1/test/recordings').set('X-API-Key', key).expect(403);
    await revoke(id, 303);
    await request(app).get('/api/v1/whoami?key=x').set('Authorization', `Bearer ${key}`).expect(401);
    await eventually(() => knex()('api_request_log').where({ api_key_id: id }).first());

    assert.ok(!JSON.stringify(await knex()('api_request_log').select('*')).includes(key), 'the API request log does not hold the key');
    const events = await knex()('audit_events').select('*');
    assert.ok(events.length > 0);
    assert.ok(!JSON.stringify(events).includes(key), 'no audit event holds the key');
    assert.ok(!JSON.stringify(await knex()('sessions').select('*')).includes(key), 'no session holds the key');
    const log = logLines.join('');
    assert.match(log, /\/api\/v1\/whoami/, 'API requests are in the request log');
    assert.ok(!log.includes(key), 'the request log does not hold the key');
    assert.ok(!log.includes(key.slice(4)), 'not even part of it');
  });
});
