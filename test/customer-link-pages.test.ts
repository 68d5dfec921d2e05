import assert from 'node:assert/strict';
import request, { type Response } from 'supertest';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { inlineCode } from './support/crawl';
import { useTestDatabase } from './support/database';

/**
 * Issue 16: a customer whose link opens nothing (any more) sees a page of
 * the organisation (its name, colours, logo), in their language, with
 * what to do next: the queue while it is open, the organisation's contact.
 */
describe('customer pages for a link that opens nothing', () => {
  const db = useTestDatabase();
  let app: ReturnType<typeof buildApp>;
  let noSummaries: ReturnType<typeof buildApp>;
  let open: SeededOrganisation;
  let closed: SeededOrganisation;
  let openClerk: Browser;
  let closedClerk: Browser;

  before(async () => {
    app = buildApp(db.current);
    noSummaries = buildApp(db.current, { env: { VCLERK_SUMMARY_DAYS: '0' } });
    open = await seedOrganisation(db.current.knex, 'Link Bakery');
    closed = await seedOrganisation(db.current.knex, 'Quiet Shop');
    openClerk = await signIn(app, await seedUser(db.current.knex, open, 'clerk'));
    closedClerk = await signIn(app, await seedUser(db.current.knex, closed, 'clerk'));
    const openAdmin = await signIn(app, await seedUser(db.current.knex, open, 'admin'));
    await openAdmin.agent.post('/admin/organisation/privacy').type('form').send({ _csrf: openAdmin.csrf, privacy_contact: 'privacy@link-bakery.example' }).expect(303);
    // Open only on a day that is not today (in UTC): the queue is closed now.
    const closedAdmin = await signIn(app, await seedUser(db.current.knex, closed, 'admin'));
    const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    const other = days[(new Date().getUTCDay() + 3) % 7]!;
    await closedAdmin.agent.post('/admin/organisation/queue').type('form').send({ _csrf: closedAdmin.csrf, timezone: 'UTC', [`${other}_from`]: '00:00', [`${other}_to`]: '23:59' }).expect(303);
  });

  async function startCall(clerk: Browser): Promise<{ id: string; token: string }> {
    const res = await clerk.agent.post('/calls').type('form').send({ _csrf: clerk.csrf }).expect(303);
    const match = /^\/calls\/([0-9a-f-]{36})#customer=([A-Za-z0-9_-]{43})$/.exec(res.headers.location ?? '');
    assert.ok(match, `redirect with the token in the fragment: ${res.headers.location}`);
    return { id: match[1]!, token: match[2]! };
  }

  async function revoked(clerk: Browser): Promise<string> {
    const { id, token } = await startCall(clerk);
    await clerk.agent.post(`/calls/${id}/revoke`).type('form').send({ _csrf: clerk.csrf }).expect(303);
    return token;
  }

  async function expired(clerk: Browser): Promise<string> {
    const { id, token } = await startCall(clerk);
    await db.current.knex('calls').where({ id }).update({ guest_token_expires_at: new Date(Date.now() - 1000) });
    return token;
  }

  async function ended(clerk: Browser): Promise<string> {
    const { id, token } = await startCall(clerk);
    await clerk.agent.post(`/calls/${id}/end`).type('form').send({ _csrf: clerk.csrf }).expect(303);
    return token;
  }

  /** What every customer page of a dead link holds: no cache, no index, no cookie, no inline code, no way to the staff sign-in. */
  function assertCustomerPage(page: Response): void {
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.match(page.headers['x-robots-tag'] ?? '', /noindex/);
    assert.match(page.text, /<meta name="robots" content="noindex, nofollow">/);
    assert.equal(page.headers['set-cookie'], undefined, 'sets no cookie');
    assert.deepEqual(inlineCode(page.text), []);
    assert.doesNotMatch(page.text, /href="\/login"/);
    assert.doesNotMatch(page.text, /administrator/i);
    assert.match(page.text, /id="link-page"/);
  }

  function assertBranded(page: Response, organisation: SeededOrganisation): void {
    assert.match(page.text, new RegExp(organisation.name));
    assert.match(page.text, new RegExp(`href="/branding/${organisation.slug}/theme\\.css\\?v=\\d+"`), "the organisation's colours");
  }

  const cases: { name: string; status: number; make: (clerk: Browser) => Promise<string>; text: RegExp; de: RegExp; summariesOff?: boolean }[] = [
    { name: 'revoked', status: 404, make: revoked, text: /This link was withdrawn/, de: /Dieser Link wurde von Link Bakery zurückgezogen/ },
    { name: 'expired', status: 404, make: expired, text: /This link has expired/, de: /Dieser Link ist abgelaufen/ },
    { name: 'ended without a summary', status: 410, make: ended, text: /This call has ended/, de: /Dieses Gespräch ist beendet/, summariesOff: true },
  ];

  for (const c of cases) {
    it(`${c.name}: ${c.status}, in the organisation's branding, with the open queue and the contact`, async () => {
      const token = await c.make(openClerk);
      const page = await request(c.summariesOff ? noSummaries : app).get(`/join/${token}`).expect(c.status);
      assertCustomerPage(page);
      assertBranded(page, open);
      assert.match(page.text, c.text);
      assert.match(page.text, new RegExp(`href="/q/${open.slug}"`), 'the way to the queue while it is open');
      assert.match(page.text, /privacy@link-bakery\.example/);
    });

    it(`${c.name}: no queue link while the queue is closed, no contact when none is set`, async () => {
      const token = await c.make(closedClerk);
      const page = await request(c.summariesOff ? noSummaries : app).get(`/join/${token}`).expect(c.status);
      assertCustomerPage(page);
      assertBranded(page, closed);
      assert.doesNotMatch(page.text, new RegExp(`href="/q/${closed.slug}"`));
      assert.doesNotMatch(page.text, /privacy@/);
    });

    it(`${c.name}: in German by Accept-Language`, async () => {
      const token = await c.make(openClerk);
      const page = await request(c.summariesOff ? noSummaries : app).get(`/join/${token}`).set('Accept-Language', 'de-DE,de;q=0.9').expect(c.status);
      assertCustomerPage(page);
      assertBranded(page, open);
      assert.match(page.text, /<html lang="de">/);
      assert.match(page.text, c.de);
    });
  }

  it('a revoked link of an ended call answers 410 in the same branded page', async () => {
    const { id, token } = await startCall(openClerk);
    await openClerk.agent.post(`/calls/${id}/revoke`).type('form').send({ _csrf: openClerk.csrf }).expect(303);
    await openClerk.agent.post(`/calls/${id}/end`).type('form').send({ _csrf: openClerk.csrf }).expect(303);
    const page = await request(app).get(`/join/${token}`).expect(410);
    assertCustomerPage(page);
    assertBranded(page, open);
  });

  it('the summary PDF of an ended call without a summary answers 410 with the branded page', async () => {
    const token = await ended(openClerk);
    const page = await request(noSummaries).get(`/join/${token}/summary.pdf`).expect(410);
    assertCustomerPage(page);
    assertBranded(page, open);
    assert.match(page.text, /This call has ended/);
  });

  it('the logo is shown when the organisation has one', async () => {
    await db.current.knex('organisations').where({ id: open.id }).update({ logo: Buffer.from('x'), logo_type: 'image/png' });
    const page = await request(app).get(`/join/${await revoked(openClerk)}`).expect(404);
    assert.match(page.text, new RegExp(`src="/branding/${open.slug}/logo\\?v=\\d+"`));
  });

  it('an unknown token: a neutral page, same status, no organisation, no sign-in', async () => {
    const page = await request(app).get(`/join/${'B'.repeat(43)}`).expect(404);
    assertCustomerPage(page);
    assert.match(page.text, /This link is not valid/);
    assert.doesNotMatch(page.text, /\/branding\//);
    assert.doesNotMatch(page.text, /href="\/q\//);
    const de = await request(app).get(`/join/${'B'.repeat(43)}`).set('Accept-Language', 'de').expect(404);
    assert.match(de.text, /Dieser Link ist nicht gültig/);
    assertCustomerPage(de);
  });
});
