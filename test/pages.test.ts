import assert from 'node:assert/strict';
import request from 'supertest';
import { seedOrganisation, seedUser, signIn } from './support/accounts';
import { buildApp } from './support/context';
import { externalUrls, inlineCode, pageRoutes, routedTo } from './support/crawl';
import { useTestDatabase } from './support/database';

/** Pages a visitor can reach today; later features add theirs here. */
const PAGES = ['/', '/no-such-page'];

describe('pages', () => {
  const db = useTestDatabase();

  for (const lang of ['en', 'de']) {
    for (const page of PAGES) {
      it(`${page} (${lang}) has no inline script or style and loads nothing from outside`, async () => {
        const res = await request(buildApp(db.current)).get(page).set('Accept-Language', lang).set('Accept', 'text/html');
        const html = res.text;
        assert.match(html, /^<!doctype html>/i);
        assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/i, 'no inline <script>');
        assert.doesNotMatch(html, /<style/i, 'no <style> element');
        assert.doesNotMatch(html, /\sstyle=/i, 'no style attribute');
        assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handler');
        const urls = [...html.matchAll(/\s(?:src|href|action|poster|srcset)="([^"]*)"/gi)].map((m) => m[1]!);
        assert.ok(urls.length > 0);
        const external = urls.filter((u) => /^(https?:)?\/\//i.test(u));
        assert.deepEqual(external, []);
      });
    }

    it(`the start page (${lang}) is accessible: language, title, landmarks, skip link, labelled images`, async () => {
      const res = await request(buildApp(db.current)).get('/').set('Accept-Language', lang).expect(200);
      assert.match(res.text, new RegExp(`<html lang="${lang}">`));
      assert.match(res.text, /<title>[^<]+<\/title>/);
      assert.match(res.text, /<main id="main"/);
      assert.match(res.text, /<a class="skip-link" href="#main">/);
      for (const img of res.text.match(/<img[^>]*>/g) ?? []) assert.match(img, /\salt="/);
      assert.match(res.text, /<meta name="viewport"/);
    });
  }
});

describe('every page a signed-in user can reach', () => {
  const db = useTestDatabase();

  it('has no inline script or style, no inline handler, and loads nothing from outside (crawled from the route table)', async () => {
    const app = buildApp(db.current);
    const org = await seedOrganisation(db.current.knex, 'Crawl Bank');
    // Every role may reach every page it is routed to (recordings need the policy's permission).
    await db.current.knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', adminAccess: true, clerkAccess: true } } });
    const pages = pageRoutes().filter((r) => r.path !== '/login');
    let checked = 0;
    for (const role of ['admin', 'clerk', 'compliance'] as const) {
      const { agent } = await signIn(app, await seedUser(db.current.knex, org, role));
      for (const route of pages) {
        if (!routedTo(route, role)) continue;
        const res = await agent.get(route.path).set('Accept', 'text/html');
        assert.equal(res.status, 200, `${role} ${route.path}`);
        const html = res.text;
        assert.deepEqual(inlineCode(html), [], `${route.path}: inline script, style or handler`);
        assert.deepEqual(externalUrls(html), [], `${route.path}: external URLs (more in test/external-urls.test.ts)`);
        checked++;
      }
    }
    assert.ok(checked >= 12, `crawled ${checked} pages`);
  });
});
