import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { eventHash, GENESIS_HASH, type ChainedContent } from '../app/audit/chain';
import { publicKeyInfo } from '../app/audit/signing';
import { createKnex } from '../app/db/connection';
import { writeAuditExport, type WrittenExport } from '../app/compliance/audit-export';
import { compactDetails } from '../app/compliance/audit-export-fields';
import { CopyToNdjson } from '../app/compliance/audit-export-lines';
import { exportCopySql } from '../app/audit/store';
import { copyOut } from '../app/db/copy-out';
import { MANIFEST_FORMAT, MANIFEST_VERSION, manifestText, signManifest } from '../app/compliance/audit-export-manifest';
import { verifyExport } from '../app/compliance/audit-offline-verify';
import { fileHash, THREAD_HASH_MIN_BYTES } from '../app/compliance/audit-verify-hash';
import type { AuditFilter } from '../app/audit/service';
import { seedOrganisation } from './support/accounts';
import { seedAuditChain } from './support/audit-seed';
import { useTestDatabase } from './support/database';

/**
 * The NDJSON export is written from PostgreSQL's binary COPY stream
 * (audit-export-lines.ts), the CSV and the tests' reference row by row
 * (`toExportRow` + `ndjsonLine`, as every export was before). The two must
 * give the same bytes for any row the trail can hold: odd details (numbers
 * JavaScript writes differently, keys of digits, null, scalars, escapes,
 * non-ASCII), nulls, strings with quotes and control characters, and
 * timestamps with 0 to 6 fractional digits, before 1970, in year 1 to 9999
 * and beyond, BC, read in any session time zone. And the offline verifier's
 * quick reading of lines must give the verdict of JSON.parse, line by line.
 */
const details = [
  '{}', 'null', '{"n": 1, "note": "seeded"}',
  '{"a": 1.0, "b": 1e3, "c": 1.5e-7, "d": 0.1, "e": 12345678901234567, "f": -0, "g": -5, "h": 123456789012345, "i": 1234567890123456, "j": 2.50}',
  '{"10": 1, "9": 2, "a": 3, "": 4, "01": 5}', '{"a": {"7": true}}',
  '{"s": "a, b: c", "q": "say \\"hi\\": \\"x\\", y", "bs": "back\\\\slash\\\\", "ctl": "\\u0001\\u001f\\n\\t\\b\\f\\r", "uni": "Grüße 😀 \\u2028 \\u00e9", "slash": "a/b", "del": "\\u007f"}',
  '[1, 2.50, {"z": 1, "a": [true, false, null]}]', '"just a string"', '5', '-7', '0', 'true', '[]', '{"e": []}', '{"x": {}}',
  '{"nested": {"deep": {"x": [1, {"k": "v", "b": null}]}}, "__proto__": 1, "constructor": "c"}',
  '{"big": 1e400, "tiny": 1e-400, "neg": -1.5}', '{"   ": " ", "a b": "c d", ":": ",", "k,": ", "}',
];
const times = [
  '2026-01-01 00:00:00+00', '2026-01-01 00:00:00.5+00', '2026-01-01 00:00:00.123+00', '2026-01-01 00:00:00.123456+00', '2026-01-01 23:59:59.999999+00',
  '2026-03-29 02:30:00.000001+02', '1969-12-31 23:59:59.9995+00', '1970-01-01 00:00:00+00', '1900-02-28 12:00:00.57+00', '0001-01-01 00:00:00+00',
  '0044-03-15 12:00:00.25+00', '9999-12-31 23:59:59.999999+00', '12000-06-01 00:00:00+00', '0010-06-01 10:00:00 BC', '1600-01-01 00:00:00.000999+00', '2285-06-01 00:00:00.001+00',
];
const everyControl = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('') + '\u007f"\\/';
const labels = ['Anna "A" Müller', 'back\\slash', 'tab\tnew\nline\r\u0001\u001f', '😀 \u2028\u2029 é', "O'Brien", '', '=cmd', everyControl];

