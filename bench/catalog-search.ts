/**
 * Catalog search benchmark: as-you-type search over 10,000 products.
 *
 *   npx tsx bench/catalog-search.ts [products] [queries]
 *
 * Seeds one organisation with 10,000 products (default) whose names and
 * descriptions are generated from German and English product words, in a
 * fresh test database (the embedded PostgreSQL, or DATABASE_URL's server),
 * and a second organisation with as many, so that scoping matters. Then it
 * runs 200 queries (default) as a clerk types them: prefixes of 2 to 6
 * characters, whole words, two-word queries and typos (two letters swapped).
 * Each query runs through `CatalogService.search` (full-text prefix search in
 * simple, English and German, trigram similarity on the name, ranked; the
 * in-call panel's call: active products, 20, no total), and side by side
 * through the baseline: `name ILIKE '%q%'` on the same rows, by name, 20.
 * Both run in turns, after a warm-up; median, p95 and max latency are
 * printed, with the ratio, and how many queries found anything at all.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Caller } from '../app/access/caller';
import { CatalogService } from '../app/catalog/service';
import { seedOrganisation, seedUser } from '../test/support/accounts';
import { createTestDatabase, startTestServer, stopTestServer } from '../test/support/database';
import { runBench } from './exit';

const PRODUCTS = Number(process.argv[2] ?? 10_000);
const QUERIES = Number(process.argv[3] ?? 200);

// A small seeded generator, so that every run measures the same catalog and queries.
let state = 0x2f6b1c3d;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 0x100000000;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const GERMAN = {
  heads: ['Hausrat', 'Wohngebäude', 'Haftpflicht', 'Kfz', 'Reise', 'Unfall', 'Berufsunfähigkeit', 'Rechtsschutz', 'Glas', 'Tierhalter', 'Zahn', 'Pflege', 'Risikoleben', 'Bauspar', 'Tagesgeld', 'Festgeld', 'Giro', 'Kredit', 'Baufinanzierung', 'Fonds', 'Depot', 'Photovoltaik', 'Fahrrad', 'Elektronik', 'Handy', 'Waschmaschinen', 'Kühlschrank', 'Rasenmäher'],
  tails: ['versicherung', 'schutz', 'konto', 'vertrag', 'tarif', 'paket', 'police', 'sparplan', 'darlehen', 'garantie'],
  grades: ['Basis', 'Komfort', 'Premium', 'Plus', 'Kompakt', 'Familie', 'Senioren', 'Junge Leute', 'Online', 'Exklusiv'],
  phrases: ['Schützt Ihren Hausrat gegen Feuer, Einbruch und Leitungswasser.', 'Mit weltweitem Schutz auf Reisen.', 'Monatlich kündbar, ohne Grundgebühr.', 'Beratung in der Filiale und per Video.', 'Inklusive Fahrraddiebstahl und Überspannung.', 'Für Mieter und Eigentümer.', 'Zinsen garantiert für zwölf Monate.', 'Schnelle Schadenregulierung.'],
};
const ENGLISH = {
  heads: ['Home', 'Contents', 'Car', 'Travel', 'Pet', 'Dental', 'Life', 'Income protection', 'Legal', 'Savings', 'Current', 'Mortgage', 'Credit card', 'Bicycle', 'Phone', 'Laptop', 'Washing machine', 'Solar panel', 'Boiler', 'Gadget'],
  tails: ['insurance', 'cover', 'account', 'plan', 'bundle', 'policy', 'loan', 'warranty', 'bond', 'protection'],
  grades: ['Basic', 'Standard', 'Premium', 'Plus', 'Family', 'Student', 'Senior', 'Online', 'Gold', 'Essentials'],
  phrases: ['Covers your belongings against fire, theft and flooding.', 'Worldwide protection while travelling.', 'Cancel any month, no fees.', 'Advice in branch or by video call.', 'Includes accidental damage and breakdown.', 'For tenants and home owners.', 'Fixed interest for twelve months.', 'Fast claims handling.'],
};

function product(i: number, organisationId: string) {
  const lang = random() < 0.6 ? GERMAN : ENGLISH;
  const head = pick(lang.heads);
  const tail = pick(lang.tails);
  const name = lang === GERMAN ? `${head}${tail} ${pick(lang.grades)}` : `${head} ${tail} ${pick(lang.grades)}`;
  return {
    organisation_id: organisationId,
    sku: `SKU-${String(i).padStart(6, '0')}`,
    name,
    description: `${pick(lang.phrases)} ${pick(lang.phrases)}`,
    price_cents: Math.floor(random() * 50_000),
    currency: 'EUR',
    category: tail,
    tags: [head.toLowerCase(), tail],
    active: random() < 0.95,
  };
}

async function seed(knex: Knex, organisationId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) batch.push(product(j, organisationId));
    await knex('products').insert(batch);
  }
}

interface Query {
  kind: 'prefix' | 'word' | 'two words' | 'typo';
  text: string;
}

function queries(count: number): Query[] {
  const words = [...GERMAN.heads, ...GERMAN.grades, ...ENGLISH.heads, ...ENGLISH.tails, ...ENGLISH.grades, 'Versicherung', 'Versicherungen', 'insurances', 'Konten'];
  const out: Query[] = [];
  while (out.length < count) {
    const word = pick(words).split(' ')[0]!;
    const roll = random();
    if (roll < 0.5) {
      out.push({ kind: 'prefix', text: word.slice(0, 2 + Math.floor(random() * 5)) });
    } else if (roll < 0.7) {
      out.push({ kind: 'word', text: word });
    } else if (roll < 0.8) {
      out.push({ kind: 'two words', text: `${word} ${pick(words).split(' ')[0]!.slice(0, 4)}` });
    } else if (word.length >= 5) {
      const at = 1 + Math.floor(random() * (word.length - 3));
      out.push({ kind: 'typo', text: word.slice(0, at) + word[at + 1] + word[at] + word.slice(at + 2) });
    }
  }
  return out;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function timed(run: () => Promise<number>): Promise<{ ms: number; found: number }> {
  const started = process.hrtime.bigint();
  const found = await run();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, found };
}

async function main(): Promise<void> {
  await startTestServer();
  const db = await createTestDatabase();
  try {
    const knex = db.knex;
    const org = await seedOrganisation(knex, 'Bench Versicherung');
    const other = await seedOrganisation(knex, 'Bench Other');
    const clerk = await seedUser(knex, org, 'clerk');
    const seeding = Date.now();
    await seed(knex, org.id, PRODUCTS);
    await seed(knex, other.id, PRODUCTS);
    await knex.raw('ANALYZE products');
    console.log(`seeded ${PRODUCTS} products (+${PRODUCTS} in another organisation) in ${((Date.now() - seeding) / 1000).toFixed(1)} s`);

    const caller: Caller = {
      user: { id: clerk.id, organisationId: org.id, organisationSlug: org.slug, organisationName: org.name, organisationBrandVersion: 0, name: clerk.name, email: clerk.email, role: 'clerk', language: null },
      ip: '127.0.0.1',
      userAgent: 'bench',
      sessionId: crypto.randomUUID(),
    };
    const catalog = new CatalogService(knex, caller);
    const vclerk = async (q: string) => (await catalog.search(q, { active: true, limit: 20, withTotal: false })).products.length;
    const baseline = async (q: string) =>
      (await knex('products').where({ organisation_id: org.id, active: true }).whereILike('name', `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`).orderBy('name').limit(20).select('*')).length;

    const list = queries(QUERIES);
    for (const q of list.slice(0, 20)) {
      await vclerk(q.text);
      await baseline(q.text);
    }
    type Result = { ms: number; found: number; kind: string; text: string };
    const results = { vclerk: [] as Result[], baseline: [] as Result[] };
    for (const [i, q] of list.entries()) {
      // Take turns, and alternate which goes first.
      const order = i % 2 === 0 ? (['vclerk', 'baseline'] as const) : (['baseline', 'vclerk'] as const);
      for (const which of order) {
        const r = await timed(() => (which === 'vclerk' ? vclerk(q.text) : baseline(q.text)));
        results[which].push({ ...r, kind: q.kind, text: q.text });
      }
    }

    const row = (label: string, rs: { ms: number; found: number }[]) => {
      const ms = rs.map((r) => r.ms);
      const hits = rs.filter((r) => r.found > 0).length;
      return `${label.padEnd(26)} ${percentile(ms, 50).toFixed(2).padStart(8)} ${percentile(ms, 95).toFixed(2).padStart(8)} ${Math.max(...ms).toFixed(2).padStart(8)}   ${String(hits).padStart(3)}/${rs.length}`;
    };
    console.log(`\n${QUERIES} queries over ${PRODUCTS} products (ms)      median      p95      max   found anything`);
    console.log(row('VClerk (fts + trigram)', results.vclerk));
    console.log(row("baseline (ILIKE '%q%')", results.baseline));
    const ratio = (p: number) => (percentile(results.vclerk.map((r) => r.ms), p) / percentile(results.baseline.map((r) => r.ms), p)).toFixed(2);
    console.log(`ratio VClerk / baseline: median ${ratio(50)}, p95 ${ratio(95)}`);
    console.log('\nby kind (VClerk median / baseline median ms, found anything VClerk / baseline)');
    for (const kind of ['prefix', 'word', 'two words', 'typo']) {
      const v = results.vclerk.filter((r) => r.kind === kind);
      const b = results.baseline.filter((r) => r.kind === kind);
      if (v.length === 0) continue;
      console.log(`  ${kind.padEnd(10)} n=${String(v.length).padStart(3)}  ${percentile(v.map((r) => r.ms), 50).toFixed(2)} / ${percentile(b.map((r) => r.ms), 50).toFixed(2)}   ${v.filter((r) => r.found > 0).length} / ${b.filter((r) => r.found > 0).length}`);
    }
    const slowest = [...results.vclerk].sort((a, b) => b.ms - a.ms).slice(0, 5);
    console.log(`\nslowest VClerk queries: ${slowest.map((r) => `"${r.text}" (${r.kind}, ${r.ms.toFixed(1)} ms, ${r.found} found)`).join(', ')}`);
  } finally {
    await db.drop();
    await stopTestServer();
  }
}

runBench(main);
