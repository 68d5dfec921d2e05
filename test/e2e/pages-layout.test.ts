import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { csrfFrom, PASSWORD, seedOrganisation, seedUser, signIn, type SeededOrganisation, type SeededUser } from '../support/accounts';
import { launchBrowser } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';
import { png } from '../support/images';
import { randomToken, sha256 } from '../../app/security/tokens';

const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

interface Box { label: string; x: number; y: number; width: number; height: number }

/** The boxes of the visible elements matching `selector`, labelled by their text or tag. */
function boxes(page: Page, selector: string): Promise<Box[]> {
  return page.$$eval(selector, (elements) => elements.map((e) => {
    const r = e.getBoundingClientRect();
    return { label: `${e.tagName.toLowerCase()}${e.className ? `.${String(e.className).split(' ')[0]}` : ''} "${(e.textContent ?? '').trim().slice(0, 30)}"`, x: r.x, y: r.y, width: r.width, height: r.height };
  }).filter((b) => b.width > 1 && b.height > 1));
}

function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.width - 0.5 && b.x < a.x + a.width - 0.5 && a.y < b.y + b.height - 0.5 && b.y < a.y + a.height - 0.5;
}

function assertNoOverlap(list: Box[], where: string): void {
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) assert.ok(!overlaps(list[i]!, list[j]!), `${where}: ${list[i]!.label} overlaps ${list[j]!.label} (${JSON.stringify([list[i], list[j]])})`);
  }
}

/** Inside the viewport's width (nothing cut off at the right or left edge). */
function assertInsideWidth(list: Box[], width: number, where: string): void {
  for (const b of list) assert.ok(b.x >= -0.5 && b.x + b.width <= width + 0.5, `${where}: ${b.label} is cut off (x ${b.x}, width ${b.width}, viewport ${width})`);
}

async function assertNoSidewaysScroll(page: Page, where: string): Promise<void> {
  const { scroll, client } = await page.evaluate(() => {
    const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
    return { scroll: root.scrollWidth, client: root.clientWidth };
  });
  assert.ok(scroll <= client + 1, `${where}: the page is ${scroll} px wide in a ${client} px window`);
}

/**
 * Issue 16, point 9, in a real browser: the organisation's logo does not
 * overlap the wordmark on phones; the staff menu neither wraps into its
 * neighbours nor overlaps at 1280 px; the opening hours' "to" column is
 * fully visible; the widget's code box scrolls by keyboard; the website
 * widget's button is in the organisation's brand colour.
 */
