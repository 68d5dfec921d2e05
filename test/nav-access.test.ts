import assert from 'node:assert/strict';
import type { Express } from 'express';
import type { Role } from '../app/access/caller';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { attributeUrls, isExternal } from './support/crawl';
import { useTestDatabase } from './support/database';

/**
 * Issue 13, finding 15: a menu showed admins *Recordings* although the
 * organisation's policy gives them no access (the click answered 403 and
 * was audited as a security event). For each role, with and without
 * recording access, the pages the user reaches are crawled from the
 * dashboard, and every link of every menu (`<nav>`) and every other
 * internal link on those pages must open: no 403.
 */

const MAX_PAGES = 120;

/** The links inside the page's <nav> elements (header and section menus). */
function navLinks(html: string): string[] {
  const links: string[] = [];
  for (const nav of html.matchAll(/<nav\b[\s\S]*?<\/nav>/gi)) {
    for (const m of nav[0].matchAll(/<a\b[^>]*\shref="([^"]*)"/gi)) links.push(m[1]!.replace(/&amp;/g, '&'));
  }
  return links;
}

/** Internal GET links worth following (no assets, no fragments). */
function internal(url: string): string | null {
  if (!url.startsWith('/') || isExternal(url) || url.startsWith('/static/')) return null;
  return url.split('#')[0]!;
}

interface Crawl {
  visited: Map<string, number>;
  menu: Set<string>;
}

async function crawl(browser: Browser): Promise<Crawl> {
  const visited = new Map<string, number>();
  const menu = new Set<string>();
  const queue = ['/dashboard'];
  while (queue.length > 0 && visited.size < MAX_PAGES) {
    const url = queue.shift()!;
    if (visited.has(url)) continue;
    const res = await browser.agent.get(url).set('Accept', 'text/html');
    visited.set(url, res.status);
    if (res.status !== 200 || !/html/.test(String(res.headers['content-type']))) continue;
    for (const link of navLinks(res.text)) {
      const target = internal(link);
      if (target) menu.add(target);
    }
    for (const link of [...navLinks(res.text), ...attributeUrls(res.text)]) {
      const target = internal(link);
      // Follow pages, not downloads; /language only sets a cookie and goes back.
      if (target && !visited.has(target) && !/\/(media|download|file)$|\.(csv|pdf|pem|json|js|png|svg|ico)(\?|$)|^\/language\b|^\/logout$/.test(target)) queue.push(target);
    }
  }
  return { visited, menu };
}

describe('menus offer only what the user may open (issue 13)', () => {
  const db = useTestDatabase();
  let app: Express;
  let closed: SeededOrganisation;
  let open: SeededOrganisation;
  const browsers = new Map<string, Browser>();

  async function setPolicy(org: SeededOrganisation, policy: { adminAccess: boolean; clerkAccess: boolean }) {
    await db.current.knex('organisations').where({ id: org.id }).update({
      settings: db.current.knex.raw(`settings || ?::jsonb`, [JSON.stringify({ recording: { mode: 'on_demand', allowUnrecorded: false, ...policy } })]),
    });
  }

  before(async () => {
    app = buildApp(db.current);
    closed = await seedOrganisation(db.current.knex, 'Closed Recordings Bank');
    open = await seedOrganisation(db.current.knex, 'Open Recordings Bank');
    await setPolicy(closed, { adminAccess: false, clerkAccess: false });
    await setPolicy(open, { adminAccess: true, clerkAccess: true });
    for (const [label, org, role] of [
      ['admin without recording access', closed, 'admin'],
      ['admin with recording access', open, 'admin'],
      ['clerk without recording access', closed, 'clerk'],
      ['clerk with recording access', open, 'clerk'],
      ['compliance', closed, 'compliance'],
    ] as [string, SeededOrganisation, Role][]) {
      browsers.set(label, await signIn(app, await seedUser(db.current.knex, org, role)));
    }
  });

  for (const label of ['admin without recording access', 'admin with recording access', 'clerk without recording access', 'clerk with recording access', 'compliance']) {
    it(`${label}: every menu link and every internal link of the reachable pages opens (no 403)`, async () => {
      const browser = browsers.get(label)!;
      const deniedBefore = await db.current.knex('audit_events').whereIn('action', ['security.role_denied', 'security.recording_access_denied']).count({ n: '*' });
      const { visited, menu } = await crawl(browser);
      assert.ok(visited.size >= 3, `${visited.size} pages crawled`);
      for (const link of menu) if (!visited.has(link)) visited.set(link, (await browser.agent.get(link).set('Accept', 'text/html')).status);
      const refused = [...visited].filter(([, status]) => status === 403 || status >= 500);
      assert.deepEqual(refused, [], 'links that do not open');
      const deniedAfter = await db.current.knex('audit_events').whereIn('action', ['security.role_denied', 'security.recording_access_denied']).count({ n: '*' });
      assert.deepEqual(deniedAfter, deniedBefore, 'no security event from following the menus');

      const offersRecordings = menu.has('/recordings');
      const mayOpen = label === 'compliance' || label.endsWith('with recording access');
      assert.equal(offersRecordings, mayOpen, `the menu ${mayOpen ? 'offers' : 'hides'} Recordings`);
      if (label.startsWith('admin')) assert.ok(menu.has('/compliance/audit') && menu.has('/admin/users'), 'admins still see their menus');
      if (label.startsWith('clerk')) assert.ok(![...menu].some((l) => l.startsWith('/admin') || l.startsWith('/compliance')), 'no admin or compliance menu for clerks');
    });
  }

  it('a policy change shows or hides the link on the next page', async () => {
    const admin = browsers.get('admin without recording access')!;
    assert.doesNotMatch((await admin.agent.get('/compliance/audit').expect(200)).text, /href="\/recordings"/);
    await setPolicy(closed, { adminAccess: true, clerkAccess: false });
    assert.match((await admin.agent.get('/compliance/audit').expect(200)).text, /href="\/recordings"/);
    await admin.agent.get('/recordings').expect(200);
    await setPolicy(closed, { adminAccess: false, clerkAccess: false });
    assert.doesNotMatch((await admin.agent.get('/compliance/audit').expect(200)).text, /href="\/recordings"/);
  });
});
