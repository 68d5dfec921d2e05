import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { forgetDiscovery } from '../../app/sso/oidc-client';
import { seedOrganisation, type SeededOrganisation } from '../support/accounts';
import { launchBrowser } from '../support/browser';
import { buildApp } from '../support/context';
import { useTestDatabase } from '../support/database';
import { TEST_ACCOUNT_PASSWORD } from '../support/oidc-interactions';
import { startTestProvider, type TestProvider } from '../support/oidc-provider';
import { seedSsoProvider } from '../support/sso';

/**
 * OpenID Connect single sign-on in a real headless Chromium: the app on
 * 127.0.0.1, opened by the browser (and configured) as http://localhost:<port>,
 * so that the provider (oidc-provider on http://127.0.0.1:<other port>) is
 * another site, as a real identity provider is: the session cookie must come
 * back on the provider's cross-site redirect to the callback. The browser
 * chooses the provider on /sso/<slug>, signs in and consents on the
 * provider's own pages, and lands signed in with the role the groups claim
 * maps to; removed from the group, the person is refused at the next sign-in
 * and the earlier browser's session is gone; a back-channel logout from the
 * provider ends a browser's session.
 */
describe('SSO: OpenID Connect sign-in in a real browser', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let op: TestProvider;
  let org: SeededOrganisation;
  let server: http.Server;
  let base: string;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  before(async function () {
    this.timeout(60_000);
    org = await seedOrganisation(db.current.knex, 'Browser Oidc Bank');
    server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    base = `http://localhost:${port}`;
    server.on('request', buildApp(db.current, { env: { VCLERK_PUBLIC_URL: base } }));
    [op, browser] = await Promise.all([
      startTestProvider({
        interactive: true,
        redirectUri: `${base}/sso/${org.slug}/oidc/callback`,
        // The provider's server reaches the app on the address it listens on.
        backchannelLogoutUri: `http://127.0.0.1:${port}/sso/${org.slug}/oidc/backchannel-logout`,
        postLogoutRedirectUri: `${base}/`,
      }),
      launchBrowser(),
    ]);
    assert.notEqual(new URL(op.issuer).hostname, new URL(base).hostname, 'the provider is another site');
    await seedSsoProvider(db.current.knex, org.id, 'oidc', {
      label: 'Bank login',
      settings: { issuer: op.issuer, clientId: op.clientId },
      secret: op.clientSecret,
      mappings: [
        { directory_group: 'vclerk-admins', role: 'admin' },
        { directory_group: 'vclerk-clerks', role: 'clerk' },
      ],
    });
  });

  after(async () => {
    await Promise.allSettled(contexts.map((c) => c.close()));
    await browser?.close().catch(() => undefined);
    forgetDiscovery();
    await op?.close();
    if (server) await new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  });

  const knex = () => db.current.knex;
  const alice = () => knex()('users').where({ organisation_id: org.id, email: 'alice@example.test' }).first();

  /** A fresh browser profile (cookies of neither the app nor the provider), every wait bounded. */
  async function freshPage(): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    context.setDefaultTimeout(10_000);
    context.setDefaultNavigationTimeout(15_000);
    return context.newPage();
  }

  /**
   * In the browser: the organisation's sign-in page, its OIDC button, the
   * provider's sign-in form and consent page, back to VClerk. Returns the
   * status of the first VClerk page after the provider (the callback's answer
   * or the page it redirected to).
   */
  async function signIn(page: Page, account: string): Promise<number> {
    await page.goto(`${base}/sso/${org.slug}`);
    await page.click(`a[href="/sso/${org.slug}/oidc"]`);
    await page.waitForURL((url) => url.origin === op.issuer && url.pathname.startsWith('/interaction/'));
    assert.equal(await page.textContent('h1'), 'Test provider: sign in');
    await page.fill('#login', account);
    await page.fill('#password', TEST_ACCOUNT_PASSWORD);
    await page.click('#sign-in');
    // A fresh provider session has no grant yet: the provider asks for consent.
    await page.waitForSelector('#allow');
    assert.equal(await page.textContent('h1'), 'Test provider: allow access');
    assert.equal(await page.textContent('#client'), op.clientId);
    const back = page.waitForResponse((r) => r.url().startsWith(`${base}/`) && r.request().isNavigationRequest() && r.status() !== 303);
    await page.click('#allow');
    const response = await back;
    await page.waitForURL((url) => url.origin === base);
    return response.status();
  }

  it('signs in through the provider\'s pages and lands on the dashboard with the role the group maps to', async () => {
    const page = await freshPage();
    const status = await signIn(page, 'Alice@Example.test');
    assert.equal(status, 200);
    assert.equal(page.url(), `${base}/dashboard`);
    assert.equal(await page.textContent('h1'), 'Hello, Alice Admin');
    assert.equal((await page.textContent('p.lead'))?.trim(), 'You manage your organisation\'s staff and settings.');
    const user = await alice();
    assert.equal(user?.role, 'admin');
    assert.equal(user?.sso_subject, 'alice-0001');
    assert.equal(user?.password_hash ?? null, null, 'no password is kept');
    // A page only an administrator may open.
    const users = await page.goto(`${base}/admin/users`);
    assert.equal(users?.status(), 200);
    assert.equal(await page.textContent('h1'), 'Users');
  });

  it('refuses the person once removed from the mapped group, and their earlier browser session ends', async () => {
    const first = await freshPage();
    assert.equal(await signIn(first, 'alice-0001'), 200);
    assert.equal(first.url(), `${base}/dashboard`);
    op.setGroups('alice-0001', ['staff']);
    try {
      const second = await freshPage();
      const status = await signIn(second, 'alice-0001');
      assert.equal(status, 403);
      assert.equal(new URL(second.url()).pathname, `/sso/${org.slug}/oidc/callback`);
      assert.equal(await second.textContent('h1'), 'Sign-in refused');
      assert.equal(await second.textContent('[role=alert]'), 'Your directory account is in no group that may use VClerk. Ask an administrator of your organisation.');
      const again = await second.goto(`${base}/dashboard`);
      assert.equal(new URL(again!.url()).pathname, '/login', 'the refused browser has no session');
    } finally {
      op.setGroups('alice-0001', ['vclerk-admins', 'staff']);
    }
    // The first browser's next page load goes to the sign-in page.
    await first.goto(`${base}/dashboard`);
    const landed = new URL(first.url());
    assert.equal(landed.pathname, '/login');
    assert.equal(landed.searchParams.get('return'), '/dashboard');
    assert.equal((await knex()('sessions').where({ user_id: (await alice())!.id })).length, 0);
  });

  it('ends a browser\'s session when the provider logs it out over the back channel', async () => {
    const page = await freshPage();
    assert.equal(await signIn(page, 'alice-0001'), 200);
    const [session] = await knex()('sessions').where({ user_id: (await alice())!.id });
    const sid = session?.data?.oidcSid as string | undefined;
    assert.ok(sid, 'the provider session id is kept');
    await op.backchannelLogout('alice-0001', sid);
    await page.goto(`${base}/dashboard`);
    assert.equal(new URL(page.url()).pathname, '/login');
  });
});