describe('page layout at 1280×800 and 390×844 (real browser)', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let server: CallServer;
  let browser: Browser;
  let org: SeededOrganisation;
  let admin: SeededUser;
  let clerk: SeededUser;

  before(async () => {
    server = await startCallServer(db.current, { workers: 1 });
    // A long name and a wide logo: the hardest case for the header.
    org = await seedOrganisation(db.current.knex, 'Sparkasse Musterstadt-Nordwest');
    await db.current.knex('organisations').where({ id: org.id }).update({ logo: png(40, { green: 90, blue: 160, width: 240, height: 60 }), logo_type: 'image/png', brand_color: '#0f766e' });
    admin = await seedUser(db.current.knex, org, 'admin');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.close();
  });

  async function signedIn(user: SeededUser, lang: 'en' | 'de', locale: string): Promise<{ context: BrowserContext; page: Page }> {
    await db.current.knex('users').where({ id: user.id }).update({ language: lang });
    const context = await browser.newContext({ viewport: LAPTOP, locale });
    const page = await context.newPage();
    await page.goto(`${server.url}/login`);
    await page.fill('#f-email', user.email);
    await page.fill('#f-password', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL('**/dashboard');
    return { context, page };
  }

  it("on a phone, the organisation's logo, the wordmark and the language choice do not overlap (customer pages)", async () => {
    const context = await browser.newContext({ viewport: PHONE, locale: 'de-DE' });
    try {
      const page = await context.newPage();
      for (const path of [`/q/${org.slug}`, `/q/${org.slug}/wait`]) {
        await page.goto(`${server.url}${path}`);
        await page.waitForFunction(() => {
          const img = (globalThis as unknown as { document: { querySelector(s: string): { complete: boolean; naturalWidth: number } | null } }).document.querySelector('.org-logo');
          return !img || (img.complete && img.naturalWidth > 0);
        });
        const header = await boxes(page, '.brand img, .brand span, .org-name, .org-logo, .language-switcher > *');
        assert.ok(header.some((b) => b.label.startsWith('img.org-logo')), `${path}: the organisation's logo is shown`);
        const parts = header.filter((b) => !b.label.startsWith('span.org-name'));
        assertNoOverlap(parts, `${path} at 390×844`);
        assertInsideWidth(header, PHONE.width, `${path} at 390×844`);
        await assertNoSidewaysScroll(page, `${path} at 390×844`);
      }
    } finally {
      await context.close();
    }
  });

  it("a customer's expired or revoked link opens a page in the organisation's branding, on the laptop and the phone", async () => {
    const knex = db.current.knex;
    const tokens = { expired: randomToken(), revoked: randomToken() };
    const hour = 60 * 60 * 1000;
    await knex('calls').insert([
      { organisation_id: org.id, clerk_id: clerk.id, status: 'waiting', guest_token_hash: sha256(tokens.expired), guest_token_expires_at: new Date(Date.now() - hour) },
      { organisation_id: org.id, clerk_id: clerk.id, status: 'waiting', guest_token_hash: sha256(tokens.revoked), guest_token_expires_at: new Date(Date.now() + hour), link_revoked_at: new Date() },
    ]);
    for (const viewport of [LAPTOP, PHONE]) {
      const context = await browser.newContext({ viewport, locale: 'en-GB' });
      try {
        const page = await context.newPage();
        for (const [kind, token] of Object.entries(tokens)) {
          const where = `${kind} link at ${viewport.width}×${viewport.height}`;
          const res = await page.goto(`${server.url}/join/${token}`);
          assert.equal(res?.status(), 404, where);
          assert.match(await page.textContent('main') ?? '', kind === 'expired' ? /This link has expired/ : /This link was withdrawn/, where);
          await page.waitForFunction(() => {
            const img = (globalThis as unknown as { document: { querySelector(s: string): { complete: boolean; naturalWidth: number } | null } }).document.querySelector('.org-logo');
            return img !== null && img.complete && img.naturalWidth > 0;
          });
          const [logo] = await boxes(page, '.org-logo');
          assert.ok(logo && logo.width > 0 && logo.y >= 0 && logo.x + logo.width <= viewport.width, `${where}: the organisation's logo is in view`);
          assert.match(await page.textContent('main') ?? '', /Sparkasse Musterstadt-Nordwest/, `${where}: names the organisation`);
          const brand = await page.evaluate(() => (globalThis as unknown as { getComputedStyle(e: unknown): { getPropertyValue(n: string): string }; document: { documentElement: unknown } }).getComputedStyle((globalThis as unknown as { document: { documentElement: unknown } }).document.documentElement).getPropertyValue('--pico-primary-background').trim());
          assert.equal(brand.toLowerCase(), '#0f766e', `${where}: in the brand colour`);
          await assertNoSidewaysScroll(page, where);
        }
      } finally {
        await context.close();
      }
    }
  });

  for (const [lang, locale] of [['en', 'en-US'], ['de', 'de-DE']] as const) {
    it(`the admin's menu fits without overlap at 1280 px and on a phone (${lang})`, async () => {
      const { context, page } = await signedIn(admin, lang, locale);
      try {
        for (const viewport of [LAPTOP, PHONE]) {
          await page.setViewportSize(viewport);
          for (const path of ['/dashboard', '/admin/organisation']) {
            await page.goto(`${server.url}${path}`);
            const where = `${path} at ${viewport.width}×${viewport.height}`;
            const items = await boxes(page, '.brand, .org-name, .header-end button, .main-nav a');
            assert.ok(items.filter((b) => b.label.startsWith('a "')).length >= 8, `${where}: the admin's menu has its links`);
            assertNoOverlap(items, where);
            assertInsideWidth(items, viewport.width, where);
            // Each link on one line: a wrapped label is what looked like overlap.
            const links = items.filter((b) => b.label.startsWith('a "'));
            const lowest = Math.min(...links.map((b) => b.height));
            for (const link of links) assert.ok(link.height <= lowest + 2, `${where}: ${link.label} wraps (${link.height} px high, others ${lowest} px)`);
            await assertNoSidewaysScroll(page, where);
          }
          if (viewport === LAPTOP) {
            // At 1280 px the whole menu is one row under the bar.
            const links = await boxes(page, '.main-nav a');
            assert.equal(new Set(links.map((b) => Math.round(b.y))).size, 1, `the menu at 1280 px is one row: ${JSON.stringify(links.map((b) => [b.label, b.y]))}`);
          }
        }
      } finally {
        await context.close();
      }
    });

    it(`the opening hours' "from" and "to" fields are fully visible and usable (${lang}, 1280×800 and 390×844)`, async () => {
      const { context, page } = await signedIn(admin, lang, locale);
      try {
        await page.goto(`${server.url}/admin/organisation`);
        for (const viewport of [LAPTOP, PHONE]) {
          await page.setViewportSize(viewport);
          const where = `/admin/organisation at ${viewport.width}×${viewport.height}`;
          const card = (await boxes(page, 'article:has(.hours-table)'))[0]!;
          const inputs = await boxes(page, '.hours-table input');
          assert.equal(inputs.length, 14, `${where}: from and to for seven days`);
          for (const input of inputs) {
            assert.ok(input.x >= card.x && input.x + input.width <= card.x + card.width + 0.5, `${where}: an opening-hours field sticks out of its card (${JSON.stringify({ input, card })})`);
            assert.ok(input.width >= 80, `${where}: an opening-hours field is too narrow (${input.width} px)`);
          }
          assertInsideWidth(inputs, viewport.width, where);
          // Nothing covers the "to" fields: the point in their middle is the field itself.
          for (const id of ['#f-mon_to', '#f-sun_to']) {
            await page.locator(id).scrollIntoViewIfNeeded();
            const hit = await page.$eval(id, (input) => {
              const r = input.getBoundingClientRect();
              const doc = (globalThis as unknown as { document: { elementFromPoint(x: number, y: number): unknown } }).document;
              return doc.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === input;
            });
            assert.ok(hit, `${where}: ${id} is covered or clipped`);
          }
          await assertNoSidewaysScroll(page, where);
        }
      } finally {
        await context.close();
      }
    });
  }

  it('the widget code box can be reached and scrolled with the keyboard', async () => {
    const { context, page } = await signedIn(admin, 'en', 'en-GB');
    try {
      await page.setViewportSize(PHONE);
      await page.goto(`${server.url}/admin/organisation`);
      const box = page.locator('pre.code-box');
      assert.equal(await box.getAttribute('tabindex'), '0');
      // Tab from the field before it reaches the box.
      await page.focus('#f-widget_origins');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { className: string } } }).document.activeElement.className), 'code-box', 'the code box takes focus after the save button');
      const before = await box.evaluate((e) => ({ left: e.scrollLeft, overflow: e.scrollWidth - e.clientWidth }));
      assert.ok(before.overflow > 0, 'on a phone the line is wider than the box');
      await page.keyboard.press('End');
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('ArrowRight');
      await page.waitForFunction(() => ((globalThis as unknown as { document: { querySelector(s: string): { scrollLeft: number } } }).document.querySelector('pre.code-box').scrollLeft > 0));
    } finally {
      await context.close();
    }
  });

  it("the website widget's button is in the organisation's brand colour, with readable text", async () => {
    // The organisation's website: another origin, embedding the widget.
    const site = http.createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html');
      res.end(`<!doctype html><html lang="en"><body><h1>Example</h1><script src="${server.url}/widget.js" data-org="${org.slug}" async></script></body></html>`);
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    const siteUrl = `http://localhost:${(site.address() as AddressInfo).port}`;
    const context = await browser.newContext({ viewport: LAPTOP });
    try {
      await db.current.knex('organisations').where({ id: org.id }).update({ settings: JSON.stringify({ widgetOrigins: [siteUrl] }) });
      const staff = await signIn(server.url as never, clerk);
      const csrf = csrfFrom((await staff.agent.get('/account').expect(200)).text);
      await staff.agent.post('/availability').type('form').send({ _csrf: csrf, availability: 'available' }).expect(303);
      const page = await context.newPage();
      for (const [color, rgb, text] of [['#0f766e', 'rgb(15, 118, 110)', 'rgb(255, 255, 255)'], ['#fde047', 'rgb(253, 224, 71)', 'rgb(0, 0, 0)']] as const) {
        await db.current.knex('organisations').where({ id: org.id }).update({ brand_color: color });
        await page.goto(siteUrl);
        const button = await page.waitForSelector('button.vclerk-widget-button:not([disabled])');
        const style = await button.evaluate((e) => {
          const s = (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string; color: string } }).getComputedStyle(e);
          return { background: s.backgroundColor, color: s.color };
        });
        assert.deepEqual(style, { background: rgb, color: text }, `brand colour ${color}`);
      }
    } finally {
      await context.close();
      await new Promise((resolve) => site.close(resolve));
    }
  });
});
