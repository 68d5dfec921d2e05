import assert from 'node:assert/strict';
import request from 'supertest';
import type { Caller } from '../app/access/caller';
import { ApiKeyService } from '../app/api-keys/service';
import { qrSvg } from '../app/calls/link-qr';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

describe('call links shown again to their clerk', () => {
  const db = useTestDatabase();
  let app: ReturnType<typeof buildApp>;
  let clerk: SeededUser;
  let clerkBrowser: Browser;
  let otherClerk: Browser;
  let foreignClerk: Browser;

  before(async () => {
    app = buildApp(db.current);
    const org = await seedOrganisation(db.current.knex, 'Link Bank');
    const other = await seedOrganisation(db.current.knex, 'Link Insurer');
    clerk = await seedUser(db.current.knex, org, 'clerk');
    clerkBrowser = await signIn(app, clerk);
    otherClerk = await signIn(app, await seedUser(db.current.knex, org, 'clerk'));
    foreignClerk = await signIn(app, await seedUser(db.current.knex, other, 'clerk'));
  });

  async function startCall(body: Record<string, string> = {}): Promise<{ id: string; token: string }> {
    const res = await clerkBrowser.agent.post('/calls').type('form').send({ _csrf: clerkBrowser.csrf, ...body }).expect(303);
    const match = /^\/calls\/([0-9a-f-]{36})#customer=([A-Za-z0-9_-]{43})$/.exec(res.headers.location ?? '');
    assert.ok(match, `redirect to the call page with the token in the fragment: ${res.headers.location}`);
    return { id: match[1]!, token: match[2]! };
  }

  const linkIn = (html: string) => /id="customer-link"[^>]*value="([^"]+)"/.exec(html)?.[1];

  it('the dashboard offers "Show link"; the page shows the same link, a QR code of it and a copy button; the view is audited', async () => {
    const { id, token } = await startCall({ reference: 'LINK-0001' });
    const row = await db.current.knex('calls').where({ id }).first();
    assert.match(row!.link_nonce ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!JSON.stringify(row).includes(token), 'the token is not stored');

    const dashboard = await clerkBrowser.agent.get('/dashboard').expect(200);
    assert.ok(dashboard.text.includes(`href="/calls/${id}/link"`), 'a Show link action on the open call');

    const page = await clerkBrowser.agent.get(`/calls/${id}/link`).set('User-Agent', 'reshow-test').expect(200);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.equal(page.headers['content-encoding'], undefined, 'a page with a secret is sent uncompressed');
    const link = linkIn(page.text);
    assert.ok(link, 'the link is in a read-only field');
    assert.ok(link.endsWith(`/join/${token}`), `the link issued at the start: ${link}`);
    assert.match(page.text, /LINK-0001/);
    assert.match(page.text, /data-copy-target="customer-link"/);
    assert.match(page.text, /\/static\/js\/copy(\.[0-9a-f]+)?\.js/);
    const svg = /<div role="img" aria-label="[^"]+" data-qr>(<svg[\s\S]*?<\/svg>)/.exec(page.text)?.[1];
    assert.ok(svg, 'an inline SVG QR code');
    assert.match(svg, /<path [^>]*d="M/);
    assert.equal(svg, (await qrSvg(link)).trim(), 'the QR code encodes the link');
    assert.doesNotMatch(svg, /style=|<script|on\w+=/i);

    // The link shown opens the call for the customer.
    await request(app).get(new URL(link).pathname).expect(200, /data-role="customer"/);

    const events = await db.current.knex('audit_events').where({ action: 'call.link_viewed', target_id: id });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.actor_id, clerk.id);
    assert.ok(events[0]!.ip, 'with the client address');
    assert.equal(events[0]!.user_agent, 'reshow-test');
  });

  it('links made by the API can be shown again too', async () => {
    const org = (await db.current.knex('organisations').where({ name: 'Link Bank' }).first())!;
    const admin = await seedUser(db.current.knex, org, 'admin');
    const caller: Caller = { user: { id: admin.id, organisationId: org.id, organisationSlug: org.slug, organisationName: org.name, organisationBrandVersion: 0, name: admin.name, email: admin.email, role: 'admin', language: null }, ip: '127.0.0.1', userAgent: 'test', sessionId: 'test' };
    const { key } = await new ApiKeyService(db.current.knex, caller).create({ name: 'CRM', scopes: ['calls:write'], own_key: undefined });
    const created = await request(app).post('/api/v1/call-links').set('Authorization', `Bearer ${key}`).send({ clerkId: clerk.id }).expect(201);
    const page = await clerkBrowser.agent.get(`/calls/${created.body.call.id}/link`).expect(200);
    assert.equal(new URL(linkIn(page.text)!).pathname, new URL(created.body.url).pathname);
  });

  it('another clerk of the organisation, or of another organisation, gets 404 and nothing is audited as viewed', async () => {
    const { id, token } = await startCall();
    const other = await otherClerk.agent.get(`/calls/${id}/link`).expect(404);
    assert.ok(!other.text.includes(token));
    await foreignClerk.agent.get(`/calls/${id}/link`).expect(404);
    await clerkBrowser.agent.get('/calls/not-a-uuid/link').expect(404);
    assert.equal((await db.current.knex('audit_events').where({ action: 'call.link_viewed', target_id: id })).length, 0);
    assert.ok((await db.current.knex('audit_events').where({ action: 'security.cross_organisation_denied', target_id: id })).length >= 1);
  });

  it('a revoked, expired or ended call\'s link is not shown, and the page says why', async () => {
    const revoked = await startCall();
    await clerkBrowser.agent.post(`/calls/${revoked.id}/revoke`).type('form').send({ _csrf: clerkBrowser.csrf }).expect(303);
    const expired = await startCall();
    await db.current.knex('calls').where({ id: expired.id }).update({ guest_token_expires_at: new Date(Date.now() - 60_000) });
    const ended = await startCall();
    await clerkBrowser.agent.post(`/calls/${ended.id}/end`).type('form').send({ _csrf: clerkBrowser.csrf }).expect(303);

    const dashboard = await clerkBrowser.agent.get('/dashboard').expect(200);
    for (const { id } of [revoked, expired, ended]) assert.ok(!dashboard.text.includes(`href="/calls/${id}/link"`), 'no Show link for a link that opens nothing');

    const cases: [{ id: string; token: string }, string, RegExp][] = [
      [revoked, 'revoked', /was revoked/],
      [expired, 'expired', /expired/],
      [ended, 'ended', /has ended/],
    ];
    for (const [call, state, text] of cases) {
      const page = await clerkBrowser.agent.get(`/calls/${call.id}/link`).expect(200);
      assert.match(page.text, new RegExp(`data-state="${state}"`));
      assert.match(page.text, text);
      assert.ok(!page.text.includes(call.token), `${state}: the token is not shown`);
      assert.doesNotMatch(page.text, /<svg/);
    }
    assert.equal((await db.current.knex('audit_events').whereIn('target_id', [revoked.id, expired.id, ended.id]).where({ action: 'call.link_viewed' })).length, 0);
  });

  it('a link that cannot be derived again (made before, or the secret changed) is not shown', async () => {
    const old = await startCall();
    await db.current.knex('calls').where({ id: old.id }).update({ link_nonce: null });
    const page = await clerkBrowser.agent.get(`/calls/${old.id}/link`).expect(200);
    assert.match(page.text, /data-state="unavailable"/);
    assert.match(page.text, /cannot be shown again/);
    assert.ok(!page.text.includes(old.token));

    const changed = await startCall();
    await db.current.knex('calls').where({ id: changed.id }).update({ link_nonce: 'A'.repeat(43) });
    const other = await clerkBrowser.agent.get(`/calls/${changed.id}/link`).expect(200);
    assert.match(other.text, /data-state="unavailable"/, 'a derived token that does not match the stored hash is never shown');
    await request(app).get(`/join/${changed.token}`).expect(200, /data-role="customer"/);
  });

  it('the call page tells the clerk the link can be shown again from the dashboard', async () => {
    const { id } = await startCall();
    const page = await clerkBrowser.agent.get(`/calls/${id}`).expect(200);
    assert.match(page.text, /open it again, with a QR code, from your dashboard/);
  });
});
