import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { MAX_LOGO_BYTES } from '../app/organisation/profile-service';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/** A real 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const SVG = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');

const sha256 = (data: Buffer) => crypto.createHash('sha256').update(data).digest('hex');

describe('organisation profile and branding', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let app: Express;
  let org: SeededOrganisation;
  let other: SeededOrganisation;
  let admin: SeededUser;
  let otherAdmin: SeededUser;

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(knex(), 'Branding Bank');
    other = await seedOrganisation(knex(), 'Other Savings');
    admin = await seedUser(knex(), org, 'admin');
    otherAdmin = await seedUser(knex(), other, 'admin');
  });

  /** Everything about an organisation a request could change. */
  const snapshot = async (id: string) => {
    const row = await knex()('organisations').where({ id }).first('name', 'vat_number', 'brand_color', 'logo', 'logo_type', 'updated_at');
    return { ...row, logo: row!.logo ? sha256(row!.logo) : null, updated_at: row!.updated_at.toISOString() };
  };
  const auditOf = (organisationId: string, action: string) =>
    knex()('audit_events').where({ organisation_id: organisationId, action }).orderBy('id');
  const brandingPost = (browser: Browser, csrf: string | null = browser.csrf) =>
    browser.agent.post(`/admin/organisation/branding${csrf ? `?_csrf=${encodeURIComponent(csrf)}` : ''}`);

  describe('profile', () => {
    it('an admin changes name and VAT number; the change is audited with before and after', async () => {
      const before = await snapshot(org.id);
      const browser = await signIn(app, admin);
      await browser.agent.post('/admin/organisation').type('form')
        .send({ _csrf: browser.csrf, name: '  Branding Bank AG ', vat_number: 'DE 123 456 789' })
        .expect(303).expect('Location', '/admin/organisation');
      const after = await snapshot(org.id);
      assert.equal(after.name, 'Branding Bank AG');
      assert.equal(after.vat_number, 'DE 123 456 789');
      assert.ok(after.updated_at > before.updated_at, 'updated_at moves on');
      const [event, ...more] = await auditOf(org.id, 'organisation.updated');
      assert.equal(more.length, 0);
      assert.equal(event!.actor_id, admin.id);
      assert.equal(event!.target_type, 'organisation');
      assert.equal(event!.target_id, org.id);
      assert.deepEqual(event!.details, {
        before: { name: before.name, vat_number: before.vat_number },
        after: { name: 'Branding Bank AG', vat_number: 'DE 123 456 789' },
      });
      const page = await browser.agent.get('/admin/organisation').expect(200);
      assert.match(page.text, /The profile is saved\./);
      assert.match(page.text, /value="Branding Bank AG"/);

      // Saving the same values again changes and audits nothing.
      await browser.agent.post('/admin/organisation').type('form')
        .send({ _csrf: browser.csrf, name: 'Branding Bank AG', vat_number: 'DE 123 456 789' }).expect(303);
      assert.deepEqual(await snapshot(org.id), after);
      assert.equal((await auditOf(org.id, 'organisation.updated')).length, 1);
    });

    it('refuses an empty name with a field error and changes nothing', async () => {
      const before = await snapshot(org.id);
      const browser = await signIn(app, admin);
      const res = await browser.agent.post('/admin/organisation').type('form')
        .send({ _csrf: browser.csrf, name: '   ', vat_number: 'DE<1>' }).expect(400);
      assert.match(res.text, /id="f-name"[^>]*aria-invalid="true"/);
      assert.match(res.text, /Please fill in this field\./);
      assert.match(res.text, /Use only letters, digits, spaces, dots, hyphens and slashes\./);
      assert.match(res.text, /value="DE&lt;1&gt;"/);
      assert.deepEqual(await snapshot(org.id), before);
    });

    it('a name with <script> is shown escaped', async () => {
      const mine = await seedOrganisation(knex(), 'Escaping Bank');
      const browser = await signIn(app, await seedUser(knex(), mine, 'admin'));
      await browser.agent.post('/admin/organisation').type('form')
        .send({ _csrf: browser.csrf, name: '<script>alert(1)</script> Bank', vat_number: '' }).expect(303);
      const page = await browser.agent.get('/admin/organisation').expect(200);
      assert.doesNotMatch(page.text, /<script>alert/);
      assert.match(page.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt; Bank/);
      const account = await browser.agent.get('/account').expect(200);
      assert.doesNotMatch(account.text, /<script>alert/);
    });
  });

  describe('access', () => {
    it('clerks and compliance officers get 403 on every organisation admin route, and nothing changes', async () => {
      const before = await snapshot(org.id);
      for (const role of ['clerk', 'compliance'] as const) {
        const browser = await signIn(app, await seedUser(knex(), org, role));
        await browser.agent.get('/admin/organisation').expect(403);
        await browser.agent.post('/admin/organisation').type('form').send({ _csrf: browser.csrf, name: 'Taken over' }).expect(403);
        await brandingPost(browser).field('brand_color', '#ff0000').attach('logo', PNG, { filename: 'logo.png', contentType: 'image/png' }).expect(403);
      }
      assert.deepEqual(await snapshot(org.id), before);
      const denied = await auditOf(org.id, 'security.role_denied').whereRaw(`details->>'path' LIKE '/admin/organisation%'`);
      assert.equal(denied.length, 6, 'each refusal is audited');
    });

    it('an anonymous visitor is sent to sign in, and cannot post', async () => {
      await request(app).get('/admin/organisation').set('Accept', 'text/html')
        .expect(303).expect('Location', `/login?return=${encodeURIComponent('/admin/organisation')}`);
      const before = await snapshot(org.id);
      await request(app).post('/admin/organisation').type('form').send({ name: 'Anonymous' }).expect(403);
      assert.deepEqual(await snapshot(org.id), before);
    });

    it('a request without the CSRF token is refused with 403', async () => {
      const before = await snapshot(org.id);
      const browser = await signIn(app, admin);
      await browser.agent.post('/admin/organisation').type('form').send({ name: 'No token' }).expect(403);
      await brandingPost(browser, null).field('brand_color', '#ff0000').expect(403);
      await brandingPost(browser, 'wrong-token').attach('logo', PNG, { filename: 'logo.png', contentType: 'image/png' }).expect(403);
      assert.deepEqual(await snapshot(org.id), before);
    });

    it("another organisation's admin only ever changes their own organisation", async () => {
      const before = await snapshot(org.id);
      const browser = await signIn(app, otherAdmin);
      const page = await browser.agent.get('/admin/organisation').expect(200);
      assert.match(page.text, /value="Other Savings"/);
      assert.doesNotMatch(page.text, /Branding Bank/);
      await browser.agent.post('/admin/organisation').type('form').send({ _csrf: browser.csrf, name: 'Other Savings Ltd', vat_number: 'GB123' }).expect(303);
      await brandingPost(browser).field('brand_color', '#00aa00').attach('logo', PNG, { filename: 'logo.png', contentType: 'image/png' }).expect(303);
      assert.deepEqual(await snapshot(org.id), before);
      const theirs = await snapshot(other.id);
      assert.equal(theirs.name, 'Other Savings Ltd');
      assert.equal(theirs.brand_color, '#00aa00');
      assert.equal(theirs.logo, sha256(PNG));
      const events = await knex()('audit_events').where({ actor_id: otherAdmin.id }).whereIn('action', ['organisation.updated', 'organisation.branding_changed']);
      assert.equal(events.length, 2);
      for (const event of events) {
        assert.equal(event.organisation_id, other.id);
        assert.equal(event.target_id, other.id);
      }
    });
  });

  describe('branding', () => {
    it('refuses an invalid colour with 400 and a field error, and changes nothing', async () => {
      const before = await snapshot(org.id);
      const browser = await signIn(app, admin);
      const page = await brandingPost(browser).field('brand_color', 'red').expect(400);
      assert.match(page.text, /id="f-brand_color"[^>]*aria-invalid="true"/);
      assert.match(page.text, /Enter a colour as a hash sign and six hexadecimal digits/);
      const json = await brandingPost(browser).set('Accept', 'application/json').field('brand_color', '#12345g').expect(400);
      assert.deepEqual(json.body.error.details.fields, [{ field: 'brand_color', code: 'invalid_color' }]);
      // A bad colour also keeps a good logo in the same form from being stored.
      await brandingPost(browser).field('brand_color', '#abc').attach('logo', PNG, { filename: 'logo.png', contentType: 'image/png' }).expect(400);
      assert.deepEqual(await snapshot(org.id), before);
    });

    it('refuses a NUL byte in a multipart field with 400 invalid_input, as any other form, and changes nothing', async () => {
      const before = await snapshot(org.id);
      const browser = await signIn(app, admin);
      const res = await brandingPost(browser).set('Accept', 'application/json').field('brand_color', '#abcdef\u0000').attach('logo', PNG, { filename: 'logo.png', contentType: 'image/png' }).expect(400);
      assert.equal(res.body.error.code, 'invalid_input');
      assert.deepEqual(await snapshot(org.id), before);
    });

    it('sets the colour (lower-cased), audited, and theme.css carries it; an empty code resets it', async () => {
      const mine = await seedOrganisation(knex(), 'Colour Bank');
      const browser = await signIn(app, await seedUser(knex(), mine, 'admin'));
      const empty = await request(app).get(`/branding/${mine.slug}/theme.css`).expect(200).expect('Content-Type', /^text\/css/);
      assert.equal(empty.text, '');

      await brandingPost(browser).field('brand_color', '#AB12CD').expect(303).expect('Location', '/admin/organisation');
      assert.equal((await snapshot(mine.id)).brand_color, '#ab12cd');
      const [event] = await auditOf(mine.id, 'organisation.branding_changed');
      assert.deepEqual(event!.details, { before: { brand_color: null }, after: { brand_color: '#ab12cd' } });

      const css = await request(app).get(`/branding/${mine.slug}/theme.css`).expect(200)
        .expect('Content-Type', /^text\/css/).expect('Cache-Control', 'public, max-age=300');
      assert.match(css.text, /--pico-primary-background: #ab12cd;/);
      assert.match(css.text, /--vc-brand: #[0-9a-f]{6};/);
      assert.match(css.text, /:root:not\(\[data-theme=dark\]\)/);
      assert.match(css.text, /prefers-color-scheme: dark/);

      // The picker alone (text field left as it was) also sets the colour.
      await brandingPost(browser).field('brand_color', '#ab12cd').field('brand_color_picker', '#00ff00').expect(303);
      assert.equal((await snapshot(mine.id)).brand_color, '#00ff00');

      await brandingPost(browser).field('brand_color', '').field('brand_color_picker', '#00ff00').expect(303);
      assert.equal((await snapshot(mine.id)).brand_color, null);
      assert.equal((await request(app).get(`/branding/${mine.slug}/theme.css`).expect(200)).text, '');
    });

    it('stores a PNG logo and serves it back byte-identical; the audit records type, size and hash only', async () => {
      const browser = await signIn(app, admin);
      await brandingPost(browser).attach('logo', PNG, { filename: 'logo.png', contentType: 'image/png' })
        .expect(303).expect('Location', '/admin/organisation');
      const row = await snapshot(org.id);
      assert.equal(row.logo_type, 'image/png');
      assert.equal(row.logo, sha256(PNG));

      const logo = await request(app).get(`/branding/${org.slug}/logo`).buffer(true)
        .parse((res, done) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => done(null, Buffer.concat(chunks)));
        })
        .expect(200)
        .expect('Content-Type', 'image/png')
        .expect('X-Content-Type-Options', 'nosniff')
        .expect('Cache-Control', 'public, max-age=300');
      assert.ok(Buffer.isBuffer(logo.body) && logo.body.equals(PNG), 'the same bytes come back');
      const etag = String(logo.headers.etag);
      assert.equal(etag, `"${sha256(PNG)}"`);
      await request(app).get(`/branding/${org.slug}/logo`).set('If-None-Match', etag).expect(304);

      const events = await auditOf(org.id, 'organisation.branding_changed');
      const event = events[events.length - 1];
      assert.deepEqual(event!.details.after, { logo: { type: 'image/png', size: PNG.length, sha256: sha256(PNG) } });
      assert.doesNotMatch(JSON.stringify(event!.details), new RegExp(PNG.toString('base64').slice(0, 20)));

      const page = await browser.agent.get('/admin/organisation').expect(200);
      const img = /<img src="\/branding\/branding-bank\/logo\?v=(\d+)" alt="([^"]+)">/.exec(page.text);
      assert.ok(img, 'the page previews the logo');
      assert.equal(Number(img[1]), new Date(row.updated_at).getTime());
      assert.match(img[2]!, /^Logo of /);
    });

    for (const [what, data, filename, contentType] of [
      ['an SVG file', SVG, 'logo.svg', 'image/svg+xml'],
      ['an SVG declared as PNG', SVG, 'logo.png', 'image/png'],
      ['a text file named .png', Buffer.from('just some text, not an image at all'), 'logo.png', 'image/png'],
      ['a PNG declared as JPEG', PNG, 'logo.jpg', 'image/jpeg'],
    ] as const) {
      it(`refuses ${what} with 400 logo_type and changes nothing`, async () => {
        const before = await snapshot(org.id);
        const browser = await signIn(app, admin);
        const page = await brandingPost(browser).attach('logo', data, { filename, contentType }).expect(400);
        assert.match(page.text, /id="f-logo"[^>]*aria-invalid="true"/);
        assert.match(page.text, /The logo must be a PNG, JPEG or WebP image\./);
        const json = await brandingPost(browser).set('Accept', 'application/json').attach('logo', data, { filename, contentType }).expect(400);
        assert.deepEqual(json.body.error.details.fields, [{ field: 'logo', code: 'logo_type' }]);
        assert.deepEqual(await snapshot(org.id), before);
      });
    }

    it('refuses a logo over 256 KiB with 400 logo_too_large, just over the limit and far over it, and changes nothing', async () => {
      const before = await snapshot(org.id);
      const browser = await signIn(app, admin);
      const justOver = Buffer.concat([PNG, Buffer.alloc(MAX_LOGO_BYTES + 1 - PNG.length)]);
      const farOver = Buffer.concat([PNG, Buffer.alloc(2 * 1024 * 1024)]);
      for (const data of [justOver, farOver]) {
        const page = await brandingPost(browser).field('brand_color', '#123456').attach('logo', data, { filename: 'big.png', contentType: 'image/png' }).expect(400);
        assert.match(page.text, /The logo may be at most 256 KiB\./);
        const json = await brandingPost(browser).set('Accept', 'application/json').attach('logo', data, { filename: 'big.png', contentType: 'image/png' }).expect(400);
        assert.deepEqual(json.body.error.details.fields, [{ field: 'logo', code: 'logo_too_large' }]);
      }
      assert.deepEqual(await snapshot(org.id), before);
      // Exactly at the limit is fine.
      const atLimit = Buffer.concat([PNG, Buffer.alloc(MAX_LOGO_BYTES - PNG.length)]);
      const mine = await seedOrganisation(knex(), 'Limit Bank');
      const owner = await signIn(app, await seedUser(knex(), mine, 'admin'));
      await brandingPost(owner).attach('logo', atLimit, { filename: 'logo.png', contentType: 'image/png' }).expect(303);
      assert.equal((await snapshot(mine.id)).logo, sha256(atLimit));
    });

    it('removes the logo; the logo URL then answers 404', async () => {
      const mine = await seedOrganisation(knex(), 'Removal Bank');
      const browser = await signIn(app, await seedUser(knex(), mine, 'admin'));
      await brandingPost(browser).attach('logo', PNG, { filename: 'logo.png', contentType: 'image/png' }).expect(303);
      await request(app).get(`/branding/${mine.slug}/logo`).expect(200);
      await brandingPost(browser).field('remove_logo', '1').expect(303);
      const row = await snapshot(mine.id);
      assert.equal(row.logo, null);
      assert.equal(row.logo_type, null);
      await request(app).get(`/branding/${mine.slug}/logo`).expect(404);
      const events = await auditOf(mine.id, 'organisation.branding_changed');
      assert.deepEqual(events[events.length - 1]!.details, {
        before: { logo: { type: 'image/png', size: PNG.length, sha256: sha256(PNG) } },
        after: { logo: null },
      });
    });
  });

  describe('public branding', () => {
    it('answers 404 for an unknown or malformed slug', async () => {
      for (const slug of ['no-such-org', 'UPPER', 'a', '-dash', '%27%3B--', 'x'.repeat(64)]) {
        await request(app).get(`/branding/${slug}/logo`).expect(404);
        await request(app).get(`/branding/${slug}/theme.css`).expect(404);
      }
      await request(app).get(`/branding/${other.slug}/theme.css`).expect(200);
    });

    it('a closed organisation still serves its logo and theme', async () => {
      const closed = await seedOrganisation(knex(), 'Closed Bank');
      await knex()('organisations').where({ id: closed.id }).update({ brand_color: '#654321', logo: PNG, logo_type: 'image/png', closed_at: knex().fn.now() });
      await request(app).get(`/branding/${closed.slug}/logo`).expect(200).expect('Content-Type', 'image/png');
      const css = await request(app).get(`/branding/${closed.slug}/theme.css`).expect(200);
      assert.match(css.text, /#654321/);
    });
  });

  describe('page', () => {
    for (const lang of ['en', 'de']) {
      it(`(${lang}) has labelled fields, a multipart form with the token in its URL, and no inline script or style`, async () => {
        const browser = await signIn(app, admin);
        const res = await browser.agent.get('/admin/organisation').set('Accept-Language', lang).expect(200);
        const html = res.text;
        assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/i);
        assert.doesNotMatch(html, /<style/i);
        assert.doesNotMatch(html, /\sstyle=/i);
        assert.doesNotMatch(html, /\son[a-z]+=/i);
        assert.match(html, /<form method="post" action="\/admin\/organisation\/branding\?_csrf=[A-Za-z0-9_-]+" enctype="multipart\/form-data"/);
        assert.match(html, /type="color"/);
        for (const id of ['f-name', 'f-vat_number', 'f-brand_color_picker', 'f-brand_color', 'f-logo']) {
          assert.match(html, new RegExp(`<label for="${id}">`), `${id} has a label`);
        }
        for (const img of html.match(/<img[^>]*>/g) ?? []) assert.match(img, /\salt="/);
        assert.match(html, lang === 'de' ? /Erscheinungsbild/ : /Branding/);
      });
    }
  });
});
