import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { SetupService } from '../../app/setup/service';
import { csrfFrom, PASSWORD, seedOrganisation, seedUser, signIn, type Browser as Agent, type SeededOrganisation, type SeededUser } from '../support/accounts';
import { assertNoFindings, axeFindings, LAYOUT_RULES, type AxeFinding } from '../support/axe';
import { launchBrowser } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { pageRoutes, routedTo } from '../support/crawl';
import { useTestDatabase } from '../support/database';
import { seedSsoProvider } from '../support/sso';

const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const ROLES = ['admin', 'clerk', 'compliance'] as const;
type Role = (typeof ROLES)[number];

/**
 * Issue 16: axe-core reports no violation of serious or critical impact on
 * every page of the route table as each role, and on the customer pages,
 * in English and German. Pages with a path parameter are visited with
 * seeded ids: a user, a product, a recording, a data-subject request, the
 * clerk's call page before joining and an ended call's summary; the
 * customer's join page before joining, its summary, and the pages of an
 * expired, revoked and unknown link; the queue landing and waiting pages;
 * the setup and invitation pages. Each page at 1280×800 (all rules, and
 * contrast in dark mode too) and at 390×844 (the rules that depend on the
 * layout). One browser; one context per role and language.
 */
describe('accessibility: axe-core finds nothing serious or critical (every page, each role, both languages)', function () {
  this.timeout(300_000);
  const db = useTestDatabase();
  let server: CallServer;
  let browser: Browser;
  let org: SeededOrganisation;
  const users = {} as Record<Role, SeededUser>;
  const agents = {} as Record<Role, Agent>;
  let setupPath: string;
  let invitePath: string;
  const ids = { product: '', recording: '', request: '', openCall: '', endedCall: '' };
  const tokens = { open: '', summary: '', expired: '', revoked: '' };
  let visited = 0;

  async function csrf(agent: Agent): Promise<string> {
    return csrfFrom((await agent.agent.get('/account').expect(200)).text);
  }

  async function startCall(): Promise<{ id: string; token: string }> {
    const res = await agents.clerk.agent.post('/calls').type('form').send({ _csrf: await csrf(agents.clerk) }).expect(303);
    const match = /^\/calls\/([0-9a-f-]{36})#customer=([A-Za-z0-9_-]{43})$/.exec(res.headers.location ?? '');
    assert.ok(match, `a call started: ${res.headers.location}`);
    return { id: match[1]!, token: match[2]! };
  }

  before(async () => {
    const knex = db.current.knex;
    // The setup link exists only while the appliance has no organisation.
    setupPath = `/setup/${(await new SetupService(knex).issueLink(24))!.token}`;
    server = await startCallServer(db.current, { workers: 1 });
    org = await seedOrganisation(knex, 'Axe Savings Bank');
    await knex('organisations').where({ id: org.id }).update({ settings: { recording: { mode: 'on_demand', adminAccess: true, clerkAccess: true } } });
    // Single sign-on pages: the organisation's methods and the LDAP form (never sent here, so no directory is needed).
    await seedSsoProvider(knex, org.id, 'ldap', { settings: { url: 'ldap://127.0.0.1:1', bindDn: 'cn=service,dc=example,dc=org', baseDn: 'dc=example,dc=org' }, mappings: [] });
    for (const role of ROLES) {
      users[role] = await seedUser(knex, org, role);
      agents[role] = await signIn(server.url as never, users[role]);
    }
    const admin = agents.admin;
    const hours = Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].flatMap((d) => [[`${d}_from`, '00:00'], [`${d}_to`, '23:59']]));
    await admin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: await csrf(admin), timezone: 'UTC', ...hours }).expect(303);
    await admin.agent.post('/admin/organisation/privacy').type('form').send({ _csrf: await csrf(admin), privacy_contact: 'privacy@axe-bank.example' }).expect(303);
    const product = await admin.agent.post('/admin/catalog/new').type('form')
      .send({ _csrf: await csrf(admin), sku: 'GIRO-1', name: 'Girokonto', description: 'Ein Konto für jeden Tag.', price: '4,90', currency: 'EUR', category: 'Konten' }).expect(303);
    ids.product = /\/admin\/catalog\/([0-9a-f-]{36})$/.exec(product.headers.location ?? '')![1]!;
    const invited = await admin.agent.post('/admin/users').type('form').send({ _csrf: await csrf(admin), name: 'Ines Invited', email: 'ines@axe-bank.example', role: 'clerk' }).expect(201);
    invitePath = new URL(/id="issued-link" type="text" value="([^"]+)"/.exec(invited.text)![1]!).pathname;

    const clerk = agents.clerk;
    await clerk.agent.post('/availability').type('form').send({ _csrf: await csrf(clerk), availability: 'available' }).expect(303);
    const open = await startCall();
    ids.openCall = open.id;
    tokens.open = open.token;
    const ended = await startCall();
    await clerk.agent.post(`/calls/${ended.id}/end`).type('form').send({ _csrf: await csrf(clerk) }).expect(303);
    ids.endedCall = ended.id;
    tokens.summary = ended.token;
    const revoked = await startCall();
    await clerk.agent.post(`/calls/${revoked.id}/revoke`).type('form').send({ _csrf: await csrf(clerk) }).expect(303);
    tokens.revoked = revoked.token;
    const expired = await startCall();
    await knex('calls').where({ id: expired.id }).update({ guest_token_expires_at: new Date(Date.now() - 1000) });
    tokens.expired = expired.token;

    const [recording] = await knex('recordings').insert({ organisation_id: org.id, call_id: ended.id, status: 'ready', file_name: 'recording.mp4', size: 3, finalised_at: new Date(), progress: 100 }).returning('id');
    ids.recording = recording!.id;
    const compliance = agents.compliance;
    const registered = await compliance.agent.post('/compliance/requests').type('form')
      .send({ _csrf: await csrf(compliance), kind: 'access', identified_by: 'call_link', call_link: `${server.url}/join/${ended.token}`, note: 'Letter of 3 May' });
    assert.equal(registered.status, 303, registered.text.slice(0, 500));
    ids.request = /\/compliance\/requests\/([0-9a-f-]{36})$/.exec(registered.headers.location ?? '')![1]!;

    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.close();
  });

  /** The pages of the route table `role` is routed to, with seeded ids for those with a path parameter. */
  function staffPages(role: Role): string[] {
    const paths = pageRoutes().filter((r) => r.path !== '/login' && routedTo(r, role)).map((r) => r.path);
    if (role === 'admin') paths.push(`/admin/users/${users.clerk.id}`, `/admin/catalog/${ids.product}`);
    if (role === 'admin' || role === 'compliance') paths.push(`/compliance/requests/${ids.request}`);
    paths.push(`/recordings/${ids.recording}`);
    // The clerk's call page before joining, and the clerk's summary of an ended call.
    if (role === 'clerk') paths.push(`/calls/${ids.openCall}#customer=${tokens.open}`, `/calls/${ids.openCall}/link`, `/calls/${ids.endedCall}`, `/calls/${ids.endedCall}/link`);
    return paths;
  }

  /** axe on the page at 1280×800, contrast again in dark mode, the layout rules again at 390×844; nothing for answers that are not pages (JSON). */
  async function visit(page: Page, path: string, where: string): Promise<AxeFinding[]> {
    await page.setViewportSize(LAPTOP);
    const res = await page.goto(`${server.url}${path}`, { waitUntil: 'load' });
    if (!/^text\/html/.test(res?.headers()['content-type'] ?? '')) return [];
    visited++;
    // Call pages finish their set-up (devices, signalling) after load: wait for the join button.
    if (/^\/(calls|join)\//.test(path) && await page.$('#join')) await page.waitForSelector('#join:not([disabled])', { timeout: 15_000 }).catch(() => undefined);
    const findings = await axeFindings(page, `${where} (1280×800)`);
    // The pages follow the system's dark mode (color-scheme: light dark): contrast again in dark.
    await page.emulateMedia({ colorScheme: 'dark' });
    findings.push(...(await axeFindings(page, `${where} (1280×800, dark)`, ['color-contrast'])));
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize(PHONE);
    findings.push(...(await axeFindings(page, `${where} (390×844)`, LAYOUT_RULES)));
    return findings;
  }

  /** Pages only a form leads to: a refused form with its messages, an invitation link and a new API key (each shown once). */
  async function formResults(page: Page, lang: string): Promise<AxeFinding[]> {
    const findings: AxeFinding[] = [];
    await page.goto(`${server.url}/admin/users`);
    await page.click('form[action="/admin/users"] button[type=submit]');
    await page.waitForSelector('[aria-invalid=true]');
    findings.push(...(await axeFindings(page, `admin ${lang} POST /admin/users (refused, with field messages)`)));
    await page.fill('#f-name', `Nina ${lang}`);
    await page.fill('#f-email', `nina-${lang}@axe-bank.example`);
    await page.click('form[action="/admin/users"] button[type=submit]');
    await page.waitForSelector('#issued-link');
    findings.push(...(await axeFindings(page, `admin ${lang} POST /admin/users (invitation link)`)));
    await page.goto(`${server.url}/admin/api-keys`);
    await page.fill('#f-name', `CRM ${lang}`);
    await page.check('input[name=scopes] >> nth=0');
    await page.click('form[action="/admin/api-keys"] button[type=submit]');
    await page.waitForSelector('#issued-key');
    findings.push(...(await axeFindings(page, `admin ${lang} POST /admin/api-keys (the new key)`)));
    return findings;
  }

  async function newContext(lang: string): Promise<BrowserContext> {
    // Reduced motion: no colour transitions (app.css), so that a switch to dark mode is complete at once.
    return browser.newContext({ locale: lang === 'de' ? 'de-DE' : 'en-GB', viewport: LAPTOP, reducedMotion: 'reduce' });
  }

  for (const lang of ['en', 'de'] as const) {
    for (const role of ROLES) {
      it(`as ${role} (${lang}): every page the route table routes them to`, async () => {
        await db.current.knex('users').where({ id: users[role].id }).update({ language: lang });
        const context = await newContext(lang);
        const findings: AxeFinding[] = [];
        try {
          const page = await context.newPage();
          await page.goto(`${server.url}/login`);
          await page.fill('#f-email', users[role].email);
          await page.fill('#f-password', PASSWORD);
          await page.click('button[type=submit]');
          await page.waitForURL('**/dashboard');
          const paths = staffPages(role);
          for (const path of paths) findings.push(...(await visit(page, path, `${role} ${lang} ${path.replace(/#.*/, '')}`)));
          if (role === 'admin') findings.push(...(await formResults(page, lang)));
          assert.ok(paths.length >= 5, `visited ${paths.length} pages`);
        } finally {
          await context.close();
        }
        assertNoFindings(findings);
      });
    }

    it(`for customers and visitors (${lang}): start, sign-in, setup, invitation, queue, join, summary, closed links, errors`, async () => {
      const context = await newContext(lang);
      const findings: AxeFinding[] = [];
      const pages = [
        '/', '/login', '/no-such-page', setupPath, invitePath, `/invite/${'A'.repeat(43)}`,
        `/join/${tokens.open}`, `/join/${tokens.summary}`, `/join/${tokens.expired}`, `/join/${tokens.revoked}`, `/join/${'B'.repeat(43)}`,
        `/q/${org.slug}`, `/sso/${org.slug}`, `/sso/${org.slug}/ldap`,
      ];
      try {
        const page = await context.newPage();
        for (const path of pages) findings.push(...(await visit(page, path, `visitor ${lang} ${path.replace(/[A-Za-z0-9_-]{43}/, ':token')}`)));
        // The waiting page, as a customer who entered the queue.
        await page.goto(`${server.url}/q/${org.slug}`);
        await page.click('#enter-queue');
        await page.waitForURL(/\/wait#ticket=/);
        await page.waitForLoadState('load');
        findings.push(...(await axeFindings(page, `customer ${lang} /q/:slug/wait`)));
      } finally {
        await context.close();
      }
      assertNoFindings(findings);
    });
  }
});
