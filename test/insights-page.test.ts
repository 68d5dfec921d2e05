import assert from 'node:assert/strict';
import type { Express } from 'express';
import type { Knex } from 'knex';
import type { Response } from 'supertest';
import { aggregateInsights } from '../app/insights/aggregate';
import { CHARTS, type Chart, type Figure, type InsightsReport } from '../app/insights/figures';
import { InsightsService, type Viewer } from '../app/insights/service';
import { csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { externalUrls, inlineCode } from './support/crawl';
import { useTestDatabase } from './support/database';
import { addDays, insertCall, localInstant, seedHistory, setInsightsSettings, setTimeZone } from './support/insights-seed';

/**
 * The Insights page (issue 20): every chart drawn as SVG with a title, a
 * description and a table of the same figures; withheld figures read "too
 * few"; German and English; a CSV file per chart; the admin's settings
 * form; who may see whose figures; nothing inline, nothing from outside.
 */

const ZONE = 'Europe/Berlin';
const FIRST_DAY = '2026-09-28';
const MONTH = { period: 'month', date: '2026-10-15' };
const MONTH_QUERY = 'period=month&date=2026-10-15';
/** A product and a clerk whose names a spreadsheet or a browser would run. */
const NASTY_PRODUCT = '=HYPERLINK("x")<b>&';
const NASTY_CLERK = '=Zed <i>&"';

/** Each chart's section of the page. */
function sections(html: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of html.matchAll(/<section class="insights-chart" id="chart-([a-z]+)"[\s\S]*?<\/section>/g)) found.set(m[1]!, m[0]);
  return found;
}

/** The data cells of the table row headed `label` in a piece of HTML. */
function rowCells(html: string, label: string): string[] {
  const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const row = new RegExp(`<th scope="row">(?:<a [^>]*>)?${escaped}(?:</a>)?</th>([\\s\\S]*?)</tr>`).exec(html);
  assert.ok(row, `a row headed ${label}`);
  return [...row[1]!.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]!);
}

function parseCsv(text: string): string[][] {
  assert.ok(text.startsWith('\ufeff'), 'a byte-order mark');
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 1; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\r') continue;
    else if (c === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; } else cell += c;
  }
  return rows;
}

/** A figure's CSV cell and whether the row names it withheld. */
function csvFigure(f: Figure): string {
  if (f.tooFew || f.value === null) return '';
  return Number.isInteger(f.value) ? String(f.value) : String(Number(f.value.toFixed(4)));
}

