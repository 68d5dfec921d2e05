import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { aggregateInsights } from '../../app/insights/aggregate';
import { CHARTS } from '../../app/insights/figures';
import { PASSWORD, seedOrganisation, seedUser } from '../support/accounts';
import { useAppInBrowser } from '../support/app-in-browser';
import { signInThroughForm } from '../support/browser';
import { useTestDatabase } from '../support/database';
import { seedHistory, setTimeZone } from '../support/insights-seed';

interface ChartOnPage {
  chart: string;
  svgs: { title: string; desc: string; width: number; height: number }[];
  tables: { caption: string; rows: number }[];
}

/** What the browser shows of each chart: its SVGs (title, description, drawn size) and tables. */
function chartsOnPage(page: Page): Promise<ChartOnPage[]> {
  return page.$$eval('section.insights-chart', (sections) => sections.map((s) => ({
    chart: s.id.replace(/^chart-/, ''),
    svgs: [...s.querySelectorAll('svg')].map((svg) => {
      const box = svg.getBoundingClientRect();
      return { title: svg.querySelector(':scope > title')?.textContent ?? '', desc: svg.querySelector(':scope > desc')?.textContent ?? '', width: box.width, height: box.height };
    }),
    tables: [...s.querySelectorAll('table')].map((t) => ({ caption: t.querySelector('caption')?.textContent?.trim() ?? '', rows: t.querySelectorAll('tbody tr').length })),
  })));
}

/**
 * Insights (issue 20) in a real browser: an admin opens the page over
 * weeks of seeded calls and finds every chart, drawn, with its title,
 * description and table; the CSP refuses nothing (no console message
 * about it); printed, the menus and forms are gone and the charts stay.
 */
describe('Insights: the page in a real browser', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  const app = useAppInBrowser(db);

  it('shows every chart with its title, description and table; the CSP refuses nothing; it prints without menus', async () => {
    const { knex } = db.current;
    const org = await seedOrganisation(knex, 'Browser Insights Bank');
    await setTimeZone(knex, org.id, 'Europe/Berlin');
    const admin = await seedUser(knex, org, 'admin');
    const clerks = [await seedUser(knex, org, 'clerk', { name: 'Anna Browser' }), await seedUser(knex, org, 'clerk', { name: 'Ben <Browser>' })];
    await seedHistory(knex, { organisationId: org.id, clerkIds: clerks.map((c) => c.id), timeZone: 'Europe/Berlin', from: '2026-09-28', days: 42, seed: 7, busy: 8 });
    await aggregateInsights(knex, { organisationId: org.id });

    const context = await app.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(`${m.type()}: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await signInThroughForm(page, app.base, admin.email, PASSWORD);
      await page.click('.main-nav a[href="/insights"]');
      await page.waitForURL('**/insights');
      await page.goto(`${app.base}/insights?period=month&date=2026-10-15`);
      await page.waitForLoadState('load');

      const charts = await chartsOnPage(page);
      assert.deepEqual(charts.map((c) => c.chart), [...CHARTS]);
      for (const c of charts) {
        assert.ok(c.svgs.length >= 1, `${c.chart}: an SVG`);
        assert.equal(c.tables.length, c.svgs.length, `${c.chart}: a table under each SVG`);
        for (const svg of c.svgs) {
          assert.ok(svg.title.length > 3 && svg.desc.length > 10, `${c.chart}: a title and a description (${JSON.stringify(svg)})`);
          assert.ok(svg.width > 300 && svg.height > 40, `${c.chart}: drawn (${svg.width}×${svg.height})`);
        }
        for (const table of c.tables) assert.ok(table.caption && table.rows > 0, `${c.chart}: a table with a caption and rows`);
      }
      assert.equal(charts.find((c) => c.chart === 'hours')!.tables[0]!.rows, 7, 'the heat map: a row per weekday');
      // Names are text, never markup.
      assert.equal(await page.locator('#chart-clerks th[scope=row] a', { hasText: 'Ben <Browser>' }).count(), 1);
      // The SVG takes its colours from the stylesheet: bars are filled.
      const fill = await page.$eval('#chart-calls rect.series-1', (r) => (globalThis as unknown as { getComputedStyle(e: unknown): { fill: string } }).getComputedStyle(r).fill);
      assert.notEqual(fill, 'none');
      assert.notEqual(fill, 'rgb(0, 0, 0)', 'the stylesheet colours the bars');

      // The period picker and the arrows.
      await page.click('#next-period');
      await page.waitForURL(/date=2026-11-01/);
      assert.match(await page.textContent('.insights-range') ?? '', /Nov 2026/);
      await page.selectOption('#f-period', 'week');
      await page.fill('#f-date', '2026-10-07');
      await page.click('.insights-period button[type=submit]');
      await page.waitForURL(/period=week&date=2026-10-07/);
      assert.match(await page.textContent('.insights-range') ?? '', /5\s?–\s?11 Oct 2026/);

      // Printed: no menu, no forms, the charts and their tables.
      await page.emulateMedia({ media: 'print' });
      assert.equal(await page.isVisible('.main-nav'), false, 'the menu is not printed');
      assert.equal(await page.isVisible('.insights-period'), false, 'the picker is not printed');
      assert.equal(await page.isVisible('.insights-settings'), false, 'the settings are not printed');
      assert.equal(await page.isVisible('#chart-hours svg'), true);
      assert.equal(await page.isVisible('#chart-hours table'), true);
      await page.emulateMedia({ media: 'screen' });

      // On a phone: nothing wider than the screen (the tables scroll in their own box).
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${app.base}/insights?period=month&date=2026-10-15`);
      const widths = await page.evaluate(() => {
        const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
        return { scroll: root.scrollWidth, client: root.clientWidth };
      });
      assert.ok(widths.scroll <= widths.client + 1, `the page is ${widths.scroll} px wide in a ${widths.client} px window`);

      assert.deepEqual(problems, [], 'nothing refused by the CSP, no script error');
    } finally {
      await context.close();
    }
  });

  it("the admin's menu, with Insights current, stays one row at 1280 px in German", async () => {
    const { knex } = db.current;
    const org = await seedOrganisation(knex, 'Sparkasse Musterstadt-Nordwest');
    const admin = await seedUser(knex, org, 'admin');
    await knex('users').where({ id: admin.id }).update({ language: 'de' });
    const context = await app.browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'de-DE' });
    try {
      const page = await context.newPage();
      await signInThroughForm(page, app.base, admin.email, PASSWORD);
      await page.goto(`${app.base}/insights`);
      assert.equal(await page.textContent('.main-nav a[aria-current=page]'), 'Auswertungen');
      const rows = await page.$$eval('.main-nav a', (links) => links.map((a) => Math.round(a.getBoundingClientRect().y)));
      assert.ok(rows.length >= 9);
      assert.equal(new Set(rows).size, 1, `one row: ${JSON.stringify(rows)}`);
    } finally {
      await context.close();
    }
  });
});
