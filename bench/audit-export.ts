/**
 * Audit export benchmark: streaming 1,000,000 audit events to a file.
 *
 *   npx tsx bench/audit-export.ts [events]
 *
 * Seeds one organisation's hash chain with 1,000,000 valid events (default;
 * hashes computed with chain.ts, inserted in batches) in a fresh test
 * database (the embedded PostgreSQL, or DATABASE_URL's server), and 1,000
 * events of a second organisation. Then each variant runs in its own child
 * process, so that one's memory does not count against the other's, one
 * after the other, sampling process.memoryUsage() every 100 ms:
 *
 *   export     writeAuditExport (app/compliance/audit-export.ts) to NDJSON:
 *              one binary COPY turned into lines without row objects,
 *              backpressure, SHA-256 while writing;
 *   rows       the same function row by row (`rowByRow`: keyset batches of
 *              5,000, toExportRow + ndjsonLine; how every export was
 *              written before, and the CSV still is);
 *   baseline   the naive way: one SELECT of all rows into an array, then
 *              the same NDJSON lines written from it;
 *   verify     the offline verifier (app/compliance/audit-offline-verify.ts) over the
 *              exported file: signature, file hash, every row's hash and link.
 *
 * BENCH_CPU_PROF=<dir> writes a CPU profile of each variant there (<variant>.cpuprofile).
 *
 * Printed: rows/s, peak RSS and peak heap used above the child's idle
 * figures, and the ratios export/baseline.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeAuditExport } from '../app/compliance/audit-export';
import { ndjsonLine, toExportRow } from '../app/compliance/audit-export-format';
import { MANIFEST_FORMAT, MANIFEST_VERSION, manifestText, signManifest } from '../app/compliance/audit-export-manifest';
import { verifyExport } from '../app/compliance/audit-offline-verify';
import { publicKeyInfo } from '../app/audit/signing';
import { createKnex } from '../app/db/connection';
import { seedOrganisation } from '../test/support/accounts';
import { seedAuditChain } from '../test/support/audit-seed';
import { createTestDatabase, startTestServer, stopTestServer } from '../test/support/database';
import type { AuditEventRow } from '../app/db/tables';
import { runBench } from './exit';

interface Figures {
  ms: number;
  rows: number;
  bytes: number;
  idleRss: number;
  peakRss: number;
  idleHeap: number;
  peakHeap: number;
}

const MB = 1024 * 1024;

/** Runs `work` while sampling memory every 100 ms; prints the figures as JSON for the parent. */
async function measured(work: () => Promise<{ rows: number; bytes: number }>): Promise<void> {
  global.gc?.();
  const idle = process.memoryUsage();
  let peakRss = idle.rss;
  let peakHeap = idle.heapUsed;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const timer = setInterval(sample, 100);
  const started = performance.now();
  const { rows, bytes } = await work();
  const ms = performance.now() - started;
  sample();
  clearInterval(timer);
  const figures: Figures = { ms, rows, bytes, idleRss: idle.rss, peakRss, idleHeap: idle.heapUsed, peakHeap };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

async function child(variant: string, url: string, organisationId: string, file: string): Promise<void> {
  const knex = createKnex(url, 2);
  await knex.raw('SELECT 1');
  try {
    if (variant === 'export' || variant === 'rows') {
      await measured(async () => {
        const written = await writeAuditExport(knex, { organisationId, filter: {}, format: 'ndjson', file, rowByRow: variant === 'rows' });
        return { rows: written.rowCount, bytes: written.bytes };
      });
    } else if (variant === 'baseline') {
      await measured(async () => {
        const rows = (await knex('audit_events').where({ chain: organisationId }).orderBy('seq')) as AuditEventRow[];
        // All rows are held at once; the lines are written in 1 MB pieces (one string of 1M rows is over V8's limit).
        const out = fs.createWriteStream(file);
        let bytes = 0;
        let piece = '';
        for (const r of rows) {
          piece += ndjsonLine(toExportRow(r));
          if (piece.length < MB) continue;
          bytes += Buffer.byteLength(piece);
          if (!out.write(piece)) await once(out, 'drain');
          piece = '';
        }
        bytes += Buffer.byteLength(piece);
        await new Promise<void>((resolve, reject) => out.end(piece, () => resolve()).once('error', reject));
        return { rows: rows.length, bytes };
      });
    } else if (variant === 'verify') {
      await measured(async () => {
        const result = await verifyExport(file, `${file}.manifest.json`);
        if (!result.ok) throw new Error(`verification failed: ${result.problems.join(', ')}`);
        return { rows: result.rows, bytes: fs.statSync(file).size };
      });
    } else {
      throw new Error(`unknown variant ${variant}`);
    }
  } finally {
    await knex.destroy();
  }
}

function runChild(variant: string, url: string, organisationId: string, file: string): Promise<Figures> {
  const tsx = path.join(__dirname, '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');
  return new Promise((resolve, reject) => {
    // BENCH_CPU_PROF=<dir>: each variant writes a V8 CPU profile there (open it in Chrome's DevTools).
    // Profiled, the script runs in this node process through tsx's loader (tsx's launcher would start another process).
    const dir = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined;
    const runner = dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${variant}.cpuprofile`, '--import', 'tsx'] : [tsx];
    const proc = spawn(process.execPath, ['--expose-gc', ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []), ...runner, __filename, '--child', variant, url, organisationId, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`${variant} exited with ${code}`))));
  });
}

/** A signed manifest for the exported file, so the verify variant checks everything it would check for real. */
async function writeManifest(file: string, organisationId: string, knex: ReturnType<typeof createKnex>): Promise<void> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const first = await knex('audit_events').where({ chain: organisationId }).orderBy('seq').first('seq', 'prev_hash', 'hash');
  const last = await knex('audit_events').where({ chain: organisationId }).orderBy('seq', 'desc').first('seq', 'hash');
  const counted = await knex('audit_events').where({ chain: organisationId }).count({ n: '*' });
  const n = counted[0]?.n ?? 0;
  const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const manifest = signManifest(
    {
      format: MANIFEST_FORMAT, version: MANIFEST_VERSION, export_id: crypto.randomUUID(), organisation_id: organisationId, created_at: new Date().toISOString(),
      created_by: { id: 'bench', label: 'bench' }, file: { name: path.basename(file), format: 'ndjson', bytes: fs.statSync(file).size, sha256 },
      period: { from: null, to: null, from_time: null, to_time: null }, filters: { actor: null, action: null }, complete_chain: true,
      row_count: Number(n), first: { seq: Number(first!.seq), prev_hash: first!.prev_hash, hash: first!.hash }, last: { seq: Number(last!.seq), hash: last!.hash },
      chain_head: { seq: Number(last!.seq), hash: last!.hash },
    },
    { privateKey, publicKey, info: publicKeyInfo(publicKey) },
  );
  fs.writeFileSync(`${file}.manifest.json`, manifestText(manifest));
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const events = Number(process.argv[2] ?? 1_000_000);
  await startTestServer();
  const db = await createTestDatabase();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-bench-export-'));
  try {
    const org = await seedOrganisation(db.knex, 'Bench Bank');
    const other = await seedOrganisation(db.knex, 'Bench Insurer');
    const seedStart = performance.now();
    await seedAuditChain(db.knex, org.id, events);
    const seedMs = performance.now() - seedStart;
    await seedAuditChain(db.knex, other.id, 1000);
    await db.knex.raw('VACUUM ANALYZE audit_events');
    console.log(`seeded ${fmt(events)} events in ${fmt(seedMs / 1000, 1)} s (${fmt(events / (seedMs / 1000))} rows/s, hashes computed in JS, batches of 5,000)`);

    const exportFile = path.join(work, 'export.ndjson');
    const baselineFile = path.join(work, 'baseline.ndjson');
    const rowsFile = path.join(work, 'rows.ndjson');
    const fileHash = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    const exported = await runChild('export', db.url, org.id, exportFile);
    const rows = await runChild('rows', db.url, org.id, rowsFile);
    const sameRows = fileHash(exportFile) === fileHash(rowsFile);
    fs.rmSync(rowsFile);
    const baseline = await runChild('baseline', db.url, org.id, baselineFile);
    const same = sameRows && fileHash(exportFile) === fileHash(baselineFile);
    fs.rmSync(baselineFile);
    await writeManifest(exportFile, org.id, db.knex);
    const verified = await runChild('verify', db.url, org.id, exportFile);

    const row = (name: string, f: Figures) =>
      `${name.padEnd(28)}${fmt(f.rows).padStart(11)}${fmt(f.ms / 1000, 1).padStart(9)}${fmt(f.rows / (f.ms / 1000)).padStart(11)}${fmt((f.peakRss - f.idleRss) / MB).padStart(14)}${fmt(f.peakRss / MB).padStart(12)}${fmt((f.peakHeap - f.idleHeap) / MB).padStart(15)}`;
    console.log(`\n${'variant'.padEnd(28)}${'rows'.padStart(11)}${'s'.padStart(9)}${'rows/s'.padStart(11)}${'peak RSS +MB'.padStart(14)}${'peak RSS MB'.padStart(12)}${'peak heap +MB'.padStart(15)}`);
    console.log(row('export (COPY, streamed)', exported));
    console.log(row('export row by row (keyset)', rows));
    console.log(row('baseline (SELECT all)', baseline));
    console.log(row('offline verify', verified));
    console.log(`\nratios export/baseline: rows/s ${fmt(exported.ms ? baseline.ms / exported.ms : 0, 2)}x, peak RSS growth ${fmt((exported.peakRss - exported.idleRss) / Math.max(1, baseline.peakRss - baseline.idleRss), 3)}x, peak heap growth ${fmt((exported.peakHeap - exported.idleHeap) / Math.max(1, baseline.peakHeap - baseline.idleHeap), 3)}x`);
    console.log(`file: ${fmt(exported.bytes / MB, 1)} MB; export, row-by-row and baseline files identical: ${same ? 'yes' : 'NO'}`);
    const exportRate = exported.rows / (exported.ms / 1000);
    const verifyRate = verified.rows / (verified.ms / 1000);
    console.log(`targets (issue 17): export >= 200,000 rows/s: ${fmt(exportRate)} ${exportRate >= 200_000 ? 'met' : 'NOT met'}; peak RSS growth <= 150 MB: ${fmt((exported.peakRss - exported.idleRss) / MB)} ${exported.peakRss - exported.idleRss <= 150 * MB ? 'met' : 'NOT met'}; verify at least as fast as the export: ${verifyRate >= exportRate ? 'met' : 'NOT met'}`);
    if (!same || exported.rows !== events || verified.rows !== events) process.exitCode = 1;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    await db.drop();
    await stopTestServer();
  }
}

if (process.argv[2] === '--child') {
  const [, , , variant, url, organisationId, file] = process.argv;
  child(variant!, url!, organisationId!, file!).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  runBench(main);
}