describe('Insights: the page, its CSV files and its settings', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let app: Express;
  let knex: Knex;
  let org: SeededOrganisation;
  let admin: SeededUser;
  let clerks: SeededUser[];
  let nasty: SeededUser;
  let adminBrowser: Browser;

  const viewer = (user: SeededUser): Viewer => ({ organisationId: org.id, userId: user.id, role: user.role as 'admin' | 'clerk' });
  const report = (user: SeededUser, query: Record<string, unknown>): Promise<InsightsReport> => new InsightsService(knex).report(viewer(user), query);

  before(async () => {
    knex = db.current.knex;
    app = buildApp(db.current);
    org = await seedOrganisation(knex, 'Insights Page Bank');
    await setTimeZone(knex, org.id, ZONE);
    admin = await seedUser(knex, org, 'admin');
    clerks = [await seedUser(knex, org, 'clerk', { name: 'Anna Page' }), await seedUser(knex, org, 'clerk', { name: 'Ben Page' })];
    nasty = await seedUser(knex, org, 'clerk', { name: NASTY_CLERK });
    await seedHistory(knex, { organisationId: org.id, clerkIds: clerks.map((c) => c.id), timeZone: ZONE, from: FIRST_DAY, days: 42, seed: 20, busy: 8 });
    // Six calls of the nasty clerk, each showing the nasty product (enough for its counts to show).
    for (let i = 0; i < 6; i++) {
      const startedAt = localInstant(addDays('2026-10-05', i), 10 * 3600_000, ZONE);
      const callId = await insertCall(knex, org.id, { clerkId: nasty.id, channel: 'link', createdAt: startedAt, startedAt, endedAt: new Date(startedAt.getTime() + 300_000) });
      await knex('call_items').insert({ organisation_id: org.id, call_id: callId, sku: 'NASTY-1', name: NASTY_PRODUCT, price_cents: 100, currency: 'EUR', position: 1, favourite: true, shown_at: startedAt });
    }
    await aggregateInsights(knex, { organisationId: org.id });
    adminBrowser = await signIn(app, admin);
  });

  it('draws every chart as an SVG with a title and a description, and the same figures in a table under it', async () => {
    const res = await adminBrowser.agent.get(`/insights?${MONTH_QUERY}`).expect(200);
    assert.match(String(res.headers['content-type']), /text\/html/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const found = sections(res.text);
    assert.deepEqual([...found.keys()], [...CHARTS]);
    for (const [chart, html] of found) {
      const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
      assert.ok(svgs.length >= 1, `${chart}: an SVG`);
      for (const svg of svgs) {
        assert.match(svg, /^<svg [^>]*role="img"[^>]*aria-labelledby="([\w-]+)-title \1-desc"/, `${chart}: named and described`);
        assert.match(svg, /<title id="[\w-]+-title">[^<]+<\/title><desc id="[\w-]+-desc">[^<]+<\/desc>/, `${chart}: a title and a description`);
      }
      assert.equal((html.match(/<table/g) ?? []).length, svgs.length, `${chart}: a table per SVG`);
      assert.match(html, new RegExp(`href="/insights/export/${chart}\\?period=month&amp;date=2026-10-01&amp;subject=team"`), `${chart}: its CSV file`);
    }
    assert.match(res.text, /Insights: the team/);
    assert.match(res.text, /1\s?–\s?31 Oct 2026/, 'the period, as English dates');
    // Previous and next month.
    assert.match(res.text, /href="\/insights\?period=month&amp;date=2026-09-01&amp;subject=team" rel="prev"/);
    assert.match(res.text, /href="\/insights\?period=month&amp;date=2026-11-01&amp;subject=team" rel="next"/);
  });

  it('shows each figure as the report has it, a withheld one as "too few" and never as a number', async () => {
    await setInsightsSettings(knex, org.id, { threshold: 40 });
    try {
      const expected = await report(admin, MONTH);
      const html = (await adminBrowser.agent.get(`/insights?${MONTH_QUERY}`).expect(200)).text;
      const page = sections(html);
      const channelLabels = { link: 'Call link', queue: 'Queue', widget: 'Website widget', api: 'REST API' };
      let withheld = 0;
      for (const c of expected.channels) {
        const [cell] = rowCells(page.get('channels')!, channelLabels[c.channel]);
        if (c.calls.tooFew) withheld++;
        assert.equal(cell, c.calls.tooFew ? 'too few' : new Intl.NumberFormat('en-GB').format(c.calls.value!), c.channel);
      }
      assert.ok(withheld > 0 && withheld < 4, 'some channels are withheld at a threshold of 40, some not');
      assert.match(page.get('channels')!, /class="withheld"/, 'the chart hatches a withheld bar');
      assert.match(page.get('channels')!, /too few to show/, 'and says so in its legend');
      const recordings = expected.recordings.made;
      assert.equal(rowCells(page.get('recordings')!, 'Recordings made')[0], recordings.tooFew ? 'too few' : String(recordings.value));
      // The heat map: as many withheld cells in the table as in the report.
      const tooFewCells = expected.hours.filter((h) => h.calls.tooFew).length;
      assert.ok(tooFewCells > 0);
      assert.equal((page.get('hours')!.match(/<td class="withheld-cell">too few<\/td>/g) ?? []).length, tooFewCells);
      assert.match(html, /fewer than 40 calls is shown as &#34;too few&#34;|fewer than 40 calls is shown as "too few"/);
      // The key figures at a glance, above the charts, follow the same rule.
      const glance = /<dl class="insights-glance"[\s\S]*?<\/dl>/.exec(html)?.[0] ?? '';
      const tile = (label: string) => new RegExp(`<dt>${label}</dt><dd>([^<]*)</dd>`).exec(glance)?.[1];
      assert.equal(tile('Calls started'), expected.totals.started.tooFew ? 'too few' : new Intl.NumberFormat('en-GB').format(expected.totals.started.value!));
      assert.equal(tile('Calls completed'), expected.totals.completed.tooFew ? 'too few' : new Intl.NumberFormat('en-GB').format(expected.totals.completed.value!));
      assert.ok(tile('Median wait in the queue'), 'the median wait has a tile');
    } finally {
      await setInsightsSettings(knex, org.id, { threshold: 5 });
    }
  });

  it('escapes names in the SVG and the tables, and lets nothing run inline or load from outside', async () => {
    const html = (await adminBrowser.agent.get(`/insights?${MONTH_QUERY}`).expect(200)).text;
    assert.deepEqual(inlineCode(html), []);
    assert.deepEqual(externalUrls(html), []);
    assert.doesNotMatch(html, /<b>&|<i>&/, 'no markup from a name');
    assert.match(html, /=HYPERLINK\(&#34;x&#34;\)&lt;b&gt;&amp;/, 'the product name, escaped');
    assert.match(html, /=Zed &lt;i&gt;&amp;&#34;/, "the clerk's name, escaped");
    assert.match(html, /<link rel="stylesheet" href="\/static\/css\/insights\.css\?v=/);
  });

  it("links each clerk of the admin's table to that clerk's figures for the same period", async () => {
    const html = (await adminBrowser.agent.get(`/insights?${MONTH_QUERY}`).expect(200)).text;
    for (const clerk of [...clerks, nasty]) assert.match(sections(html).get('clerks')!, new RegExp(`href="/insights\\?period=month&amp;date=2026-10-01&amp;subject=${clerk.id}"`));
    const page = await adminBrowser.agent.get(`/insights?period=month&date=2026-10-01&subject=${clerks[0]!.id}`).expect(200);
    assert.match(page.text, /Insights: Anna Page/);
    assert.match(page.text, /href="\/insights\?period=month&amp;date=2026-10-01&amp;subject=team"[^>]*id="team-figures"/);
    const expected = await report(admin, { ...MONTH, subject: clerks[0]!.id });
    assert.equal(rowCells(sections(page.text).get('calls')!, 'Total')[0], String(expected.totals.started.value));
  });

  it('in German: texts, numbers and dates in the reader\'s language, "zu wenige" for a withheld figure', async () => {
    const german = await seedUser(knex, org, 'admin');
    await knex('users').where({ id: german.id }).update({ language: 'de' });
    await setInsightsSettings(knex, org.id, { threshold: 40 });
    try {
      const browser = await signIn(app, german);
      const html = (await browser.agent.get(`/insights?${MONTH_QUERY}`).expect(200)).text;
      assert.match(html, /<html lang="de">/);
      assert.match(html, /Auswertungen: das Team/);
      assert.match(html, /Begonnene und abgeschlossene Gespräche/);
      assert.match(html, />zu wenige</);
      assert.doesNotMatch(html, />too few</);
      assert.match(html, /01\.[^<]*31\.10\.2026/, 'the period as German dates');
      const expected = await report(german, MONTH);
      const share = expected.curation.favouriteShare;
      assert.ok(!share.tooFew && share.value !== null);
      const text = new Intl.NumberFormat('de', { style: 'percent', maximumFractionDigits: 1 }).format(share.value);
      assert.equal(rowCells(sections(html).get('curation')!, 'Gespräche mit Favorit')[0], text);
      assert.match(text, /,\d\s%$|^\d+\s%$/, 'a German percentage');
      assert.match(html, /href="\/insights"[^>]*aria-current="page">Auswertungen</, 'the menu entry, current');
    } finally {
      await setInsightsSettings(knex, org.id, { threshold: 5 });
    }
  });

  it('exports every chart as CSV: its figures, a withheld one empty and named in `withheld`, names safe from formulas', async () => {
    await setInsightsSettings(knex, org.id, { threshold: 40 });
    try {
      const expected = await report(admin, MONTH);
      const headers: Record<Chart, string[]> = {
        calls: ['bucket', 'started', 'completed', 'unanswered', 'withheld'],
        channels: ['channel', 'calls', 'withheld'],
        queue: ['measure', 'value', 'withheld'],
        durations: ['measure', 'value', 'withheld'],
        hours: ['weekday', 'hour', 'calls', 'withheld'],
        clerks: ['clerk_id', 'clerk', 'calls', 'duration_median_seconds', 'available_seconds', 'withheld'],
        curation: ['measure', 'value', 'withheld'],
        products: ['list', 'rank', 'product', 'count', 'withheld'],
        recordings: ['measure', 'value', 'withheld'],
      };
      const csv: Partial<Record<Chart, string[][]>> = {};
      for (const chart of CHARTS) {
        const res: Response = await adminBrowser.agent.get(`/insights/export/${chart}?${MONTH_QUERY}`).expect(200);
        assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
        assert.equal(res.headers['content-disposition'], `attachment; filename="insights-${chart}-2026-10-01-2026-10-31.csv"`);
        assert.equal(res.headers['cache-control'], 'no-store');
        const rows = parseCsv(res.text);
        assert.deepEqual(rows[0], headers[chart], `${chart}: the header row`);
        for (const row of rows) assert.equal(row.length, headers[chart].length, `${chart}: every row has every column`);
        csv[chart] = rows.slice(1);
      }
      assert.deepEqual(csv.calls!.map((r) => r[0]), [...expected.calls.map((p) => p.bucket), 'total']);
      const total = csv.calls!.at(-1)!;
      assert.deepEqual(total.slice(1, 4), [csvFigure(expected.totals.started), csvFigure(expected.totals.completed), csvFigure(expected.totals.unanswered)]);
      assert.deepEqual(csv.channels, expected.channels.map((c) => [c.channel, csvFigure(c.calls), c.calls.tooFew ? 'calls' : '']));
      assert.ok(csv.channels!.some((r) => r[2] === 'calls' && r[1] === ''), 'a withheld figure: an empty cell, named in `withheld`');
      assert.equal(csv.hours!.length, 168);
      assert.deepEqual(csv.hours, expected.hours.map((h) => [String(h.weekday), String(h.hour), csvFigure(h.calls), h.calls.tooFew ? 'calls' : '']));
      assert.deepEqual(csv.queue!.map((r) => r[0]), ['answered', 'abandoned', 'abandonment_share', 'wait_median_seconds', 'wait_p90_seconds', 'service_level_share', 'service_level_threshold_seconds']);
      assert.deepEqual(csv.queue![2]!.slice(1), [csvFigure(expected.queue.abandonment), expected.queue.abandonment.tooFew ? 'value' : '']);
      assert.deepEqual(csv.durations, [['median_seconds', csvFigure(expected.durations.median), expected.durations.median.tooFew ? 'value' : ''], ['p90_seconds', csvFigure(expected.durations.p90), expected.durations.p90.tooFew ? 'value' : '']]);
      assert.deepEqual(csv.curation!.map((r) => r[0]), ['cards_per_call', 'favourite_share']);
      assert.deepEqual(csv.recordings!.map((r) => r[0]), ['recordings_made', 'consents_granted', 'consents_refused']);
      // Names: a leading = gets an apostrophe, so that a spreadsheet shows it as text.
      const zed = csv.clerks!.find((r) => r[0] === nasty.id)!;
      assert.equal(zed[1], `'${NASTY_CLERK}`);
      assert.equal(zed[2], '', 'six calls are too few at a threshold of 40');
      assert.equal(zed[5], 'calls duration_median_seconds');
      assert.ok(csv.products!.some((r) => r[2] === `'${NASTY_PRODUCT}`), 'the product name, neutralised');
      assert.deepEqual(csv.products!.filter((r) => r[0] === 'shown').map((r) => r[1]), expected.products.shown.map((_, i) => String(i + 1)));
    } finally {
      await setInsightsSettings(knex, org.id, { threshold: 5 });
    }
  });

  it('answers an unknown chart with the usual 404 page', async () => {
    const res = await adminBrowser.agent.get('/insights/export/nonsense').set('Accept', 'text/html').expect(404);
    assert.match(res.text, /The page you asked for does not exist/);
    const json = await adminBrowser.agent.get('/insights/export/nonsense').set('Accept', 'application/json').expect(404);
    assert.equal(json.body.error.code, 'not_found');
  });

  it('a period the picker cannot show: the page for the default period, the fields marked, 400', async () => {
    const res = await adminBrowser.agent.get('/insights?period=custom&from=2026-10-20&to=2026-10-01').expect(400);
    assert.match(res.text, /id="f-to"[^>]*value="2026-10-01"[^>]*aria-invalid="true"|id="f-to"[^>]*aria-invalid="true"/);
    assert.match(res.text, /The end must not be before the start/);
    assert.equal(sections(res.text).size, CHARTS.length, 'the charts of the default period');
    await adminBrowser.agent.get('/insights?period=fortnight').expect(400);
    await adminBrowser.agent.get('/insights?subject=not-a-clerk').expect(400);
  });

  describe('settings', () => {
    const stored = async () => ((await knex('organisations').where({ id: org.id }).first('settings'))!.settings as { insights?: unknown }).insights;
    const events = () => knex('audit_events').where({ organisation_id: org.id, action: 'insights.settings_changed' }).orderBy('seq');

    it('shows the form to admins only', async () => {
      const html = (await adminBrowser.agent.get('/insights').expect(200)).text;
      assert.match(html, /<form method="post" action="\/insights\/settings"/);
      const clerk = await signIn(app, clerks[0]!);
      assert.doesNotMatch((await clerk.agent.get('/insights').expect(200)).text, /action="\/insights\/settings"/);
      await clerk.agent.post('/insights/settings').type('form').send({ _csrf: clerk.csrf, threshold: '7', service_level_seconds: '30' }).expect(403);
    });

    it('refuses bad input: the form again with the errors, 400, nothing changed', async () => {
      const before = await stored();
      const eventsBefore = (await events()).length;
      const page = await adminBrowser.agent.get('/insights').expect(200);
      const res = await adminBrowser.agent.post('/insights/settings').type('form')
        .send({ _csrf: csrfFrom(page.text), threshold: '2', service_level_seconds: 'soon', clerks_see_each_other: 'on' }).expect(400);
      assert.match(res.text, /The settings were not saved/);
      assert.match(res.text, /id="f-threshold"[^>]*value="2"[^>]*aria-invalid="true"/);
      assert.match(res.text, /id="f-service_level_seconds"[^>]*value="soon"[^>]*aria-invalid="true"/);
      assert.match(res.text, /This number is outside the allowed range/);
      assert.match(res.text, /Enter a whole number\./);
      assert.match(res.text, /id="f-clerks_see_each_other"[^>]*checked/, 'the switch as it was sent');
      assert.equal(sections(res.text).size, CHARTS.length, 'the whole page, charts included');
      assert.deepEqual(await stored(), before);
      assert.equal((await events()).length, eventsBefore);
    });

    it('saves good input, audited with before and after', async () => {
      const page = await adminBrowser.agent.get('/insights').expect(200);
      await adminBrowser.agent.post('/insights/settings').type('form')
        .send({ _csrf: csrfFrom(page.text), threshold: '8', service_level_seconds: '45', clerks_see_each_other: 'on' })
        .expect(303).expect('Location', '/insights');
      assert.deepEqual(await stored(), { threshold: 8, serviceLevelSeconds: 45, clerksSeeEachOther: true });
      const event = (await events()).at(-1)!;
      assert.equal(event.actor_id, admin.id);
      assert.deepEqual(event.details.after, { threshold: 8, serviceLevelSeconds: 45, clerksSeeEachOther: true });
      const after = await adminBrowser.agent.get('/insights').expect(200);
      assert.match(after.text, /The Insights settings were saved/);
      assert.match(after.text, /id="f-threshold"[^>]*value="8"/);
      assert.match(after.text, /id="f-clerks_see_each_other"[^>]*checked/);
      assert.match(after.text, /answered within 45 s/);
      // Back to the defaults for the tests that follow (the switch off: unchecked boxes are not sent).
      await adminBrowser.agent.post('/insights/settings').type('form').send({ _csrf: csrfFrom(after.text), threshold: '5', service_level_seconds: '60' }).expect(303);
      assert.deepEqual(await stored(), { threshold: 5, serviceLevelSeconds: 60, clerksSeeEachOther: false });
    });

    it('refuses a form without its CSRF token', async () => {
      await adminBrowser.agent.post('/insights/settings').type('form').send({ threshold: '9', service_level_seconds: '60' }).expect(403);
    });
  });

  describe('who sees whose figures', () => {
    it("a clerk's page shows their own figures, with a link to the team's", async () => {
      const anna = await signIn(app, clerks[0]!);
      const res = await anna.agent.get(`/insights?${MONTH_QUERY}`).expect(200);
      assert.match(res.text, /My insights/);
      assert.match(res.text, new RegExp(`href="/insights\\?period=month&amp;date=2026-10-01&amp;subject=team"[^>]*id="team-figures"`));
      const own = await report(clerks[0]!, MONTH);
      assert.equal(own.subject.kind, 'clerk');
      const team = await report(admin, MONTH);
      assert.notEqual(own.totals.started.value, team.totals.started.value);
      assert.equal(rowCells(sections(res.text).get('calls')!, 'Total')[0], String(own.totals.started.value));
      assert.match(res.text, /href="\/insights"[^>]*aria-current="page">Insights</, 'the menu entry');
      assert.match(sections(res.text).get('clerks')!, /Anna Page/);
      assert.doesNotMatch(res.text, /Ben Page/, "no other clerk's name");

      const teamPage = await anna.agent.get(`/insights?${MONTH_QUERY}&subject=team`).expect(200);
      assert.match(teamPage.text, /Insights: the team/);
      assert.match(teamPage.text, /id="own-figures"/);
      assert.equal(rowCells(sections(teamPage.text).get('calls')!, 'Total')[0], String(team.totals.started.value));
      assert.doesNotMatch(sections(teamPage.text).get('clerks')!, /Ben Page/, "the team's page lists only the clerk themself");
    });

    it("a clerk cannot open another clerk's figures, page or CSV (403), unless the organisation shares them", async () => {
      const anna = await signIn(app, clerks[0]!);
      const other = `/insights?${MONTH_QUERY}&subject=${clerks[1]!.id}`;
      const refused = await anna.agent.get(other).set('Accept', 'text/html').expect(403);
      assert.match(refused.text, /another clerk&#39;s figures/);
      await anna.agent.get(`/insights/export/calls?${MONTH_QUERY}&subject=${clerks[1]!.id}`).expect(403);
      await setInsightsSettings(knex, org.id, { clerksSeeEachOther: true });
      try {
        const res = await anna.agent.get(other).expect(200);
        assert.match(res.text, /Insights: Ben Page/);
        await anna.agent.get(`/insights/export/clerks?${MONTH_QUERY}&subject=${clerks[1]!.id}`).expect(200);
        const team = await anna.agent.get(`/insights?${MONTH_QUERY}&subject=team`).expect(200);
        assert.match(sections(team.text).get('clerks')!, new RegExp(`href="/insights\\?[^"]*subject=${clerks[1]!.id}"`), 'shared: the team lists every clerk, linked');
      } finally {
        await setInsightsSettings(knex, org.id, { clerksSeeEachOther: false });
      }
    });

    it('compliance officers have no Insights (403, no menu entry)', async () => {
      const officer = await signIn(app, await seedUser(knex, org, 'compliance'));
      await officer.agent.get('/insights').set('Accept', 'text/html').expect(403);
      await officer.agent.get('/insights/export/calls').expect(403);
      const audit = await officer.agent.get('/compliance/audit').expect(200);
      assert.doesNotMatch(audit.text, /href="\/insights"/);
      assert.match((await adminBrowser.agent.get('/dashboard').expect(200)).text, /href="\/insights">Insights</);
    });

    it('an organisation without calls: every chart, nothing to show, no error', async () => {
      const empty = await seedOrganisation(knex, 'Empty Insights Bank');
      const browser = await signIn(app, await seedUser(knex, empty, 'admin'));
      const res = await browser.agent.get('/insights?period=week&date=2026-10-14').expect(200);
      assert.equal(sections(res.text).size, CHARTS.length);
      assert.match(res.text, /No clerk&#39;s figures for this period|No clerk's figures for this period/);
      assert.match(res.text, /No products to show/);
      for (const chart of CHARTS) await browser.agent.get(`/insights/export/${chart}?period=day&date=2026-10-14`).expect(200).expect('Content-Disposition', `attachment; filename="insights-${chart}-2026-10-14-2026-10-14.csv"`);
    });
  });
});
