import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { catalogKeys, translator } from '../app/i18n';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

const root = path.join(__dirname, '..');

function filesUnder(dir: string, extension: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(extension))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('i18n', () => {
  describe('catalogs', () => {
    it('English and German have exactly the same keys', () => {
      assert.deepEqual(catalogKeys('de'), catalogKeys('en'));
    });

    it('every key used in views and code exists', () => {
      const keys = new Set(catalogKeys('en'));
      const used = new Set<string>();
      const files = [...filesUnder(path.join(root, 'views'), '.ejs'), ...filesUnder(path.join(root, 'app'), '.ts')];
      for (const file of files) {
        for (const match of fs.readFileSync(file, 'utf8').matchAll(/\bt\(\s*'([a-z0-9_.]+)'/g)) used.add(match[1]!);
      }
      assert.ok(used.size > 10, 'the scan finds the keys in use');
      const missing = [...used].filter((key) => !keys.has(key) && !keys.has(`${key}_other`));
      assert.deepEqual(missing, []);
    });

    it('views hold no untranslated text: every visible word comes from t()', () => {
      const offenders: string[] = [];
      for (const file of filesUnder(path.join(root, 'views'), '.ejs')) {
        const visible = fs.readFileSync(file, 'utf8')
          .replace(/<%[\s\S]*?%>/g, ' ')
          .replace(/<!--[\s\S]*?-->/g, ' ')
          .replace(/<[^>]*>/g, ' ');
        const words = visible.match(/\p{L}{2,}/gu);
        if (words) offenders.push(`${path.relative(root, file)}: ${words.join(' ')}`);
      }
      assert.deepEqual(offenders, []);
    });

    it('interpolates parameters; an unknown key shows as itself', () => {
      const t = translator('de');
      assert.equal(t('home.version', { version: '1.2.3' }), 'Version 1.2.3');
      assert.equal(t('no.such.key'), 'no.such.key');
    });
  });

  describe('language choice', () => {
    const db = useTestDatabase();

    it('follows Accept-Language', async () => {
      const app = buildApp(db.current);
      const de = await request(app).get('/').set('Accept-Language', 'de-AT, en;q=0.5').expect(200);
      assert.match(de.text, /<html lang="de">/);
      assert.match(de.text, /Videoberatung im eigenen Netzwerk/);
      const en = await request(app).get('/').set('Accept-Language', 'en-GB').expect(200);
      assert.match(en.text, /<html lang="en">/);
      assert.match(en.headers.vary ?? '', /Accept-Language/);
    });

    it('falls back to the configured default language', async () => {
      const app = buildApp(db.current, { env: { VCLERK_DEFAULT_LANGUAGE: 'de' } });
      const res = await request(app).get('/').expect(200);
      assert.match(res.text, /<html lang="de">/);
      const fr = await request(app).get('/').set('Accept-Language', 'fr').expect(200);
      assert.match(fr.text, /<html lang="de">/);
    });

    it('the visitor\'s own choice wins over Accept-Language', async () => {
      const agent = request.agent(buildApp(db.current));
      const res = await agent.get('/language?lang=de&return=/').expect(303).expect('Location', '/');
      assert.match(String(res.headers['set-cookie']), /vclerk_lang=de;.*HttpOnly.*SameSite=Lax/i);
      const page = await agent.get('/').set('Accept-Language', 'en').expect(200);
      assert.match(page.text, /<html lang="de">/);
    });

    it('refuses an unknown language and never redirects off-site', async () => {
      const app = buildApp(db.current);
      const bad = await request(app).get('/language?lang=xx').set('Accept', 'application/json').expect(400);
      assert.equal(bad.body.error.code, 'unsupported_language');
      for (const target of ['//evil.example', 'https://evil.example', '/\\evil.example']) {
        await request(app).get(`/language?lang=en&return=${encodeURIComponent(target)}`).expect(303).expect('Location', '/');
      }
    });
  });
});
