import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Response } from 'supertest';
import { parseCsv, readImport } from '../app/catalog/import';
import { PASSWORD, csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

const HEADER = 'sku,name,description,price,currency,url,category,tags,active';
const XSS = '<script>alert(1)</script>';

describe('product catalog', () => {
  const db = useTestDatabase();
  let app: Express;
  let org: SeededOrganisation;
  let other: SeededOrganisation;
  let admin: Browser;
  let clerk: Browser;
  let foreignAdmin: Browser;
  const knex = () => db.current.knex;

  async function csrf(as: Browser): Promise<string> {
    return csrfFrom((await as.agent.get('/account').expect(200)).text);
  }

  async function createVia(as: Browser, fields: Record<string, string>, status = 303): Promise<Response> {
    return as.agent.post('/admin/catalog/new').type('form').send({ _csrf: await csrf(as), currency: 'EUR', ...fields }).expect(status);
  }

  async function create(fields: Record<string, string>, as: Browser = admin): Promise<string> {
    const res = await createVia(as, fields);
    return /\/admin\/catalog\/([0-9a-f-]{36})$/.exec(res.headers.location ?? '')![1]!;
  }

  async function search(q: string, as: Browser = clerk): Promise<string[]> {
    const res = await as.agent.get('/catalog/search').query({ q }).expect(200).expect('Content-Type', /json/);
    return (res.body.products as { name: string }[]).map((p) => p.name);
  }

  async function preview(content: string, as: Browser = admin, name = 'catalog.csv'): Promise<Response> {
    return await as.agent.post(`/admin/catalog/import/preview?_csrf=${encodeURIComponent(await csrf(as))}`).attach('file', Buffer.from(content), name);
  }

  async function expectStatus(res: Promise<Response>, status: number): Promise<Response> {
    const done = await res;
    assert.equal(done.status, status, done.text.slice(0, 2000));
    return done;
  }

  /** Preview, then apply with the payload the preview page carries. */
  async function importFile(content: string, name = 'catalog.csv'): Promise<Response> {
    const page = await expectStatus(preview(content, admin, name), 200);
    const payload = /name="payload" value="([^"]+)"/.exec(page.text)?.[1];
    assert.ok(payload, 'the preview carries the file to apply');
    const action = /action="(\/admin\/catalog\/import\/apply\?_csrf=[^"]+)"/.exec(page.text)![1]!.replace(/&amp;/g, '&');
    return admin.agent.post(action).field('payload', payload).expect(303).expect('Location', '/admin/catalog');
  }

  const count = async (organisationId = org.id) => Number((await knex()('products').where({ organisation_id: organisationId }).count({ n: '*' }))[0]!.n);

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(knex(), 'Catalog Insurance');
    other = await seedOrganisation(knex(), 'Other Insurance');
    admin = await signIn(app, await seedUser(knex(), org, 'admin'));
    clerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
    foreignAdmin = await signIn(app, await seedUser(knex(), other, 'admin'));
    await create({ sku: 'HR-1', name: 'Hausratversicherung Basis', description: 'Schützt Ihren Hausrat gegen Feuer und Einbruch.', price: '4,90', category: 'Versicherung', tags: 'haus|wohnung' });
    await create({ sku: 'LI-1', name: 'Home insurance Plus', description: 'Covers your belongings against fire and theft.', price: '12.5', category: 'Insurance', tags: 'home' });
    await create({ sku: 'KFZ-1', name: 'Kfz-Versicherung', description: 'Haftpflicht und Kasko für Ihr Auto.', price: '30', category: 'Versicherung' });
    await create({ sku: 'GIRO', name: 'Girokonto Online', description: 'Kostenloses Konto', price: '0' }, foreignAdmin);
  });

  describe('administration', () => {
    it('an admin creates a product: stored in cents and upper-case currency, audited', async () => {
      const id = await create({ sku: 'BU-7', name: 'Berufsunfähigkeit', price: '19,99', currency: 'eur', url: 'https://example.org/bu', tags: 'leben| vorsorge |leben' });
      const row = await knex()('products').where({ id }).first();
      assert.equal(row!.organisation_id, org.id);
      assert.equal(Number(row!.price_cents), 1999);
      assert.equal(row!.currency, 'EUR');
      assert.deepEqual(row!.tags, ['leben', 'vorsorge']);
      assert.equal(row!.active, true);
      const event = await knex()('audit_events').where({ target_id: id }).first();
      assert.equal(event!.action, 'catalog.product_created');
      assert.deepEqual(event!.details, { catalog: 'product_created', sku: 'BU-7' });
      const page = await admin.agent.get(`/admin/catalog/${id}`).expect(200);
      assert.match(page.text, /value="19.99"/);
    });

    it('refuses bad fields with a code per field and keeps what was typed', async () => {
      const res = await createVia(admin, { sku: 'bad sku!', name: '', price: '-3', currency: 'EURO', url: 'javascript:alert(1)' }, 400);
      for (const field of ['sku', 'name', 'price', 'currency', 'url']) assert.match(res.text, new RegExp(`id="f-${field}-error"`), field);
      assert.match(res.text, /value="bad sku!"/);
      const taken = await createVia(admin, { sku: 'HR-1', name: 'Doppelt', price: '1' }, 400);
      assert.match(taken.text, /id="f-sku-error"/);
      assert.equal(await knex()('products').where({ name: 'Doppelt' }).first(), undefined);
    });

    it('edits and deactivates; inactive products leave the clerk search', async () => {
      const id = await create({ sku: 'TMP-1', name: 'Reiseversicherung', price: '9' });
      await admin.agent.post(`/admin/catalog/${id}`).type('form').send({ _csrf: await csrf(admin), sku: 'TMP-1', name: 'Reiseversicherung Welt', price: '11,00', currency: 'CHF' }).expect(303);
      const row = await knex()('products').where({ id }).first();
      assert.equal(row!.name, 'Reiseversicherung Welt');
      assert.equal(row!.currency, 'CHF');
      assert.ok((await search('Reise')).includes('Reiseversicherung Welt'));
      await admin.agent.post(`/admin/catalog/${id}/toggle`).type('form').send({ _csrf: await csrf(admin) }).expect(303);
      assert.equal((await knex()('products').where({ id }).first())!.active, false);
      assert.ok(!(await search('Reise')).includes('Reiseversicherung Welt'));
      const list = await admin.agent.get('/admin/catalog').query({ active: 'inactive' }).expect(200);
      assert.match(list.text, /Reiseversicherung Welt/);
      assert.doesNotMatch(list.text, /Hausratversicherung Basis/);
      const details = (await knex()('audit_events').where({ target_id: id }).orderBy('seq')).map((e) => e.details.catalog);
      assert.deepEqual(details, ['product_created', 'product_updated', 'product_deactivated']);
    });

    it('another organisation\'s product answers 404, and is audited', async () => {
      const foreign = await knex()('products').where({ organisation_id: other.id }).first('id');
      await admin.agent.get(`/admin/catalog/${foreign!.id}`).expect(404);
      await admin.agent.post(`/admin/catalog/${foreign!.id}/toggle`).type('form').send({ _csrf: await csrf(admin) }).expect(404);
      assert.equal((await knex()('products').where({ id: foreign!.id }).first())!.active, true);
      assert.ok(await knex()('audit_events').where({ action: 'security.cross_organisation_denied', target_id: foreign!.id }).first());
    });

    it('a clerk cannot use the admin pages but can search', async () => {
      await clerk.agent.get('/admin/catalog').expect(403);
      await clerk.agent.get('/admin/catalog/export.csv').expect(403);
      await clerk.agent.post('/admin/catalog/new').type('form').send({ _csrf: await csrf(clerk), sku: 'X', name: 'X', price: '1', currency: 'EUR' }).expect(403);
      assert.ok((await search('haus')).length > 0);
    });
  });

  describe('search', () => {
    it('finds by prefix as you type', async () => {
      assert.equal((await search('Hau'))[0], 'Hausratversicherung Basis');
      assert.ok((await search('kfz')).includes('Kfz-Versicherung'));
      assert.ok((await search('HR-1')).includes('Hausratversicherung Basis'), 'by SKU');
    });

    it('finds German and English stems', async () => {
      assert.ok((await search('Versicherungen')).includes('Kfz-Versicherung'));
      assert.ok((await search('insurances')).includes('Home insurance Plus'));
      assert.ok((await search('belonging')).includes('Home insurance Plus'), 'a description word');
    });

    it('finds despite a typo, by trigrams', async () => {
      assert.ok((await search('hausrats')).includes('Hausratversicherung Basis'));
      assert.ok((await search('Husratversicherung')).includes('Hausratversicherung Basis'));
      assert.ok((await search('insurence')).includes('Home insurance Plus'));
    });

    it('stays in the caller\'s organisation, and filters by category', async () => {
      assert.deepEqual(await search('Girokonto'), []);
      assert.deepEqual(await search('Girokonto', foreignAdmin), ['Girokonto Online']);
      const res = await clerk.agent.get('/catalog/search').query({ q: 'versicherung', category: 'Insurance' }).expect(200);
      assert.deepEqual(res.body.products.map((p: { sku: string }) => p.sku), []);
      const all = await clerk.agent.get('/catalog/search').query({ q: '', category: 'Insurance' }).expect(200);
      assert.deepEqual(all.body.products.map((p: { sku: string }) => p.sku), ['LI-1']);
      assert.deepEqual(Object.keys(all.body.products[0]).sort(), ['category', 'currency', 'id', 'image', 'name', 'price', 'sku', 'tags', 'url']);
      assert.equal(all.body.products[0].price, '12.50');
    });

    it('takes any query text without error (tsquery syntax is not passed through)', async () => {
      for (const q of ["'", '&|!():*', 'a & b', '\\', '<->', 'ö', '   ']) await search(q);
    });
  });

  describe('import and export', () => {
    it('parses RFC 4180 CSV: quotes, doubled quotes, delimiters and line breaks in quotes, BOM, semicolons', () => {
      assert.deepEqual(parseCsv('\ufeffa,b\r\n"x, ""y""","line\nbreak"\n').map((r) => r.cells), [['a', 'b'], ['x, "y"', 'line\nbreak']]);
      assert.deepEqual(parseCsv('a;b;c\n1,5;"2;3";\n').map((r) => r.cells), [['a', 'b', 'c'], ['1,5', '2;3', '']]);
      assert.throws(() => parseCsv('a,b\n"open,1\n'), /validation_failed/);
    });

    it('a file with bad rows changes nothing and names each bad row and field', async () => {
      const before = await count();
      const csv = [
        HEADER,
        'NEW-1,Gut,,"1,00",EUR,,,,',
        'NEW-2,,desc,abc,EU,ftp://x,,,vielleicht',
        'NEW-1,Doppelt,,2,EUR,,,,',
        'HR-1,Hausrat neu,,5,EUR,,,,true',
      ].join('\n');
      const res = await expectStatus(preview(csv), 422);
      const problems = [...res.text.matchAll(/data-row="(\d+)" data-field="(\w+)" data-code="(\w+)"/g)].map((m) => `${m[1]}:${m[2]}:${m[3]}`);
      assert.deepEqual(problems, ['3:name:required', '3:price:invalid_price', '3:currency:invalid_currency', '3:url:invalid_url', '3:active:invalid_active', '4:sku:duplicate_sku']);
      assert.doesNotMatch(res.text, /name="payload"/, 'no apply button');
      assert.equal(await count(), before);
      assert.equal((await knex()('products').where({ organisation_id: org.id, sku: 'HR-1' }).first())!.name, 'Hausratversicherung Basis');
      const missing = await expectStatus(preview('sku,name\nA,B\n'), 400);
      assert.match(missing.text, /price, currency/);
    });

    it('a good file imports, and importing again updates by SKU', async () => {
      const before = await count();
      const csv = `\ufeff${HEADER.replace(/,/g, ';')}\n"IMP-1";"Wohngebäude; Premium";"Zeile 1\nZeile 2";"199,90";"eur";"https://example.org/wg";"Versicherung";"haus|gebäude";"ja"\nIMP-2;Glasversicherung;;"9,5";EUR;;Versicherung;;false\n`;
      const page = await expectStatus(preview(csv), 200);
      assert.match(page.text, /2 rows: 2 new, 0 updated/);
      await importFile(csv);
      assert.equal(await count(), before + 2);
      const imp1 = await knex()('products').where({ organisation_id: org.id, sku: 'IMP-1' }).first();
      assert.equal(imp1!.name, 'Wohngebäude; Premium');
      assert.equal(imp1!.description, 'Zeile 1\nZeile 2');
      assert.equal(Number(imp1!.price_cents), 19990);
      assert.deepEqual(imp1!.tags, ['haus', 'gebäude']);
      assert.equal((await knex()('products').where({ organisation_id: org.id, sku: 'IMP-2' }).first())!.active, false);

      const json = JSON.stringify([{ sku: 'IMP-1', name: 'Wohngebäude Premium+', price: 210, currency: 'EUR' }, { SKU: 'IMP-3', Name: 'Tierhalter', price: '7.10', currency: 'EUR', tags: ['hund'] }]);
      const again = await expectStatus(preview(json, admin, 'catalog.json'), 200);
      assert.match(again.text, /2 rows: 1 new, 1 updated/);
      await importFile(json, 'catalog.json');
      assert.equal(await count(), before + 3);
      const updated = await knex()('products').where({ organisation_id: org.id, sku: 'IMP-1' }).first();
      assert.equal(updated!.id, imp1!.id);
      assert.equal(updated!.name, 'Wohngebäude Premium+');
      assert.equal(Number(updated!.price_cents), 21000);
      assert.ok(updated!.updated_at > imp1!.updated_at);
      assert.ok(await knex()('audit_events').whereRaw(`details->>'catalog' = 'import_applied'`).where({ organisation_id: org.id }).first());
    });

    it('an apply whose rows turned bad writes nothing', async () => {
      const before = await count();
      const bad = Buffer.from(`${HEADER}\nOK-9,Fein,,1,EUR,,,,\nOK-9,Doppelt,,1,EUR,,,,\n`).toString('base64');
      const page = await admin.agent.get('/admin/catalog/import').expect(200);
      const res = await admin.agent.post(`/admin/catalog/import/apply?_csrf=${encodeURIComponent(csrfFrom(page.text.replace(/\?_csrf=([^"]+)"/, ' name="_csrf" value="$1"')))}`).field('payload', bad).expect(422);
      assert.match(res.text, /data-code="duplicate_sku"/);
      assert.equal(await count(), before);
    });

    it('limits the rows and the size', () => {
      const many = `${HEADER}\n${'A,B,,1,EUR,,,,\n'.repeat(20001)}`;
      assert.throws(() => readImport(Buffer.from(many)), /validation_failed/);
      assert.throws(() => readImport(Buffer.alloc(10 * 1024 * 1024 + 1, 0x41)), /import_too_large/);
    });

    it('parses the same records with odd quoting (quotes inside unquoted cells, text after a closing quote, empty quoted cells)', () => {
      assert.deepEqual(parseCsv('a,b,c\r\nx"y,"p"q,""\n"",5"5,"a\r\nb"\n').map((r) => r.cells), [['a', 'b', 'c'], ['x"y', 'pq', ''], ['', '5"5', 'a\r\nb']]);
      assert.deepEqual(parseCsv('a,b\n"multi\nline",1\nnext,2\n').map((r) => r.line), [1, 2, 4]);
    });

    it('a file with NUL characters (UTF-16 saved by a spreadsheet) is refused with its own message, not a 500', async () => {
      const utf16 = Buffer.from(`${HEADER}\nNUL-1,Name,,1,EUR,,,,\n`, 'utf16le');
      const res = await admin.agent.post(`/admin/catalog/import/preview?_csrf=${encodeURIComponent(await csrf(admin))}`).attach('file', utf16, 'catalog.csv').expect(400);
      assert.match(res.text, /NUL characters/);
      const page = await admin.agent.get('/admin/catalog/import').expect(200);
      const token = /\?_csrf=([^"]+)"/.exec(page.text)![1]!;
      await admin.agent.post(`/admin/catalog/import/apply?_csrf=${token}`).field('payload', utf16.toString('base64')).expect(400);
    });

    it('an upload far over 10 MB is cut off early with 413', async () => {
      const res = await admin.agent.post(`/admin/catalog/import/preview?_csrf=${encodeURIComponent(await csrf(admin))}`).set('Accept', 'application/json')
        .attach('file', Buffer.alloc(12 * 1024 * 1024, 0x41), 'big.csv');
      assert.equal(res.status, 413);
      assert.equal(res.body.error.code, 'import_too_large');
    });

    it('exports CSV that round-trips, with formula cells neutralised', async () => {
      await create({ sku: 'EVIL-1', name: '=cmd|\' /C calc\'!A0', description: '+SUM(1;2)', price: '1', category: '@risk', tags: '-x' });
      const res = await admin.agent.get('/admin/catalog/export.csv').expect(200).expect('Content-Type', /text\/csv/).expect('Content-Disposition', /attachment/);
      const rows = parseCsv(res.text);
      assert.deepEqual(rows[0]!.cells, HEADER.split(','));
      const evil = rows.find((r) => r.cells[0] === 'EVIL-1')!.cells;
      assert.equal(evil[1], "'=cmd|' /C calc'!A0");
      assert.equal(evil[2], "'+SUM(1;2)");
      assert.equal(evil[6], "'@risk");
      assert.equal(evil[7], "'-x");
      for (const r of rows.slice(1)) for (const cell of r.cells) assert.doesNotMatch(cell, /^[=+\-@]/);

      const snapshot = await knex()('products').where({ organisation_id: org.id }).orderBy('sku').select('sku', 'name', 'description', 'price_cents', 'currency', 'product_url', 'category', 'tags', 'active');
      const page = await expectStatus(preview(res.text), 200);
      assert.match(page.text, new RegExp(`${snapshot.length} rows: 0 new, ${snapshot.length} updated`));
      await importFile(res.text);
      const after = await knex()('products').where({ organisation_id: org.id }).orderBy('sku').select('sku', 'name', 'description', 'price_cents', 'currency', 'product_url', 'category', 'tags', 'active');
      assert.deepEqual(after, snapshot);
    });
  });

  describe('a large import off the event loop (issue 13)', () => {
    /**
     * A CSV of `rows` products, just under 10 MB, each with a currency that
     * is not one: every row is parsed and checked, and no database query
     * follows, so the preview's time is all checking.
     */
    function bigCsv(rows: number): Buffer {
      const filler = 'Beschreibung mit Umlauten äöü und Kommas, Semikola; und "Anführungszeichen". '.repeat(6);
      const lines = [HEADER];
      for (let i = 0; i < rows; i++) lines.push(`BIG-${i},"Produkt ${i}, groß","${filler.replace(/"/g, '""')}",12.50,EUR,https://example.org/p/${i},Kategorie ${i % 10},a|b|c,true`.replace(',EUR,', ',EURO,'));
      return Buffer.from(`${lines.join('\r\n')}\r\n`);
    }

    it('while a 10 MB CSV is previewed on the real HTTP server, /healthz keeps answering', async function () {
      this.timeout(300_000);
      const csv = bigCsv(17_000);
      assert.ok(csv.length > 9 * 1024 * 1024 && csv.length <= 10 * 1024 * 1024, `${csv.length} bytes`);
      const server = http.createServer(app);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        // Sign in through the real server.
        const user = await seedUser(knex(), org, 'admin');
        const cookies = new Map<string, string>();
        const remember = (res: globalThis.Response) => {
          for (const c of res.headers.getSetCookie()) {
            const pair = c.split(';')[0]!;
            cookies.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
          }
        };
        const cookie = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
        let res = await fetch(`${base}/login`);
        remember(res);
        const loginToken = csrfFrom(await res.text());
        res = await fetch(`${base}/login`, {
          method: 'POST',
          headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ _csrf: loginToken, email: user.email, password: PASSWORD }).toString(),
          redirect: 'manual',
        });
        remember(res);
        assert.equal(res.status, 303);
        res = await fetch(`${base}/account`, { headers: { cookie: cookie() } });
        const token = csrfFrom(await res.text());

        const boundary = `----vclerk${crypto.randomBytes(8).toString('hex')}`;
        const body = Buffer.concat([
          Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n`),
          csv,
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]);
        let uploaded = false;
        let answered = false;
        const importing = new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = http.request(`${base}/admin/catalog/import/preview?_csrf=${encodeURIComponent(token)}`, {
            method: 'POST',
            headers: { cookie: cookie(), 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length },
          }, (answer) => {
            // The preview has answered once its headers arrive (the 13 MB page then still streams in).
            answered = true;
            const chunks: Buffer[] = [];
            answer.on('data', (c: Buffer) => chunks.push(c));
            answer.on('end', () => {
              resolve({ status: answer.statusCode!, text: Buffer.concat(chunks).toString('utf8') });
            });
          });
          req.on('error', reject);
          // The callback runs once the whole file is handed to the socket: from then on the server reads and checks it.
          req.end(body, () => {
            uploaded = true;
          });
        });

        // Poll /healthz one request after the other until the preview answers (bounded in count).
        let whileChecking = 0;
        let polls = 0;
        while (!answered && polls < 20_000) {
          const health = await fetch(`${base}/healthz`);
          await health.arrayBuffer();
          polls++;
          if (health.status === 200 && uploaded && !answered) whileChecking++;
        }
        const done = await importing;
        assert.equal(done.status, 422, done.text.slice(0, 500));
        assert.match(done.text, /17000 rows: 0 new, 0 updated/);
        assert.equal([...done.text.matchAll(/data-field="currency" data-code="invalid_currency"/g)].length, 500, 'the first 500 problems are shown');
        assert.ok(whileChecking >= 50, `only ${whileChecking} of ${polls} health checks were answered after the upload and before the preview`);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });

  describe('escaping', () => {
    it('a script in an imported name or description is shown as text on admin pages and is plain text in JSON', async () => {
      await importFile(`${HEADER}\nXSS-1,"Schutzbrief ${XSS.replace(/"/g, '""')}","<img src=x onerror=alert(2)>",1,EUR,,"<b>cat</b>",,\n`);
      const list = await admin.agent.get('/admin/catalog').query({ q: 'Schutzbrief' }).expect(200);
      assert.ok(!list.text.includes(XSS));
      assert.ok(list.text.includes('Schutzbrief &lt;script&gt;alert(1)&lt;/script&gt;'));
      assert.ok(!list.text.includes('<b>cat</b>'));
      const row = await knex()('products').where({ organisation_id: org.id, sku: 'XSS-1' }).first('id');
      const edit = await admin.agent.get(`/admin/catalog/${row!.id}`).expect(200);
      assert.ok(!edit.text.includes(XSS));
      assert.ok(!edit.text.includes('<img src=x'));
      assert.ok(edit.text.includes('&lt;img src=x onerror=alert(2)&gt;'));
      const json = await clerk.agent.get('/catalog/search').query({ q: 'Schutzbrief' }).expect(200).expect('Content-Type', /application\/json/);
      assert.equal(json.body.products[0].name, `Schutzbrief ${XSS}`);
      const preview1 = await expectStatus(preview(`${HEADER}\n"${XSS}",${XSS},,x,EUR,,,,\n`), 422);
      assert.ok(!preview1.text.includes(XSS));
    });
  });
});
