import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import type { Express } from 'express';
import request from 'supertest';
import { actorOf, type Caller } from '../app/access/caller';
import { CallService } from '../app/calls/service';
import { CurationService, type CallRef } from '../app/curation/service';
import { embeddableImage, winAnsi } from '../app/curation/summary-pdf';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { png } from './support/images';

// --- Test images, made in code ----------------------------------------------

// --- PDF text, as a reader would see it ---------------------------------------

/** WinAnsi (Windows-1252) at 0x80-0x9F; elsewhere it is Latin-1. (Node 20's TextDecoder decodes windows-1252 as Latin-1.) */
const WIN_ANSI_HIGH: Record<number, string> = Object.fromEntries(
  [...'€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ'].map((ch, i) => [0x80 + i, ch]),
);

function decodeWinAnsi(bytes: Buffer): string {
  return [...bytes].map((b) => WIN_ANSI_HIGH[b] ?? String.fromCharCode(b)).join('');
}

/** The text of a pdfkit PDF: every stream inflated, the hex strings of its TJ operators decoded from WinAnsi. */
function pdfText(pdf: Buffer): string {
  const raw = pdf.toString('latin1');
  const lines: string[] = [];
  for (const match of raw.matchAll(/stream\r?\n([\s\S]*?)\r?\nendstream/g)) {
    const bytes = Buffer.from(match[1]!, 'latin1');
    let content: string;
    try {
      content = zlib.inflateSync(bytes).toString('latin1');
    } catch {
      content = bytes.toString('latin1');
    }
    for (const tj of content.matchAll(/\[([^\]]*)\]\s*TJ/g)) {
      const pieces = [...tj[1]!.matchAll(/<([0-9a-fA-F]*)>/g)].map((m) => decodeWinAnsi(Buffer.from(m[1]!, 'hex')));
      lines.push(pieces.join(''));
    }
  }
  return lines.join('\n');
}

function flat(text: string): string {
  return text.replace(/\s+/g, ' ');
}

function binary(res: request.Response, callback: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
}

const SCRIPT = '<script>alert(1)</script>';
const IMG = '<img src=x onerror=alert(1)>';
const KEPT_NAME = `Hausrat Größe ${SCRIPT}`;
const WITHDRAWN_NAME = `Kfz Plus ${IMG}`;

