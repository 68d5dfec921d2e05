import assert from 'node:assert/strict';
import type { Express } from 'express';
import request, { type Response } from 'supertest';
import { ApiKeyService, apiScopes } from '../app/api-keys/service';
import type { Caller } from '../app/access/caller';
import { routes, type Route } from '../app/routes';
import { csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { pageRoutes, routedTo } from './support/crawl';
import { useTestDatabase } from './support/database';

/**
 * Issue 17, abuse: every form with script, template and SQL injection
 * payloads. The forms are found by crawling the pages as admin, clerk,
 * compliance and a customer; every POST route of the route table must be
 * covered by a crawled form or an entry below (a new route without one
 * fails). Every text field gets each payload with a valid CSRF token: no
 * 500, no database error in the answer, a stable status; afterwards every
 * page shows what was stored escaped (never live markup), and the tables
 * are all still there.
 */

const PAYLOADS = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "'; DROP TABLE users; --",
  "' OR '1'='1",
  '{{7*7}}',
  '<%= 7*7 %>',
  'Zoë 🎥 \u202e\u200b\u00ad ½',
  'A'.repeat(20_000),
];
/** What a page must never contain: the payloads as live markup (an element, or an attribute outside a quoted value). */
const LIVE_MARKUP = [/<script>alert\(1\)/i, /<img\s+src=x\s+onerror=/i];

/** Event-handler attributes of the page's tags (attribute names, not text inside quoted values). */
function handlerAttributes(html: string): string[] {
  const found: string[] = [];
  for (const tag of html.matchAll(/<[a-z][a-z0-9-]*((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*\/?>/gi)) {
    for (const attr of tag[1]!.matchAll(/([^\s"'>/=]+)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?/g)) {
      if (/^on/i.test(attr[1]!)) found.push(tag[0].slice(0, 120));
    }
  }
  return found;
}

function liveMarkup(html: string): string[] {
  return [...LIVE_MARKUP.filter((re) => re.test(html)).map((re) => `${re} near ${JSON.stringify(html.slice(Math.max(0, html.search(re) - 80), html.search(re) + 60))}`), ...handlerAttributes(html)];
}
/** A database or stack detail leaking into an answer. */
const LEAK = /syntax error at or near|unterminated quoted|SQLSTATE|violates .* constraint|relation "[^"]+" does not exist|column "[^"]+"|(?<![A-Za-z0-9_-])knex(?![A-Za-z0-9_-])|node_modules|at [\w.]+ \(\/|\.ts:\d+:\d+/i;
const ALLOWED = new Set([200, 201, 204, 302, 303, 400, 401, 403, 404, 409, 413, 422, 429]);

type Who = 'admin' | 'clerk' | 'compliance' | 'customer' | 'api';

/**
 * POST routes that no crawled page shows as a form (JSON or script-driven,
 * or only shown after another step), with who sends them and their fields;
 * and the routes not sent at all, with the reason.
 */
const EXTRA: Record<string, { who: Who; fields: string[] } | { skip: string }> = {
  '/logout': { skip: 'ends the session under test; takes no fields' },
  '/admin/organisation/close': { skip: 'would close the organisation under test (its confirmation is tested in closure.test.ts)' },
  '/session/keepalive': { who: 'clerk', fields: [] },
  '/login': { who: 'customer', fields: ['email', 'password', 'return'] },
  '/setup/:token': { who: 'customer', fields: ['name', 'email', 'organisation', 'password', 'password_confirm'] },
  '/invite/:token': { who: 'customer', fields: ['password', 'password_confirm'] },
  '/password-reset/:token': { who: 'customer', fields: ['password', 'password_confirm'] },
  '/admin/catalog/import/apply': { who: 'admin', fields: ['token', 'mode'] },
  '/queue/ticket/leave': { who: 'customer', fields: ['ticket'] },
  '/admin/users/:id/reactivate': { who: 'admin', fields: [] },
  '/admin/users/:id/unlock': { who: 'admin', fields: [] },
  '/admin/catalog/:id/images/:imageId/delete': { who: 'admin', fields: [] },
  '/admin/catalog/:id/images/:imageId/first': { who: 'admin', fields: [] },
  '/api/v1/call-links': { who: 'api', fields: ['reference', 'clerkId', 'validHours', 'scheduledAt'] },
  '/api/v1/calls/:id/revoke-link': { who: 'api', fields: ['reason'] },
  '/sso/:slug/ldap': { who: 'customer', fields: ['username', 'password'] },
  '/sso/:slug/oidc/backchannel-logout': { who: 'customer', fields: ['logout_token'] },
};

interface Form { route: Route; action: string; who: Who; fields: Map<string, string>; multipart: boolean }

function table(): Route[] {
  return routes({ db: {} } as never);
}

function patternOf(path: string): RegExp {
  return new RegExp(`^${path.replace(/[.]/g, '\\.').replace(/:[A-Za-z]+/g, '[^/?#]+')}$`);
}

/** The form fields of a page: name → the value it shows (text inputs, textareas, selects' first option, hidden, checked boxes). */
function formsOf(html: string): { action: string; multipart: boolean; fields: Map<string, { type: string; value: string }> }[] {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = m[1]!;
    if (!/method="post"/i.test(attrs)) continue;
    const action = (/action="([^"]*)"/.exec(attrs)?.[1] ?? '').replace(/&amp;/g, '&');
    const fields = new Map<string, { type: string; value: string }>();
    for (const f of m[2]!.matchAll(/<(input|textarea|select)\b([^>]*)>/gi)) {
      const name = /\sname="([^"]+)"/.exec(f[2]!)?.[1];
      if (!name || name === '_csrf') continue;
      const type = f[1]!.toLowerCase() === 'input' ? (/\stype="([^"]+)"/.exec(f[2]!)?.[1] ?? 'text').toLowerCase() : f[1]!.toLowerCase();
      const value = /\svalue="([^"]*)"/.exec(f[2]!)?.[1] ?? '';
      if (!fields.has(name)) fields.set(name, { type, value });
    }
    forms.push({ action, multipart: /multipart/i.test(attrs), fields });
  }
  return forms;
}