describe('audit export from COPY: the same bytes as row by row', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let work: string;
  let orgId: string;

  /** Appends events with the given details (jsonb text) and timestamps (text), hashed as the app would read them back. */
  async function appendTricky(organisationId: string): Promise<void> {
    const parseTime = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ) as (text: string) => Date;
    const last = await knex()('audit_events').where({ chain: organisationId }).orderBy('seq', 'desc').first('seq', 'hash');
    let seq = last ? Number(last.seq) : 0;
    let prev: string = last?.hash ?? GENESIS_HASH;
    const count = Math.max(details.length, times.length) * 2;
    for (let i = 0; i < count; i++) {
      seq++;
      const detailsText = details[i % details.length]!;
      const time = times[i % times.length]!;
      // What the app reads back: jsonb's text through JSON.parse, the timestamp through pg's parser.
      const { rows } = await knex().raw('SELECT ?::jsonb::text AS d, ?::timestamptz::text AS t', [detailsText, time]);
      const content: ChainedContent = {
        chain: organisationId, seq, occurred_at: parseTime(rows[0].t).toISOString(), organisation_id: organisationId,
        actor_type: i % 3 === 0 ? 'system' : 'user', actor_id: i % 2 ? null : `actor-${i}`, actor_label: i % 5 === 4 ? null : labels[i % labels.length]!,
        action: `test.${i % 4 ? 'tricky' : 'odd "action"'}`, target_type: i % 2 ? 'thing' : null, target_id: i % 3 ? null : `t\\${i}`,
        ip: i % 2 ? '192.0.2.1' : null, user_agent: i % 4 === 1 ? null : `UA/${i} "x" \u00e9`, details: JSON.parse(rows[0].d) ?? {},
      };
      const hash = eventHash(prev, content);
      await knex().raw(
        `INSERT INTO audit_events (chain, seq, occurred_at, organisation_id, actor_type, actor_id, actor_label, action, target_type, target_id, ip, user_agent, details, prev_hash, hash)
         VALUES (?, ?, ?::timestamptz, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?)`,
        [organisationId, seq, time, organisationId, content.actor_type, content.actor_id, content.actor_label, content.action, content.target_type, content.target_id, content.ip, content.user_agent, detailsText, prev, hash],
      );
      prev = hash;
    }
  }

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-export-copy-'));
    const org = await seedOrganisation(knex(), 'Copy Bank');
    orgId = org.id;
    await seedAuditChain(knex(), orgId, 300, { stepMs: 1 });
    await appendTricky(orgId);
    await seedAuditChain(knex(), orgId, 20, { start: new Date('2026-02-01T00:00:00.007Z'), stepMs: 333 });
    const other = await seedOrganisation(knex(), 'Other Bank');
    await seedAuditChain(knex(), other.id, 50);
  });

  after(() => fs.rmSync(work, { recursive: true, force: true }));

  async function both(filter: AuditFilter, organisationId = orgId, db = knex()): Promise<{ copy: WrittenExport; rows: WrittenExport; copyText: Buffer; rowsText: Buffer }> {
    const name = crypto.randomUUID();
    const copy = await writeAuditExport(db, { organisationId, filter, format: 'ndjson', file: path.join(work, `${name}.copy`) });
    const rows = await writeAuditExport(db, { organisationId, filter, format: 'ndjson', file: path.join(work, `${name}.rows`), rowByRow: true, batchSize: 7 });
    return { copy, rows, copyText: fs.readFileSync(path.join(work, `${name}.copy`)), rowsText: fs.readFileSync(path.join(work, `${name}.rows`)) };
  }

  function assertSame(r: Awaited<ReturnType<typeof both>>): void {
    if (!r.copyText.equals(r.rowsText)) {
      const a = r.copyText.toString('utf8').split('\n');
      const b = r.rowsText.toString('utf8').split('\n');
      const i = a.findIndex((line, k) => line !== b[k]);
      assert.equal(a[i], b[i], `line ${i + 1} differs`);
    }
    assert.deepEqual(r.copy, r.rows);
  }

  it('the whole chain, tricky rows included: byte for byte, with the same count, hash, first and last link', async () => {
    const r = await both({});
    assert.equal(r.copy.rowCount, 320 + Math.max(details.length, times.length) * 2);
    assert.equal(r.copy.contiguous, true);
    assertSame(r);
  });

  it('read in other session time zones (pg parses their offsets; COPY sends the instant)', async () => {
    for (const zone of ['America/St_Johns', 'Asia/Kathmandu', 'Europe/Berlin']) {
      const url = new URL(db.current.url);
      url.searchParams.set('options', `-c TimeZone=${zone}`);
      const zoned = createKnex(url.toString(), 2);
      try {
        assert.equal((await zoned.raw('SHOW TimeZone')).rows[0].TimeZone, zone);
        assertSame(await both({}, orgId, zoned));
      } finally {
        await zoned.destroy();
      }
    }
  });

  it('filtered: period, action group, actor (quotes and backslashes in the filter stay literal), nothing matching, no chain', async () => {
    const filters: AuditFilter[] = [
      { from: new Date('2021-01-01T00:00:00.100Z'), to: new Date('2021-01-01T00:00:00.200Z') },
      { action: 'test' }, { action: 'organisation.updated' }, { actor: 'Müller' }, { actor: "O'Brien" }, { actor: 'back\\slash' }, { actor: "x' OR '1'='1" },
      { actor: 'actor-0' }, { action: 'nothing.here' },
    ];
    for (const filter of filters) {
      const r = await both(filter);
      assertSame(r);
      if (filter.actor === 'actor-0') assert.equal(r.copy.rowCount, 1);
      if (filter.actor === "O'Brien") assert.ok(r.copy.rowCount > 0);
      if (filter.actor === "x' OR '1'='1") assert.equal(r.copy.rowCount, 0);
    }
    const empty = await seedOrganisation(knex(), 'Empty Bank');
    const r = await both({}, empty.id);
    assert.equal(r.copy.rowCount, 0);
    assertSame(r);
  });

  it('the same lines whichever way the COPY stream is cut into chunks (rows, fields and the header split anywhere)', async () => {
    const head = await knex()('audit_events').where({ chain: orgId }).max('seq as seq').first();
    const chunks: Buffer[] = [];
    for await (const chunk of copyOut(knex(), exportCopySql(knex(), orgId, Number((head as unknown as { seq: string }).seq), () => undefined))) chunks.push(chunk);
    const stream = Buffer.concat(chunks);
    const convert = (cut: (at: number) => number) => {
      const lines = new CopyToNdjson(orgId);
      const out: Buffer[] = [];
      for (let at = 0; at < stream.length; ) {
        const size = Math.max(1, Math.min(cut(at), stream.length - at));
        out.push(...lines.push(stream.subarray(at, at + size)));
        at += size;
      }
      out.push(...lines.end());
      return { text: Buffer.concat(out), rows: lines.rows, linked: lines.linked, last: lines.last };
    };
    const whole = convert(() => stream.length);
    assert.ok(whole.rows > 300 && whole.linked);
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (const cut of [() => 1, () => 5, () => 19, () => 64, () => 1 + Math.floor(random() * 2000), () => 1 + Math.floor(random() * 200_000)]) {
      const r = convert(cut);
      assert.ok(r.text.equals(whole.text));
      assert.deepEqual([r.rows, r.linked, r.last], [whole.rows, whole.linked, whole.last]);
    }
    // A stream cut short, or with bytes after its trailer, is refused.
    assert.throws(() => new CopyToNdjson(orgId).end(), /ended early/);
    const short = new CopyToNdjson(orgId);
    short.push(stream.subarray(0, stream.length - 100));
    assert.throws(() => short.end(), /ended early/);
    assert.throws(() => new CopyToNdjson(orgId).push(Buffer.concat([stream, Buffer.from([0])])), /after its trailer/);
  });

  it('compacts jsonb text as JSON.stringify(JSON.parse(...) ?? {}) would write it, or hands it to JSON.parse', async () => {
    const { rows } = await knex().raw(`SELECT d::jsonb::text AS t FROM unnest(?::text[]) AS d`, [details]);
    for (const { t } of rows as { t: string }[]) {
      const src = Buffer.from(t);
      const out = Buffer.alloc(src.length);
      const end = compactDetails(src, 0, src.length, out, 0);
      const expected = JSON.stringify(JSON.parse(t) ?? {});
      if (end >= 0) assert.equal(out.toString('utf8', 0, end), expected, t);
      else assert.ok(/null|\.|[0-9]{16}|"[0-9]+":|-0/.test(t), `${t} should have been compacted`);
    }
  });

  it('the offline verifier: the quick reading of a line gives the verdict of JSON.parse, for intact and altered lines', async () => {
    const file = path.join(work, 'verify.ndjson');
    const written = await writeAuditExport(knex(), { organisationId: orgId, filter: {}, format: 'ndjson', file });
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
    const manifestFor = (text: string | Buffer, complete: boolean) => signManifest(
      {
        format: MANIFEST_FORMAT, version: MANIFEST_VERSION, export_id: crypto.randomUUID(), organisation_id: orgId, created_at: new Date().toISOString(),
        created_by: { id: 't', label: 't' }, file: { name: 'x.ndjson', format: 'ndjson', bytes: Buffer.byteLength(text), sha256: crypto.createHash('sha256').update(text).digest('hex') },
        period: { from: null, to: null, from_time: null, to_time: null }, filters: { actor: null, action: null }, complete_chain: complete,
        row_count: written.rowCount, first: written.first, last: written.last, chain_head: written.chainHead,
      },
      { privateKey, publicKey, info: publicKeyInfo(publicKey) },
    );
    const original = fs.readFileSync(file, 'utf8');
    const lines = original.trimEnd().split('\n');
    const at = (k: number, f: (l: string) => string) => lines.map((l, i) => (i === k ? f(l) : l)).join('\n') + '\n';
    const variants: Record<string, string> = {
      intact: original,
      crlf: original.replace(/\n/g, '\r\n'),
      lone_cr: at(3, (l) => `${l}\r`),
      no_final_newline: original.trimEnd(),
      blank_line: at(5, (l) => `${l}\n`),
      changed_label: at(2, (l) => l.replace('seed-', 'Seed-')),
      escaped_same_text: at(2, (l) => l.replace('"seed-', '"\\u0073eed-')),
      details_reordered: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"note":"seeded","n":1}')),
      details_spaced: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{ "n" : 1 , "note":"seeded"}')),
      seq_leading_zero: at(4, (l) => l.replace(/"seq":(\d+)/, '"seq":0$1')),
      seq_as_string: at(4, (l) => l.replace(/"seq":(\d+)/, '"seq":"$1"')),
      seq_float: at(4, (l) => l.replace(/"seq":(\d+)/, '"seq":$1.0')),
      whitespace: at(6, (l) => l.replace('","chain"', '", "chain"')),
      upper_hash: at(7, (l) => l.replace(/"hash":"([0-9a-f]{64})"/, (_, h: string) => `"hash":"${h.toUpperCase()}"`)),
      short_hash: at(7, (l) => l.replace(/"hash":"([0-9a-f]{64})"/, (_, h: string) => `"hash":"${h.slice(1)}"`)),
      null_action: at(8, (l) => l.replace(/"action":"[^"]*"/, '"action":null')),
      other_org: at(9, (l) => l.replace(/"organisation_id":"[^"]*"/, '"organisation_id":"00000000-0000-4000-8000-000000000000"')),
      key_renamed: at(10, (l) => l.replace('"ip":', '"IP":')),
      not_json: at(11, (l) => l.slice(0, -5)),
      extra_key: at(12, (l) => l.replace('{"id":', '{"x":1,"id":')),
      dropped_row: lines.filter((_, i) => i !== 13).join('\n') + '\n',
      swapped: lines.map((l, i) => (i === 14 ? lines[15] : i === 15 ? lines[14] : l)).join('\n') + '\n',
      // Details read on the bytes only when already canonical, else through JSON.parse: the same verdicts.
      n_float: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"n":1.0,"note":"seeded"}')),
      n_exponent: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"n":1e0,"note":"seeded"}')),
      n_leading_zero: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"n":01,"note":"seeded"}')),
      n_negative_zero: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"n":-0,"note":"seeded"}')),
      n_sixteen_digits: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"n":1000000000000001,"note":"seeded"}')),
      duplicate_key: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"n":2,"n":1,"note":"seeded"}')),
      nested_sorted: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"a":{"b":[1,true,null,"x",[]],"c":{}},"n":1,"note":"seeded"}')),
      top_null: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', 'null')),
      non_ascii_key: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"n":1,"note":"seeded","é":1}')),
      details_truncated: at(1, (l) => l.replace('{"n":1,"note":"seeded"}', '{"n":1,"note":"seeded"')),
      many_changed: lines.map((l, i) => (i % 9 === 0 ? l.replace('seed-', 'Seed-') : l)).join('\n') + '\n',
      many_invalid: lines.map((l, i) => (i % 5 === 0 ? `x${i}\n${l}` : l)).join('\n') + '\n',
      first_dropped: lines.slice(1).join('\n') + '\n',
      reversed_tail: [...lines.slice(0, 100), ...lines.slice(100).reverse()].join('\n') + '\n',
      details_prev_hash_key: at(2, (l) => l.replace(/"details":\{[^}]*\}/, `"details":{"x":1,"prev_hash":"${'a'.repeat(64)}","hash":"${'b'.repeat(64)}"}`)),
    };
    // Bytes that are not UTF-8 (decoded as U+FFFD by the text reading): the piece is read as text.
    const invalid = Buffer.from(original);
    invalid[invalid.indexOf('seed-', invalid.indexOf('\n', 100))] = 0xff;
    const binary: Record<string, Buffer> = { invalid_utf8: invalid };
    for (const [name, text] of [...Object.entries(variants), ...Object.entries(binary)]) {
      for (const complete of [true, false]) {
        const f = path.join(work, `${name}.ndjson`);
        fs.writeFileSync(f, text);
        fs.writeFileSync(`${f}.manifest.json`, manifestText(manifestFor(text, complete)));
        const quick = await verifyExport(f, `${f}.manifest.json`);
        const general = await verifyExport(f, `${f}.manifest.json`, { quickRows: false });
        assert.deepEqual(quick, general, name);
        // On threads, the file cut into small pieces (rows across piece ends): the same verdicts, lines and counts.
        for (const pieceBytes of complete ? [1500] : [4000]) {
          assert.deepEqual(await verifyExport(f, `${f}.manifest.json`, { rowThreads: 2, pieceBytes }), quick, `${name} on threads, pieces of ${pieceBytes} bytes`);
        }
        if (name === 'intact') assert.equal(quick.ok, true, JSON.stringify(quick.problems));
        if (name === 'changed_label') assert.deepEqual(quick.breaks.map((b) => [b.line, b.reason]), [[3, 'hash_mismatch']]);
        if (name === 'many_changed') assert.ok(quick.breakCount > 20 && quick.breaks.length === 20);
      }
    }
  });

  it('the verifier\'s file hash on a worker thread (large files) equals SHA-256 of the bytes, pieces handed over in order', async () => {
    const hash = fileHash(THREAD_HASH_MIN_BYTES);
    const reference = crypto.createHash('sha256');
    try {
      for (let i = 0; i < 12; i++) {
        const piece = Buffer.allocUnsafe(1 << 20);
        piece.fill(i * 7 + 1);
        const part = piece.subarray(i, (1 << 20) - i * 3);
        reference.update(part);
        await hash.update(part);
      }
      const small = Buffer.from('a small pooled piece');
      reference.update(small);
      await hash.update(small);
      assert.equal(await hash.digest(), reference.digest('hex'));
    } finally {
      await hash.close();
    }
  });
});
