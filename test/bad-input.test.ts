import assert from 'node:assert/strict';
import type { Express } from 'express';
import type { Response } from 'supertest';
import request from 'supertest';
import { ApiKeyService, apiScopes } from '../app/api-keys/service';
import type { Role } from '../app/access/caller';
import type { Route } from '../app/routes';
import { routes } from '../app/routes';
import { callerFor, csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { routedTo } from './support/crawl';
import { useTestDatabase } from './support/database';

/**
 * Issue 13, finding 8: bad input answers 4xx, never 500. The whole route
 * table is crawled as each staff role (and through the API with a key):
 * every GET route gets each known query parameter repeated, 10,000
 * characters long and with a NUL byte, and a NUL byte in its path; every
 * POST route gets a NUL byte in every form field the pages show, as a form
 * and as JSON.
 */

/** Every query parameter some handler reads, and one nobody reads. */
const QUERY_PARAMS = ['q', 'category', 'active', 'page', 'status', 'limit', 'cursor', 'from', 'to', 'actor', 'action', 'kind', 'created', 'lang', 'return', '_csrf', 'x'];
/** Fields of the API's JSON bodies, beside those the pages' forms show. */
const API_FIELDS = ['clerkId', 'reference', 'validHours', 'scheduledAt'];
/** POST routes that would end the session or the organisation under test. */
const SKIPPED_POSTS = ['/login', '/logout', '/admin/organisation/close'];
const ROLES: Role[] = ['admin', 'clerk', 'compliance'];
const NUL = 'x\u0000y';

/** The route table (handlers are built, never run, so the deps are a stand-in). */
function table(): Route[] {
  return routes({ db: {} } as never);
}

/** GET pages without path parameters (as test/support/crawl.ts's pageRoutes). */
function pages(): Route[] {
  const notPages = ['/healthz', '/readyz', '/language', '/queue/ticket', '/metrics'];
  return table().filter((r) => r.method === 'get' && !r.path.includes(':') && !r.path.startsWith('/api/') && !/\.(js|json|csv)$/.test(r.path) && !notPages.includes(r.path));
}


function query(entries: [string, string][]): string {
  return entries.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

describe('bad input never answers 500 (issue 13)', () => {
  const db = useTestDatabase();
  let app: Express;
  let org: SeededOrganisation;
  let target: SeededUser;
  let apiKey: string;
  const browsers = new Map<Role, Browser>();
  const fields = new Set<string>(API_FIELDS);
  const refused: string[] = [];

  function concrete(path: string, value?: string): string {
    return path
      .replace(':imageId', value ?? target.id)
      .replace(':keyId', value ?? 'x')
      .replace(':id', value ?? target.id)
      .replace(':token', value ?? 'x'.repeat(43))
      .replace(':slug', value ?? org.slug);
  }

  /** The request as `role`, or with the API key for /api/ routes. */
  function send(route: Route, role: Role, path: string): request.Test {
    if (route.path.startsWith('/api/')) return request(app)[route.method](path).set('Authorization', `Bearer ${apiKey}`).set('Accept', 'application/json');
    return browsers.get(role)!.agent[route.method](path);
  }

  function check(res: Response, what: string): void {
    if (res.status >= 500) refused.push(`${what}: ${res.status} ${res.body?.error?.code ?? res.text.slice(0, 80)}`);
    if (res.status >= 400 && /json/.test(String(res.headers['content-type'])) && typeof res.body?.error?.code !== 'string') {
      refused.push(`${what}: ${res.status} without an error code`);
    }
  }

  before(async function () {
    this.timeout(120_000);
    app = buildApp(db.current);
    org = await seedOrganisation(db.current.knex, 'Input Bank');
    let admin: SeededUser | undefined;
    for (const role of ROLES) {
      const user = await seedUser(db.current.knex, org, role);
      if (role === 'admin') admin = user;
      browsers.set(role, await signIn(app, user));
    }
    target = await seedUser(db.current.knex, org, 'clerk', { name: 'Target Clerk' });
    apiKey = (await new ApiKeyService(db.current.knex, callerFor(admin!, org)).create({ name: 'All', scopes: [...apiScopes], own_key: undefined })).key;
    // The field names of every form a role can open.
    for (const role of ROLES) {
      for (const route of pages().filter((r) => routedTo(r, role))) {
        const res = await browsers.get(role)!.agent.get(route.path).set('Accept', 'text/html');
        for (const m of res.text.matchAll(/<(?:input|select|textarea)\b[^>]*\sname="([^"]+)"/g)) if (m[1] !== '_csrf') fields.add(m[1]!);
      }
    }
  });

  it('the repeated, over-long and NUL examples of the report answer 400 with a stable code', async () => {
    const clerk = browsers.get('clerk')!.agent;
    const repeated = await clerk.get('/catalog/search?q=a&q=b').set('Accept', 'application/json').expect(400);
    assert.equal(repeated.body.error.code, 'validation_failed');
    assert.deepEqual(repeated.body.error.details.fields, [{ field: 'q', code: 'invalid' }]);
    const long = await clerk.get(`/catalog/search?q=${'a'.repeat(10_000)}`).set('Accept', 'application/json').expect(400);
    assert.equal(long.body.error.code, 'invalid_input');
    const tooLongForSearch = await clerk.get(`/catalog/search?q=${'a'.repeat(201)}`).set('Accept', 'application/json').expect(400);
    assert.deepEqual(tooLongForSearch.body.error.details.fields, [{ field: 'q', code: 'too_long' }]);
    const nul = await clerk.get('/catalog/search?category=%00').set('Accept', 'application/json').expect(400);
    assert.equal(nul.body.error.code, 'invalid_input');
    const page = await browsers.get('admin')!.agent.get('/admin/catalog?category=a%00b').set('Accept', 'text/html').expect(400);
    assert.match(page.text, /invalid_input/);
    await clerk.get('/catalog/search?q=ok').set('Accept', 'application/json').expect(200);
  });

  it('a NUL byte in a form or JSON body is refused before the handler (nothing stored)', async () => {
    const { agent, csrf } = browsers.get('admin')!;
    const before = await db.current.knex('products').count({ n: '*' });
    const form = await agent.post('/admin/catalog/new').type('form').set('Accept', 'application/json').send({ _csrf: csrf, sku: 'NUL-1', name: NUL, price: '1', currency: 'EUR' }).expect(400);
    assert.equal(form.body.error.code, 'invalid_input');
    const json = await agent.post('/admin/catalog/new').set('X-CSRF-Token', csrf).set('Accept', 'application/json').send({ sku: 'NUL-2', name: 'ok', tags: ['a', NUL], price: '1', currency: 'EUR' }).expect(400);
    assert.equal(json.body.error.code, 'invalid_input');
    const key = await agent.post('/admin/catalog/new').set('X-CSRF-Token', csrf).set('Accept', 'application/json').send({ [`sku${NUL}`]: 'x' }).expect(400);
    assert.equal(key.body.error.code, 'invalid_input');
    const multipart = await agent.post(`/admin/catalog/import/preview?_csrf=${encodeURIComponent(csrf)}`).set('Accept', 'application/json').field('note', NUL).attach('file', Buffer.from('sku,name,price,currency\nA,B,1,EUR\n'), 'c.csv').expect(400);
    assert.equal(multipart.body.error.code, 'invalid_input');
    assert.deepEqual(await db.current.knex('products').count({ n: '*' }), before);
  });

  it('crawls every GET route with repeated, 10,000-character and NUL query values and a NUL path: no 500', async function () {
    this.timeout(600_000);
    let sent = 0;
    const longDone = new Set<string>();
    for (const route of table().filter((r) => r.method === 'get')) {
      // API routes answer the key, not the session: once is enough.
      for (const role of ROLES.filter((r) => routedTo(route, r) && (!route.path.startsWith('/api/') || r === 'admin'))) {
        const path = concrete(route.path);
        for (const accept of ['text/html', 'application/json']) {
          check(await send(route, role, `${path}?${query(QUERY_PARAMS.flatMap((p) => [[p, 'a'], [p, 'b']] as [string, string][]))}`).set('Accept', accept), `${role} GET ${route.path} repeated (${accept})`);
          check(await send(route, role, `${path}?${query(QUERY_PARAMS.map((p) => [p, NUL]))}`).set('Accept', accept), `${role} GET ${route.path} NUL (${accept})`);
          sent += 2;
        }
        if (route.path.includes(':')) {
          check(await send(route, role, concrete(route.path, 'a%00b')).set('Accept', 'application/json'), `${role} GET ${route.path} NUL in the path`);
          sent++;
        }
        // 10,000 characters, one parameter at a time (all at once would pass the header size limit), once per route.
        if (longDone.has(route.path)) continue;
        longDone.add(route.path);
        for (const param of QUERY_PARAMS) {
          check(await send(route, role, `${path}?${query([[param, 'a'.repeat(10_000)]])}`).set('Accept', 'application/json'), `${role} GET ${route.path} long ${param}`);
          sent++;
        }
      }
    }
    assert.ok(sent > 500, `${sent} requests`);
    assert.deepEqual(refused, []);
  });

  it('crawls every POST route with a NUL byte in every known field, as a form and as JSON: no 500', async function () {
    this.timeout(600_000);
    refused.length = 0;
    let sent = 0;
    const body = Object.fromEntries([...fields].map((f) => [f, NUL]));
    assert.ok(fields.size > 20, `${fields.size} fields harvested`);
    for (const route of table().filter((r) => r.method === 'post' && !SKIPPED_POSTS.includes(r.path))) {
      for (const role of ROLES.filter((r) => routedTo(route, r))) {
        const csrf = route.path.startsWith('/api/') ? '' : csrfFrom((await browsers.get(role)!.agent.get('/account').expect(200)).text);
        const path = concrete(route.path);
        const asForm = await send(route, role, path).type('form').set('Accept', 'text/html').send({ ...body, _csrf: csrf });
        check(asForm, `${role} POST ${route.path} form`);
        const asJson = await send(route, role, path).set('X-CSRF-Token', csrf).set('Accept', 'application/json').send(body);
        check(asJson, `${role} POST ${route.path} JSON`);
        sent += 2;
        if (route.path.startsWith('/api/')) break;
      }
    }
    assert.ok(sent > 50, `${sent} requests`);
    assert.deepEqual(refused, []);
  });
});
