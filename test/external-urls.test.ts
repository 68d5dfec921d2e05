import assert from 'node:assert/strict';
import request from 'supertest';
import { anonymous, seedOrganisation, seedUser, signIn, type Browser } from './support/accounts';
import { buildApp } from './support/context';
import { attributeUrls, externalCspSources, externalCssUrls, externalUrls, isExternal, pageRoutes, routedTo } from './support/crawl';
import { useTestDatabase } from './support/database';

/**
 * Nothing leaves the organisation's network at run time: every page each
 * role (and an anonymous visitor, and a customer) can open loads nothing
 * from outside the appliance: no src, href, action, poster or srcset, no
 * CSS url() or @import, no Content-Security-Policy source, no redirect.
 */
describe('no page loads anything from outside the appliance', () => {
  const db = useTestDatabase();
  const PRODUCT_URL = 'https://shop.crawl-bank.example/products/fund-a';

  it('crawls every page of every role, the customer pages, and their stylesheets', async function () {
    this.timeout(120000);
    const app = buildApp(db.current);
    const { knex } = db.current;
    const org = await seedOrganisation(knex, 'Crawl Bank');
    await knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', adminAccess: true, clerkAccess: true } } });

    const stylesheets = new Map<string, string>();
    const visited: string[] = [];
    const check = async (browser: Browser | null, url: string, label: string, allowed: string[] = []) => {
      const res = await (browser ? browser.agent.get(url) : request(app).get(url)).set('Accept', 'text/html');
      visited.push(`${label} ${url} ${res.status}`);
      const csp = String(res.headers['content-security-policy'] ?? '');
      assert.ok(csp, `${label} ${url}: a Content-Security-Policy`);
      assert.deepEqual(externalCspSources(csp), [], `${label} ${url}: CSP sources`);
      if (res.headers.location) assert.ok(!isExternal(res.headers.location), `${label} ${url}: redirect to ${res.headers.location}`);
      if (!/text\/html/.test(String(res.headers['content-type']))) return res;
      assert.deepEqual(externalUrls(res.text).filter((u) => !allowed.includes(u)), [], `${label} ${url}: external URLs`);
      for (const u of attributeUrls(res.text)) if (/\.css(\?|$)/.test(u) && !stylesheets.has(u)) stylesheets.set(u, `${label} ${url}`);
      return res;
    };

    // Anonymous: every page (staff pages redirect to the sign-in page, which is checked too).
    for (const route of pageRoutes()) await check(null, route.path, 'anonymous');

    let clerk: Browser | undefined;
    for (const role of ['admin', 'clerk', 'compliance'] as const) {
      const browser = await signIn(app, await seedUser(knex, org, role));
      if (role === 'clerk') clerk = browser;
      for (const route of pageRoutes().filter((r) => r.path !== '/login' && routedTo(r, role))) {
        const res = await check(browser, route.path, role);
        assert.equal(res.status, 200, `${role} ${route.path}`);
      }
    }

    // The customer's pages: the queue, a fresh call link, and that link's summary after the call.
    assert.equal((await check(null, `/q/${org.slug}`, 'customer')).status, 200);
    const started = await clerk!.agent.post('/calls').type('form').send({ _csrf: clerk!.csrf }).expect(303);
    const [, callId, token] = /^\/calls\/([0-9a-f-]{36})#customer=([A-Za-z0-9_-]{43})$/.exec(started.headers.location ?? '')!;
    await check(clerk!, `/calls/${callId}`, 'clerk');
    assert.equal((await check(null, `/join/${token}`, 'customer')).status, 200);
    await knex('call_items').insert({ organisation_id: org.id, call_id: callId, sku: 'FUND-A', name: 'Fund A', price_cents: 10000, currency: 'EUR', product_url: PRODUCT_URL, position: 1 });
    await clerk!.agent.post(`/calls/${callId}/end`).type('form').send({ _csrf: clerk!.csrf }).expect(303);
    // The summary links to the organisation's own product page (a link the clerk chose, loaded by nothing).
    const summary = await check(null, `/join/${token}`, 'customer', [PRODUCT_URL]);
    assert.equal(summary.status, 200);
    assert.match(summary.text, /Fund A/);
    await check(clerk!, `/calls/${callId}`, 'clerk', [PRODUCT_URL]);

    // Every stylesheet the pages link, including the organisation's theme.
    assert.ok([...stylesheets.keys()].some((s) => s.startsWith('/static/')), 'the pages link the appliance\'s stylesheets');
    for (const [href, from] of stylesheets) {
      const res = await request(app).get(href);
      assert.equal(res.status, 200, `${href} (linked from ${from})`);
      assert.match(String(res.headers['content-type']), /text\/css/, href);
      assert.deepEqual(externalCssUrls(res.text), [], `${href}: url() or @import`);
    }
    assert.ok(visited.length >= 40, `visited ${visited.length} pages`);
  });

  it('the checks catch what they are meant to catch', () => {
    assert.deepEqual(externalUrls('<img src="//cdn.example/a.png"><a href="/x"></a><img srcset="/a.png 1x, https://cdn.example/b.png 2x">'), ['//cdn.example/a.png', 'https://cdn.example/b.png']);
    assert.deepEqual(externalUrls('<form action="HTTPS://evil.example/"></form><video poster="http://x.example/p.jpg">'), ['HTTPS://evil.example/', 'http://x.example/p.jpg']);
    assert.deepEqual(externalCssUrls(`@import "https://fonts.example/css"; a { background: url( '//cdn.example/x.png' ) } b { background: url(/static/ok.png) } /* url(https://comment.example) */`).sort(), ['//cdn.example/x.png', 'https://fonts.example/css']);
    assert.deepEqual(externalCspSources("default-src 'self'; img-src 'self' data: blob: https://cdn.example; frame-ancestors 'none'"), ['https://cdn.example']);
  });
});
