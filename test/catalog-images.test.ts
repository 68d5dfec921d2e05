import assert from 'node:assert/strict';
import type { Express } from 'express';
import request from 'supertest';
import type { Response } from 'supertest';
import { MAX_IMAGES_PER_PRODUCT, MAX_IMAGE_BYTES, firstImageIds, readProductImage } from '../app/catalog/images';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { png } from './support/images';

// --- Test images, made in code ----------------------------------------------

/** A valid 8x8 grey JPEG (written by ffmpeg). */
const JPEG = Buffer.from(
  '/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAg+Pkk+SVVVVVVVVWRdZGhoaGRkZGRoaGhwcHCDg4NwcHBoaHBwfHyDg4+Tj4eHg4eTk5ubm7q6srLZ2eD/////' +
  'xABOAAEBAAAAAAAAAAAAAAAAAAAABwEAAwEAAAAAAAAAAAAAAAAAAAUBBxABAAAAAAAAAAAAAAAAAAAAABEBAAAAAAAAAAAAAAAAAAAAAP/AABEIAAgACAMBEgACEgADEgD/2gAMAwEAAhEDEQA/AI4N/BUr/9k=',
  'base64',
);

const SVG = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="1" height="1"/></svg>');
const HTML = Buffer.from('<!doctype html><html><body><script>alert(1)</script></body></html>');

// -----------------------------------------------------------------------------