/** Types whose value a person types, so every payload goes there. */
const TEXT_TYPES = new Set(['text', 'textarea', 'search', 'email', 'url', 'tel', 'password']);

describe('every form with script, template and SQL injection payloads (issue 17)', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let app: Express;
  let org: SeededOrganisation;
  let target: SeededUser;
  let apiKey: string;
  let adminCaller: Caller;
  const browsers = new Map<Exclude<Who, 'customer' | 'api'>, Browser>();
  let customer: Browser;
  const forms: Form[] = [];
  const ids: Record<string, string> = {};
  let tablesBefore: string[] = [];
  let lastSent = '';
  const tableNames = async () => (await knex()('information_schema.tables').where({ table_schema: 'public' }).orderBy('table_name').pluck('table_name')) as string[];

  async function csrfOf(who: Who): Promise<string> {
    if (who === 'api') return '';
    if (who === 'customer') return customer.csrf;
    // The session's token stays for the session; a session that ended is a fault of the test's set-up.
    const page = await browsers.get(who)!.agent.get('/account');
    assert.equal(page.status, 200, `the ${who}'s session ended after ${lastSent}`);
    return csrfFrom(page.text);
  }

  function agentOf(who: Who) {
    if (who === 'customer') return customer.agent;
    if (who === 'api') return request(app);
    return browsers.get(who)!.agent;
  }

  /** Crawls the pages a role can open (the page routes and the detail pages they link to), collecting forms. */
  async function crawl(who: Exclude<Who, 'api'>, starts: string[]): Promise<Map<string, string>> {
    const gets = table().filter((r) => r.method === 'get' && (who === 'customer' ? r.access === 'public' : routedTo(r, who)));
    const seen = new Map<string, string>();
    const queue = [...starts];
    while (queue.length > 0 && seen.size < 80) {
      const path = queue.shift()!;
      if (seen.has(path)) continue;
      const res = await agentOf(who).get(path).set('Accept', 'text/html');
      seen.set(path, res.text);
      if (res.status !== 200 || !/text\/html/.test(String(res.headers['content-type']))) continue;
      for (const m of res.text.matchAll(/\shref="(\/[^"#?]*)[^"]*"/g)) {
        const href = m[1]!;
        if (/\.(csv|json|pdf|pem|js|css)$|\/(file|download|media|logo)$/.test(href) || href.startsWith('/static/')) continue;
        // Of the users, only the target's page: the others' forms would end the sessions under test.
        if (href.startsWith('/admin/users/') && href !== `/admin/users/${target.id}`) continue;
        if (gets.some((r) => r.path.includes(':') && patternOf(r.path).test(href))) queue.push(href);
      }
      for (const f of formsOf(res.text)) {
        const actionPath = f.action.split('?')[0]!;
        const route = table().find((r) => r.method === 'post' && patternOf(r.path).test(actionPath));
        if (!route || forms.some((x) => x.action.split('?')[0] === actionPath && x.who === who)) continue;
        const fields = new Map([...f.fields].map(([name, { type, value }]) => [name, TEXT_TYPES.has(type) ? `text:${value}` : value]));
        forms.push({ route, action: f.action, who, fields, multipart: f.multipart });
      }
    }
    return seen;
  }

  function check(res: Response, what: string, problems: string[]): void {
    if (!ALLOWED.has(res.status)) problems.push(`${what}: ${res.status}`);
    const text = res.text ?? '';
    if (LEAK.test(text)) problems.push(`${what}: leaks ${LEAK.exec(text)![0]}`);
    if (/html/.test(String(res.headers['content-type']))) {
      for (const live of liveMarkup(text)) problems.push(`${what}: live markup ${live}`);
    }
    if (res.status >= 400 && /json/.test(String(res.headers['content-type'])) && typeof res.body?.error?.code !== 'string') problems.push(`${what}: ${res.status} without an error code`);
  }

  before(async function () {
    this.timeout(120_000);
    app = buildApp(db.current, { env: { VCLERK_REFUSAL_BURST: '10000', VCLERK_LOGIN_MAX_FAILURES_PER_IP: '1000', VCLERK_LOGIN_MAX_FAILURES_PER_ACCOUNT: '100' } });
    tablesBefore = await tableNames();
    org = await seedOrganisation(knex(), 'Injection Bank');
    await knex()('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', adminAccess: true, clerkAccess: true } } });
    let admin: SeededUser | undefined;
    for (const role of ['admin', 'clerk', 'compliance'] as const) {
      const user = await seedUser(knex(), org, role);
      if (role === 'admin') admin = user;
      browsers.set(role, await signIn(app, user));
    }
    target = await seedUser(knex(), org, 'clerk', { name: 'Target Clerk' });
    adminCaller = { user: { id: admin!.id, organisationId: org.id, organisationSlug: org.slug, organisationName: org.name, organisationBrandVersion: 0, name: admin!.name, email: admin!.email, role: 'admin', language: null }, ip: '127.0.0.1', userAgent: 'test', sessionId: 'test' };
    apiKey = (await new ApiKeyService(knex(), adminCaller).create({ name: 'All', scopes: [...apiScopes], own_key: undefined })).key;

    // Something behind every form: a product, a webhook, an API key, a call with a reference, a hold and a request.
    const a = browsers.get('admin')!;
    await a.agent.post('/admin/catalog/new').type('form').send({ _csrf: a.csrf, sku: 'INJ-1', name: 'Plain product', price: '10', currency: 'EUR' });
    await a.agent.post('/admin/webhooks').type('form').send({ _csrf: a.csrf, url: 'https://hooks.example.org/x', events: 'call.ended' });
    await a.agent.post('/admin/api-keys').type('form').send({ _csrf: a.csrf, name: 'Page key', scopes: 'calls:read' });
    const c = browsers.get('clerk')!;
    const started = await c.agent.post('/calls').type('form').send({ _csrf: c.csrf, reference: 'INJ-0001' });
    ids.call = /\/calls\/([0-9a-f-]{36})/.exec(started.headers.location ?? '')?.[1] ?? '';
    // An ended call: its summary page has the notes form.
    const ended = await c.agent.post('/calls').type('form').send({ _csrf: c.csrf, reference: 'INJ-0002' });
    ids.ended = /\/calls\/([0-9a-f-]{36})/.exec(ended.headers.location ?? '')?.[1] ?? '';
    await c.agent.post(`/calls/${ids.ended}/end`).type('form').send({ _csrf: c.csrf });
    ids.product = (await knex()('products').where({ sku: 'INJ-1' }).first('id'))?.id ?? target.id;
    const k = browsers.get('compliance')!;
    await k.agent.post('/compliance/holds').type('form').send({ _csrf: k.csrf, scope: 'organisation', reason: 'Seeded hold' });
    await k.agent.post('/compliance/requests').type('form').send({ _csrf: k.csrf, kind: 'access', identified_by: 'reference', reference: 'INJ-0001' });

    await crawl('admin', [...pageRoutes().filter((r) => routedTo(r, 'admin')).map((r) => r.path), `/admin/users/${target.id}`]);
    await crawl('clerk', [...pageRoutes().filter((r) => routedTo(r, 'clerk')).map((r) => r.path), `/calls/${ids.call}`, `/calls/${ids.ended}`]);
    await crawl('compliance', pageRoutes().filter((r) => routedTo(r, 'compliance')).map((r) => r.path));
    customer = { agent: request.agent(app), csrf: '' };
    // A clerk available, so that the queue's landing page offers its form; the anonymous forms share the visitor's token.
    await c.agent.post('/availability').type('form').send({ _csrf: c.csrf, availability: 'available' });
    customer.csrf = csrfFrom((await customer.agent.get('/login')).text);
    await crawl('customer', [`/q/${org.slug}`, '/login']);
  });

  it('every POST route of the route table is covered by a crawled form or an entry', () => {
    const missing = table().filter((r) => r.method === 'post' && !forms.some((f) => f.route === r || f.route.path === r.path) && !EXTRA[r.path]).map((r) => r.path);
    assert.deepEqual(missing, [], 'POST routes with no form on any crawled page and no entry in EXTRA');
    const stale = Object.keys(EXTRA).filter((p) => !table().some((r) => r.method === 'post' && r.path === p));
    assert.deepEqual(stale, [], 'entries for routes that are gone');
  });

  it('every text field gets every payload: no 500, no database error shown, a stable answer', async function () {
    this.timeout(600_000);
    const problems: string[] = [];
    const sent = { requests: 0, fields: new Set<string>() };
    const skipped = (path: string) => { const e = EXTRA[path]; return e !== undefined && 'skip' in e; };
    const cases: Form[] = forms.filter((f) => !skipped(f.route.path));
    for (const [path, entry] of Object.entries(EXTRA)) {
      if ('skip' in entry || cases.some((f) => f.route.path === path)) continue;
      const route = table().find((r) => r.method === 'post' && r.path === path)!;
      const action = path.replace(':slug', org.slug).replace(':token', 'x'.repeat(43)).replace(':imageId', '00000000-0000-4000-8000-000000000000')
        .replace(':id', path.startsWith('/admin/users/') ? target.id : path.startsWith('/admin/catalog/') ? ids.product ?? target.id : ids.call || target.id);
      cases.push({ route, action, who: entry.who, fields: new Map(entry.fields.map((f) => [f, 'text:'])), multipart: false });
    }
    let freshKey = false;
    for (const form of cases) {
      if (form.who === 'api' && !freshKey) {
        // A key of its own: the crawled revoke form may have revoked the earlier one.
        freshKey = true;
        apiKey = (await new ApiKeyService(knex(), adminCaller).create({ name: 'Injection key', scopes: [...apiScopes], own_key: undefined })).key;
      }
      const csrf = await csrfOf(form.who);
      for (const [n, payload] of PAYLOADS.entries()) {
        // Text fields carry the payload; the others keep what the page offers (so the value can be stored).
        const body: Record<string, string> = {};
        for (const [name, value] of form.fields) {
          body[name] = value.startsWith('text:') ? payload : value;
          if (value.startsWith('text:')) sent.fields.add(`${form.route.path} ${name}`);
        }
        // A field no form has: every handler must ignore or refuse it.
        body.injected_extra = payload;
        const path = form.action.split('?')[0]!;
        let req = agentOf(form.who).post(form.multipart ? `${path}?_csrf=${encodeURIComponent(csrf)}` : path).set('Accept', 'text/html');
        if (form.who === 'api') req = req.set('Authorization', `Bearer ${apiKey}`).set('Accept', 'application/json');
        let res: Response;
        if (form.multipart) {
          for (const [k, v] of Object.entries(body)) req = req.field(k, v.length > 5000 ? v.slice(0, 5000) : v);
          if (form.fields.has('file') || path.endsWith('/import/preview')) req = req.attach('file', Buffer.from(`sku,name,price,currency\nINJ-${sent.requests},"${payload.replace(/"/g, '""').slice(0, 500)}",1,EUR\n`), 'inject.csv');
          res = await req;
        } else if (form.who === 'api') {
          res = await req.send(body);
        } else {
          res = await req.type('form').send({ ...body, _csrf: csrf });
        }
        sent.requests++;
        lastSent = `${form.who} POST ${form.action} ${payload.slice(0, 30)} → ${res.status}`;
        check(res, `${form.who} POST ${form.route.path} ${JSON.stringify(payload.slice(0, 30))}`, problems);
        // Follow a redirect once: the page shown after a stored value.
        if (n < 2 && (res.status === 302 || res.status === 303) && res.headers.location?.startsWith('/') && form.who !== 'api') {
          check(await agentOf(form.who).get(res.headers.location).set('Accept', 'text/html'), `${form.who} GET ${res.headers.location} after ${form.route.path}`, problems);
        }
      }
    }
    console.log(`      ${cases.length} forms (${new Set(cases.map((c) => c.route.path)).size} POST routes), ${sent.fields.size} text fields, ${PAYLOADS.length} payloads: ${sent.requests} requests`);
    assert.ok(cases.length >= 40, `${cases.length} forms`);
    assert.ok(sent.fields.size >= 40, `${sent.fields.size} text fields`);
    assert.deepEqual(problems, []);
  });

  it('afterwards every page shows the stored payloads escaped, never as live markup, and the tables are intact', async function () {
    this.timeout(300_000);
    const problems: string[] = [];
    let escapedSeen = 0;
    let pages = 0;
    for (const who of ['admin', 'clerk', 'compliance', 'customer'] as const) {
      const starts = who === 'customer' ? [`/q/${org.slug}`, '/login'] : [...pageRoutes().filter((r) => routedTo(r, who)).map((r) => r.path), ...(who === 'admin' ? [`/admin/users/${target.id}`] : [])];
      for (const [path, html] of await crawl(who, starts)) {
        pages++;
        for (const live of liveMarkup(html)) problems.push(`${who} ${path}: live markup ${live}`);
        if (LEAK.test(html)) problems.push(`${who} ${path}: leaks ${LEAK.exec(html)![0]}`);
        // Later payloads overwrite earlier ones in the same field: any of them, escaped, shows the value was stored and shown again.
        if (['&lt;script&gt;alert(1)&lt;/script&gt;', '&#34;&gt;&lt;img src=x onerror=alert(1)&gt;', '&#39;; DROP TABLE users; --', '{{7*7}}', '&lt;%= 7*7 %&gt;', 'Zoë 🎥'].some((e) => html.includes(e))) escapedSeen++;
      }
    }
    console.log(`      ${pages} pages crawled after the payloads; ${escapedSeen} show a stored payload (escaped)`);
    assert.deepEqual(problems, []);
    assert.ok(escapedSeen >= 5, 'stored payloads are shown again (escaped) on several pages');
    // The tables are all there, and nothing was emptied.
    assert.deepEqual(await tableNames(), tablesBefore, 'every table is still there');
    assert.ok(Number((await knex()('users').count({ n: '*' }))[0]!.n) >= 4, 'the users are still there');
    assert.equal(Number((await knex()('organisations').where({ id: org.id }).count({ n: '*' }))[0]!.n), 1);
  });
});