describe('after-call summaries', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let app: Express;
  let org: SeededOrganisation;
  let clerk: SeededUser;
  let clerkBrowser: Browser;
  let otherClerk: Browser;
  let foreignClerk: Browser;
  let products: { kept: string; withdrawn: string; unrelated: string };
  let images: { kept: string; withdrawn: string; unrelated: string; foreign: string };
  let main: { id: string; token: string; kept: string; withdrawn: string };

  function callerFor(user: SeededUser): Caller {
    return {
      user: { id: user.id, organisationId: user.organisationId, organisationSlug: org.slug, organisationName: org.name, organisationBrandVersion: 1, name: user.name, email: user.email, role: user.role, language: null },
      ip: '127.0.0.1',
      userAgent: 'test',
      sessionId: 'test',
    };
  }

  async function product(organisationId: string, sku: string, name: string, url: string | null = null): Promise<string> {
    const [row] = await knex()('products').insert({ organisation_id: organisationId, sku, name, price_cents: 123450, currency: 'EUR', product_url: url }).returning('id');
    return row!.id;
  }

  async function image(organisationId: string, productId: string, data: Buffer, contentType = 'image/png'): Promise<string> {
    const [row] = await knex()('product_images')
      .insert({ organisation_id: organisationId, product_id: productId, position: 0, content_type: contentType, data, size: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') })
      .returning('id');
    return row!.id;
  }

  /** A call of the clerk with one card shown (the kept product); ended unless asked otherwise. */
  async function smallCall(options: { end?: boolean } = {}): Promise<{ id: string; token: string; ref: CallRef }> {
    const { call, token } = await new CallService(knex()).start(callerFor(clerk), 24);
    const ref = { callId: call.id, organisationId: org.id };
    await new CurationService(knex()).show(ref, products.kept, 'A note');
    if (options.end !== false) await new CallService(knex()).end(call.id, 'ended_by_clerk', actorOf(callerFor(clerk).user));
    return { id: call.id, token, ref };
  }

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(knex(), 'Summary Bank');
    const other = await seedOrganisation(knex(), 'Summary Insurer');
    clerk = await seedUser(knex(), org, 'clerk');
    clerkBrowser = await signIn(app, clerk);
    otherClerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
    foreignClerk = await signIn(app, await seedUser(knex(), other, 'clerk'));

    products = {
      kept: await product(org.id, 'HR-1', KEPT_NAME, 'https://example.org/hausrat?a=1&b=2'),
      withdrawn: await product(org.id, 'KFZ-1', WITHDRAWN_NAME),
      unrelated: await product(org.id, 'LEB-1', 'Leben'),
    };
    const foreignProduct = await product(other.id, 'X-1', 'Foreign');
    images = {
      kept: await image(org.id, products.kept, png(10)),
      withdrawn: await image(org.id, products.withdrawn, png(20)),
      unrelated: await image(org.id, products.unrelated, png(30)),
      foreign: await image(other.id, foreignProduct, png(40)),
    };

    const calls = new CallService(knex());
    const { call, token } = await calls.start(callerFor(clerk), 24, { reference: 'CASE-77' });
    const ref = { callId: call.id, organisationId: org.id };
    const curation = new CurationService(knex());
    const kept = await curation.show(ref, products.kept, `First line\n${SCRIPT}\n${IMG}`);
    const withdrawn = await curation.show(ref, products.withdrawn, 'Withdrawn note');
    await curation.favourite(ref, kept.id, true);
    await curation.ask(ref, kept.id, `Is it ${IMG}?`);
    await curation.send(ref, { role: 'clerk', userId: clerk.id }, `Hello ${IMG}`);
    await curation.send(ref, { role: 'customer' }, SCRIPT);
    await curation.withdraw(ref, withdrawn.id);
    await calls.end(call.id, 'ended_by_clerk', actorOf(callerFor(clerk).user));
    // Five minutes and seven seconds between both being there and the end.
    await knex()('calls').where({ id: call.id }).update({ started_at: knex().raw(`ended_at - interval '307 seconds'`) });
    main = { id: call.id, token, kept: kept.id, withdrawn: withdrawn.id };
  });

  describe('the customer summary (GET /join/:token after the call)', () => {
    it('shows exactly the cards not withdrawn, with note, favourite mark, price and link, all escaped', async () => {
      const res = await request(app).get(`/join/${main.token}`).set('Accept-Language', 'en').expect(200);
      const html = res.text;
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(res.headers['set-cookie'], undefined, 'the customer summary sets no cookie');
      assert.match(html, /<meta name="robots" content="noindex, nofollow">/);
      assert.match(html, /Your selection from Summary Bank/);
      assert.match(html, /href="\/branding\/summary-bank\/theme\.css\?v=\d+"/, "the organisation's colours");
      assert.match(html, /Hausrat Größe &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
      assert.match(html, /First line\n&lt;script&gt;alert\(1\)&lt;\/script&gt;\n&lt;img src=x onerror=alert\(1\)&gt;/, 'the note, escaped, line breaks kept as text');
      assert.match(html, /class="summary-note"/);
      assert.match(html, /badge-favourite/);
      assert.match(html, /€1,234\.50/);
      assert.match(html, /<a href="https:\/\/example\.org\/hausrat\?a=1&amp;b=2" rel="noopener noreferrer" target="_blank">/);
      assert.match(html, new RegExp(`src="/join/${main.token}/images/${images.kept}"`));
      assert.doesNotMatch(html, /Kfz Plus|Withdrawn note/, 'the withdrawn card is not there');
      assert.doesNotMatch(html, new RegExp(images.withdrawn));
      assert.doesNotMatch(html, /<script>alert|<img src=x/i, 'nothing typed or imported runs');
      assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/i, 'no inline script');
      assert.doesNotMatch(html, /<style|<[^>]*\s(style|on[a-z]+)=/i, 'no inline style or handler');
      assert.doesNotMatch(html, /Hello|Is it/, 'the chat is the clerk\'s, not in the customer summary');
      assert.match(html, /data-print hidden/);
      assert.match(html, new RegExp(`href="/join/${main.token}/summary\\.pdf"`));
      assert.match(html, /src="\/static\/js\/print\.js\?v=/);
    });

    it('formats the price for the page language', async () => {
      const res = await request(app).get(`/join/${main.token}`).set('Accept-Language', 'de').expect(200);
      assert.match(res.text, /1\.234,50\s€/);
      assert.match(res.text, /Ihre Auswahl von Summary Bank/);
      assert.match(res.text, /Favorit/);
    });

    it('the link\'s own expiry does not matter after the call; after summaryDays it answers 410', async () => {
      const { id, token } = await smallCall();
      await knex()('calls').where({ id }).update({ guest_token_expires_at: new Date(Date.now() - 1000) });
      await request(app).get(`/join/${token}`).expect(200, /A note/);
      await knex()('calls').where({ id }).update({ ended_at: new Date(Date.now() - 13 * 86_400_000) });
      await request(app).get(`/join/${token}`).expect(200, /A note/);
      await knex()('calls').where({ id }).update({ ended_at: new Date(Date.now() - 14 * 86_400_000 - 1000) });
      await request(app).get(`/join/${token}`).expect(410);
      await request(app).get(`/join/${token}/summary.pdf`).expect(410);
      await request(app).get(`/join/${token}/images/${images.kept}`).expect(404);
      const shorter = buildApp(db.current, { env: { VCLERK_SUMMARY_DAYS: '20' } });
      await request(shorter).get(`/join/${token}`).expect(200, /A note/);
    });

    it('VCLERK_SUMMARY_DAYS=0 turns the customer summary off', async () => {
      const { token } = await smallCall();
      const off = buildApp(db.current, { env: { VCLERK_SUMMARY_DAYS: '0' } });
      await request(off).get(`/join/${token}`).expect(410);
      await request(off).get(`/join/${token}/summary.pdf`).expect(410);
    });

    it('a revoked link opens no summary, no PDF and no image', async () => {
      const { id, token } = await smallCall();
      await request(app).get(`/join/${token}`).expect(200);
      await new CallService(knex()).revokeLink(callerFor(clerk), id);
      const page = await request(app).get(`/join/${token}`);
      assert.ok([404, 410].includes(page.status), `status ${page.status}`);
      assert.doesNotMatch(page.text, /A note/);
      await request(app).get(`/join/${token}/summary.pdf`).expect(404);
      await request(app).get(`/join/${token}/images/${images.kept}`).expect(404);
    });

    it('an unknown or malformed token opens nothing', async () => {
      await request(app).get(`/join/${'B'.repeat(43)}`).expect(404);
      await request(app).get(`/join/${'B'.repeat(43)}/summary.pdf`).expect(404);
      await request(app).get(`/join/${'B'.repeat(43)}/images/${images.kept}`).expect(404);
      await request(app).get('/join/x/images/y').expect(404);
    });
  });

  describe('card images through the customer link (GET /join/:token/images/:imageId)', () => {
    it('serves the image of a card shown, and nothing else', async () => {
      const res = await request(app).get(`/join/${main.token}/images/${images.kept}`).buffer(true).parse(binary).expect(200);
      assert.equal(res.headers['content-type'], 'image/png');
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.deepEqual(res.body, png(10));
      await request(app).get(`/join/${main.token}/images/${images.withdrawn}`).expect(404);
      await request(app).get(`/join/${main.token}/images/${images.unrelated}`).expect(404);
      await request(app).get(`/join/${main.token}/images/${images.foreign}`).expect(404);
      await request(app).get(`/join/${main.token}/images/not-a-uuid`).expect(404);
    });

    it('works during the call too, for the cards shown at the time', async () => {
      const { token, ref } = await smallCall({ end: false });
      await request(app).get(`/join/${token}/images/${images.kept}`).expect(200);
      await request(app).get(`/join/${token}/images/${images.unrelated}`).expect(404);
      const card = await new CurationService(knex()).show(ref, products.unrelated);
      await request(app).get(`/join/${token}/images/${images.unrelated}`).expect(200);
      await new CurationService(knex()).withdraw(ref, card.id);
      await request(app).get(`/join/${token}/images/${images.unrelated}`).expect(404);
      await request(app).get(`/join/${token}/summary.pdf`).expect(404); // no PDF while the call is open
    });
  });

  describe('the PDF (GET /join/:token/summary.pdf)', () => {
    it('is a download with the same content, umlauts intact, the image embedded', async () => {
      const res = await request(app).get(`/join/${main.token}/summary.pdf`).set('Accept-Language', 'en').buffer(true).parse(binary).expect(200);
      assert.equal(res.headers['content-type'], 'application/pdf');
      assert.match(res.headers['content-disposition'] ?? '', /^attachment; filename="?summary-bank-\d{4}-\d{2}-\d{2}\.pdf"?$/);
      assert.equal(res.headers['cache-control'], 'no-store');
      const pdf = res.body as Buffer;
      assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
      const text = flat(pdfText(pdf));
      assert.match(text, /Your selection from Summary Bank/);
      assert.ok(text.includes(KEPT_NAME), `the product name, umlauts included, in: ${text}`);
      assert.ok(text.includes(`First line ${SCRIPT} ${IMG}`), 'the note');
      assert.match(text, /€1,234\.50 · Favourite/);
      assert.match(text, /https:\/\/example\.org\/hausrat/);
      assert.doesNotMatch(text, /Kfz Plus|Withdrawn note/);
      assert.match(pdf.toString('latin1'), /\/Subtype \/Image/, 'the PNG is embedded');
    });

    it('in German', async () => {
      const res = await request(app).get(`/join/${main.token}/summary.pdf`).set('Accept-Language', 'de').buffer(true).parse(binary).expect(200);
      const text = flat(pdfText(res.body as Buffer));
      assert.match(text, /Ihre Auswahl von Summary Bank/);
      assert.match(text, /1\.234,50 € · Favorit/);
      assert.match(text, /Zusammenfassung lässt sich/);
    });

    it('leaves out images pdfkit would have to decode (alpha, corrupt) instead of failing', async () => {
      assert.equal(embeddableImage(png(1)), true);
      assert.equal(embeddableImage(png(1, { alpha: true })), false);
      assert.equal(embeddableImage(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0])), true);
      assert.equal(embeddableImage(Buffer.from('RIFF0000WEBPVP8 ')), false);
      const { id, token, ref } = await smallCall({ end: false });
      const broken = await image(org.id, products.unrelated, png(1, { alpha: true, idat: Buffer.from('not zlib at all') }));
      await knex()('product_images').where({ id: images.unrelated }).update({ position: 1 });
      await new CurationService(knex()).show(ref, products.unrelated);
      await new CallService(knex()).end(id, 'ended_by_clerk', actorOf(callerFor(clerk).user));
      assert.equal((await knex()('call_items').where({ call_id: id, product_id: products.unrelated }).first())!.image_id, broken);
      const res = await request(app).get(`/join/${token}/summary.pdf`).buffer(true).parse(binary).expect(200);
      assert.match(flat(pdfText(res.body as Buffer)), /Leben/);
      await knex()('product_images').where({ id: broken }).delete();
      await knex()('product_images').where({ id: images.unrelated }).update({ position: 0 });
    });

    it('writes only what the standard fonts can show', () => {
      assert.equal(winAnsi('Größe Äpfel €5 – „gut“'), 'Größe Äpfel €5 – „gut“');
      assert.equal(winAnsi('Mu\u0308ller'), 'Müller');
      assert.equal(winAnsi('Привет 😀\tx\u0007'), '?????? ? x');
      assert.equal(winAnsi('9:45\u202fAM'), '9:45 AM', 'narrow spaces from Intl become spaces');
    });
  });

  describe('the clerk summary (GET /calls/:id after the call)', () => {
    it('shows duration, every card (withdrawn marked), the chat and the notes form, all escaped', async () => {
      const res = await clerkBrowser.agent.get(`/calls/${main.id}`).set('Accept-Language', 'en').expect(200);
      const html = res.text;
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.match(html, /Call summary/);
      assert.match(html, /CASE-77/);
      assert.match(html, /5 min 7 s/);
      assert.match(html, /Ended by you/);
      assert.match(html, /Hausrat Größe &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
      assert.match(html, /Kfz Plus &lt;img src=x onerror=alert\(1\)&gt;/);
      assert.match(html, /class="summary-card is-withdrawn"[\s\S]*?Withdrawn/);
      assert.match(html, /Customer asked/);
      assert.match(html, /badge-favourite/);
      assert.match(html, /Hello &lt;img src=x onerror=alert\(1\)&gt;/);
      assert.match(html, /Question about: Hausrat Größe &lt;script&gt;/);
      assert.match(html, /<strong>You<\/strong>/);
      assert.match(html, /<strong>Customer<\/strong>/);
      assert.match(html, new RegExp(`action="/calls/${main.id}/notes"`));
      assert.match(html, /name="_csrf"/);
      assert.doesNotMatch(html, /<script>alert|<img src=x/i);
      assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/i, 'no inline script');
      assert.doesNotMatch(html, /<style|<[^>]*\s(style|on[a-z]+)=/i, 'no inline style or handler');
      assert.doesNotMatch(html, /data-role="clerk"/, 'not the call stage');
    });

    it('a call that never started says so', async () => {
      const { id } = await smallCall();
      const res = await clerkBrowser.agent.get(`/calls/${id}`).expect(200);
      assert.match(res.text, /Did not start/);
    });

    it('the dashboard links the ended call to its summary', async () => {
      const res = await clerkBrowser.agent.get('/dashboard').expect(200);
      assert.match(res.text, new RegExp(`href="/calls/${main.id}"`));
    });

    it('saves the private notes (CSRF-protected), shows them escaped, and refuses too long ones', async () => {
      await clerkBrowser.agent.post(`/calls/${main.id}/notes`).type('form').send({ notes: 'no token' }).expect(403);
      assert.equal(await knex()('call_notes').where({ call_id: main.id }).first(), undefined);
      await clerkBrowser.agent.post(`/calls/${main.id}/notes`).type('form').send({ _csrf: clerkBrowser.csrf, notes: `Call back\r\n${SCRIPT}` })
        .expect(303).expect('Location', `/calls/${main.id}`);
      const row = await knex()('call_notes').where({ call_id: main.id }).first();
      assert.equal(row!.body, `Call back\n${SCRIPT}`);
      assert.equal(row!.updated_by, clerk.id);
      const page = await clerkBrowser.agent.get(`/calls/${main.id}`).expect(200);
      assert.match(page.text, /Your notes have been saved/);
      assert.match(page.text, /<textarea[^>]*>Call back\n&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/textarea>/);
      const tooLong = await clerkBrowser.agent.post(`/calls/${main.id}/notes`).type('form').send({ _csrf: clerkBrowser.csrf, notes: 'x'.repeat(5001) }).expect(400);
      assert.match(tooLong.text, /aria-invalid="true"/);
      assert.match(tooLong.text, /This is too long/);
      assert.equal((await knex()('call_notes').where({ call_id: main.id }).first())!.body, `Call back\n${SCRIPT}`);
      const customer = await request(app).get(`/join/${main.token}`).expect(200);
      assert.doesNotMatch(customer.text, /Call back/, 'the private notes never reach the customer');
      await clerkBrowser.agent.post(`/calls/${main.id}/notes`).type('form').send({ _csrf: clerkBrowser.csrf, notes: '  ' }).expect(303);
      assert.equal(await knex()('call_notes').where({ call_id: main.id }).first(), undefined, 'empty notes remove them');
    });

    it('another clerk, or one of another organisation, gets 404 and changes nothing', async () => {
      await otherClerk.agent.get(`/calls/${main.id}`).set('Accept', 'application/json').expect(404);
      await foreignClerk.agent.get(`/calls/${main.id}`).set('Accept', 'application/json').expect(404);
      await otherClerk.agent.post(`/calls/${main.id}/notes`).set('X-CSRF-Token', otherClerk.csrf).set('Accept', 'application/json').send({ notes: 'mine' }).expect(404);
      await foreignClerk.agent.post(`/calls/${main.id}/notes`).set('X-CSRF-Token', foreignClerk.csrf).set('Accept', 'application/json').send({ notes: 'mine' }).expect(404);
      assert.equal(await knex()('call_notes').where({ call_id: main.id }).first(), undefined);
      const denied = await knex()('audit_events').where({ action: 'security.cross_organisation_denied', target_id: main.id });
      assert.ok(denied.length >= 2, 'the other organisation\'s attempts are audited');
    });
  });
});
