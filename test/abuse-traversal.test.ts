import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { ApiKeyService, apiScopes } from '../app/api-keys/service';
import type { Caller } from '../app/access/caller';
import { publicDir } from '../app/core/paths';
import { routes, type Route } from '../app/routes';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { routedTo } from './support/crawl';
import { useTestDatabase } from './support/database';

/**
 * Issue 17, abuse: path traversal on every route that serves a file or a
 * path-derived resource. Taken from the route table (every GET route with a
 * path parameter or a file name, so a new file route is covered by itself)
 * and the static mount: each parameter gets `../`, encoded, double-encoded,
 * backslashed, absolute, NUL and overlong-UTF-8 forms aimed at /etc/passwd,
 * the repository's package.json and sources, and the data directory. Every
 * answer is 400 or 404 with the normal error page, never a file's content,
 * never 500.
 */

/** Where the traversals aim: outside every served directory. */
const TARGETS = ['etc/passwd', 'package.json'];
const DEPTH = 8;

function traversals(file: string): string[] {
  const up = (sep: string) => sep.repeat(DEPTH);
  const enc = file.replace(/\//g, '%2f');
  return [
    `${up('../')}${file}`,
    `${up('..%2f')}${enc}`,
    `${up('%2e%2e%2f')}${enc}`,
    `${up('%2e%2e/')}${file}`,
    `${up('%252e%252e%252f')}${file.replace(/\//g, '%252f')}`,
    `${up('..%5c')}${file.replace(/\//g, '%5c')}`,
    `${up('..\\')}${file.replace(/\//g, '\\')}`,
    `${up('....//')}${file}`,
    `${up('%c0%ae%c0%ae%c0%af')}${enc}`,
    `${up('%c0%ae%c0%ae/')}${file}`,
    `%2f${enc}`,
    `/${file}`,
    `${up('../')}${file}%00.png`,
    `${up('..%2f')}${enc}%00`,
    `x%00${up('/..')}/${file}`,
  ];
}

const PAYLOADS = [...new Set(TARGETS.flatMap(traversals))];

/** What a leaked file would show. */
const LEAKS = [/root:x?:0:0:/, /"name":\s*"vclerk"/, /"devDependencies"/, /import express/, /createApp/, /VCLERK_[A-Z_]+=/, /BEGIN [A-Z ]*PRIVATE KEY/];

/** GET routes whose path carries a name or an id, or names a file: where a path could reach the disk. */
function fileRoutes(): Route[] {
  return routes({ db: {} } as never).filter((r) => r.method === 'get' && (r.path.includes(':') || /\.[a-z]+$/.test(r.path)));
}

describe('path traversal on every file route (issue 17)', () => {
  const db = useTestDatabase();
  let app: Express;
  let org: SeededOrganisation;
  const browsers = new Map<string, Browser>();
  let apiKey = '';

  before(async function () {
    this.timeout(120_000);
    app = buildApp(db.current, { env: { VCLERK_REFUSAL_BURST: '10000', VCLERK_REFUSAL_PER_MINUTE: '10000' } });
    org = await seedOrganisation(db.current.knex, 'Traversal Bank');
    await db.current.knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', adminAccess: true, clerkAccess: true } } });
    for (const role of ['admin', 'clerk', 'compliance'] as const) {
      const user = await seedUser(db.current.knex, org, role);
      browsers.set(role, await signIn(app, user));
      if (role === 'admin') {
        const caller: Caller = { user: { id: user.id, organisationId: org.id, organisationSlug: org.slug, organisationName: org.name, organisationBrandVersion: 0, name: user.name, email: user.email, role: 'admin', language: null }, ip: '127.0.0.1', userAgent: 'test', sessionId: 'test' };
        apiKey = (await new ApiKeyService(db.current.knex, caller).create({ name: 'All', scopes: [...apiScopes], own_key: undefined })).key;
      }
    }
  });

  function agentFor(route: Route) {
    if (route.path.startsWith('/api/')) return { get: (url: string) => request(app).get(url).set('Authorization', `Bearer ${apiKey}`) };
    if (route.access === 'public') return request(app);
    const role = ['compliance', 'admin', 'clerk'].find((r) => routedTo(route, r))!;
    return browsers.get(role)!.agent;
  }

  function check(res: request.Response, what: string, problems: string[]): void {
    if (res.status !== 400 && res.status !== 404) problems.push(`${what}: ${res.status}`);
    const body = res.text ?? (Buffer.isBuffer(res.body) ? res.body.toString('utf8') : '');
    for (const leak of LEAKS) if (leak.test(body)) problems.push(`${what}: shows ${leak}`);
    // The error page, or a link's own "invalid or expired" page (404 in the layout).
    if (/text\/html/.test(String(res.headers['content-type'])) && !/class="error-page"/.test(body) && !(res.status === 404 && /<main id="main"/.test(body))) problems.push(`${what}: not the error page`);
  }

  it('the static mount: every traversal is 404 with the error page, never a file outside public/', async function () {
    this.timeout(120_000);
    const problems: string[] = [];
    for (const payload of PAYLOADS) {
      for (const prefix of ['/static/', '/static/css/', '/static/vendor/']) {
        check(await request(app).get(`${prefix}${payload}`).set('Accept', 'text/html'), `GET ${prefix}${payload}`, problems);
      }
    }
    // The mount still serves its own files.
    const css = fs.readdirSync(path.join(publicDir, 'css')).find((f) => f.endsWith('.css'))!;
    await request(app).get(`/static/css/${css}`).expect(200);
    assert.deepEqual(problems, []);
  });

  it('public/ holds no symbolic link that would lead out of it', () => {
    const links: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isSymbolicLink()) links.push(full);
        else if (entry.isDirectory()) walk(full);
      }
    };
    walk(publicDir);
    assert.deepEqual(links, []);
  });

  it('every file route of the route table, each parameter: 400 or 404 with the error page, never a file, never 500', async function () {
    this.timeout(300_000);
    const problems: string[] = [];
    const table = fileRoutes();
    let sent = 0;
    for (const route of table) {
      const params = route.path.match(/:[A-Za-z]+/g) ?? [];
      // A route without parameters (a file name of its own): the traversal goes after it.
      const variants = params.length === 0
        ? PAYLOADS.map((p) => `${route.path}/${p}`)
        : params.flatMap((param) => PAYLOADS.map((p) => route.path.replace(param, p).replace(/:[A-Za-z]+/g, (other) => (other === ':slug' ? org.slug : '00000000-0000-4000-8000-000000000000'))));
      for (const url of variants) {
        const res = await agentFor(route).get(url).set('Accept', 'text/html');
        sent++;
        check(res, `GET ${route.path} as ${url}`, problems);
      }
    }
    console.log(`      ${table.length} file routes + the static mount, ${PAYLOADS.length} traversals each: ${sent} requests`);
    assert.ok(table.length >= 15, `${table.length} file routes`);
    assert.deepEqual(problems.slice(0, 40), [], `${problems.length} problems on ${[...new Set(problems.map((p) => p.split(' as ')[0]))].join(', ')}`);
  });
});