describe('product images', () => {
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let app: Express;
  let org: SeededOrganisation;
  let other: SeededOrganisation;
  let admin: Browser;
  let clerk: Browser;
  let compliance: Browser;
  let foreignAdmin: Browser;

  async function createProduct(as: Browser, sku: string, name: string): Promise<string> {
    const res = await as.agent.post('/admin/catalog/new').type('form')
      .send({ _csrf: as.csrf, sku, name, price: '10', currency: 'EUR' }).expect(303);
    return /\/admin\/catalog\/([0-9a-f-]{36})$/.exec(res.headers.location ?? '')![1]!;
  }

  function upload(productId: string, data: Buffer, file: { filename: string; contentType: string }, as: Browser = admin) {
    return as.agent.post(`/admin/catalog/${productId}/images?_csrf=${encodeURIComponent(as.csrf)}`).attach('image', data, file);
  }

  /** Uploads a PNG and returns the new image's id. */
  async function addPng(productId: string, data: Buffer): Promise<string> {
    await upload(productId, data, { filename: 'photo.png', contentType: 'image/png' }).expect(303).expect('Location', `/admin/catalog/${productId}#images`);
    const row = await knex()('product_images').where({ product_id: productId }).orderBy('created_at', 'desc').first('id');
    return row!.id as string;
  }

  async function expectStatus(res: Promise<Response>, status: number): Promise<Response> {
    const done = await res;
    assert.equal(done.status, status, done.text?.slice(0, 2000));
    return done;
  }

  const imagesOf = async (productId: string) =>
    (await knex()('product_images').where({ product_id: productId }).orderBy('position').select('id', 'position')).map((r) => r.id as string);

  const auditCount = async (action: string, where: Record<string, string> = {}) =>
    Number((await knex()('audit_events').where({ action, ...where }).count({ n: '*' }))[0]!.n);

  const binary = (res: request.Response, done: (err: Error | null, body: Buffer) => void) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => done(null, Buffer.concat(chunks)));
  };

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(knex(), 'Image Insurance');
    other = await seedOrganisation(knex(), 'Other Images');
    admin = await signIn(app, await seedUser(knex(), org, 'admin'));
    clerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
    compliance = await signIn(app, await seedUser(knex(), org, 'compliance'));
    foreignAdmin = await signIn(app, await seedUser(knex(), other, 'admin'));
  });

  it('a PNG upload is stored, audited without its bytes, and served back byte-identical with its type and nosniff', async () => {
    const product = await createProduct(admin, 'IMG-1', 'Hausrat Komfort');
    const data = png(200, { green: 10, blue: 10 });
    const imageId = await addPng(product, data);

    const row = await knex()('product_images').where({ id: imageId }).first();
    assert.equal(row!.organisation_id, org.id);
    assert.equal(row!.position, 0);
    assert.equal(row!.content_type, 'image/png');
    assert.equal(row!.size, data.length);
    assert.ok(Buffer.from(row!.data).equals(data));

    const event = await knex()('audit_events').where({ action: 'catalog.image_added', target_id: product }).first();
    assert.equal(event!.organisation_id, org.id);
    assert.equal(event!.details.sku, 'IMG-1');
    assert.equal(event!.details.type, 'image/png');
    assert.equal(event!.details.size, data.length);
    assert.equal(event!.details.sha256, row!.sha256);
    assert.deepEqual(Object.keys(event!.details).sort(), ['catalog', 'image', 'sha256', 'size', 'sku', 'type'], 'facts only, never the bytes');

    const res = await admin.agent.get(`/catalog/images/${imageId}`).buffer(true).parse(binary).expect(200);
    assert.equal(res.headers['content-type'], 'image/png');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['content-disposition'], 'inline');
    assert.equal(res.headers['cache-control'], 'private, max-age=86400');
    assert.equal(res.headers.etag, `"${row!.sha256}"`);
    assert.ok((res.body as Buffer).equals(data), 'the same bytes come back');
    await admin.agent.get(`/catalog/images/${imageId}`).set('If-None-Match', `"${row!.sha256}"`).expect(304);

    const page = await admin.agent.get(`/admin/catalog/${product}`).expect(200);
    assert.match(page.text, new RegExp(`<img class="product-image" src="/catalog/images/${imageId}" alt="Hausrat Komfort">`));
    assert.match(page.text, new RegExp(`action="/admin/catalog/${product}/images/${imageId}/delete"`));
    assert.match(page.text, /enctype="multipart\/form-data"/);
    assert.match(page.text, /accept="image\/png,image\/jpeg,image\/webp"/);
    assert.match(page.text, /at most 2 MB each; up to 5 images per product/);
    assert.doesNotMatch(page.text, /<style|\sstyle=|\son[a-z]+=/i, 'no inline style or handler (CSP)');
    const list = await admin.agent.get('/admin/catalog').query({ q: 'IMG-1' }).expect(200);
    assert.match(list.text, new RegExp(`<img class="product-thumb" src="/catalog/images/${imageId}"`));
  });

  it('a JPEG is accepted as a JPEG, and its type is what is served', async () => {
    const product = await createProduct(admin, 'IMG-JPEG', 'Jpeg product');
    await upload(product, JPEG, { filename: 'photo.jpg', contentType: 'image/jpeg' }).expect(303);
    const [id] = await imagesOf(product);
    await admin.agent.get(`/catalog/images/${id}`).expect(200).expect('Content-Type', 'image/jpeg');
    // Declared as one type, but the bytes are another: refused.
    await expectStatus(upload(product, JPEG, { filename: 'photo.png', contentType: 'image/png' }), 400);
    assert.equal((await imagesOf(product)).length, 1);
  });

  it('an SVG, or an HTML file declared as image/png, is refused with a clear message and nothing is stored', async () => {
    const product = await createProduct(admin, 'IMG-EVIL', 'Evil product');
    const added = await auditCount('catalog.image_added');
    for (const [data, file] of [
      [SVG, { filename: 'logo.svg', contentType: 'image/svg+xml' }],
      [SVG, { filename: 'logo.png', contentType: 'image/png' }],
      [HTML, { filename: 'page.png', contentType: 'image/png' }],
    ] as const) {
      const res = await expectStatus(upload(product, data, file), 400);
      assert.match(res.text, /Choose a PNG, JPEG or WebP image\. Other files, SVG included, are refused\./);
      assert.match(res.text, /id="f-image"[^>]*aria-invalid="true"/);
      assert.doesNotMatch(res.text, /<script>alert|onload="alert/);
    }
    const json = await upload(product, HTML, { filename: 'page.png', contentType: 'image/png' }).set('Accept', 'application/json').expect(400);
    assert.deepEqual(json.body.error.details.fields, [{ field: 'image', code: 'image_type' }]);
    assert.deepEqual(await imagesOf(product), []);
    assert.equal(await auditCount('catalog.image_added'), added);
  });

  it('a file over 2 MiB is refused (one byte over, and far over), and nothing is stored', async () => {
    const product = await createProduct(admin, 'IMG-BIG', 'Big product');
    const header = png(1, { green: 2, blue: 3 });
    const justOver = Buffer.concat([header, Buffer.alloc(MAX_IMAGE_BYTES + 1 - header.length)]);
    const farOver = Buffer.concat([header, Buffer.alloc(3 * 1024 * 1024)]);
    for (const data of [justOver, farOver]) {
      const res = await expectStatus(upload(product, data, { filename: 'big.png', contentType: 'image/png' }), 400);
      assert.match(res.text, /An image may be at most 2 MB\./);
    }
    const german = await upload(product, justOver, { filename: 'big.png', contentType: 'image/png' }).set('Accept-Language', 'de').expect(400);
    assert.match(german.text, /Ein Bild darf höchstens 2 MB groß sein\./);
    const exact = Buffer.concat([header, Buffer.alloc(MAX_IMAGE_BYTES - header.length)]);
    await upload(product, exact, { filename: 'exact.png', contentType: 'image/png' }).expect(303);
    assert.equal((await imagesOf(product)).length, 1, 'exactly 2 MiB is accepted');
  });

  it('no file chosen says so', async () => {
    const product = await createProduct(admin, 'IMG-NONE', 'No file product');
    const res = await expectStatus(admin.agent.post(`/admin/catalog/${product}/images?_csrf=${encodeURIComponent(admin.csrf)}`).field('x', '1'), 400);
    assert.match(res.text, /Please choose an image\./);
  });

  it(`the image after the ${MAX_IMAGES_PER_PRODUCT}th is refused`, async () => {
    const product = await createProduct(admin, 'IMG-MANY', 'Many images');
    for (let i = 0; i < MAX_IMAGES_PER_PRODUCT; i++) await addPng(product, png(i * 10));
    const res = await expectStatus(upload(product, png(99), { filename: 'six.png', contentType: 'image/png' }), 400);
    assert.match(res.text, /A product may have at most 5 images\. Remove one first\./);
    assert.equal((await imagesOf(product)).length, MAX_IMAGES_PER_PRODUCT);
    assert.deepEqual((await knex()('product_images').where({ product_id: product }).orderBy('position').pluck('position')), [0, 1, 2, 3, 4]);
  });

  it('make-first and remove change the order, keep positions contiguous, and are audited', async () => {
    const product = await createProduct(admin, 'IMG-ORDER', 'Order product');
    const a = await addPng(product, png(1));
    const b = await addPng(product, png(2));
    const c = await addPng(product, png(3));
    assert.deepEqual(await imagesOf(product), [a, b, c]);

    await admin.agent.post(`/admin/catalog/${product}/images/${c}/first`).type('form').send({ _csrf: admin.csrf })
      .expect(303).expect('Location', `/admin/catalog/${product}#images`);
    assert.deepEqual(await imagesOf(product), [c, a, b]);
    const moved = await knex()('audit_events').where({ action: 'catalog.image_made_first', target_id: product }).first();
    assert.equal(moved!.details.image, c);
    assert.equal(moved!.details.sku, 'IMG-ORDER');

    const removedRow = await knex()('product_images').where({ id: a }).first('sha256', 'size');
    await admin.agent.post(`/admin/catalog/${product}/images/${a}/delete`).type('form').send({ _csrf: admin.csrf }).expect(303);
    assert.deepEqual(await imagesOf(product), [c, b]);
    assert.deepEqual(await knex()('product_images').where({ product_id: product }).orderBy('position').pluck('position'), [0, 1]);
    const removed = await knex()('audit_events').where({ action: 'catalog.image_removed', target_id: product }).first();
    assert.deepEqual(
      { image: removed!.details.image, type: removed!.details.type, size: removed!.details.size, sha256: removed!.details.sha256, sku: removed!.details.sku },
      { image: a, type: 'image/png', size: removedRow!.size, sha256: removedRow!.sha256, sku: 'IMG-ORDER' },
    );

    // The first image has no "make first" button; the others do.
    const page = await admin.agent.get(`/admin/catalog/${product}`).expect(200);
    assert.doesNotMatch(page.text, new RegExp(`/images/${c}/first`));
    assert.match(page.text, new RegExp(`/images/${b}/first`));

    // An image of another product of the same organisation is not this product's.
    const elsewhere = await createProduct(admin, 'IMG-ELSE', 'Else product');
    await admin.agent.post(`/admin/catalog/${elsewhere}/images/${b}/delete`).type('form').send({ _csrf: admin.csrf }).expect(404);
    assert.deepEqual(await imagesOf(product), [c, b]);
  });

  it('a clerk can load an image; anonymous visitors and other roles cannot', async () => {
    const product = await createProduct(admin, 'IMG-SEE', 'Visible product');
    const id = await addPng(product, png(5, { green: 5, blue: 5 }));
    await clerk.agent.get(`/catalog/images/${id}`).expect(200).expect('Content-Type', 'image/png');
    await request(app).get(`/catalog/images/${id}`).set('Accept', 'text/html').expect(303).expect('Location', /^\/login\?return=/);
    await request(app).get(`/catalog/images/${id}`).set('Accept', 'application/json').expect(401);
    // What an <img> asks for: sent to sign in, never the image.
    const img = await request(app).get(`/catalog/images/${id}`).set('Accept', 'image/avif,image/webp,*/*').expect(303);
    assert.doesNotMatch(String(img.headers['content-type'] ?? ''), /^image\//);
    await compliance.agent.get(`/catalog/images/${id}`).set('Accept', 'application/json').expect(403);
    await clerk.agent.post(`/admin/catalog/${product}/images/${id}/delete`).type('form').send({ _csrf: clerk.csrf }).set('Accept', 'application/json').expect(403);
    assert.deepEqual(await imagesOf(product), [id]);
  });

  it('another organisation\'s admin gets 404 on every image route, changes nothing, and the attempt is audited', async () => {
    const product = await createProduct(admin, 'IMG-OWN', 'Own product');
    const id = await addPng(product, png(7, { green: 7, blue: 7 }));
    const theirs = await createProduct(foreignAdmin, 'IMG-THEIRS', 'Their product');
    const denied = (targetId: string) => auditCount('security.cross_organisation_denied', { target_id: targetId, organisation_id: other.id });

    const before = await denied(id);
    await foreignAdmin.agent.get(`/catalog/images/${id}`).expect(404);
    assert.equal(await denied(id), before + 1);

    // Their own product, our image.
    for (const action of ['delete', 'first']) {
      await foreignAdmin.agent.post(`/admin/catalog/${theirs}/images/${id}/${action}`).type('form').send({ _csrf: foreignAdmin.csrf }).expect(404);
    }
    assert.equal(await denied(id), before + 3);

    // Our product.
    const productBefore = await denied(product);
    for (const action of ['delete', 'first']) {
      await foreignAdmin.agent.post(`/admin/catalog/${product}/images/${id}/${action}`).type('form').send({ _csrf: foreignAdmin.csrf }).expect(404);
    }
    await upload(product, png(8), { filename: 'x.png', contentType: 'image/png' }, foreignAdmin).expect(404);
    assert.equal(await denied(product), productBefore + 3);
    assert.deepEqual(await imagesOf(product), [id]);
    assert.deepEqual(await imagesOf(theirs), []);

    // Malformed and unknown ids are a plain 404.
    await admin.agent.get('/catalog/images/not-a-uuid').set('Accept', 'application/json').expect(404);
    await admin.agent.get('/catalog/images/00000000-0000-4000-8000-000000000000').set('Accept', 'application/json').expect(404);
  });

  it('the clerk search carries the first image\'s URL, or null', async () => {
    const withImages = await createProduct(admin, 'SRCH-1', 'Zahnzusatz Premium');
    await createProduct(admin, 'SRCH-2', 'Zahnzusatz Basis');
    const first = await addPng(withImages, png(11));
    const second = await addPng(withImages, png(12));
    let res = await clerk.agent.get('/catalog/search').query({ q: 'Zahnzusatz' }).expect(200);
    const image = (sku: string) => (res.body.products as { sku: string; image: string | null }[]).find((p) => p.sku === sku)!.image;
    assert.equal(image('SRCH-1'), `/catalog/images/${first}`);
    assert.equal(image('SRCH-2'), null);
    await admin.agent.post(`/admin/catalog/${withImages}/images/${second}/first`).type('form').send({ _csrf: admin.csrf }).expect(303);
    res = await clerk.agent.get('/catalog/search').query({ q: 'Zahnzusatz' }).expect(200);
    assert.equal(image('SRCH-1'), `/catalog/images/${second}`);
    await clerk.agent.get(image('SRCH-1')!).expect(200).expect('Content-Type', 'image/png');
  });

  it('firstImageIds and readProductImage stay within the organisation', async () => {
    const product = await createProduct(admin, 'FN-1', 'Function product');
    const a = await addPng(product, png(21));
    await addPng(product, png(22));
    const empty = await createProduct(admin, 'FN-2', 'Function product without images');
    const ids = await firstImageIds(knex(), org.id, [product, empty, 'not-a-uuid']);
    assert.deepEqual([...ids], [[product, a]]);
    assert.deepEqual([...(await firstImageIds(knex(), other.id, [product]))], []);
    assert.deepEqual([...(await firstImageIds(knex(), org.id, []))], []);

    const found = await readProductImage(knex(), org.id, a);
    assert.equal(found?.productId, product);
    assert.equal(found?.contentType, 'image/png');
    assert.ok(found?.data.equals(png(21)));
    assert.equal(await readProductImage(knex(), other.id, a), undefined);
    assert.equal(await readProductImage(knex(), org.id, 'nope'), undefined);
    assert.equal(await readProductImage(knex(), org.id, '00000000-0000-4000-8000-000000000000'), undefined);
  });
});
