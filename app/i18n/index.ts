import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../core/paths';

export const languages = ['en', 'de'] as const;
export type Language = (typeof languages)[number];

type Catalog = { [key: string]: string | Catalog };

export const localesDir = path.join(projectRoot, 'locales');

/**
 * Catalogs live in locales/<lang>/<namespace>.json, one file per feature so
 * that features do not edit the same file. `common.json` holds top-level
 * keys; any other file's keys sit under its name (`errors.json` -> `errors.*`).
 */
function loadCatalog(lang: Language): Catalog {
  const catalog: Catalog = {};
  const dir = path.join(localesDir, lang);
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const content = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Catalog;
    const namespace = path.basename(file, '.json');
    if (namespace === 'common') Object.assign(catalog, content);
    else catalog[namespace] = content;
  }
  return catalog;
}

const catalogs: Record<Language, Catalog> = { en: loadCatalog('en'), de: loadCatalog('de') };

export type TranslateParams = Record<string, string | number>;
export type Translate = (key: string, params?: TranslateParams) => string;

export function isLanguage(value: unknown): value is Language {
  return typeof value === 'string' && (languages as readonly string[]).includes(value);
}

function lookup(catalog: Catalog, key: string): string | undefined {
  let node: string | Catalog | undefined = catalog;
  for (const part of key.split('.')) {
    if (node === undefined || typeof node === 'string') return undefined;
    node = node[part];
  }
  return typeof node === 'string' ? node : undefined;
}

function interpolate(template: string, params: TranslateParams): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (match, name: string) =>
    params[name] !== undefined ? String(params[name]) : match,
  );
}

const pluralRules = new Map(languages.map((lang) => [lang, new Intl.PluralRules(lang)]));

/**
 * A translator for one language. Keys are dotted paths into the catalog.
 * With a numeric `count` parameter, `<key>_one` / `<key>_other` are chosen by
 * the language's plural rules. A key missing in German falls back to
 * English; a key missing everywhere returns the key itself (and a test keeps
 * that from shipping).
 */
export function translator(lang: Language): Translate {
  const catalog = catalogs[lang];
  const rules = pluralRules.get(lang)!;
  return (key, params = {}) => {
    let candidates = [key];
    if (typeof params.count === 'number') candidates = [`${key}_${rules.select(params.count)}`, `${key}_other`, key];
    for (const candidate of candidates) {
      const found = lookup(catalog, candidate) ?? lookup(catalogs.en, candidate);
      if (found !== undefined) return interpolate(found, params);
    }
    return key;
  };
}

/** Every key of a catalog, flattened to dotted paths (used by tests). */
export function catalogKeys(lang: Language): string[] {
  const keys: string[] = [];
  const walk = (node: Catalog, prefix: string) => {
    for (const [name, value] of Object.entries(node)) {
      const key = prefix ? `${prefix}.${name}` : name;
      if (typeof value === 'string') keys.push(key);
      else walk(value, key);
    }
  };
  walk(catalogs[lang], '');
  return keys.sort();
}
